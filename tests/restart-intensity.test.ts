import { describe, expect, it } from 'vitest';
import { Backoff, RestartIntensity } from '../src/supervisor/restart-intensity.js';

describe('RestartIntensity', () => {
  it('allows `intensity` restarts within the period and refuses the next one', () => {
    const limit = new RestartIntensity(3, 1_000);
    expect([limit.allow(0), limit.allow(100), limit.allow(200)]).toEqual([true, true, true]);
    expect(limit.allow(300)).toBe(false);
  });

  it('forgets restarts older than the period (sliding window)', () => {
    const limit = new RestartIntensity(2, 1_000);
    limit.allow(0);
    limit.allow(500);
    expect(limit.allow(1_001)).toBe(true); // the restart at 0 has left the window
    expect(limit.allow(1_200)).toBe(false);
  });

  it('with intensity 0 escalates on the first failure', () => {
    expect(new RestartIntensity(0, 1_000).allow(0)).toBe(false);
  });
});

describe('Backoff', () => {
  it('restarts at once the first time, then doubles up to the cap', () => {
    const backoff = new Backoff(10, 50);
    expect([backoff.next(), backoff.next(), backoff.next(), backoff.next(), backoff.next()]).toEqual([0, 10, 20, 40, 50]);
  });

  it('starts over after reset()', () => {
    const backoff = new Backoff(10, 50);
    backoff.next();
    backoff.next();
    backoff.reset();
    expect(backoff.next()).toBe(0);
  });
});
