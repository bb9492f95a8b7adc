/**
 * The compositor actor under a real Supervisor: a known scene rendered into a slot ring at
 * the configured fps, pixels checked at chosen points, setScene changing the output, live
 * inputs (overlay messages, a video-source ring), and compositor → encoder → file.
 * Needs the compiled actors: run `npx tsc -p .` first. The PNG lands in tests/artifacts/.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { CompositorOptions, CompositorStats } from '../src/actors/compositor/index.js';
import type { EncoderOptions, EncoderStats } from '../src/actors/encoder/index.js';
import type { RecordRing } from '../src/shared/record-ring.js';
import type { Scene } from '../src/shared/scene/model.js';
import type { SlotRing } from '../src/shared/slot-ring.js';
import { channelId } from '../src/shared/telemetry/channels.js';
import { FanoutType, writeFanoutRecord } from '../src/shared/telemetry/ring-records.js';
import { Supervisor } from '../src/supervisor/supervisor.js';
import type { SupervisorSpec } from '../src/supervisor/spec.js';
import { ffprobe, pixelAt } from './helpers/rtmp-server.js';

const W = 320;
const H = 180;
const FPS = 30;
const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'ringcast-comp-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let running: Supervisor | undefined;
afterEach(async () => {
  await running?.stop(10_000);
  running = undefined;
});

/** Black background, a red box, a green overlay box at half opacity, a video layer fed from a ring. */
function knownScene(hostColor = '#ff0000'): Scene {
  return {
    width: W, height: H, fps: FPS, background: '#000000', version: 7,
    layers: [
      { id: 'host', type: 'overlay', z: 1, visible: true, opacity: 1, transform: { x: 20, y: 20, scale: 1, rotation: 0, anchor: [0, 0] }, width: 100, height: 60, blend: 'normal', props: { color: hostColor } },
      { id: 'badge', type: 'overlay', z: 2, visible: true, opacity: 0.5, transform: { x: 200, y: 100, scale: 1, rotation: 0, anchor: [0, 0] }, width: 80, height: 50, blend: 'normal', props: { color: '#00ff00' } },
      { id: 'cam', type: 'video', z: 3, visible: true, opacity: 1, transform: { x: 160, y: 20, scale: 1, rotation: 0, anchor: [0, 0] }, width: 120, height: 60, blend: 'normal', props: { source: 'cam', fit: 'fill' } },
      { id: 'hidden', type: 'overlay', z: 4, visible: false, opacity: 1, transform: { x: 0, y: 0, scale: 1, rotation: 0, anchor: [0, 0] }, width: W, height: H, blend: 'normal', props: { color: '#ffffff' } },
    ],
  };
}

interface Setup { scene?: Scene | null; provide?: boolean; encoder?: Partial<EncoderOptions> }

async function start(setup: Setup = {}) {
  const compositor: CompositorOptions = { inRing: 'fanout.c', outRing: 'frames', width: W, height: H, fps: FPS, videoRings: ['cam:video.cam'] };
  const spec: SupervisorSpec = {
    heartbeatIntervalMs: 100, hangTimeoutMs: 5_000, startTimeoutMs: 20_000, logLevel: 'error',
    rings: {
      'fanout.c': { kind: 'record', capacityBytes: 1 << 20 },
      frames: { kind: 'slot', slots: 4, slotBytes: W * H * 4, mode: setup.encoder ? 'queue' : 'latest' },
      'video.cam': { kind: 'slot', slots: 3, slotBytes: 64 * 32 * 4, mode: 'latest' },
    },
    actors: [{ name: 'compositor', module: new URL('../src/actors/compositor/index.ts', import.meta.url), in: ['fanout.c', 'video.cam'], out: ['frames'], options: compositor }],
  };
  if (setup.encoder) {
    const encoder: EncoderOptions = {
      inRing: 'frames', width: W, height: H, fps: FPS, outputs: [], bitrateKbps: 800, preset: 'ultrafast', keyframeSeconds: 1, encoder: 'auto', audio: 'none', ...setup.encoder,
    };
    spec.actors.push({ name: 'encoder', module: new URL('../src/actors/encoder/index.ts', import.meta.url), in: ['frames'], options: encoder });
  }
  const supervisor = new Supervisor(spec, pino({ level: 'warn' }));
  if (setup.provide !== false) supervisor.provide('scene.get', () => (setup.scene === undefined ? knownScene() : setup.scene));
  running = supervisor;
  // A blue video frame is waiting before the compositor starts.
  const cam = supervisor.ring<SlotRing>('video.cam');
  const slot = cam.acquire();
  cam.slotI32(slot).fill((255 << 24) | (255 << 16), 0, 64 * 32);
  cam.publish(slot, 64 * 32 * 4, 64);
  await supervisor.start();
  const frames = supervisor.ring<SlotRing>('frames');
  const stats = async () => (await supervisor.call('compositor', 'stats')) as CompositorStats;
  return { supervisor, frames, stats, fanout: supervisor.ring<RecordRing>('fanout.c') };
}

/** Copy of the newest frame (latest-mode ring), waiting for one newer than `after`. */
async function latestFrame(ring: SlotRing, after = 0): Promise<{ px: Uint8Array; frame: number; tag: number }> {
  for (let i = 0; i < 200; i++) {
    let got: { px: Uint8Array; frame: number; tag: number } | undefined;
    ring.readLatest((view, seq, meta) => { got = { px: view.slice(0, meta.length), frame: seq, tag: meta.tag }; });
    if (got && got.frame > after) return got;
    await sleep(10);
  }
  throw new Error('no frame from the compositor');
}

const rgbaAt = (px: Uint8Array, x: number, y: number) => Array.from(px.subarray((y * W + x) * 4, (y * W + x) * 4 + 4));

describe('compositor actor', () => {
  it('renders the saved scene at ~fps into the slot ring: pixels at chosen points, culling, stats', async () => {
    const { supervisor, frames, stats } = await start();
    const first = await latestFrame(frames);
    const n0 = frames.recordsWritten;
    const t0 = performance.now();
    await sleep(2_000);
    const rate = ((frames.recordsWritten - n0) * 1000) / (performance.now() - t0);
    // A busy box can make the render thread miss a few ticks (the clock skips, never bursts);
    // a broken clock shows as half the rate or a runaway.
    expect(rate).toBeGreaterThan(FPS * 0.75);
    expect(rate).toBeLessThan(FPS * 1.1);

    const { px, tag } = await latestFrame(frames, first.frame);
    expect(px.byteLength).toBe(W * H * 4);
    expect(tag).toBe(W); // video-source convention: tag = width
    expect(rgbaAt(px, 5, 5)).toEqual([0, 0, 0, 255]); // background
    expect(rgbaAt(px, 50, 40)).toEqual([255, 0, 0, 255]); // host box
    expect(rgbaAt(px, 119, 79)).toEqual([255, 0, 0, 255]); // its last pixel
    expect(rgbaAt(px, 120, 80)).toEqual([0, 0, 0, 255]); // just outside
    const [r, g, b] = rgbaAt(px, 240, 125); // green at 50 % over black
    expect(r).toBe(0); expect(b).toBe(0); expect(g).toBeGreaterThanOrEqual(126); expect(g).toBeLessThanOrEqual(129);
    expect(rgbaAt(px, 220, 50)).toEqual([0, 0, 255, 255]); // the video ring's blue frame
    const scene = (await supervisor.call('compositor', 'getScene')) as Scene;
    expect(scene.version).toBe(7);

    mkdirSync(ARTIFACTS, { recursive: true });
    const png = (await supervisor.call('compositor', 'png')) as Uint8Array;
    expect(Buffer.from(png).subarray(1, 4).toString()).toBe('PNG');
    writeFileSync(join(ARTIFACTS, 'compositor-known-scene.png'), png);

    const s = await stats();
    expect(s.frames).toBeGreaterThan(50);
    expect(s.dropped).toBe(0);
    expect(s.measuredFps).toBeGreaterThan(FPS * 0.8);
    expect(s.renderMs.p50).toBeGreaterThan(0);
    expect(s.renderMs.p99).toBeGreaterThanOrEqual(s.renderMs.p50);
    expect(Object.keys(s.layerMs).sort()).toEqual(['badge', 'cam', 'host']); // 'hidden' is culled
    expect(s.renderer.culled).toBeGreaterThanOrEqual(s.frames);
    expect(s.video).toMatchObject({ frames: 1, badFrames: 0, sources: ['cam'] });
    const metrics = await supervisor.metrics();
    expect(metrics).toMatch(/ringcast_compositor_frames_total\{result="rendered",actor="compositor"\} \d+/);
    expect(metrics).toMatch(/ringcast_compositor_render_seconds_count\{actor="compositor"\} \d+/);
    expect(metrics).toMatch(/ringcast_compositor_layer_render_ms\{layer="host",actor="compositor"\}/);
  }, 30_000);

  it('setScene changes the output; a bad scene is refused naming the field; overlay messages are kept by type', async () => {
    const { supervisor, frames, stats, fanout } = await start();
    await latestFrame(frames);
    const next = knownScene('#0000ff');
    next.version = 8;
    expect(await supervisor.call('compositor', 'setScene', [next])).toEqual({ version: 8 });
    const before = frames.recordsWritten;
    const { px } = await latestFrame(frames, before + 1);
    expect(rgbaAt(px, 50, 40)).toEqual([0, 0, 255, 255]);

    const bad = { ...knownScene(), layers: [{ ...knownScene().layers[0], opacity: 3 }] };
    await expect(supervisor.call('compositor', 'setScene', [bad])).rejects.toThrow(/layers\[0\]\.opacity/);
    expect(((await supervisor.call('compositor', 'getScene')) as Scene).version).toBe(8);

    const body = new TextEncoder().encode(JSON.stringify({ type: 'ppo_metrics', timestamp: 1, data: { values: { policy_loss: 0.5 } } }));
    expect(writeFanoutRecord(fanout, { type: FanoutType.Update, channel: channelId('metrics'), levelMask: 7, flags: 0, key: 'ppo_metrics:a', stamp: 1, body })).toBe(true);
    expect(writeFanoutRecord(fanout, { type: FanoutType.Update, channel: channelId('metrics'), levelMask: 7, flags: 0, key: 'x', stamp: 1, body: new TextEncoder().encode('{nope') })).toBe(true);
    for (let i = 0; i < 50 && (await stats()).messages.malformed === 0; i++) await sleep(20);
    expect((await stats()).messages).toEqual({ kept: 1, malformed: 1, types: ['ppo_metrics'] });
  }, 30_000);

  it('no saved scene (or no scene service) → the built-in showcase', async () => {
    const { supervisor, frames } = await start({ provide: false });
    await latestFrame(frames);
    const scene = (await supervisor.call('compositor', 'getScene')) as Scene;
    expect(scene.layers.map((l) => l.id)).toEqual(expect.arrayContaining(['board', 'metrics', 'video', 'title']));
    expect(scene.width).toBe(W);
  }, 30_000);

  it('compositor → queue-mode frame ring → encoder → mp4 with the scene pixels', async () => {
    const file = join(tmp, 'composed.mp4');
    const { supervisor, stats } = await start({ encoder: { outputs: [file] } });
    // Until the encoder has probed and started ffmpeg the 4-slot queue fills and the compositor
    // drops (counted); in steady state nothing is dropped.
    const encoderStats = async () => (await supervisor.call('encoder', 'stats')) as EncoderStats;
    await sleep(1_000);
    const settled = await stats();
    const encSettled = await encoderStats();
    const windowStart = performance.now();
    await sleep(1_500);
    const steady = await stats();
    const encSteady = await encoderStats();
    const windowMs = performance.now() - windowStart;
    // The compositor keeps rendering at its frame clock. How many frames a loaded 2-core CI box
    // lets it render in the window is the box's speed, so the bound is 60 % of the clock's
    // frames over the measured window; what is asserted as behaviour is below: nothing queued
    // up, and drops (counted) stay a small share of what was rendered.
    expect(steady.frames - settled.frames).toBeGreaterThan(Math.floor((windowMs / 1000) * FPS * 0.6));
    expect(steady.dropped - settled.dropped).toBeLessThanOrEqual(Math.ceil((steady.frames - settled.frames) * 0.05));
    // The encoder in the same steady window: x264 starting up on a busy box may drop a few
    // frames (counted, never queued); once it runs, it keeps up.
    const steadyWritten = encSteady.written - encSettled.written;
    expect(steadyWritten).toBeGreaterThan(30);
    expect(encSteady.droppedBackpressure - encSettled.droppedBackpressure).toBeLessThanOrEqual(Math.ceil(steadyWritten * 0.05));
    const result = await supervisor.stop(10_000);
    running = undefined;
    const enc = result.finals.encoder as EncoderStats;
    expect(enc.written).toBeGreaterThan(40);
    // Over the whole run, start-up included: bounded.
    expect(enc.droppedBackpressure).toBeLessThanOrEqual(Math.ceil(enc.written * 0.15));
    expect(enc.fresh).toBeGreaterThan(enc.written * 0.8); // nearly every tick had a new frame
    const probe = await ffprobe(file);
    expect(probe.streams[0]).toMatchObject({ codec_name: 'h264', width: W, height: H });
    const [r, g, b] = await pixelAt(file, 1.5, 50, 40);
    expect(r).toBeGreaterThan(200); expect(g).toBeLessThan(40); expect(b).toBeLessThan(40);
    const [r2, g2, b2] = await pixelAt(file, 1.5, 220, 50);
    expect(r2).toBeLessThan(40); expect(g2).toBeLessThan(40); expect(b2).toBeGreaterThan(200);
  }, 30_000);
});
