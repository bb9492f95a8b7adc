/**
 * Captured streams in the show: the compositor actor under a real Supervisor reads the capture
 * ring (latest-mode, RGB24 frames tagged by stream, as the capture engine writes them) and the
 * main thread's capture results (its control ring, written by the real ControlRings), and draws
 * a video layer bound with {"capture": name}: the newest frame of that stream only, a badge, the
 * last frame dimmed when the stream goes offline (never black), and counts frames drawn per
 * source in ringcast_compositor_video_frames_total. Needs `npx tsc -p .` first (compiled actors).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { CompositorOptions, CompositorStats } from '../src/actors/compositor/index.js';
import { ControlRings } from '../src/services/control-rings.js';
import { captureStreamTag } from '../src/shared/capture-frames.js';
import type { RecordRing } from '../src/shared/record-ring.js';
import { parseScene, type Scene } from '../src/shared/scene/model.js';
import type { SlotRing } from '../src/shared/slot-ring.js';
import { Supervisor } from '../src/supervisor/supervisor.js';
import type { SupervisorSpec } from '../src/supervisor/spec.js';

const W = 320, H = 180, FPS = 30;
const CW = 64, CH = 36; // capture size
const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let running: Supervisor | undefined;
afterEach(async () => {
  await running?.stop(10_000);
  running = undefined;
});

/** Two tiles: alpha (with a short offline timeout) and gamma (never captured). */
function scene(offlineAfterSec = 30): Scene {
  return parseScene({
    width: W, height: H, fps: FPS, background: '#000000', version: 1,
    layers: [
      { id: 'tile', type: 'video', width: 160, height: 90, transform: { x: 0, y: 0 }, props: { source: { capture: 'alpha' }, fit: 'fill', offlineAfterSec } },
      { id: 'idle', type: 'video', width: 160, height: 90, transform: { x: 160, y: 90 }, props: { source: { capture: 'gamma' } } },
    ],
  });
}

/** Writes one RGB24 frame of a solid colour for `stream`, as the capture engine does. */
function capture(ring: SlotRing, stream: string, rgb: [number, number, number], at = Date.now()): void {
  const slot = ring.acquire();
  const view = ring.slotView(slot);
  for (let i = 0; i < CW * CH; i++) view.set(rgb, i * 3);
  ring.publish(slot, CW * CH * 3, captureStreamTag(stream), at);
}

async function start(s: Scene) {
  const compositor: CompositorOptions = {
    inRing: 'fanout.c', outRing: 'frames', width: W, height: H, fps: FPS, controlRing: 'control.c', captureRing: 'frames.capture', captureWidth: CW, captureHeight: CH,
  };
  const spec: SupervisorSpec = {
    heartbeatIntervalMs: 100, hangTimeoutMs: 5_000, startTimeoutMs: 20_000, logLevel: 'error',
    rings: {
      'fanout.c': { kind: 'record', capacityBytes: 1 << 20 },
      'control.c': { kind: 'record', capacityBytes: 1 << 20 },
      'frames.capture': { kind: 'slot', slots: 6, slotBytes: CW * CH * 3, mode: 'latest' },
      frames: { kind: 'slot', slots: 4, slotBytes: W * H * 4, mode: 'latest' },
    },
    actors: [{ name: 'compositor', module: new URL('../src/actors/compositor/index.ts', import.meta.url), in: ['fanout.c', 'control.c', 'frames.capture'], out: ['frames'], options: compositor }],
  };
  const supervisor = new Supervisor(spec, pino({ level: 'warn' }));
  supervisor.provide('scene.get', () => s);
  running = supervisor;
  const ring = supervisor.ring<SlotRing>('frames.capture');
  // alpha's frame is in the ring before the compositor starts; beta's (another stream) is newer.
  capture(ring, 'alpha', [230, 20, 20]);
  capture(ring, 'beta', [20, 20, 230]);
  await supervisor.start();
  const controls = new ControlRings({ 'control.c': supervisor.ring<RecordRing>('control.c') });
  const frames = supervisor.ring<SlotRing>('frames');
  return { supervisor, ring, controls, frames, stats: async () => (await supervisor.call('compositor', 'stats')) as CompositorStats };
}

async function frameAfter(ring: SlotRing, ms: number): Promise<Uint8Array> {
  await sleep(ms);
  let px: Uint8Array | undefined;
  for (let i = 0; i < 100 && !px; i++) {
    ring.readLatest((view, _seq, meta) => { px = view.slice(0, meta.length); });
    if (!px) await sleep(10);
  }
  return px!;
}
const at = (px: Uint8Array, x: number, y: number) => Array.from(px.subarray((y * W + x) * 4, (y * W + x) * 4 + 3));
const near = (a: number[], b: number[], tol = 12) => a.every((v, i) => Math.abs(v - b[i]) <= tol);

function drawnTotal(metrics: string, layer: string, source: string): number {
  const m = new RegExp(`ringcast_compositor_video_frames_total\\{[^}]*layer="${layer}"[^}]*source="${source}"[^}]*\\} (\\d+)`).exec(metrics);
  return m ? Number(m[1]) : 0;
}

describe('compositor: captured streams', () => {
  it('draws the bound stream\'s newest frame (not another stream\'s), a badge, and counts frames per source', async () => {
    const { supervisor, ring, frames, stats } = await start(scene());
    let px = await frameAfter(frames, 300);
    expect(near(at(px, 80, 30), [230, 20, 20]), `alpha tile shows alpha's red, got ${at(px, 80, 30)}`).toBe(true);
    // The badge along the bottom of the tile is dark, not the frame's red.
    const badge = at(px, 4, 86);
    expect(badge[0]).toBeLessThan(120);
    // The never-captured stream is a dark slate tile waiting for its first frame, not black.
    expect(near(at(px, 162, 92), [0x14, 0x1c, 0x26], 4)).toBe(true);

    capture(ring, 'beta', [20, 230, 20]); // someone else's frame: alpha's tile does not change
    capture(ring, 'alpha', [20, 200, 60]);
    px = await frameAfter(frames, 300);
    expect(near(at(px, 80, 30), [20, 200, 60]), `alpha tile shows alpha's new frame, got ${at(px, 80, 30)}`).toBe(true);

    const s = await stats();
    expect(s.capture.streams.sort()).toEqual(['alpha', 'gamma']);
    expect(s.capture.frames).toBe(2); // alpha's two frames; beta's were never copied
    const m1 = drawnTotal(await supervisor.metrics(), 'tile', 'alpha');
    await sleep(300);
    const m2 = drawnTotal(await supervisor.metrics(), 'tile', 'alpha');
    expect(m1).toBeGreaterThan(0);
    expect(m2).toBeGreaterThan(m1);
    expect(drawnTotal(await supervisor.metrics(), 'idle', 'gamma')).toBe(0);
  });

  it('a stream that goes offline keeps its last frame, dimmed with "offline" (from a capture result, or when frames stop)', async () => {
    const { ring, controls, frames, supervisor } = await start(scene(1));
    let px = await frameAfter(frames, 300);
    const live = at(px, 20, 30);
    expect(near(live, [230, 20, 20])).toBe(true);
    // The main thread's capture result: alpha went offline after its last frame.
    controls.publish({ type: 'capture_result', channel: 'capture', key: 'alpha', retain: true, data: { stream: 'alpha', status: 'offline', at: Date.now() + 1, ms: {} } });
    px = await frameAfter(frames, 300);
    const dimmed = at(px, 20, 30);
    expect(dimmed[0]).toBeGreaterThan(40); // the last frame still shows through: not black
    expect(dimmed[0]).toBeLessThan(live[0] * 0.6);
    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(`${ARTIFACTS}compositor-capture-offline.png`, (await supervisor.call('compositor', 'png')) as Uint8Array);

    // Back online with a new frame: bright again; then no frame for longer than offlineAfterSec: dimmed.
    controls.publish({ type: 'capture_result', channel: 'capture', key: 'alpha', retain: true, data: { stream: 'alpha', status: 'ok', screen: 'ok', at: Date.now(), ms: {} } });
    capture(ring, 'alpha', [230, 20, 20]);
    px = await frameAfter(frames, 300);
    expect(near(at(px, 20, 30), [230, 20, 20])).toBe(true);
    px = await frameAfter(frames, 1300);
    const stale = at(px, 20, 30);
    expect(stale[0]).toBeGreaterThan(40);
    expect(stale[0]).toBeLessThan(230 * 0.6);
  });

  it('follows the scene: a rebound layer shows its new stream, an unbound stream is let go', async () => {
    const { supervisor, frames, stats } = await start(scene());
    const next = parseScene({ ...scene(), version: 2, layers: [{ id: 'tile', type: 'video', width: 160, height: 90, props: { source: { capture: 'beta' }, fit: 'fill' } }] });
    await supervisor.call('compositor', 'setScene', [next]);
    const px = await frameAfter(frames, 300);
    expect(near(at(px, 80, 30), [20, 20, 230]), `tile shows beta's frame already in the ring, got ${at(px, 80, 30)}`).toBe(true);
    expect((await stats()).capture.streams).toEqual(['beta']);
  });
});
