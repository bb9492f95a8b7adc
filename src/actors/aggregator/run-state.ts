/**
 * Everything the aggregator knows about one training run, updated per event and read
 * once per window. It has no I/O: index.ts feeds it decoded events and turns what it
 * reports (dirty channels, milestones) into fan-out messages.
 *
 * Memory is bounded per run: at most MAX_METRICS_PER_RUN metric series of seriesPoints
 * each, one attention matrix (bounded by MAX_ATTENTION_VALUES), one heatmap, the latest
 * policy (its full distribution is reduced to a heatmap on arrival and not kept), the
 * latest game plus at most MAX_PENDING_RESULTS finished games awaiting the next window,
 * and the last MAX_RECENT_MILESTONES milestones.
 */
import { drawableBoard, type DrawableBoard } from '../../shared/shogi/sfen-board.js';
import type {
  BoardHeatmapEvent, GameStateEvent, MetricsEvent, MilestoneEvent, PolicyEvent, SeAttentionEvent, TopMove,
} from '../../shared/telemetry/event-codec.js';
import { AttentionState } from './attention.js';
import { ExplanationHold } from './explanation-hold.js';
import { heatmapFromKeiseiV1, heatmapFromTopMoves } from './heatmap-from-policy.js';
import { BurstBudget, MetricWindow, type MetricSummary, type PersistedMetricWindow } from './metric-window.js';
import { MilestoneDetector, type Milestone, type MilestoneRules, type PersistedDetector, type WindowMetric } from './milestones.js';
import { assessHealth, type HealthThresholds, type PpoHealth } from './ppo-health.js';

export const MAX_METRICS_PER_RUN = 512;
export const MAX_PENDING_RESULTS = 32;
export const MAX_RECENT_MILESTONES = 32;
/** A producer that sent late events and then went quiet this long is no longer catching up. */
export const LATE_QUIET_MS = 3000;
/** While catching up, the full series (with the filed points) goes to live clients at most this often. */
export const CATCHUP_FULL_LIVE_MS = 1000;
/** How long an explanation stands before a change of its numbers alone replaces it (explanation-hold.ts). */
export const EXPLANATION_HOLD_MS = 1000;

/**
 * What became of a late event (`meta.late`, from a producer's offline spool), counted per outcome:
 * live: newer than anything the run has shown, so applied as live (it is news);
 * filed: a metric point filed into the kept history at its step (one per metric value);
 * duplicate: a point whose step the history already holds; behind: older than the whole kept
 * history (only counted); hidden: a late attention, heatmap, policy or game state older than
 * what the run shows (not displayed; a late game result still counts as a finished game).
 */
export type LateOutcome = 'live' | 'filed' | 'duplicate' | 'behind' | 'hidden';

export interface RunSettings {
  seriesPoints: number;
  smoothingAlpha: number;
  attentionAlpha: number;
  health: HealthThresholds;
  milestones: MilestoneRules;
  /** A trainer heatmap newer than this wins over one derived from the policy. */
  heatmapFreshMs: number;
  /** Pays for the points of a burst beyond seriesPoints (shared by every run); none when absent. */
  burstBudget?: BurstBudget;
  /** Counts late events and points by outcome. */
  onLate?: (outcome: LateOutcome, count: number) => void;
}

export type DropReason = 'metric_limit' | 'attention_too_large' | 'pending_results' | 'burst_points';

export interface HeatmapState {
  grid: Float64Array;
  source: 'trainer' | 'policy';
  /** What the trainer called its heatmap (`meta.source`), or how it was derived. */
  detail: string;
  step: number | null;
}

export interface PredictionState {
  step: number | null;
  topMoves: TopMove[];
  value: number | null;
  position: string | null;
  actionSpace: string | null;
}

export interface GameState {
  game_id: string;
  sfen: string | null;
  moves: string[] | null;
  last_move: string | null;
  result: string | null;
  move_count: number | null;
  /** Parsed from the SFEN for overlays (null when absent or invalid). */
  board: DrawableBoard['board'] | null;
  hands: DrawableBoard['hands'] | null;
  turn: DrawableBoard['turn'] | null;
}

/** Channels with news since the last window. */
export interface Dirty {
  metrics: boolean;
  attention: boolean;
  heatmap: boolean;
  prediction: boolean;
  game: boolean;
}

function toGame(e: GameStateEvent): GameState {
  const drawn = e.sfen ? drawableBoard(e.sfen) : null;
  return {
    board: drawn?.board ?? null,
    hands: drawn?.hands ?? null,
    turn: drawn?.turn ?? null,
    game_id: e.gameId,
    sfen: e.sfen ?? null,
    moves: e.moves ?? null,
    last_move: e.lastMove ?? null,
    result: e.result ?? null,
    move_count: e.moveCount ?? (e.moves ? e.moves.length : null),
  };
}

/**
 * A run as JSON, for the node that takes it over. The attention matrix is left out: the
 * trainer's next attention event replaces it whole.
 */
export interface PersistedRun {
  run: string;
  firstSeenMs: number;
  lastSeenMs: number;
  events: number;
  step: number;
  metrics: Array<[string, PersistedMetricWindow]>;
  values: Array<[string, number]>;
  heatmap: { grid: number[]; source: 'trainer' | 'policy'; detail: string; step: number | null } | null;
  prediction: PredictionState | null;
  game: GameState | null;
  recentMilestones: Milestone[];
  detector: PersistedDetector;
}

export class RunState {
  readonly run: string;
  /** Kept from the first node that saw the run when another node takes it over. */
  firstSeenMs: number;
  lastSeenMs: number;
  events = 0;
  /** The trainer's latest step (from metrics events, else any event that names one). */
  step = 0;
  /** The metrics explanations last sent, per level (numbers refresh at a reading pace). */
  readonly explanations = new ExplanationHold(EXPLANATION_HOLD_MS);
  readonly metrics = new Map<string, MetricWindow>();
  /** name → latest value exactly as sent. */
  readonly values = new Map<string, number>();
  health: PpoHealth;
  readonly attention: AttentionState;
  heatmap: HeatmapState | null = null;
  private trainerHeatmapAt = -Infinity;
  private policyGrid: HeatmapState | null = null;
  prediction: PredictionState | null = null;
  game: GameState | null = null;
  /** Finished games since the last window, so a result is never conflated away by the next game. */
  readonly pendingResults: GameState[] = [];
  readonly milestones: MilestoneDetector;
  readonly recentMilestones: Milestone[] = [];
  readonly dirty: Dirty = { metrics: false, attention: false, heatmap: false, prediction: false, game: false };
  /** Late events by outcome (see LateOutcome), for snapshots. */
  readonly late: Record<LateOutcome, number> = { live: 0, filed: 0, duplicate: 0, behind: 0, hidden: 0 };
  /** Catching up as of the last closed window, and the producer's backlog then (what messages say). */
  catchingUp = false;
  backlog = 0;
  private lateAt = -Infinity;
  private lateBacklog = 0;
  private filedUnsent = 0;
  private fullLiveAt = -Infinity;
  private liveMetrics = false;
  private readonly settings: RunSettings;
  private readonly onDrop: (reason: DropReason, count?: number) => void;
  private readonly burstBudget: BurstBudget;

  constructor(run: string, now: number, settings: RunSettings, onDrop: (reason: DropReason, count?: number) => void = () => undefined) {
    this.run = run;
    this.firstSeenMs = now;
    this.lastSeenMs = now;
    this.settings = settings;
    this.onDrop = onDrop;
    this.burstBudget = settings.burstBudget ?? new BurstBudget(0);
    this.attention = new AttentionState(settings.attentionAlpha);
    this.milestones = new MilestoneDetector(run, settings.milestones);
    this.health = assessHealth(this.values, settings.health);
  }

  private touch(now: number, step?: number): void {
    this.lastSeenMs = now;
    this.events++;
    if (step !== undefined && step > this.step) this.step = step;
  }

  /**
   * A late event (from a producer's spool) is news when it is newer than anything the run has
   * shown: applied as live. Otherwise it is filed (metrics) or only counted (the rest); either
   * way the live view never steps back and no milestone rule sees old data.
   */
  private lateAndOld(e: { late?: boolean; backlog?: number }, now: number, step: number | undefined, shown: boolean): boolean {
    if (!e.late) return false;
    this.lateAt = now;
    this.lateBacklog = e.backlog ?? 0;
    const old = shown && (step === undefined || step <= this.step);
    if (!old) this.countLate('live');
    return old;
  }

  private countLate(outcome: LateOutcome, n = 1): void {
    this.late[outcome] += n;
    this.settings.onLate?.(outcome, n);
  }

  /** Returns milestones detected on arrival (best win rate). */
  applyMetrics(e: MetricsEvent, now: number): Milestone[] {
    if (this.lateAndOld(e, now, e.step, this.values.size > 0)) {
      this.lastSeenMs = now;
      this.events++;
      for (let i = 0; i < e.names.length; i++) {
        const w = this.metrics.get(e.names[i]);
        const outcome = w ? w.fileLate(e.step, e.values[i]) : 'behind'; // a metric the live run no longer sends
        this.countLate(outcome);
        if (outcome === 'filed') this.filedUnsent++;
      }
      this.dirty.metrics = true;
      return [];
    }
    this.touch(now);
    this.liveMetrics = true;
    this.step = e.step; // metrics carry the trainer's authoritative step, even if it went back (a resumed run)
    const found: Milestone[] = [];
    for (let i = 0; i < e.names.length; i++) {
      const name = e.names[i];
      let w = this.metrics.get(name);
      if (!w) {
        if (this.metrics.size >= MAX_METRICS_PER_RUN) { this.onDrop('metric_limit'); continue; }
        w = new MetricWindow(this.settings.seriesPoints, this.settings.smoothingAlpha, this.burstBudget);
        this.metrics.set(name, w);
      }
      w.add(e.step, e.values[i]);
      this.values.set(name, e.values[i]);
      found.push(...this.milestones.onMetric(name, e.values[i], e.step));
    }
    this.dirty.metrics = true;
    return found;
  }

  applyAttention(e: SeAttentionEvent, now: number): void {
    if (this.lateAndOld(e, now, e.step, this.attention.blocks > 0)) { this.lastSeenMs = now; this.events++; this.countLate('hidden'); return; }
    this.touch(now, e.step);
    if (this.attention.update(e.weights, e.blocks, e.channels, e.layerId ?? 0, e.step)) this.dirty.attention = true;
    else this.onDrop('attention_too_large');
  }

  applyHeatmap(e: BoardHeatmapEvent, now: number): void {
    if (this.lateAndOld(e, now, e.step, this.heatmap !== null)) { this.lastSeenMs = now; this.events++; this.countLate('hidden'); return; }
    this.touch(now, e.step);
    this.trainerHeatmapAt = now;
    this.heatmap = { grid: Float64Array.from(e.grid), source: 'trainer', detail: e.source ?? 'trainer', step: e.step ?? null };
    this.dirty.heatmap = true;
  }

  applyPolicy(e: PolicyEvent, now: number): void {
    if (this.lateAndOld(e, now, e.step, this.prediction !== null)) { this.lastSeenMs = now; this.events++; this.countLate('hidden'); return; }
    this.touch(now, e.step);
    this.prediction = { step: e.step ?? null, topMoves: e.topMoves, value: e.value ?? null, position: e.position ?? null, actionSpace: e.actionSpace ?? null };
    this.dirty.prediction = true;
    // Reduce a full distribution to its heatmap now: 13527 floats are not worth keeping.
    const grid = e.actionSpace === 'keisei-v1' && e.distribution
      ? { grid: heatmapFromKeiseiV1(e.distribution), detail: 'keisei-v1 distribution, mass per to-square' }
      : { grid: heatmapFromTopMoves(e.topMoves).grid, detail: 'top moves, probability per destination square' };
    this.policyGrid = { ...grid, source: 'policy', step: e.step ?? null };
    if (now - this.trainerHeatmapAt > this.settings.heatmapFreshMs) {
      this.heatmap = this.policyGrid;
      this.dirty.heatmap = true;
    }
  }

  /** Returns game-count milestones when this event finishes a game. */
  applyGame(e: GameStateEvent, now: number): Milestone[] {
    // Game states carry no step: a late one is old whenever the run shows a game. Its result
    // still counts (games_finished, count marks, whose ids are stable), but it is not shown.
    if (this.lateAndOld(e, now, undefined, this.game !== null)) {
      this.lastSeenMs = now;
      this.events++;
      this.countLate('hidden');
      return e.result ? this.milestones.onGameFinished(e.gameId, null).milestones : [];
    }
    this.touch(now);
    const g = toGame(e);
    this.game = g;
    this.dirty.game = true;
    if (g.result === null) return [];
    const { counted, milestones } = this.milestones.onGameFinished(g.game_id, this.step);
    // A game already counted is not a new result: it must not go out as critical again.
    if (counted) {
      if (this.pendingResults.length >= MAX_PENDING_RESULTS) { this.pendingResults.shift(); this.onDrop('pending_results'); }
      this.pendingResults.push(g);
    }
    return milestones;
  }

  /** A trainer-sent milestone. */
  applyMilestone(e: MilestoneEvent, receivedAt: number, now: number): Milestone {
    // A late milestone at an old step is history, not news: it is kept and published with
    // `late: true` (never critical), so overlays list it without celebrating it now.
    if (this.lateAndOld(e, now, e.step, this.values.size > 0 || this.recentMilestones.length > 0)) {
      this.lastSeenMs = now;
      this.events++;
      this.countLate('hidden');
      return { ...this.milestones.fromTrainer(e, receivedAt), late: true };
    }
    this.touch(now, e.step);
    return this.milestones.fromTrainer(e, receivedAt);
  }

  get gamesFinished(): number {
    return this.milestones.gamesFinished;
  }

  /** Keeps a milestone in the bounded recent list (for snapshots); a replay of one already kept replaces it. */
  remember(m: Milestone): void {
    const same = this.recentMilestones.findIndex((r) => r.id === m.id);
    if (same >= 0) this.recentMilestones.splice(same, 1);
    this.recentMilestones.push(m);
    if (this.recentMilestones.length > MAX_RECENT_MILESTONES) this.recentMilestones.shift();
  }

  /**
   * Closes the window: freezes window statistics, recomputes health, runs the window
   * milestone rules. The caller reads `dirty` and the state before calling clearDirty().
   */
  closeWindow(now: number): Milestone[] {
    // A policy-derived heatmap takes over again once the trainer's has gone stale.
    if (this.heatmap?.source === 'trainer' && this.policyGrid && now - this.trainerHeatmapAt > this.settings.heatmapFreshMs) {
      this.heatmap = this.policyGrid;
      this.dirty.heatmap = true;
    }
    // Catching up while the producer says it holds more and keeps sending; a change is news.
    const catchingUp = this.lateBacklog > 0 && now - this.lateAt < LATE_QUIET_MS;
    const backlog = catchingUp ? this.lateBacklog : 0;
    if (catchingUp !== this.catchingUp || backlog !== this.backlog) this.dirty.metrics = this.values.size > 0 || this.dirty.metrics;
    this.catchingUp = catchingUp;
    this.backlog = backlog;
    if (!this.dirty.metrics) return [];
    const live = this.liveMetrics;
    this.liveMetrics = false;
    const window = new Map<string, WindowMetric>();
    for (const [name, w] of this.metrics) {
      const count = w.pending;
      w.closeWindow();
      const dropped = w.windowDropped;
      if (dropped > 0) this.onDrop('burst_points', dropped);
      window.set(name, { latest: w.latest, trend: w.trend(), count, points: Math.min(w.total, w.capacity) });
    }
    this.health = assessHealth(this.values, this.settings.health, this.health.status);
    // Rules only ever see windows with live data: filed history must not fire (or re-fire) them.
    return live ? this.milestones.onWindow(window, this.step) : [];
  }

  /**
   * Whether this window's full series (with the points filed since the last one) should go to
   * live clients too, not only to snapshots: at most every CATCHUP_FULL_LIVE_MS while catching
   * up, and once more when it ends, so charts fill in without a message per window.
   */
  takeFullLive(now: number): boolean {
    if (this.filedUnsent === 0) return false;
    if (this.catchingUp && now - this.fullLiveAt < CATCHUP_FULL_LIVE_MS) return false;
    this.filedUnsent = 0;
    this.fullLiveAt = now;
    return true;
  }

  clearDirty(): void {
    this.dirty.metrics = this.dirty.attention = this.dirty.heatmap = this.dirty.prediction = this.dirty.game = false;
    this.pendingResults.length = 0;
    for (const w of this.metrics.values()) w.release();
  }

  persist(): PersistedRun {
    return {
      run: this.run, firstSeenMs: this.firstSeenMs, lastSeenMs: this.lastSeenMs, events: this.events, step: this.step,
      metrics: [...this.metrics].map(([name, w]) => [name, w.persist()]),
      values: [...this.values],
      heatmap: this.heatmap === null ? null : { grid: [...this.heatmap.grid], source: this.heatmap.source, detail: this.heatmap.detail, step: this.heatmap.step },
      prediction: this.prediction,
      game: this.game,
      recentMilestones: [...this.recentMilestones],
      detector: this.milestones.persist(),
    };
  }

  /** Continues from a persisted run (this one fresh); the caller has checked its shape. */
  restore(p: PersistedRun): void {
    this.firstSeenMs = p.firstSeenMs;
    this.lastSeenMs = p.lastSeenMs;
    this.events = p.events;
    this.step = p.step;
    for (const [name, pw] of p.metrics.slice(0, MAX_METRICS_PER_RUN)) {
      const w = new MetricWindow(this.settings.seriesPoints, this.settings.smoothingAlpha, this.burstBudget);
      w.restore(pw);
      this.metrics.set(name, w);
    }
    for (const [name, v] of p.values) this.values.set(name, v);
    this.heatmap = p.heatmap === null ? null : { ...p.heatmap, grid: Float64Array.from(p.heatmap.grid) };
    this.prediction = p.prediction;
    this.game = p.game;
    this.recentMilestones.splice(0, this.recentMilestones.length, ...p.recentMilestones.slice(-MAX_RECENT_MILESTONES));
    this.milestones.restore(p.detector);
    this.health = assessHealth(this.values, this.settings.health);
  }

  metricSummaries(): Map<string, MetricSummary> {
    const out = new Map<string, MetricSummary>();
    for (const [name, w] of this.metrics) out.set(name, w.summary());
    return out;
  }
}
