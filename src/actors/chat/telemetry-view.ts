/**
 * What the chat actor knows about training: the latest overlay messages it needs (game state,
 * move prediction, PPO metrics per level, heatmap focus, milestones), read from its fan-out ring.
 *
 * Only the types it uses are parsed (the key says the type before any JSON is read), and the
 * full-series ppo_metrics variant (no-live) is skipped when the light live one keeps coming.
 */
import { FanoutFlag, FanoutType, readFanoutRecord } from '../../shared/telemetry/ring-records.js';
import { LEVEL_BIT, LEVELS, type Level } from '../../shared/telemetry/channels.js';

export interface OverlayMessage { type: string; timestamp?: number; data?: Record<string, unknown> }

export interface MetricView { latest?: number; mean?: number; min?: number; max?: number; trend?: number; count?: number }

export interface PpoMetricsData {
  run?: string;
  step?: number;
  values?: Record<string, number>;
  metrics?: Record<string, MetricView>;
  health?: { status?: string; kl?: number | null; clip_fraction?: number | null; reason?: string };
  explanation?: string;
}

export interface MovePredictionData {
  run?: string;
  step?: number;
  top_moves?: { move: string; prob: number }[];
  value?: number | null;
  position?: string | null;
  explanation?: string;
}

export interface GameStateData {
  run?: string;
  game_id: string;
  sfen?: string | null;
  moves?: string[] | null;
  last_move?: string | null;
  result?: string | null;
  move_count?: number | null;
  games_finished?: number;
}

export interface MilestoneData { id?: string; name?: string; message?: string; run?: string; step?: number }

const WANTED = ['game_state', 'move_prediction', 'ppo_metrics', 'board_heatmap', 'milestone'] as const;
type Wanted = (typeof WANTED)[number];

function wantedType(key: string): Wanted | undefined {
  const colon = key.indexOf(':');
  const type = colon < 0 ? key : key.slice(0, colon);
  return (WANTED as readonly string[]).includes(type) ? (type as Wanted) : undefined;
}

const decoder = new TextDecoder();

export interface ViewEvent { type: Wanted; data: Record<string, unknown>; critical: boolean }

export class TelemetryView {
  game: GameStateData | undefined;
  prediction: MovePredictionData | undefined;
  heatmapFocus: string[] = [];
  readonly metrics: Partial<Record<Level, PpoMetricsData>> = {};
  /** Run of the latest game state, else of the latest metrics. */
  run: string | undefined;
  private liveMetricsAt = 0;
  parseFailures = 0;

  /** Read one fan-out record; returns what it was when it is something the actor reacts to. */
  apply(data: Uint8Array, offset: number, length: number): ViewEvent | undefined {
    const rec = readFanoutRecord(data, offset, length);
    if (rec.type !== FanoutType.Update) return undefined;
    const type = wantedType(rec.key);
    if (!type) return undefined;
    if (type === 'ppo_metrics' && rec.flags & FanoutFlag.NoLive && Date.now() - this.liveMetricsAt < 5_000) return undefined;
    let msg: OverlayMessage;
    try {
      msg = JSON.parse(decoder.decode(data.subarray(rec.bodyOffset, rec.bodyOffset + rec.bodyLength))) as OverlayMessage;
    } catch {
      this.parseFailures++;
      return undefined;
    }
    if (!msg || typeof msg !== 'object' || !msg.data || typeof msg.data !== 'object') return undefined;
    const d = msg.data;
    switch (type) {
      case 'game_state':
        if (typeof d.game_id !== 'string') return undefined;
        this.game = d as unknown as GameStateData;
        if (typeof d.run === 'string') this.run = d.run;
        break;
      case 'move_prediction':
        this.prediction = d as MovePredictionData;
        break;
      case 'ppo_metrics':
        if (rec.flags & FanoutFlag.LiveOnly) this.liveMetricsAt = Date.now();
        for (const level of LEVELS) if (rec.levelMask & LEVEL_BIT[level]) this.metrics[level] = d as PpoMetricsData;
        if (this.run === undefined && typeof d.run === 'string') this.run = d.run;
        break;
      case 'board_heatmap':
        this.heatmapFocus = Array.isArray(d.focus) ? (d.focus as unknown[]).filter((s): s is string => typeof s === 'string').slice(0, 5) : [];
        break;
      case 'milestone':
        break;
    }
    return { type, data: d, critical: (rec.flags & FanoutFlag.Critical) !== 0 };
  }

  /** The AI's top move from a prediction, or undefined. */
  static topMove(p: MovePredictionData | undefined): { move: string; prob: number } | undefined {
    if (!p || !Array.isArray(p.top_moves) || p.top_moves.length === 0) return undefined;
    let best = p.top_moves[0];
    for (const m of p.top_moves) if (typeof m?.prob === 'number' && m.prob > best.prob) best = m;
    return typeof best?.move === 'string' && typeof best.prob === 'number' ? best : undefined;
  }
}
