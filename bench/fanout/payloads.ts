/**
 * What one 10 Hz tick carries to an overlay client subscribed to metrics, attention and
 * predictions: one `ppo_metrics`, one `board_heatmap` and one `move_prediction` message
 * in the `{"type","timestamp","data"}` envelope, each with a level-specific explanation.
 *
 * The uWS stand-in serialises each (channel, level) once per tick; the `ws` baseline
 * builds the same objects per client. Both use these builders, so both send the same
 * shapes and byte sizes and the comparison is about the fan-out, not the payload.
 * In real-service mode the same tick is fed to the aggregator as ingest events
 * (ingestEvents), and the aggregator decides the shapes.
 */
import { encodeEvent, encodeMetrics, EventKind, float32Bytes } from '../../src/shared/telemetry/event-codec.js';
import type { Level } from '../../src/shared/telemetry/channels.js';

export const SUBSCRIBED_CHANNELS = ['metrics', 'attention', 'predictions'] as const;
export type BenchChannel = (typeof SUBSCRIBED_CHANNELS)[number];
export const MESSAGES_PER_TICK = SUBSCRIBED_CHANNELS.length;
export const TICK_HZ = 10;
export const TICK_MS = 1000 / TICK_HZ;
export const CLIENT_LEVEL: Level = 'intermediate';

/** The first message every benchmark client sends on /ws. */
export const SUBSCRIPTION = JSON.stringify({ channels: [...SUBSCRIBED_CHANNELS], level: CLIENT_LEVEL, max_fps: 10 });
/** The same subscription asking for deltas (RINGCAST_BENCH_FANOUT_DELTA=compare). */
export const SUBSCRIPTION_DELTA = JSON.stringify({ channels: [...SUBSCRIBED_CHANNELS], level: CLIENT_LEVEL, max_fps: 10, delta: true });

export const MESSAGE_TYPE: Readonly<Record<BenchChannel, string>> = {
  metrics: 'ppo_metrics',
  attention: 'board_heatmap',
  predictions: 'move_prediction',
};

const EXPLAIN: Readonly<Record<BenchChannel, Readonly<Record<Level, string>>>> = {
  metrics: {
    beginner: 'The agent is still learning: its guesses change a little each update, which is healthy.',
    intermediate: 'KL divergence is low and the clip fraction is under 10%, so policy updates are small and stable.',
    advanced: 'Approx. KL below target with clip fraction < 0.1; entropy decaying slowly; value loss trending down.',
  },
  attention: {
    beginner: 'Brighter squares are where the agent is looking hardest right now.',
    intermediate: 'Policy mass by destination square: the agent concentrates on the centre files and its king side.',
    advanced: 'Heatmap = sum of move probabilities per to-square (policy head), EMA-smoothed; top-5 focus listed.',
  },
  predictions: {
    beginner: 'These are the moves the agent thinks are best, and how sure it is.',
    intermediate: 'Top moves with probabilities from the policy head, plus the value head\'s estimate of the position.',
    advanced: 'Top-k of softmax(policy logits) over 13527 actions; value in [-1, 1] from sente\'s perspective.',
  },
};

export function explanation(channel: BenchChannel, level: Level): string {
  return EXPLAIN[channel][level];
}

/** Deterministic pseudo-random in [0, 1) from an integer (no per-tick allocation of state). */
function hash01(n: number): number {
  let x = (n | 0) ^ 0x9e3779b9;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  x ^= x >>> 16;
  return (x >>> 0) / 4294967296;
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;
const MOVES = ['7g7f', '2g2f', '6i7h', '3c3d', '8c8d', '5g5f', '4i5h', '2h6h'];

export interface TickData {
  step: number;
  metrics: Record<string, number>;
  heatmap: number[];
  focus: { square: number; weight: number }[];
  topMoves: { move: string; prob: number }[];
  value: number;
}

/** The raw numbers of tick `tick` (what a trainer would report). */
export function tickData(tick: number): TickData {
  const step = 4096 * tick;
  const metrics = {
    'ppo/policy_loss': round(0.05 + 0.02 * hash01(tick * 7 + 1), 5),
    'ppo/value_loss': round(0.3 + 0.1 * hash01(tick * 7 + 2), 5),
    'ppo/entropy': round(2.5 - 0.5 * hash01(tick * 7 + 3), 5),
    'ppo/kl_divergence_approx': round(0.008 + 0.004 * hash01(tick * 7 + 4), 6),
    'ppo/clip_fraction': round(0.05 + 0.05 * hash01(tick * 7 + 5), 5),
    'ppo/learning_rate': 0.0003,
  };
  const heatmap: number[] = new Array(81);
  for (let i = 0; i < 81; i++) heatmap[i] = round(hash01(tick * 81 + i) ** 3, 3);
  const focus = heatmap
    .map((weight, square) => ({ square, weight }))
    .sort((a, b) => b.weight - a.weight)
    .slice(0, 5);
  let left = 1;
  const topMoves = MOVES.slice(0, 5).map((move, i) => {
    const prob = round(left * (0.3 + 0.3 * hash01(tick * 5 + i)), 4);
    left -= prob;
    return { move, prob };
  });
  return { step, metrics, heatmap, focus, topMoves, value: round(2 * hash01(tick) - 1, 4) };
}

/** The `data` object of each channel's message for one tick, before the explanation is added. */
export function channelData(d: TickData): Record<BenchChannel, Record<string, unknown>> {
  return {
    metrics: { step: d.step, metrics: d.metrics, health: 'healthy' },
    attention: { step: d.step, source: 'policy_to_square', grid: d.heatmap, focus: d.focus },
    predictions: { step: d.step, top_moves: d.topMoves, value: d.value },
  };
}

/** One complete envelope; `timestamp` is the server stamp latency is measured from. */
export function envelope(channel: BenchChannel, data: Record<string, unknown>, level: Level, timestamp: number): string {
  return JSON.stringify({ type: MESSAGE_TYPE[channel], timestamp, data: { ...data, level, explanation: EXPLAIN[channel][level] } });
}

/**
 * The same tick as ingest events for the real service (metrics, board heatmap, policy),
 * as the demo trainer would send them.
 */
export function ingestEvents(d: TickData, timestamp: number): Uint8Array[] {
  return [
    encodeMetrics(d.step, d.metrics, undefined, { timestamp }),
    encodeEvent(EventKind.BoardHeatmap, { step: d.step, source: 'policy_to_square' }, float32Bytes(d.heatmap), { timestamp }),
    encodeEvent(EventKind.Policy, { step: d.step, top_moves: d.topMoves, value: d.value }, undefined, { timestamp }),
  ];
}

/** Wall-clock milliseconds with sub-millisecond resolution (comparable across processes). */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}
