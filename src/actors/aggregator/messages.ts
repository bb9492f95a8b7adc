/**
 * Fan-out messages: `{"type", "timestamp", "data"}` JSON, serialised once per level variant.
 *
 * A builder returns either one data object for every level or one per level; encode()
 * serialises each distinct variant once and merges levels whose JSON is identical into one
 * level mask, so gateways never serialise per client and identical bytes are never sent twice.
 *
 * Level policy: beginner gets the light view (no series, per-block attention summaries),
 * intermediate adds smoothed series, advanced gets raw series and full attention rows.
 */
import { drawableBoard } from '../../shared/shogi/sfen-board.js';
import { LEVELS, LEVEL_BIT, type Level } from '../../shared/telemetry/channels.js';
import { explainMetrics, explainPrediction } from './explanations.js';
import { focusSquares, toRows } from './heatmap-from-policy.js';
import type { MetricSummary } from './metric-window.js';
import type { Milestone } from './milestones.js';
import type { HealthThresholds } from './ppo-health.js';
import type { GameState, RunState } from './run-state.js';

export type LevelData = { all: unknown } | Readonly<Record<Level, unknown>>;

export interface EncodedVariant {
  levelMask: number;
  body: Uint8Array;
}

const encoder = new TextEncoder();

/** Serialises the envelope once per distinct variant; identical variants share one level mask. */
export function encode(type: string, timestamp: number, data: LevelData): EncodedVariant[] {
  if ('all' in data) return [{ levelMask: 7, body: encoder.encode(JSON.stringify({ type, timestamp, data: data.all })) }];
  const byJson = new Map<string, number>();
  for (const level of LEVELS) {
    const json = JSON.stringify({ type, timestamp, data: data[level] });
    byJson.set(json, (byJson.get(json) ?? 0) | LEVEL_BIT[level]);
  }
  return [...byJson].map(([json, levelMask]) => ({ levelMask, body: encoder.encode(json) }));
}

/**
 * Tensors go out with 4 significant digits: float32 inputs carry ~7, an overlay can show
 * at most 3, and full doubles would triple the size of a 9×256 attention message.
 */
export function round4(x: number): number {
  return x === 0 || !Number.isFinite(x) ? x : Number(x.toPrecision(4));
}

/**
 * Attention as each level shows it. SE gates are sigmoid outputs in [0, 1]: the advanced
 * strips draw them on a 0–1 colour scale of 255 steps, so steps of 1/500 are finer than a
 * pixel shows; the beginner and intermediate summaries are read as numbers, two decimals.
 * Values outside [0, 1] (not gates: the scale is the trainer's) keep 3 significant digits.
 * Coarser numbers also change less often between windows, which is what a delta carries.
 */
export function gateStrip(x: number): number {
  return x >= 0 && x <= 1 ? Math.round(x * 500) / 500 : sig3(x);
}

export function gateLabel(x: number): number {
  return x >= 0 && x <= 1 ? Math.round(x * 100) / 100 : sig3(x);
}

/**
 * Board heatmap cells: drawn as colour and opacity relative to the grid's largest cell (255
 * steps), so 3 significant digits (0.5 % of the cell) are below what a pixel shows.
 */
export function sig3(x: number): number {
  return x === 0 || !Number.isFinite(x) ? x : Number(x.toPrecision(3));
}

/**
 * A trend as the pages show it: an arrow (rising, falling, or flat under a 2 % change across
 * the chart), never a number, so 2 significant digits move the threshold by a few percent of
 * itself at most; a trend that drifts slowly then stays the same from window to window.
 */
export function sig2(x: number): number {
  return x === 0 || !Number.isFinite(x) ? x : Number(x.toPrecision(2));
}

/** Window statistics of a metric that has not had a full window yet are null, not NaN (JSON has no NaN). */
function orNull(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

/** round4 that keeps a window statistic of a metric without a full window null (JSON has no NaN). */
function shown(x: number): number | null {
  return orNull(round4(x));
}

/**
 * How much of each metric's history a ppo_metrics message carries:
 *   - 'full': the whole kept series (seriesPoints). This is the retained message: what a new
 *     client gets as its snapshot and what conflated (slower-than-window) tiers are sent.
 *   - 'tail': only the points of the last window. This is the live 10 Hz message: re-sending a
 *     100-point series every 100 ms made it ~11 KB, and bytes on the wire dominate fan-out cost.
 * A client keeps the series from the snapshot and appends tail points with newer steps.
 */
export type SeriesMode = 'full' | 'tail';

interface Points { steps: number[]; smoothed: number[]; series: number[] }

/** The three views of one metric over the given points, built once and shared by the level variants. */
function metricViews(s: MetricSummary, points: Points, dropped: number): Record<Level, Record<string, unknown>> {
  // Everything here is presentation, rounded to what a chart or a label can show; the exact
  // numbers the trainer sent are in `values` and (advanced) the raw `series`.
  const stats = { latest: round4(s.latest), mean: shown(s.mean), min: shown(s.min), max: shown(s.max) };
  const chart = { smoothed: points.smoothed.map(round4), steps: points.steps, ...(dropped > 0 ? { dropped } : {}) };
  // Intermediate views draw the chart, the value (from `values`) and a trend arrow, with
  // statistics over the series they hold: the window's statistics would be bytes nobody draws.
  return {
    beginner: { ...stats, trend: sig2(s.trend), count: s.count },
    intermediate: { trend: sig2(s.trend), ...chart },
    advanced: { ...stats, trend: round4(s.trend), count: s.count, ...chart, series: points.series },
  };
}

const slicePoints = (p: Points, from: number, to: number): Points => ({ steps: p.steps.slice(from, to), smoothed: p.smoothed.slice(from, to), series: p.series.slice(from, to) });

/** The explanation of a run's metrics at each level, as the numbers stand now. */
export type Explanations = Readonly<Record<Level, string>>;

export function metricsExplanations(run: RunState, thresholds: HealthThresholds, summaries = run.metricSummaries()): Explanations {
  const input = { step: run.step, health: run.health, thresholds, metrics: summaries };
  return { beginner: explainMetrics('beginner', input), intermediate: explainMetrics('intermediate', input), advanced: explainMetrics('advanced', input) };
}

function metricsMessage(
  run: RunState, thresholds: HealthThresholds, summaries: Map<string, MetricSummary>,
  pointsOf: (name: string, s: MetricSummary) => { points: Points; dropped: number }, mode: SeriesMode, extra: Record<string, number>,
  explanations: Explanations, asOfPart = false,
): LevelData {
  const values: Record<string, number> = {};
  for (const [name, v] of run.values) values[name] = v;
  const byLevel = { beginner: {} as Record<string, unknown>, intermediate: {} as Record<string, unknown>, advanced: {} as Record<string, unknown> };
  for (const [name, s] of summaries) {
    const { points, dropped } = pointsOf(name, s);
    // An earlier part of a split window: `values` as of its last point, so a client that
    // pairs values with the last step (intermediate views carry no raw series) stays right.
    if (asOfPart && points.series.length > 0) values[name] = points.series[points.series.length - 1];
    const views = metricViews(s, points, dropped);
    for (const level of LEVELS) byLevel[level][name] = views[level];
  }
  const h = run.health;
  const health = { ...h, kl: h.kl === null ? null : round4(h.kl), clip_fraction: h.clip_fraction === null ? null : round4(h.clip_fraction) };
  // While a producer's spool drains: `catching_up` and its backlog (events still to come), so
  // overlays can say so instead of showing the filed history as if it were live.
  const catching = run.catchingUp ? { catching_up: true, backlog: run.backlog } : {};
  const forLevel = (level: Level) => ({ run: run.run, step: run.step, series: mode, ...catching, ...extra, values, metrics: byLevel[level], health, explanation: explanations[level] });
  return { beginner: forLevel('beginner'), intermediate: forLevel('intermediate'), advanced: forLevel('advanced') };
}

/**
 * The retained message: every metric's whole kept series. `explanations` (default: as the
 * numbers stand) lets a window's messages share the texts it decided to send.
 */
export function ppoMetricsData(run: RunState, thresholds: HealthThresholds, explanations?: Explanations): LevelData {
  const summaries = run.metricSummaries();
  return metricsMessage(run, thresholds, summaries, (_, s) => ({ points: s, dropped: 0 }), 'full', {}, explanations ?? metricsExplanations(run, thresholds, summaries));
}

/**
 * The live messages of the last closed window: every point each metric received in it, oldest
 * first, at most `partPoints` per metric per message (so a burst after a stall is split into
 * several messages of the usual size instead of losing what exceeds the kept series). Parts
 * of one window carry `part` and `parts` (1-based), and an earlier part's `values` are as of
 * its last point; the last part carries `dropped_points`
 * (and each metric its `dropped`) when the burst budget could not keep everything.
 */
export function ppoMetricsTails(run: RunState, thresholds: HealthThresholds, partPoints: number, explanations?: Explanations): LevelData[] {
  const summaries = run.metricSummaries();
  const texts = explanations ?? metricsExplanations(run, thresholds, summaries);
  const windows = new Map([...run.metrics].map(([name, w]) => [name, w.windowPoints()]));
  let longest = 0;
  let dropped = 0;
  for (const w of windows.values()) { longest = Math.max(longest, w.steps.length); dropped += w.dropped; }
  const parts = Math.max(1, Math.ceil(longest / partPoints));
  const out: LevelData[] = [];
  for (let part = 0; part < parts; part++) {
    const last = part === parts - 1;
    const extra: Record<string, number> = parts > 1 ? { part: part + 1, parts } : {};
    if (last && dropped > 0) extra.dropped_points = dropped;
    out.push(metricsMessage(run, thresholds, summaries, (name) => {
      const w = windows.get(name)!;
      return { points: slicePoints(w, part * partPoints, (part + 1) * partPoints), dropped: last ? w.dropped : 0 };
    }, 'tail', extra, texts, !last));
  }
  return out;
}

/**
 * Channels per block in an attention summary, by level: a beginner view names the few that
 * stand out, an intermediate one a short ranking; advanced gets the full rows instead.
 */
export const SUMMARY_TOP_CHANNELS = { beginner: 3, intermediate: 5 } as const;

export function seAttentionData(run: RunState): LevelData {
  const a = run.attention;
  const head = { run: run.run, step: a.step ?? run.step, blocks: a.blocks, channels: a.channels };
  return {
    beginner: { ...head, summary: a.summaries(SUMMARY_TOP_CHANNELS.beginner, gateLabel) },
    intermediate: { ...head, summary: a.summaries(SUMMARY_TOP_CHANNELS.intermediate, gateLabel) },
    advanced: { ...head, weights: a.rows(gateStrip) },
  };
}

export function boardHeatmapData(run: RunState, focusCount: number): LevelData {
  const h = run.heatmap!;
  return {
    all: {
      run: run.run,
      step: h.step ?? run.step,
      source: h.source,
      detail: h.detail,
      grid: toRows(h.grid, sig3),
      focus: focusSquares(h.grid, focusCount),
    },
  };
}

/**
 * Probabilities and the value estimate as the pages draw them: labels of 0.1 % and two
 * decimals, bars a few hundred pixels long, so a thousandth is below both.
 */
export function thousandths(x: number): number {
  return Number.isFinite(x) ? Math.round(x * 1000) / 1000 : x;
}

export function movePredictionData(run: RunState): LevelData {
  const p = run.prediction!;
  // The position parsed once here, so overlays can compare it with the board they show without an SFEN parser of their own.
  const positionBoard = p.position ? drawableBoard(p.position) : null;
  const forLevel = (level: Level) => ({
    run: run.run,
    step: p.step ?? run.step,
    top_moves: p.topMoves.map((m) => ({ ...m, prob: thousandths(m.prob) })),
    value: p.value === null || p.value === undefined ? p.value : thousandths(p.value),
    position: p.position,
    position_board: positionBoard,
    explanation: explainPrediction(level, { topMoves: p.topMoves, value: p.value ?? undefined }),
  });
  return { beginner: forLevel('beginner'), intermediate: forLevel('intermediate'), advanced: forLevel('advanced') };
}

export function gameStateData(run: RunState, game: GameState): LevelData {
  return { all: { run: run.run, ...game, games_finished: run.gamesFinished } };
}

export function milestoneData(m: Milestone): LevelData {
  return { all: { ...m, critical: !m.late } };
}

/** Snapshot key of a message type for one run: a later message with the same key replaces the retained one. */
export function snapshotKey(type: string, run: string): string {
  return `${type}:${run}`;
}
