/**
 * The frame clock both actors run on: no drift, skip-ahead (counted) when late.
 */
import { describe, expect, it } from 'vitest';
import { FrameClock, runFrameLoop } from '../src/actors/compositor/frame-clock.js';
import { RenderWindow } from '../src/actors/compositor/render-window.js';
import { parseVideoRings } from '../src/actors/compositor/live-inputs.js';

describe('FrameClock', () => {
  it('frame N is due at start + N/fps, computed from the start (no drift)', () => {
    let now = 1000;
    const clock = new FrameClock(30, () => now);
    expect(clock.take()).toBe(0);
    expect(clock.delayMs()).toBeCloseTo(1000 / 30, 9);
    // Each tick handled 5 ms late: lateness never accumulates into the schedule.
    for (let n = 1; n <= 300; n++) {
      now = 1000 + (n * 1000) / 30 + 5;
      expect(clock.take()).toBe(n);
    }
    expect(clock.delayMs()).toBeCloseTo(1000 / 30 - 5, 6);
    expect(clock.skipped).toBe(0);
  });

  it('more than a frame late → skips ahead to the newest due frame and counts the skipped ones', () => {
    let now = 0;
    const clock = new FrameClock(60, () => now);
    clock.take(); // 0
    now = 100; // frames 1..6 are due (6 at 100 ms)
    expect(clock.take()).toBe(6);
    expect(clock.skipped).toBe(5);
    expect(clock.timeOf(6)).toBeCloseTo(0.1, 9);
    expect(() => new FrameClock(0)).toThrow(/fps must be in/);
  });

  it('runFrameLoop ticks at ~fps on real timers, survives a throwing tick, stops on abort', async () => {
    const clock = new FrameClock(50);
    const ac = new AbortController();
    const frames: number[] = [];
    const errors: unknown[] = [];
    setTimeout(() => ac.abort(), 400);
    await runFrameLoop(clock, ac.signal, (f) => {
      frames.push(f);
      if (f === 3) throw new Error('bad frame');
    }, (e) => errors.push(e));
    expect(frames.length).toBeGreaterThanOrEqual(17);
    expect(frames.length).toBeLessThanOrEqual(22);
    expect(frames.length + clock.skipped).toBe(clock.next);
    expect(errors).toHaveLength(1);
  });
});

describe('compositor helpers', () => {
  it('RenderWindow: p50/p99 per frame and per layer over a bounded window; forgets removed layers', () => {
    const w = new RenderWindow(100);
    for (let i = 1; i <= 150; i++) w.record(i, { a: i / 10, b: 1 });
    expect(w.frameMs()).toMatchObject({ n: 100, p50: 100, p99: 149, max: 150 });
    expect(w.layerMs().a).toMatchObject({ p50: 10, n: 100 });
    w.retain(new Set(['a']));
    expect(Object.keys(w.layerMs())).toEqual(['a']);
  });

  it('videoRings: "ring" or "source:ring"', () => {
    expect(parseVideoRings(['cam', 'main:video.main'])).toEqual([{ source: 'cam', ring: 'cam' }, { source: 'main', ring: 'video.main' }]);
    expect(parseVideoRings(undefined)).toEqual([]);
    expect(() => parseVideoRings(['ok', ''])).toThrow(/videoRings\[1\]/);
  });
});
