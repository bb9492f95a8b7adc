/**
 * Bytes per fan-out message per level, from the aggregator's own builders fed a demo-like
 * run: 8 PPO metrics at 10 windows/s (a new point per metric per window, full-precision
 * doubles), 9×256 SE attention, a 5-move prediction. Prints one JSON object:
 * { <message>: { beginner, intermediate, advanced } } in bytes, after `windows` windows (the
 * series full), and the delta a delta subscriber gets for the last window (gateway's DeltaFanout).
 * `sizeOf` measures a body (default: its bytes; e.g. a deflate estimate). Deterministic (seeded).
 *
 *   node dist/bench/message-sizes.js [windows=150]
 */
import { deflateRawSync } from 'node:zlib';
import { RunState, type RunSettings } from '../src/actors/aggregator/run-state.js';
import { encode, movePredictionData, ppoMetricsData, ppoMetricsTails, seAttentionData, type LevelData } from '../src/actors/aggregator/messages.js';
import { EventKind, decodeEvent, encodeEvent, encodeMetrics, float32Bytes, type TelemetryEvent } from '../src/shared/telemetry/event-codec.js';
import { LEVELS, LEVEL_BIT } from '../src/shared/telemetry/channels.js';
import { DeltaFanout } from '../src/actors/gateway/delta-fanout.js';

const SETTINGS: RunSettings = {
  seriesPoints: 100, smoothingAlpha: 0.2, attentionAlpha: 0.3, heatmapFreshMs: 1000,
  health: { klHealthy: 0.01, clipHealthy: 0.1, klLearning: 0.05 },
  milestones: { klSettledBelow: 0.01, klSettledWindows: 30, entropyCollapseBelow: 0.5, lossPlateauWindows: 100, lossPlateauSlope: 1e-5, gameMarks: [], bestWinRate: false },
};
const METRICS = ['ppo/kl_divergence_approx', 'ppo/clip_fraction', 'ppo/policy_loss', 'ppo/value_loss', 'ppo/entropy', 'ppo/learning_rate', 'episode/reward_mean', 'game/win_rate'];

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s + 0x6d2b79f5) >>> 0; let t = s; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
}

const dec = (bytes: Uint8Array) => decodeEvent(bytes) as TelemetryEvent;

type SizeOf = (body: Uint8Array) => number;

function bodies(type: string, data: LevelData, timestamp = 1_795_458_500_477): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const v of encode(type, timestamp, data)) for (const level of LEVELS) if (v.levelMask & LEVEL_BIT[level]) out[level] = v.body;
  return out;
}

function sizes(type: string, data: LevelData, sizeOf: SizeOf): Record<string, number> {
  return Object.fromEntries(Object.entries(bodies(type, data)).map(([level, b]) => [level, sizeOf(b)]));
}

/** Size of what a delta subscriber gets for the change from `before` to `after` (per level). */
function deltaSizes(type: string, before: LevelData, after: LevelData, sizeOf: SizeOf): Record<string, number> {
  const fan = new DeltaFanout();
  const a = bodies(type, before, 1);
  const b = bodies(type, after, 2);
  return Object.fromEntries(LEVELS.map((level) => [level, sizeOf(fan.update(`${type}:demo`, { seq: 1, bytes: a[level] }, { seq: 2, bytes: b[level] }))]));
}

export function measure(windows = 150, sizeOf: SizeOf = (b) => b.byteLength): Record<string, Record<string, number>> {
  const rnd = prng(7);
  const r = new RunState('demo', 0, SETTINGS);
  let step = 0;
  let previous: { metrics: LevelData; attention: LevelData; prediction: LevelData } | undefined;
  for (let w = 0; w < windows; w++) {
    if (w === windows - 1) previous = { metrics: ppoMetricsData(r, SETTINGS.health), attention: seAttentionData(r), prediction: movePredictionData(r) };
    step += 64;
    const values: Record<string, number> = {};
    for (const m of METRICS) values[m] = rnd() * (m === 'ppo/kl_divergence_approx' ? 0.02 : 2);
    r.applyMetrics(dec(encodeMetrics(step, values)) as never, w);
    const weights = Array.from({ length: 9 * 256 }, () => rnd());
    r.applyAttention(dec(encodeEvent(EventKind.SeAttention, { blocks: 9, channels: 256, step }, float32Bytes(weights))) as never, w);
    r.applyPolicy(dec(encodeEvent(EventKind.Policy, { step, top_moves: Array.from({ length: 5 }, (_, i) => ({ move: `7g7${'fedcb'[i]}`, prob: rnd() / (i + 1) })), value: rnd() * 2 - 1 })) as never, w);
    r.closeWindow(w);
  }
  return {
    'ppo_metrics (live tail)': sizes('ppo_metrics', ppoMetricsTails(r, SETTINGS.health, 1000)[0], sizeOf),
    'ppo_metrics (full, snapshot)': sizes('ppo_metrics', ppoMetricsData(r, SETTINGS.health), sizeOf),
    'ppo_metrics (delta)': deltaSizes('ppo_metrics', previous!.metrics, ppoMetricsData(r, SETTINGS.health), sizeOf),
    se_attention: sizes('se_attention', seAttentionData(r), sizeOf),
    'se_attention (delta)': deltaSizes('se_attention', previous!.attention, seAttentionData(r), sizeOf),
    move_prediction: sizes('move_prediction', movePredictionData(r), sizeOf),
    'move_prediction (delta)': deltaSizes('move_prediction', previous!.prediction, movePredictionData(r), sizeOf),
  };
}

if (/message-sizes\.js$/.test(process.argv[1] ?? '') || process.env.RINGCAST_PRINT_MESSAGE_SIZES) {
  const deflated: SizeOf = (b) => deflateRawSync(b).byteLength;
  console.log(JSON.stringify({ bytes: measure(150), deflated: measure(150, deflated) }, null, 1));
}
