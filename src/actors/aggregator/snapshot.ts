/**
 * Plain-JSON views of a run for the RPC api: `runs()` (a one-line summary per run) and
 * `snapshot()` (what `/api/state` returns: the current state without the long series,
 * which stream over `/ws` instead).
 */
import { focusSquares, toRows } from './heatmap-from-policy.js';
import { round4 } from './messages.js';
import type { RunState } from './run-state.js';

export interface RunSummary {
  run: string;
  firstSeenMs: number;
  lastSeenMs: number;
  step: number;
  events: number;
  metrics: string[];
  games: number;
}

export function runSummary(r: RunState): RunSummary {
  return {
    run: r.run,
    firstSeenMs: r.firstSeenMs,
    lastSeenMs: r.lastSeenMs,
    step: r.step,
    events: r.events,
    metrics: [...r.metrics.keys()],
    games: r.gamesFinished,
  };
}

const finiteOrNull = (x: number) => (Number.isFinite(x) ? x : null);

export function runSnapshot(r: RunState, focusCount: number): Record<string, unknown> {
  const metrics: Record<string, unknown> = {};
  for (const [name, s] of r.metricSummaries()) {
    metrics[name] = { latest: s.latest, step: s.step, mean: finiteOrNull(s.mean), min: finiteOrNull(s.min), max: finiteOrNull(s.max), trend: s.trend, count: s.count, total: s.total };
  }
  return {
    ...runSummary(r),
    values: Object.fromEntries(r.values),
    metrics,
    health: r.health,
    attention: r.attention.blocks === 0 ? null : { blocks: r.attention.blocks, channels: r.attention.channels, step: r.attention.step ?? null, summary: r.attention.summaries(5, round4) },
    heatmap: r.heatmap === null ? null : { source: r.heatmap.source, detail: r.heatmap.detail, step: r.heatmap.step, grid: toRows(r.heatmap.grid, round4), focus: focusSquares(r.heatmap.grid, focusCount) },
    prediction: r.prediction === null ? null : { step: r.prediction.step, top_moves: r.prediction.topMoves, value: r.prediction.value, position: r.prediction.position },
    game: r.game === null ? null : { ...r.game, games_finished: r.gamesFinished },
    milestones: [...r.recentMilestones],
    late: { ...r.late, catching_up: r.catchingUp, backlog: r.backlog },
  };
}
