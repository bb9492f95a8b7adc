import { describe, expect, it } from 'vitest';
import { MilestoneDetector, checkRules, type MilestoneRules, type WindowMetric } from '../src/actors/aggregator/milestones.js';

const RULES: MilestoneRules = {
  klSettledBelow: 0.01, klSettledWindows: 3, entropyCollapseBelow: 0.5, lossPlateauWindows: 2, lossPlateauSlope: 1e-5,
  gameMarks: [2, 3], bestWinRate: true,
};
const wm = (latest: number, o: Partial<WindowMetric> = {}): WindowMetric => ({ latest, trend: 0.01, count: 1, points: 10, ...o });
const win = (o: Record<string, WindowMetric>) => new Map(Object.entries(o));

describe('aggregator milestone rules', () => {
  it('KL settled after N windows in a row below the threshold; quiet windows neither count nor reset; re-arms', () => {
    const d = new MilestoneDetector('r', RULES);
    const kl = 'ppo/kl_divergence_approx';
    expect(d.onWindow(win({ [kl]: wm(0.005) }), 1)).toEqual([]);
    expect(d.onWindow(win({ [kl]: wm(0.005, { count: 0 }) }), 2)).toEqual([]);
    expect(d.onWindow(win({ [kl]: wm(0.004) }), 3)).toEqual([]);
    const fired = d.onWindow(win({ [kl]: wm(0.003) }), 4);
    expect(fired).toHaveLength(1);
    expect(fired[0]).toMatchObject({ id: 'r:kl_settled:1', name: 'kl_settled', source: 'detected', step: 4, value: 0.003 });
    expect(d.onWindow(win({ [kl]: wm(0.003) }), 5)).toEqual([]); // once
    d.onWindow(win({ [kl]: wm(0.2) }), 6); // re-arm
    for (let s = 7; s < 9; s++) expect(d.onWindow(win({ [kl]: wm(0.001) }), s)).toEqual([]);
    expect(d.onWindow(win({ [kl]: wm(0.001) }), 9)[0].id).toBe('r:kl_settled:2');
  });

  it('entropy collapse fires once below the threshold', () => {
    const d = new MilestoneDetector('r', RULES);
    expect(d.onWindow(win({ 'ppo/entropy': wm(1.2) }), 1)).toEqual([]);
    const [m] = d.onWindow(win({ 'ppo/entropy': wm(0.4) }), 2);
    expect(m).toMatchObject({ name: 'entropy_collapse', value: 0.4, id: 'r:entropy_collapse:1' });
    expect(m.message).toContain('0.4');
    expect(d.onWindow(win({ 'ppo/entropy': wm(0.3) }), 3)).toEqual([]);
  });

  it('loss plateau needs a flat policy-loss trend for N windows (gen-2 names too)', () => {
    const d = new MilestoneDetector('r', RULES);
    expect(d.onWindow(win({ policy_loss: wm(0.8, { trend: 1e-6 }) }), 1)).toEqual([]);
    expect(d.onWindow(win({ policy_loss: wm(0.8, { trend: -1e-3 }) }), 2)).toEqual([]); // steep: resets
    expect(d.onWindow(win({ policy_loss: wm(0.8, { trend: -1e-6 }) }), 3)).toEqual([]);
    const [m] = d.onWindow(win({ policy_loss: wm(0.8, { trend: 2e-6 }) }), 4);
    expect(m).toMatchObject({ name: 'loss_plateau', id: 'r:loss_plateau:1' });
    // too few points to call anything a plateau
    const d2 = new MilestoneDetector('r', RULES);
    for (let s = 0; s < 5; s++) expect(d2.onWindow(win({ policy_loss: wm(0.8, { trend: 0, points: 2 }) }), s)).toEqual([]);
  });

  it('best win rate: the first value is the baseline; gains under 0.01 are not announced', () => {
    const d = new MilestoneDetector('r', RULES);
    expect(d.onMetric('eval/win_rate', 0.4, 10)).toEqual([]);
    expect(d.onMetric('eval/win_rate', 0.405, 11)).toEqual([]);
    expect(d.onMetric('eval/win_rate', 0.3, 12)).toEqual([]);
    const [m] = d.onMetric('eval/win_rate', 0.45, 13);
    expect(m).toMatchObject({ name: 'best_win_rate', value: 0.45, step: 13, id: 'r:best_win_rate:eval/win_rate:0.45' });
    expect(m.message).toContain('45.0%');
    expect(d.onMetric('ppo/policy_loss', 9, 14)).toEqual([]);
    expect(new MilestoneDetector('r', { ...RULES, bestWinRate: false }).onMetric('win_rate', 0.1, 1)).toEqual([]);
  });

  it('game marks count distinct finished games; a repeated final state is not a new game', () => {
    const d = new MilestoneDetector('r', RULES);
    expect(d.onGameFinished('g1', 5)).toEqual({ counted: true, milestones: [] });
    expect(d.onGameFinished('g1', 5)).toEqual({ counted: false, milestones: [] });
    const [two] = d.onGameFinished('g2', 6).milestones;
    expect(two).toMatchObject({ id: 'r:games:2', name: 'games', value: 2 });
    expect(d.onGameFinished('g3', 7).milestones[0].id).toBe('r:games:3');
    expect(d.onGameFinished('g4', 8).milestones).toEqual([]);
    expect(d.gamesFinished).toBe(4);
  });

  it('trainer milestones get ids from their own fields, so a replay has the same id', () => {
    const d = new MilestoneDetector('run1', RULES);
    const e = { name: 'checkpoint', message: 'saved', step: 5000, value: undefined, timestamp: 123, meta: { name: 'checkpoint', message: 'saved', step: 5000, path: '/ckpt' } };
    const a = d.fromTrainer(e, 999);
    const b = new MilestoneDetector('run1', RULES).fromTrainer(e, 1000);
    expect(a.id).toBe('run1:trainer:checkpoint:s5000');
    expect(b.id).toBe(a.id);
    expect(a).toMatchObject({ source: 'trainer', message: 'saved', step: 5000, value: null, meta: { path: '/ckpt' } });
    expect(d.fromTrainer({ ...e, step: undefined, timestamp: 0, meta: {} }, 777).id).toBe('run1:trainer:checkpoint:t777');
  });

  it('rejects bad rules', () => {
    expect(() => checkRules({ ...RULES, klSettledWindows: 0 })).toThrow(/klSettledWindows/);
    expect(() => checkRules({ ...RULES, gameMarks: [0] })).toThrow(/gameMarks/);
  });
});
