/**
 * A run persisted by its owner and restored on another node continues where it was: the
 * same series, values, game and milestones, and a detector that neither re-announces nor
 * forgets what it already counted. Bad snapshots are refused with the field named.
 */
import { describe, expect, it } from 'vitest';
import { RunState, type RunSettings } from '../src/actors/aggregator/run-state.js';
import { decodeRun, encodeRun } from '../src/actors/aggregator/run-persist.js';
import { runSnapshot } from '../src/actors/aggregator/snapshot.js';
import { decodeEvent, encodeMetrics, type TelemetryEvent } from '../src/shared/telemetry/event-codec.js';
import { encodeGameStateEvent, encodeMilestoneEvent } from '../src/sdk/encode.js';

const SETTINGS: RunSettings = {
  seriesPoints: 8, smoothingAlpha: 0.2, attentionAlpha: 0.5, heatmapFreshMs: 1000,
  health: { klHealthy: 0.01, clipHealthy: 0.1, klLearning: 0.05 },
  milestones: { klSettledBelow: 0.01, klSettledWindows: 30, entropyCollapseBelow: 0.5, lossPlateauWindows: 100, lossPlateauSlope: 1e-5, gameMarks: [2, 3], bestWinRate: true },
};
const dec = <T extends TelemetryEvent>(bytes: Uint8Array) => decodeEvent(bytes) as T;

function played(): RunState {
  const r = new RunState('run-a', 1000, SETTINGS);
  for (let s = 1; s <= 12; s++) r.applyMetrics(dec(encodeMetrics(s, { 'ppo/policy_loss': 1 / s, win_rate: s < 6 ? 0.3 : 0.5 })), 1000 + s);
  r.closeWindow(2000);
  for (const m of r.applyGame(dec(encodeGameStateEvent({ gameId: 'g1', result: 'sente_win' }, undefined, { copy: true })), 2001)) r.remember(m);
  r.remember(r.applyMilestone(dec(encodeMilestoneEvent({ name: 'first', step: 3 }, undefined, { copy: true })), 2002, 2002));
  return r;
}

describe('run snapshots for a takeover', () => {
  it('restores series, values, game, milestones and detector state', () => {
    const before = played();
    const text = encodeRun(before);
    const after = new RunState('run-a', 9999, SETTINGS);
    after.restore(decodeRun(text, 'run-a'));
    expect(runSnapshot(after, 5)).toEqual(runSnapshot(before, 5));
    expect(after.metricSummaries().get('ppo/policy_loss')!.series).toEqual(before.metricSummaries().get('ppo/policy_loss')!.series);
    // The detector carries on: game g1 already counted, the second game reaches mark 2 once.
    expect(after.applyGame(dec(encodeGameStateEvent({ gameId: 'g1', result: 'sente_win' }, undefined, { copy: true })), 3000)).toEqual([]);
    const marks = after.applyGame(dec(encodeGameStateEvent({ gameId: 'g2', result: 'gote_win' }, undefined, { copy: true })), 3001);
    expect(marks.map((m) => m.id)).toEqual(['run-a:games:2']);
    // Best win rate 0.5 is remembered: 0.5 again is no news, 0.6 is.
    expect(after.applyMetrics(dec(encodeMetrics(13, { win_rate: 0.5 })), 3002)).toEqual([]);
    expect(after.applyMetrics(dec(encodeMetrics(14, { win_rate: 0.6 })), 3003).map((m) => m.name)).toEqual(['best_win_rate']);
  });

  it('a replayed milestone replaces the kept one instead of appearing twice', () => {
    const r = played();
    const again = r.applyMilestone(dec(encodeMilestoneEvent({ name: 'first', step: 3 }, undefined, { copy: true })), 5000, 5000);
    r.remember(again);
    expect(r.recentMilestones.filter((m) => m.id === again.id)).toHaveLength(1);
  });

  it('refuses a snapshot that is not JSON, of another run, or with a bad field, naming the problem', () => {
    const text = encodeRun(played());
    expect(() => decodeRun('{not json', 'run-a')).toThrow(/not JSON/);
    expect(() => decodeRun(text, 'run-b')).toThrow(/of run "run-a", not "run-b"/);
    const bad = JSON.parse(text);
    bad.metrics[0][1].total = 'lots';
    expect(() => decodeRun(JSON.stringify(bad), 'run-a')).toThrow(/field metrics\.0\.1\.total/);
    expect(() => decodeRun('[]', 'run-a')).toThrow(/run snapshot field/);
  });
});
