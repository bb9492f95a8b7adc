import { describe, expect, it } from 'vitest';
import { BurstBudget, MetricWindow, ema, slope, trendDirection } from '../src/actors/aggregator/metric-window.js';

describe('aggregator metric window: EMA and trend', () => {
  it('ema starts at the first value and moves alpha of the way to each new one', () => {
    expect(ema(undefined, 4, 0.2)).toBe(4);
    expect(ema(4, 14, 0.2)).toBeCloseTo(6);
    expect(ema(10, 0, 1)).toBe(0);
  });

  it('slope is the least-squares fit, 0 without spread in x', () => {
    expect(slope([0, 1, 2, 3], [1, 3, 5, 7])).toBeCloseTo(2);
    expect(slope([10, 20, 30], [5, 4, 3])).toBeCloseTo(-0.1);
    expect(slope([5, 5, 5], [1, 2, 3])).toBe(0);
    expect(slope([1], [1])).toBe(0);
  });

  it('trend sign follows the data per step; direction ignores tiny relative slopes', () => {
    const up = new MetricWindow(50, 0.2);
    const down = new MetricWindow(50, 0.2);
    const flat = new MetricWindow(50, 0.2);
    for (let i = 0; i < 20; i++) {
      up.add(i * 100, 1 + i * 0.1);
      down.add(i * 100, 3 - i * 0.1);
      flat.add(i * 100, 5 + (i % 2 === 0 ? 1e-4 : -1e-4));
    }
    for (const w of [up, down, flat]) w.closeWindow();
    expect(up.summary().trend).toBeCloseTo(0.001); // 0.1 per 100 steps
    expect(down.summary().trend).toBeCloseTo(-0.001);
    expect(trendDirection(up.summary())).toBe('rising');
    expect(trendDirection(down.summary())).toBe('falling');
    expect(trendDirection(flat.summary())).toBe('flat');
  });

  it('keeps only the last seriesPoints points, oldest first, with the smoothed series beside them', () => {
    const w = new MetricWindow(3, 0.5);
    [1, 2, 3, 4, 5].forEach((v, i) => w.add(i, v));
    const s = w.summary();
    expect(s.series).toEqual([3, 4, 5]);
    expect(s.steps).toEqual([2, 3, 4]);
    // EMA over the whole history, not only the kept points: 1, 1.5, 2.25, 3.125, 4.0625
    expect(s.smoothed).toEqual([2.25, 3.125, 4.0625]);
    expect(s.latest).toBe(5);
    expect(s.total).toBe(5);
  });

  it('window statistics cover one window; a quiet window keeps them with count 0', () => {
    const w = new MetricWindow(10, 0.2);
    w.add(1, 2); w.add(2, 6); w.add(3, 4);
    w.closeWindow();
    expect(w.summary()).toMatchObject({ mean: 4, min: 2, max: 6, count: 3 });
    w.add(4, 10);
    w.closeWindow();
    expect(w.summary()).toMatchObject({ mean: 10, min: 10, max: 10, count: 1 });
    w.closeWindow();
    expect(w.summary()).toMatchObject({ mean: 10, count: 0, latest: 10 });
  });

  it('rejects nonsense sizes', () => {
    expect(() => new MetricWindow(0, 0.2)).toThrow(/seriesPoints/);
    expect(() => new MetricWindow(10, 0)).toThrow(/smoothingAlpha/);
  });

  it('windowPoints: every point of the closed window, beyond the history while the burst budget lasts', () => {
    const budget = new BurstBudget(4);
    const a = new MetricWindow(3, 1, budget);
    const b = new MetricWindow(3, 1, budget);
    a.add(0, 0);
    a.closeWindow();
    a.release();
    for (let i = 1; i <= 6; i++) a.add(i, i * 10); // 3 beyond the history: all paid for
    for (let i = 1; i <= 5; i++) b.add(i, -i); // 2 beyond, 1 left in the budget: 1 dropped
    a.closeWindow();
    b.closeWindow();
    expect(a.windowPoints()).toEqual({ steps: [1, 2, 3, 4, 5, 6], series: [10, 20, 30, 40, 50, 60], smoothed: [10, 20, 30, 40, 50, 60], dropped: 0 });
    expect(b.windowPoints()).toEqual({ steps: [1, 3, 4, 5], series: [-1, -3, -4, -5], smoothed: [-1, -3, -4, -5], dropped: 1 });
    expect(b.windowDropped).toBe(1);
    expect(a.summary().steps).toEqual([4, 5, 6]); // the kept history is unchanged
    a.release();
    b.release();
    budget.refill();
    expect(budget.left).toBe(4);
    // A quiet window: the latest point, so a live client still sees where the metric stands.
    a.closeWindow();
    expect(a.windowPoints()).toEqual({ steps: [6], series: [60], smoothed: [60], dropped: 0 });
    // Without a budget nothing beyond the history is kept, and that is counted.
    const c = new MetricWindow(2, 1);
    for (let i = 1; i <= 5; i++) c.add(i, i);
    c.closeWindow();
    expect(c.windowPoints()).toMatchObject({ steps: [4, 5], dropped: 3 });
  });
});
