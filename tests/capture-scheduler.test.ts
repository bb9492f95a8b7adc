import { describe, expect, it } from 'vitest';
import {
  CaptureScheduler,
  SchedulerError,
  type CaptureOutcome,
  type SchedulerOptions,
} from '../src/actors/capture/scheduler.js';
import { prng } from './fixtures/ring-common.js';

const mulberry32 = prng;

function make(opts: Partial<SchedulerOptions> = {}) {
  const clock = { t: 0 };
  const s = new CaptureScheduler({
    intervalMs: 3000,
    jitterRatio: 0.1,
    maxConcurrent: 4,
    backoffInitialMs: 1000,
    backoffMaxMs: 16_000,
    offlineRecheckMs: 30_000,
    maxStreams: 1000,
    now: () => clock.t,
    random: mulberry32(42),
    ...opts,
  });
  return { s, clock };
}

/**
 * Drives the scheduler like a capture actor would: every `stepMs` it asks for
 * due streams, starts them, and finishes each `durationMs` later with the
 * outcome chosen by `outcome`. Records start times and the peak concurrency.
 */
function simulate(
  s: CaptureScheduler,
  clock: { t: number },
  untilMs: number,
  o: { stepMs?: number; durationMs?: number; outcome?: (name: string, t: number) => CaptureOutcome } = {},
) {
  const stepMs = o.stepMs ?? 10;
  const durationMs = o.durationMs ?? 100;
  const inflight: { name: string; endAt: number }[] = [];
  const starts: { name: string; t: number }[] = [];
  let peak = 0;
  for (; clock.t <= untilMs; clock.t += stepMs) {
    for (let i = inflight.length - 1; i >= 0; i--) {
      if (inflight[i].endAt <= clock.t) {
        const { name } = inflight[i];
        inflight.splice(i, 1);
        s.finished(name, o.outcome ? o.outcome(name, clock.t) : 'ok');
      }
    }
    for (const name of s.due(clock.t)) {
      s.started(name);
      starts.push({ name, t: clock.t });
      inflight.push({ name, endAt: clock.t + durationMs });
    }
    peak = Math.max(peak, s.running);
  }
  return { starts, peak, inflight };
}

describe('CaptureScheduler: registry and validation', () => {
  it('validates names and refuses duplicates', () => {
    const { s } = make();
    expect(() => s.add('', { priority: 0 })).toThrow(/non-empty/);
    expect(() => s.add('   ', { priority: 0 })).toThrow(/non-empty/);
    expect(() => s.add('x'.repeat(201), { priority: 0 })).toThrow(/at most 200/);
    s.add('x'.repeat(200), { priority: 0 });
    s.add('a', { priority: 1 });
    expect(() => s.add('a', { priority: 1 })).toThrow(/already exists/);
    expect(() => s.add('b', { priority: Number.NaN })).toThrow(/priority/);
    expect(() => s.add('b', { priority: 0, intervalMs: 0 })).toThrow(/intervalMs/);
    expect(s.size).toBe(2);
  });

  it('refuses add past maxStreams with a clear error', () => {
    const { s } = make({ maxStreams: 3 });
    for (const n of ['a', 'b', 'c']) s.add(n, { priority: 0 });
    expect(() => s.add('d', { priority: 0 })).toThrowError(SchedulerError);
    expect(() => s.add('d', { priority: 0 })).toThrow(/limit of 3 streams/);
    s.remove('a');
    s.add('d', { priority: 0 }); // room again after a removal
    expect(s.size).toBe(3);
  });

  it('rejects invalid options at construction and in configure', () => {
    expect(() => make({ maxConcurrent: 0 })).toThrow(/maxConcurrent/);
    expect(() => make({ jitterRatio: 1 })).toThrow(/jitterRatio/);
    expect(() => make({ backoffMaxMs: 10, backoffInitialMs: 100 })).toThrow(/backoffMaxMs/);
    const { s } = make();
    expect(() => s.configure({ intervalMs: -1 })).toThrow(/intervalMs/);
    expect(s.options.intervalMs).toBe(3000); // a bad configure leaves options intact
  });

  it('setPriority and remove on unknown streams', () => {
    const { s } = make();
    expect(() => s.setPriority('nope', 1)).toThrow(/unknown/);
    expect(s.remove('nope')).toBe(false);
    expect(s.stream('nope')).toBeUndefined();
  });

  it('defaults intervalMs to 3000', () => {
    const s = new CaptureScheduler();
    expect(s.options.intervalMs).toBe(3000);
  });
});

describe('CaptureScheduler: timing', () => {
  it('spreads first deadlines of 500 streams across the first interval', () => {
    const { s } = make({ maxStreams: 500 });
    for (let i = 0; i < 500; i++) s.add(`ch${i}`, { priority: 0 });
    const firsts = s.streams().map((x) => x.nextDueAt);
    expect(Math.min(...firsts)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...firsts)).toBeLessThan(3000);
    // 10 buckets of 300 ms: each should hold roughly 50; none near all 500.
    const buckets = new Array(10).fill(0);
    for (const f of firsts) buckets[Math.floor(f / 300)]++;
    for (const b of buckets) {
      expect(b).toBeGreaterThan(25);
      expect(b).toBeLessThan(80);
    }
    // At t=0 almost nothing is due.
    expect(s.due(0).length).toBeLessThanOrEqual(1);
  });

  it('keeps the gap between starts within interval × (1 ± jitter) and does not drift', () => {
    const { s, clock } = make({ jitterRatio: 0.1, maxConcurrent: 10 });
    s.add('a', { priority: 0 });
    const { starts } = simulate(s, clock, 60_000, { stepMs: 1, durationMs: 500 });
    const ts = starts.map((x) => x.t);
    expect(ts.length).toBeGreaterThan(15);
    const gaps = ts.slice(1).map((t, i) => t - ts[i]);
    for (const g of gaps) {
      expect(g).toBeGreaterThanOrEqual(2700 - 1);
      expect(g).toBeLessThanOrEqual(3300 + 1);
    }
    // Jitter is actually applied (not all gaps equal).
    expect(new Set(gaps).size).toBeGreaterThan(3);
    // Mean stays ~ interval even though each capture takes 500 ms (cadence from the deadline, not from finish).
    const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
    expect(Math.abs(mean - 3000)).toBeLessThan(150);
    expect(s.stream('a')!.missed).toBe(0);
  });

  it('with jitterRatio 0 starts exactly every interval', () => {
    const { s, clock } = make({ jitterRatio: 0 });
    s.add('a', { priority: 0, intervalMs: 1000 });
    const { starts } = simulate(s, clock, 10_000, { stepMs: 1, durationMs: 50 });
    const ts = starts.map((x) => x.t);
    for (let i = 1; i < ts.length; i++) expect(ts[i] - ts[i - 1]).toBe(1000);
  });

  it('honours a per-stream interval', () => {
    const { s, clock } = make({ jitterRatio: 0, maxConcurrent: 10 });
    s.add('fast', { priority: 0, intervalMs: 1000 });
    s.add('slow', { priority: 0, intervalMs: 5000 });
    const { starts } = simulate(s, clock, 20_000, { stepMs: 1, durationMs: 10 });
    const n = (name: string) => starts.filter((x) => x.name === name).length;
    expect(n('fast')).toBeGreaterThanOrEqual(19);
    expect(n('slow')).toBeGreaterThanOrEqual(4);
    expect(n('slow')).toBeLessThanOrEqual(5);
  });
});

describe('CaptureScheduler: capacity and priority', () => {
  it('serves higher priority first under overload (10 streams, maxConcurrent 2)', () => {
    const { s, clock } = make({ maxConcurrent: 2, jitterRatio: 0 });
    for (let i = 0; i < 10; i++) s.add(`p${i}`, { priority: i, intervalMs: 3000 });
    // Each capture takes 1 s: 2 slots give ~6 captures per 3 s, 10 streams want 10.
    const { starts, peak } = simulate(s, clock, 60_000, { stepMs: 10, durationMs: 1000 });
    expect(peak).toBeLessThanOrEqual(2);
    const count = (i: number) => starts.filter((x) => x.name === `p${i}`).length;
    // Top priorities get (nearly) every interval; the bottom ones starve first.
    expect(count(9)).toBeGreaterThanOrEqual(19);
    expect(count(8)).toBeGreaterThanOrEqual(19);
    expect(count(0)).toBeLessThan(count(9) / 2);
    const top = s.stream('p9')!;
    const bottom = s.stream('p0')!;
    expect(top.missed).toBe(0);
    expect(bottom.missed).toBeGreaterThan(5);
    expect(s.stats().missed_pct).toBeGreaterThan(0);
  });

  it('due() returns at most the free slots, highest priority then most overdue', () => {
    const { s } = make({ maxConcurrent: 2, jitterRatio: 0 });
    for (const [n, p] of [['low', 0], ['mid', 5], ['high', 9], ['mid2', 5]] as const) s.add(n, { priority: p });
    // All due by t = 3000; mid vs mid2 tie on priority: the earlier deadline wins.
    const due = s.due(3000);
    expect(due).toHaveLength(2);
    expect(due[0]).toBe('high');
    const mids = ['mid', 'mid2'].sort((a, b) => s.stream(a)!.nextDueAt - s.stream(b)!.nextDueAt);
    expect(due[1]).toBe(mids[0]);
    s.started('high');
    expect(s.due(3000)).toHaveLength(1);
    s.started(mids[0]);
    expect(s.due(3000)).toEqual([]);
  });

  it('never exceeds maxConcurrent: started() refuses when full', () => {
    const { s } = make({ maxConcurrent: 1, jitterRatio: 0 });
    s.add('a', { priority: 0 });
    s.add('b', { priority: 0 });
    s.started('a');
    expect(() => s.started('b')).toThrow(/slots in use/);
    expect(() => s.started('a')).toThrow(/already running/);
    expect(s.running).toBe(1);
  });

  it('peak concurrency stays bounded with 500 streams', () => {
    const { s, clock } = make({ maxConcurrent: 16, maxStreams: 500 });
    for (let i = 0; i < 500; i++) s.add(`ch${i}`, { priority: i % 3 });
    // 16 slots × 3000/80 ms = 600 captures per interval >= 500 needed.
    const { peak } = simulate(s, clock, 30_000, { stepMs: 10, durationMs: 80 });
    expect(peak).toBeLessThanOrEqual(16);
    const st = s.stats();
    expect(st.captures).toBeGreaterThan(4000);
    expect(st.missed_pct).toBeLessThan(1);
  });
});

describe('CaptureScheduler: failures and offline', () => {
  it('backs off exponentially with a cap, jitter and reset on success', () => {
    const { s, clock } = make({ jitterRatio: 0, backoffInitialMs: 1000, backoffMaxMs: 8000 });
    s.add('a', { priority: 0 });
    clock.t = s.stream('a')!.nextDueAt; // on time, so missed stays 0 below
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      expect(s.due(clock.t)).toEqual(['a']);
      s.started('a');
      s.finished('a', { error: `boom ${i}` });
      const st = s.stream('a')!;
      expect(st.state).toBe('backoff');
      delays.push(st.nextDueAt - clock.t);
      expect(s.due(clock.t)).toEqual([]); // not retried before the delay
      clock.t = st.nextDueAt;
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
    let st = s.stream('a')!;
    expect(st.failures).toBe(6);
    expect(st.consecutiveFailures).toBe(6);
    expect(st.lastError).toBe('boom 5');
    expect(st.missed).toBe(0); // waiting out a backoff is not a missed deadline

    s.started('a');
    s.finished('a', 'ok');
    st = s.stream('a')!;
    expect(st.state).toBe('idle');
    expect(st.consecutiveFailures).toBe(0);
    expect(st.failures).toBe(6); // total kept
    expect(st.lastError).toBeNull();
    expect(st.captures).toBe(1);
    // After reset the next failure starts over at the initial delay.
    clock.t = st.nextDueAt;
    s.started('a');
    s.finished('a', { error: 'again' });
    expect(s.stream('a')!.nextDueAt - clock.t).toBe(1000);
  });

  it('jittered backoff stays within ±jitter and never above the cap', () => {
    const { s } = make({ jitterRatio: 0.2, backoffInitialMs: 1000, backoffMaxMs: 5000 });
    for (let n = 1; n <= 10; n++) {
      for (let k = 0; k < 200; k++) {
        const d = s.backoffDelay(n);
        const base = Math.min(5000, 1000 * 2 ** (n - 1));
        expect(d).toBeGreaterThanOrEqual(base * 0.8);
        expect(d).toBeLessThanOrEqual(Math.min(5000, base * 1.2));
      }
    }
    expect(Number.isFinite(s.backoffDelay(5000))).toBe(true); // huge n doesn't overflow to Infinity/NaN
  });

  it('offline is distinct from failing: no failure, no backoff growth, own recheck period', () => {
    const { s, clock } = make({ jitterRatio: 0, offlineRecheckMs: 30_000 });
    s.add('off', { priority: 0 });
    s.add('bad', { priority: 0 });
    clock.t = 3000;
    for (let i = 0; i < 3; i++) {
      for (const n of s.due(clock.t)) s.started(n);
      s.finished('off', 'offline');
      expect(s.stream('off')!.state).toBe('offline');
      expect(s.stream('off')!.nextDueAt - clock.t).toBe(30_000); // constant, not growing
      clock.t += 30_000;
      if (s.stream('bad')!.state === 'running') s.finished('bad', { error: 'x' });
    }
    const off = s.stream('off')!;
    expect(off.failures).toBe(0);
    expect(off.consecutiveFailures).toBe(0);
    expect(off.offlineChecks).toBe(3);
    expect(off.missed).toBe(0);
    expect(s.stream('bad')!.failures).toBeGreaterThan(0);
    expect(s.stats().offline).toBe(1);
    expect(s.stats().backoff).toBe(1);

    // Coming back online returns to the normal cadence.
    s.started('off');
    s.finished('off', 'ok');
    expect(s.stream('off')!.state).toBe('idle');
    expect(s.stream('off')!.nextDueAt - clock.t).toBe(3000);
  });

  it('offline after failures clears the failure streak', () => {
    const { s, clock } = make({ jitterRatio: 0 });
    s.add('a', { priority: 0 });
    clock.t = 3000;
    s.started('a');
    s.finished('a', { error: 'timeout' });
    clock.t = s.stream('a')!.nextDueAt;
    s.started('a');
    s.finished('a', 'offline');
    expect(s.stream('a')!.consecutiveFailures).toBe(0);
    expect(s.stream('a')!.failures).toBe(1);
  });
});

describe('CaptureScheduler: missed deadlines', () => {
  it('counts missed intervals after a stall and does not burst', () => {
    const { s, clock } = make({ jitterRatio: 0 });
    s.add('a', { priority: 0 });
    const first = s.stream('a')!.nextDueAt;
    // Nobody ticks for 10 intervals (event-loop stall, process paused).
    clock.t = first + 10 * 3000 + 500;
    expect(s.due(clock.t)).toEqual(['a']);
    expect(s.stream('a')!.missed).toBe(10);
    s.started('a');
    s.finished('a', 'ok');
    // Exactly one catch-up capture; the next one is a normal interval later.
    expect(s.due(clock.t)).toEqual([]);
    expect(s.stream('a')!.nextDueAt).toBe(first + 11 * 3000);
    // Repeated due() calls don't double count.
    s.due(clock.t);
    s.due(clock.t + 100);
    expect(s.stream('a')!.missed).toBe(10);
    const st = s.stats();
    expect(st.missed).toBe(10);
    expect(st.missed_pct).toBeCloseTo((100 * 10) / 11, 5);
  });

  it('a lateness under one interval is not missed', () => {
    const { s } = make({ jitterRatio: 0 });
    s.add('a', { priority: 0 });
    const d = s.stream('a')!.nextDueAt;
    s.due(d + 2999);
    expect(s.stream('a')!.missed).toBe(0);
    s.due(d + 3000);
    expect(s.stream('a')!.missed).toBe(1);
  });

  it('a capture that outlasts its interval makes the following deadline missed, not queued twice', () => {
    const { s, clock } = make({ jitterRatio: 0 });
    s.add('a', { priority: 0, intervalMs: 1000 });
    const { starts } = simulate(s, clock, 20_000, { stepMs: 10, durationMs: 2500 });
    expect(s.stream('a')!.missed).toBeGreaterThan(0);
    // Starts are never closer than the capture itself (never overlapping).
    for (let i = 1; i < starts.length; i++) expect(starts[i].t - starts[i - 1].t).toBeGreaterThanOrEqual(2500);
  });
});

describe('CaptureScheduler: run-time changes', () => {
  it('configure: shorter interval applies at once, maxConcurrent changes the slots', () => {
    const { s, clock } = make({ intervalMs: 60_000, jitterRatio: 0, maxConcurrent: 1 });
    for (let i = 0; i < 4; i++) s.add(`c${i}`, { priority: 0 });
    s.configure({ intervalMs: 1000 });
    for (const x of s.streams()) expect(x.nextDueAt).toBeLessThan(1000 + 1);
    clock.t = 1000;
    expect(s.due(clock.t)).toHaveLength(1);
    s.configure({ maxConcurrent: 3 });
    expect(s.due(clock.t)).toHaveLength(3);
    for (const n of s.due(clock.t)) s.started(n);
    // Lowering below the running count cuts nothing but admits nothing new.
    s.configure({ maxConcurrent: 1 });
    expect(s.running).toBe(3);
    expect(s.due(clock.t)).toEqual([]);
    expect(() => s.started('c3')).toThrow(/slots/);
  });

  it('setPriority reorders the next due()', () => {
    const { s } = make({ maxConcurrent: 1, jitterRatio: 0 });
    s.add('a', { priority: 5 });
    s.add('b', { priority: 1 });
    expect(s.due(3000)).toEqual(['a']);
    s.setPriority('b', 10);
    expect(s.due(3000)).toEqual(['b']);
  });

  it('remove while running keeps the slot until finished, then frees it', () => {
    const { s, clock } = make({ maxConcurrent: 1, jitterRatio: 0 });
    s.add('a', { priority: 0 });
    s.add('b', { priority: 0 });
    clock.t = 3000;
    const [first] = s.due(clock.t);
    const other = first === 'a' ? 'b' : 'a';
    s.started(first);
    expect(s.remove(first)).toBe(true);
    expect(s.stream(first)).toBeUndefined();
    // The capture process is still alive, so the slot is still taken.
    expect(s.running).toBe(1);
    expect(s.due(clock.t)).toEqual([]);
    expect(s.finished(first, 'ok')).toBe(false);
    expect(s.running).toBe(0);
    expect(s.due(clock.t)).toEqual([other]);
    expect(() => s.finished(first, 'ok')).toThrow(/unknown/);
    expect(s.stats().streams).toBe(1);
  });

  it('re-adding a removed-while-running name does not confuse the orphan', () => {
    const { s, clock } = make({ maxConcurrent: 2, jitterRatio: 0 });
    s.add('a', { priority: 0 });
    clock.t = 3000;
    s.started('a');
    s.remove('a');
    s.add('a', { priority: 0 });
    expect(s.stream('a')!.state).toBe('idle');
    expect(s.finished('a', 'ok')).toBe(false); // the old capture ends
    expect(s.running).toBe(0);
    expect(s.stream('a')!.captures).toBe(0);
  });

  it('finished on a stream that is not running throws', () => {
    const { s } = make();
    s.add('a', { priority: 0 });
    expect(() => s.finished('a', 'ok')).toThrow(/not running/);
  });
});

describe('on-demand starts', () => {
  it('a capture started before its deadline schedules the next one an interval after the start, not after the old deadline', () => {
    const { s, clock } = make({ jitterRatio: 0 });
    s.add('early', { priority: 50 });
    s.started(s.due(clock.t + 10_000)[0] ?? 'early');
    s.finished('early', 'offline');
    // Offline: next check 30 s away. An on-demand capture (thumbnail request) at t = 1 s:
    clock.t = 1_000;
    expect(s.stream('early')!.nextDueAt).toBeGreaterThan(20_000);
    s.started('early');
    clock.t = 1_200;
    s.finished('early', 'ok');
    expect(s.stream('early')!.nextDueAt).toBe(1_000 + 3_000);
  });
});
