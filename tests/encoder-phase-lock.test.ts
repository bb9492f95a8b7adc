/**
 * The encoder's frame clock locks onto the phase of the producer's frames, so jitter in when
 * frames land costs no frame (no duplicate tick, no superseded frame) whatever the phase the
 * two actors started in. The actor test needs the compiled actor: run `npx tsc -p .` first.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { PhaseLock } from '../src/actors/encoder/phase-lock.js';
import { FrameClock } from '../src/actors/compositor/frame-clock.js';
import type { Supervisor } from '../src/supervisor/supervisor.js';
import { startEncoderOnRing } from './helpers/encoder-on-ring.js';

const dir = mkdtempSync(join(tmpdir(), 'ringcast-phase-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let running: Supervisor | undefined;
afterEach(async () => {
  await running?.stop(10_000);
  running = undefined;
});

const T = 1000 / 30;

describe('FrameClock.shift', () => {
  it('moves the whole schedule: later and earlier, without counting a skip for a small step', () => {
    let now = 0;
    const clock = new FrameClock(30, () => now);
    clock.take();
    clock.shift(5);
    expect(clock.delayMs()).toBeCloseTo(T + 5, 9);
    now = T + 5;
    expect(clock.take()).toBe(1);
    clock.shift(-8);
    expect(clock.delayMs()).toBeCloseTo(T - 8, 9);
    now = 2 * T - 3;
    expect(clock.take()).toBe(2);
    expect(clock.skipped).toBe(0);
  });
});

describe('PhaseLock', () => {
  /** Frames published at k*T + offset(k); ticks at n*T + shift; the lead of frame n at tick n. */
  const settle = (offset: (k: number) => number, frames: number) => {
    const lock = new PhaseLock(T);
    let shift = 0;
    const leads: number[] = [];
    for (let n = 0; n < frames; n++) {
      const lead = n * T + shift - (n * T + offset(n));
      leads.push(lead);
      shift += lock.observe(lead);
    }
    return { lock, leads };
  };

  it('moves the clock in small steps until the median frame lands half a period before the tick', () => {
    // Frames land 8 ms before the tick at first.
    const { lock, leads } = settle(() => -8, 60);
    expect(leads[0]).toBeCloseTo(8, 6);
    for (let i = 1; i < leads.length; i++) expect(Math.abs(leads[i] - leads[i - 1])).toBeLessThanOrEqual(lock.stepMs + 1e-9);
    expect(leads.at(-1)!).toBeCloseTo(T / 2, 3);
    expect(lock.shiftedMs).toBeCloseTo(T / 2 - 8, 3);
  });

  it('keeps the net shift within 1.5 periods: a producer slower than fps cannot slow the cadence, it costs a tick now and then', () => {
    // The producer's period is 1 % longer: its frames land later each tick, the lock follows,
    // and each time the net shift would pass a period it goes back a whole one.
    const lock = new PhaseLock(T);
    let shift = 0;
    let k = 0;
    for (let n = 0; n < 1_000; n++) {
      // The frame sent at tick n is the newest published by then.
      const tick = n * T + shift;
      while ((k + 1) * T * 1.01 <= tick) k++;
      shift += lock.observe(tick - k * T * 1.01);
      expect(Math.abs(lock.shiftedMs)).toBeLessThanOrEqual(1.5 * T + 1e-9);
    }
    // ~10 periods of drift over 1000 frames: about ten wraps, and the clock stays on the wall clock.
    expect(lock.wrapped).toBeGreaterThanOrEqual(8);
    expect(lock.wrapped).toBeLessThanOrEqual(12);
    expect(Math.abs(shift)).toBeLessThanOrEqual(1.5 * T + 1e-9);
  });

  it('ignores leads more than two periods off (another producer\'s stamps, a clock step)', () => {
    const lock = new PhaseLock(T);
    expect(lock.observe(5_000)).toBe(0);
    expect(lock.observe(Number.NaN)).toBe(0);
    expect(lock.observe(-100)).toBe(0);
    expect(lock.stats()).toMatchObject({ observed: 0, ignored: 3, shiftedMs: 0, wrapped: 0, leadMs: null });
  });
});

describe('encoder actor: frame clock in phase with the producer', () => {
  it('frames landing with a period of jitter, at every phase between the clocks: no duplicate ticks, nothing superseded', async () => {
    const width = 320, height = 180;
    // The product's frame ring shape: 5 slots, queue mode, drop-newest (src/topology.ts).
    const { supervisor, stats, publish } = await startEncoderOnRing({ output: join(dir, 'phase.mkv'), width, height, started: (s) => { running = s; } });

    // A producer like the compositor, stamping frames with Date.now() at publish, but harder
    // on the encoder: every third frame lands 0.7 of a period late, and its period is 0.5 %
    // longer than the encoder's, so its phase sweeps through a whole period every ~6.7 s.
    // Without a phase lock, the phases where the late frames miss their tick's wait lose a
    // frame every third tick (about 15 in a 7 s window); with it, the late frames land in
    // time and the slower producer alone leaves the encoder about one frame short per window
    // (where the lock goes back a period to stay on the wall clock).
    const period = T * 1.005;
    const t0 = performance.now() + 50;
    let producing = true;
    let published = 0;
    // Frames this box published later than planned by more than the lock leaves them
    // (a late frame has 10 ms to spare, an on-time one a period): their cost is the box's.
    let boxLate = 0;
    const producer = (async () => {
      for (let k = 0; producing; k++) {
        const late = k % 3 === 1;
        const due = t0 + k * period + (late ? 0.7 * T : 0);
        const wait = due - performance.now() - 2;
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        while (performance.now() < due) { /* the last 2 ms: land on time */ }
        if (!publish(k)) continue;
        published++;
        if (performance.now() - due > (late ? 8 : 30)) boxLate++;
      }
    })();
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    await sleep(2_000); // the lock settles (a period in ~32 frames)

    // Judge a window in which this box kept to time (no frame published late beyond the
    // lock's reach, no encoder tick a period late); on a box too busy for one in 4 tries,
    // the frames it held up are excused instead.
    type Window = { ticks: number; duplicated: number; superseded: number; observed: number; boxLate: number; skippedLate: number };
    const windows: Window[] = [];
    let last = await stats();
    for (let w = 0; w < 4; w++) {
      const a = await stats();
      const late0 = boxLate;
      await sleep(7_000);
      const b = await stats();
      last = b;
      windows.push({
        ticks: b.ticks - a.ticks, duplicated: b.duplicated - a.duplicated, superseded: b.superseded - a.superseded,
        observed: b.phase.observed - a.phase.observed, boxLate: boxLate - late0, skippedLate: b.skippedLate - a.skippedLate,
      });
      if (windows.at(-1)!.boxLate === 0 && windows.at(-1)!.skippedLate === 0) break;
    }
    producing = false;
    await producer;
    const judged = windows.at(-1)!;
    const excused = judged.boxLate + judged.skippedLate;
    console.log(JSON.stringify({ published, windows, excused }));
    expect(judged.ticks).toBeGreaterThan(160);
    // A tick held up past two periods ignores its lead; the rest are used.
    expect(judged.observed).toBeGreaterThan(judged.ticks * 0.8);
    expect(judged.duplicated).toBeLessThanOrEqual(3 + excused);
    // The lock shows in the metrics: recent frames published before their tick, on average
    // (the late third pulls the mean below the target the median sits at: the jitter buffer's
    // frame plus half a period for this queue-mode ring).
    const lead = /ringcast_encoder_frame_lead_ms\{actor="encoder"\} (-?[\d.e+-]+)/.exec(await supervisor.metrics());
    expect(lead).not.toBeNull();
    expect(last.phase.targetLeadMs).toBeCloseTo(1.5 * T, 1);
    expect(Number(lead![1])).toBeGreaterThan(last.phase.targetLeadMs - T / 2);
    expect(Number(lead![1])).toBeLessThan(last.phase.targetLeadMs + T / 2);
    expect(judged.superseded).toBeLessThanOrEqual(3 + excused);
    // The slower producer did not slow the cadence: the clock goes back a period each time its
    // net shift passes 1.5, so it stays within 1.5 periods of the wall clock.
    expect(Math.abs(last.phase.shiftedMs)).toBeLessThanOrEqual(1.5 * T + 0.01);
  }, 70_000);
});
