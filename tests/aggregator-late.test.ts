/**
 * Late events (meta `late: true`, from a producer's offline spool): the rule the aggregator
 * keeps. A late event newer than anything the run has shown is news and applied as live; an
 * older one is filed (metric points into the kept history at their step, in step order,
 * duplicates and points older than the whole history only counted) and never moves the live
 * view (step, values, latest, window statistics, the shown board) or feeds a milestone rule.
 * While late events come with a backlog, ppo_metrics says `catching_up` with it.
 */
import { describe, expect, it } from 'vitest';
import { encode, milestoneData, ppoMetricsData, ppoMetricsTails } from '../src/actors/aggregator/messages.js';
import { MetricWindow } from '../src/actors/aggregator/metric-window.js';
import { CATCHUP_FULL_LIVE_MS, LATE_QUIET_MS, RunState, type LateOutcome, type RunSettings } from '../src/actors/aggregator/run-state.js';
import { EventKind, EventFormatError, decodeEvent, encodeEvent, encodeMetricsPayload, type TelemetryEvent } from '../src/shared/telemetry/event-codec.js';

const counted: Record<string, number> = {};
const SETTINGS: RunSettings = {
  seriesPoints: 50, smoothingAlpha: 0.2, attentionAlpha: 0.5, heatmapFreshMs: 1000,
  health: { klHealthy: 0.01, clipHealthy: 0.1, klLearning: 0.05 },
  milestones: { klSettledBelow: 0.01, klSettledWindows: 2, entropyCollapseBelow: 0.5, lossPlateauWindows: 100, lossPlateauSlope: 1e-5, gameMarks: [2], bestWinRate: true },
  onLate: (o: LateOutcome, n: number) => { counted[o] = (counted[o] ?? 0) + n; },
};
const dec = <K extends EventKind>(bytes: Uint8Array) => decodeEvent(bytes) as Extract<TelemetryEvent, { kind: K }>;
const metrics = (step: number, values: Record<string, number>, late?: { backlog: number }) =>
  dec<EventKind.Metrics>(encodeEvent(EventKind.Metrics, late ? { late: true, backlog: late.backlog } : undefined, encodeMetricsPayload(step, values)));
const json = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b));
const advanced = (data: ReturnType<typeof ppoMetricsData>) => json(encode('ppo_metrics', 1, data).find((v) => v.levelMask & 4)!.body).data;

describe('late events: the codec', () => {
  it('reads late and backlog from the meta, and refuses a late that is not a boolean', () => {
    const e = metrics(5, { loss: 1 }, { backlog: 7 });
    expect([e.late, e.backlog]).toEqual([true, 7]);
    const live = metrics(5, { loss: 1 });
    expect([live.late, live.backlog]).toEqual([undefined, undefined]);
    expect(() => decodeEvent(encodeEvent(EventKind.Metrics, { late: 'yes' }, encodeMetricsPayload(1, { a: 1 })))).toThrow(EventFormatError);
    expect(() => decodeEvent(encodeEvent(EventKind.Metrics, { late: true, backlog: -1 }, encodeMetricsPayload(1, { a: 1 })))).toThrow(/backlog/);
  });
});

describe('late events: MetricWindow.fileLate', () => {
  it('files a point at its step, keeps step order, skips duplicates, and leaves the live state alone', () => {
    const w = new MetricWindow(5, 0.5);
    for (const s of [10, 20, 30]) w.add(s, s);
    expect(w.fileLate(25, 2.5)).toBe('filed');
    expect(w.fileLate(5, 0.5)).toBe('filed');
    expect(w.fileLate(20, 99)).toBe('duplicate');
    const s = w.summary();
    expect(s.steps).toEqual([5, 10, 20, 25, 30]);
    expect(s.series).toEqual([0.5, 10, 20, 2.5, 30]);
    expect([s.latest, s.step, w.pending]).toEqual([30, 30, 3]); // latest and the open window: live only
    // Full: a point older than every kept one would go first, so it is not kept; a newer one
    // pushes the oldest out, as a live point would.
    expect(w.fileLate(1, 0)).toBe('behind');
    expect(w.fileLate(28, 2.8)).toBe('filed');
    expect(w.summary().steps).toEqual([10, 20, 25, 28, 30]);
    // The window's live tail holds its live points only, not the filed 25 and 28 between them.
    w.closeWindow();
    expect(w.windowPoints().steps).toEqual([10, 20, 30]);
  });

  it('the live tail of a window never carries a filed point', () => {
    const w = new MetricWindow(100, 0.5);
    for (let s = 100; s < 110; s++) w.add(s, s);
    w.closeWindow();
    w.release();
    w.add(200, 200);
    w.add(201, 201);
    for (let s = 150; s < 160; s++) w.fileLate(s, s);
    w.closeWindow();
    expect(w.windowPoints().steps).toEqual([200, 201]);
    expect(w.summary().steps).toEqual([...Array.from({ length: 10 }, (_, i) => 100 + i), ...Array.from({ length: 10 }, (_, i) => 150 + i), 200, 201]);
    // Filed between live points of the same window (a short blip: 302 and 303 spooled, 304 live first).
    w.release();
    w.add(301, 1);
    w.add(304, 4);
    w.fileLate(302, 2);
    w.fileLate(303, 3);
    w.closeWindow();
    expect(w.windowPoints()).toMatchObject({ steps: [301, 304], series: [1, 4] });
    expect(w.summary().steps.slice(-4)).toEqual([301, 302, 303, 304]);
  });
});

describe('late events: RunState', () => {
  it('an old late metric is filed: the live step, values and statistics stay, the full series holds it in order', () => {
    const r = new RunState('r', 0, SETTINGS);
    for (let s = 300; s < 305; s++) r.applyMetrics(metrics(s, { loss: 1 }), 1);
    r.closeWindow(10);
    r.clearDirty();
    for (let s = 100; s < 110; s++) r.applyMetrics(metrics(s, { loss: 0.5 }, { backlog: 109 - s + 50 }), 20);
    r.applyMetrics(metrics(305, { loss: 1 }), 21);
    expect(r.closeWindow(30)).toEqual([]);
    expect(r.step).toBe(305);
    expect(r.values.get('loss')).toBe(1);
    const full = advanced(ppoMetricsData(r, SETTINGS.health));
    expect(full.metrics.loss.steps).toEqual([...Array.from({ length: 10 }, (_, i) => 100 + i), 300, 301, 302, 303, 304, 305]);
    expect(full.metrics.loss).toMatchObject({ latest: 1, mean: 1, min: 1, max: 1, count: 1 });
    expect(full).toMatchObject({ step: 305, catching_up: true, backlog: 50 });
    const tails = ppoMetricsTails(r, SETTINGS.health, 50).map(advanced);
    expect(tails.flatMap((t) => t.metrics.loss.steps)).toEqual([305]);
    expect(r.late).toMatchObject({ filed: 10, live: 0 });
  });

  it('a late event newer than anything shown is applied as live; re-sent points are duplicates', () => {
    const r = new RunState('r', 0, SETTINGS);
    r.applyMetrics(metrics(10, { loss: 1 }, { backlog: 1 }), 1); // a fresh run: news
    r.applyMetrics(metrics(11, { loss: 2 }, { backlog: 0 }), 1);
    expect([r.step, r.values.get('loss'), r.late.live]).toEqual([11, 2, 2]);
    r.applyMetrics(metrics(11, { loss: 2 }, { backlog: 0 }), 2);
    r.applyMetrics(metrics(10, { loss: 1 }, { backlog: 0 }), 2);
    expect(r.late.duplicate).toBe(2);
    r.closeWindow(3);
    expect(advanced(ppoMetricsData(r, SETTINGS.health)).metrics.loss.steps).toEqual([10, 11]);
  });

  it('old late data fires no milestone: neither per value (best win rate) nor per window (KL settled)', () => {
    const r = new RunState('r', 0, SETTINGS);
    r.applyMetrics(metrics(500, { 'ppo/kl_divergence_approx': 0.5, win_rate: 0.1 }), 1);
    r.closeWindow(2);
    r.clearDirty();
    const found = [];
    for (let s = 100; s < 140; s++) {
      found.push(...r.applyMetrics(metrics(s, { 'ppo/kl_divergence_approx': 0.001, win_rate: 0.9 }, { backlog: 140 - s }), 3 + s));
      found.push(...r.closeWindow(3 + s));
      r.clearDirty();
    }
    expect(found).toEqual([]);
    // The same data live does fire both: the rule, not the data, kept them quiet.
    for (let s = 600; s < 603; s++) {
      found.push(...r.applyMetrics(metrics(s, { 'ppo/kl_divergence_approx': 0.001, win_rate: 0.9 }), 200 + s));
      found.push(...r.closeWindow(200 + s));
      r.clearDirty();
    }
    expect(found.map((m) => m.name).sort()).toEqual(['best_win_rate', 'kl_settled']);
  });

  it('catching_up: on while late events come with a backlog, off at backlog 0 or after a quiet spell; the full series goes live at most once a second meanwhile and once at the end', () => {
    const r = new RunState('r', 0, SETTINGS);
    r.applyMetrics(metrics(1000, { loss: 1 }), 0);
    r.closeWindow(0);
    r.clearDirty();
    expect(r.catchingUp).toBe(false);
    r.applyMetrics(metrics(1, { loss: 1 }, { backlog: 3 }), 100);
    r.closeWindow(100);
    expect([r.catchingUp, r.backlog, r.takeFullLive(100)]).toEqual([true, 3, true]);
    r.clearDirty();
    r.applyMetrics(metrics(2, { loss: 1 }, { backlog: 2 }), 200);
    r.closeWindow(200);
    expect([r.backlog, r.dirty.metrics, r.takeFullLive(200)]).toEqual([2, true, false]); // too soon after the last
    r.clearDirty();
    r.applyMetrics(metrics(3, { loss: 1 }, { backlog: 0 }), 300);
    r.closeWindow(300);
    expect([r.catchingUp, r.backlog, r.takeFullLive(300)]).toEqual([false, 0, true]); // the end: the rest goes at once
    expect(advanced(ppoMetricsData(r, SETTINGS.health)).catching_up).toBeUndefined();
    r.clearDirty();
    // A producer that dies mid-drain: catching up ends after LATE_QUIET_MS without late events.
    r.applyMetrics(metrics(4, { loss: 1 }, { backlog: 10 }), 1000);
    r.closeWindow(1000);
    r.clearDirty();
    expect(r.catchingUp).toBe(true);
    r.closeWindow(1000 + LATE_QUIET_MS - 1);
    expect(r.catchingUp).toBe(true);
    r.closeWindow(1000 + LATE_QUIET_MS);
    expect([r.catchingUp, r.dirty.metrics]).toEqual([false, true]);
    expect(CATCHUP_FULL_LIVE_MS).toBeGreaterThan(0);
  });

  it('old late state of other kinds is counted, not shown; a late game result still counts; a late milestone is history', () => {
    const r = new RunState('r', 0, SETTINGS);
    r.applyMetrics(metrics(100, { loss: 1 }), 0);
    r.applyGame(dec(encodeEvent(EventKind.GameState, { game_id: 'live', sfen: 'lnsgkgsnl/1r5b1/ppppppppp/9/9/9/PPPPPPPPP/1B5R1/LNSGKGSNL b - 1' })), 1);
    r.applyPolicy(dec(encodeEvent(EventKind.Policy, { top_moves: [{ move: '7g7f', prob: 0.5 }], step: 100 })), 1);
    const lateGame = r.applyGame(dec(encodeEvent(EventKind.GameState, { game_id: 'old', result: 'black_win', late: true, backlog: 2 })), 2);
    r.applyGame(dec(encodeEvent(EventKind.GameState, { game_id: 'old2', result: 'white_win', late: true, backlog: 1 })), 2);
    r.applyPolicy(dec(encodeEvent(EventKind.Policy, { top_moves: [{ move: '2g2f', prob: 0.5 }], step: 50, late: true, backlog: 0 })), 2);
    expect(lateGame).toEqual([]);
    expect(r.game?.game_id).toBe('live');
    expect(r.pendingResults).toEqual([]);
    expect(r.gamesFinished).toBe(2);
    expect(r.prediction?.topMoves[0].move).toBe('7g7f');
    const m = r.applyMilestone(dec(encodeEvent(EventKind.Milestone, { name: 'first_win', step: 40, late: true, backlog: 0 })), 3, 3);
    expect(m.late).toBe(true);
    expect(json(encode('milestone', 1, milestoneData(m))[0].body).data).toMatchObject({ late: true, critical: false });
    expect(r.late.hidden).toBe(4);
    expect(counted.hidden).toBeGreaterThanOrEqual(4);
  });
});
