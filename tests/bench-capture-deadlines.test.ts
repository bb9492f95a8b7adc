// Missed capture deadlines as the capture benchmark counts them from outside the pipeline.
import { describe, expect, it } from 'vitest';
import { DeadlineTracker } from '../bench/capture/deadlines.js';

const I = 3000;

describe('DeadlineTracker', () => {
  it('counts nothing missed for a channel on time every interval, whatever its phase', () => {
    const d = new DeadlineTracker(I);
    for (let t = -1700; t < 60_000; t += I) d.frame('a', t);
    // 'b' alternates 0.4 s early and 0.4 s late: within half an interval, so on time
    for (let k = 0, t = -200; t < 60_000; k++, t += I) d.frame('b', t + (k % 2 ? 400 : -400));
    expect(d.missed(['a', 'b'], 0, 60_000)).toEqual({ missed: 0, due: 40, pct: 0 });
  });

  it('counts a skipped capture (a retry after a failure) and one that overran its interval', () => {
    const d = new DeadlineTracker(I);
    // before the window on time; then 0.5 s, [3.5 s skipped], 6.5 s, 9.5 s, then a frame 2 s late at 14.5 s
    for (const t of [-2500, 500, 6500, 9500, 14_500, 15_500, 18_500]) d.frame('a', t);
    // gaps: 3000 ok, 6000 -> 1 missed, 3000 ok, 5000 -> round(1.67)-1 = 1 missed, 1000 ok, 3000 ok; tail 21000-18500 ok
    expect(d.missed(['a'], 0, 21_000).missed).toBe(2);
  });

  it('counts every deadline of a channel that delivered nothing, and of one that stopped', () => {
    const d = new DeadlineTracker(I);
    d.frame('stops', -1000);
    d.frame('stops', 2000);
    const r = d.missed(['silent', 'stops'], 0, 12_000);
    expect(r.due).toBe(8);
    // silent: floor((12000 + 3000) / 3000 - 0.5) = 4; stops: floor((12000 - 2000) / 3000 - 0.5) = 2
    expect(r.missed).toBe(6);
    expect(r.pct).toBeCloseTo(75);
  });
});
