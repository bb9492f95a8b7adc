/**
 * The encoder plays frames out of its queue-mode ring oldest first through a jitter buffer of
 * one frame: frames whose landing times scatter over more than a period (render times with a
 * tail, a busy scheduler) still go out one per tick, none duplicated or superseded, at the cost
 * of one period of latency; a backlog (a late frame after its duplicate tick, a stall) is
 * passed over and counted rather than carried as extra latency. The compositor's clock renders
 * a frame up to one period behind schedule instead of skipping it, for that buffer to absorb.
 * The actor test needs the compiled actor: run `npx tsc -p .` first.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { JitterBuffer } from '../src/actors/encoder/jitter-buffer.js';
import { PhaseLock } from '../src/actors/encoder/phase-lock.js';
import { FrameClock } from '../src/actors/compositor/frame-clock.js';
import type { Supervisor } from '../src/supervisor/supervisor.js';
import { loadConfig } from '../src/shared/config.js';
import { RING_FRAMES, serviceTopology } from '../src/topology.js';
import { startEncoderOnRing, type SlotRingSpec } from './helpers/encoder-on-ring.js';

const dir = mkdtempSync(join(tmpdir(), 'ringcast-jitter-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let running: Supervisor | undefined;
afterEach(async () => {
  await running?.stop(10_000);
  running = undefined;
});

const T = 1000 / 30;

describe('JitterBuffer', () => {
  it('holds the median frame one and a half periods before its tick; validates its size', () => {
    expect(new JitterBuffer(T).targetLeadMs).toBeCloseTo(1.5 * T, 9);
    expect(new JitterBuffer(T, { frames: 2 }).targetLeadMs).toBeCloseTo(2.5 * T, 9);
    expect(new JitterBuffer(T).stats()).toEqual({ frames: 1, latencyMs: 33.33, passedFull: 0, passedBacklog: 0 });
    expect(() => new JitterBuffer(T, { frames: 0 })).toThrow(/frames must be an integer in 1 \.\. 8/);
    expect(() => new JitterBuffer(0)).toThrow(/periodMs must be > 0/);
  });

  it('passes nothing over for frames scattered over more than a period, early or late, one at a time', () => {
    const jb = new JitterBuffer(T);
    // Leads scattered ±0.9 of a period around the target, one frame waiting behind (the buffer).
    for (let n = 0; n < 2_000; n++) {
      const lead = jb.targetLeadMs + 0.9 * T * Math.sin(n * 1.7);
      expect(jb.passOver(lead, 1)).toBe(0);
    }
    // A single frame a period too old (its duplicate tick went out) is no backlog yet.
    expect(jb.passOver(jb.targetLeadMs + T, 1)).toBe(0);
    expect(jb.stats()).toMatchObject({ passedFull: 0, passedBacklog: 0 });
  });

  it('a lasting backlog of one frame is passed over within a dozen frames, once', () => {
    const jb = new JitterBuffer(T);
    for (let n = 0; n < 100; n++) jb.passOver(jb.targetLeadMs, 1);
    // From now on every frame is a period older than it should be: one frame too many waits.
    let backlog = T;
    const passedAt: number[] = [];
    for (let n = 0; n < 100; n++) {
      const passed = jb.passOver(jb.targetLeadMs + backlog, 1);
      if (passed > 0) {
        passedAt.push(n);
        backlog -= passed * T;
      }
    }
    expect(passedAt).toHaveLength(1);
    expect(passedAt[0]).toBeLessThanOrEqual(12);
    expect(jb.stats().passedBacklog).toBe(1);
    // Nothing to pass over when nothing waits behind the frame.
    const alone = new JitterBuffer(T);
    for (let n = 0; n < 50; n++) expect(alone.passOver(alone.targetLeadMs + T, 0)).toBe(0);
  });

  it('a queue holding more than the buffer plus one (a stall, the start-up backlog) is cut at once', () => {
    const jb = new JitterBuffer(T);
    expect(jb.passOver(jb.targetLeadMs + 3 * T, 3)).toBe(1);
    expect(jb.passOver(jb.targetLeadMs, 2)).toBe(0);
    expect(jb.passOver(Number.NaN, 4)).toBe(2);
    expect(jb.stats()).toMatchObject({ passedFull: 3, passedBacklog: 0 });
  });
});

describe('PhaseLock with a jitter buffer\'s target', () => {
  it('its plausible leads move with the target: 2.5 periods below it to 1.5 above', () => {
    const lock = new PhaseLock(T, { targetLeadMs: 1.5 * T });
    expect(lock.observe(-0.9 * T)).not.toBe(0);
    expect(lock.observe(2.9 * T)).not.toBe(0);
    expect(lock.observe(-1.1 * T)).toBe(0);
    expect(lock.observe(3.1 * T)).toBe(0);
    expect(lock.stats()).toMatchObject({ observed: 2, ignored: 2 });
  });
});

describe('FrameClock catch-up', () => {
  it('hands out frames up to catchUpFrames periods past due, back to back; skips (counted) only older ones', () => {
    let now = 0;
    const clock = new FrameClock(30, () => now, 1);
    expect(clock.take()).toBe(0);
    now = 1.9 * T; // frame 1 is 0.9 of a period late, frame 2 not yet due
    expect(clock.take()).toBe(1);
    now = 3.5 * T; // frame 2 is 1.5 periods late: still made
    expect(clock.take()).toBe(2);
    expect(clock.take()).toBe(3); // due half a period ago
    expect(clock.skipped).toBe(0);
    now = 9.2 * T; // frames 4..9 due: 4..7 are more than a period past due and skipped
    expect(clock.take()).toBe(8);
    expect(clock.skipped).toBe(4);
    expect(clock.take()).toBe(9);
    expect(() => new FrameClock(30, () => 0, -1)).toThrow(/catchUpFrames/);
  });
});

describe('encoder actor: a jitter buffer absorbs frames scattered over more than a period', () => {
  it('frames landing anywhere in a window of 1.3 periods: no duplicate ticks, nothing superseded, one period of latency', async () => {
    const width = 320, height = 180;
    // The product's frame ring shape: 5 slots, queue mode, drop-newest (src/topology.ts).
    const { supervisor, stats, publish } = await startEncoderOnRing({ output: join(dir, 'jitter.mkv'), width, height, started: (s) => { running = s; } });

    // A producer at the encoder's rate, stamping frames with Date.now() at publish, each frame
    // landing 0 to 1.3 periods after its slot (a fixed pseudo-random sequence): ±0.65 of a
    // period around the median. Newest-frame-wins with the lock on the median loses every frame
    // that lands more than half a period early (about one in nine: ~20 in a 6 s window, each a
    // duplicate tick and a superseded frame); played out oldest first through one frame of
    // buffer, none.
    let seed = 12345;
    const jitter = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed / 2 ** 32) * 1.3 * T;
    };
    const t0 = performance.now() + 50;
    let producing = true;
    let published = 0;
    // Frames this box published more than 20 ms later than planned: the buffer has 2 periods
    // of room behind the median (0.65 of a period after the slot): their cost is the box's.
    let boxLate = 0;
    const producer = (async () => {
      for (let k = 0; producing; k++) {
        const due = t0 + k * T + jitter();
        const wait = due - performance.now() - 2;
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        while (performance.now() < due) { /* the last 2 ms: land on time */ }
        if (!publish(k)) continue;
        published++;
        if (performance.now() - due > 20) boxLate++;
      }
    })();
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    await sleep(2_500); // the lock settles (a period in ~32 frames)

    // Judge a window in which this box kept to time; on a box too busy for one in 4 tries, the
    // frames it held up are excused instead.
    type Window = { ticks: number; duplicated: number; superseded: number; dropped: number; boxLate: number; skippedLate: number };
    const windows: Window[] = [];
    for (let w = 0; w < 4; w++) {
      const a = await stats();
      const late0 = boxLate;
      await sleep(6_000);
      const b = await stats();
      windows.push({
        ticks: b.ticks - a.ticks, duplicated: b.duplicated - a.duplicated, superseded: b.superseded - a.superseded,
        dropped: b.droppedBackpressure - a.droppedBackpressure, boxLate: boxLate - late0, skippedLate: b.skippedLate - a.skippedLate,
      });
      if (windows.at(-1)!.boxLate === 0 && windows.at(-1)!.skippedLate === 0) break;
    }
    producing = false;
    await producer;
    const last = await stats();
    const judged = windows.at(-1)!;
    // A frame held up costs at most its own duplicate tick and the backlog it leaves behind.
    const excused = 2 * (judged.boxLate + judged.skippedLate);
    console.log(JSON.stringify({ published, windows, excused, phase: last.phase, jitter: last.jitter }));
    expect(judged.ticks).toBeGreaterThan(140);
    expect(judged.duplicated).toBeLessThanOrEqual(1 + excused);
    expect(judged.superseded).toBeLessThanOrEqual(1 + excused);
    // The cost is one period of latency: the buffer says so, and frames are published about
    // 1.5 periods before the tick that sends them (the late ones pull the mean below that),
    // never a backlog of several.
    expect(last.jitter).toMatchObject({ frames: 1, latencyMs: 33.33 });
    const lead = /ringcast_encoder_frame_lead_ms\{actor="encoder"\} (-?[\d.e+-]+)/.exec(await supervisor.metrics());
    expect(lead).not.toBeNull();
    expect(Number(lead![1])).toBeGreaterThan(0.75 * T);
    expect(Number(lead![1])).toBeLessThan(2 * T);
  }, 70_000);
});

describe('the product\'s frame ring with the jitter buffer', () => {
  it('keeps the margin an in-place write had: ffmpeg stalled for under two periods, no frame\'s slot is rewritten while ffmpeg reads it', async () => {
    const tokens = { ingestToken: 'ingest-token-123', adminToken: 'admin-token-123' };
    const spec = serviceTopology(loadConfig(['--no-demo', '--no-capture', '--output', join(dir, 'x.mp4'), '--compose-width', '640', '--compose-height', '360'], {}), { tokens, port: 1 });
    const frames = spec.rings![RING_FRAMES] as SlotRingSpec;
    expect(frames).toMatchObject({ kind: 'slot', mode: 'queue', policy: 'drop-newest', slotBytes: 640 * 360 * 4 });
    // 922 kB frames: more than ffmpeg's stdin buffers hold, so a frame written while ffmpeg is
    // stopped stays pending (its slot in use) until it runs again.
    const { stats, publish } = await startEncoderOnRing({ output: join(dir, 'stall.mkv'), width: 640, height: 360, ring: frames, started: (s) => { running = s; } });
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    let producing = true;
    const t0 = performance.now();
    const producer = (async () => {
      for (let k = 0; producing; k++) {
        const wait = t0 + k * T - performance.now();
        if (wait > 0) await sleep(wait);
        if (!publish(k)) continue;
      }
    })();
    await sleep(2_000);
    const pid = (await stats()).pid!;
    const before = await stats();
    for (let n = 0; n < 10; n++) {
      const s0 = performance.now();
      process.kill(pid, 'SIGSTOP');
      while (performance.now() - s0 < 55) { /* stall */ }
      process.kill(pid, 'SIGCONT');
      await sleep(400);
    }
    const after = await stats();
    producing = false;
    await producer;
    console.log(JSON.stringify({ slots: frames.slots, torn: after.tornRisk - before.tornRisk, dropped: after.droppedBackpressure - before.droppedBackpressure, written: after.written - before.written }));
    expect(after.written - before.written).toBeGreaterThan(100);
    expect(after.tornRisk - before.tornRisk).toBe(0);
  }, 60_000);
});
