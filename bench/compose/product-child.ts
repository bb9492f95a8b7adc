/**
 * The compose benchmark's product path, in a process of its own: the compositor actor renders
 * a scene preset into the frame slot ring (5 slots, drop-newest, as src/topology.ts sets it
 * up) and the encoder actor feeds ffmpeg with the product's arguments and audio. A feed actor
 * stands in for the aggregator's overlay messages. With `streams`, the capture actor captures
 * those live HLS playlists into its RGB ring (its decoders, its analysis worker, the product's
 * interval) and the compositor draws them from there; capture results reach the compositor
 * through a control ring written by the real ControlRings, as the main thread does.
 *
 *   node dist/bench/compose/product-child.js '{"width":1920,"height":1080,"fps":30,"durationS":10,"output":"/tmp/x.mp4"}'
 *
 * Sends one IPC message, { type: 'result', result: ProductResult }, and exits.
 */
import { rmSync, statSync } from 'node:fs';
import pino from 'pino';
import { Supervisor } from '../../src/supervisor/supervisor.js';
import type { CompositorOptions, CompositorStats } from '../../src/actors/compositor/index.js';
import type { EncoderOptions, EncoderStats } from '../../src/actors/encoder/index.js';
import type { CaptureActorOptions, CaptureRecord } from '../../src/actors/capture/index.js';
import { ControlRings } from '../../src/services/control-rings.js';
import type { RecordRing } from '../../src/shared/record-ring.js';
import { buildPresetScene, type ScenePreset } from '../../src/shared/scene/presets.js';
import { liveProcCpu, procPeakRssBytes } from '../lib/proc.js';

export interface ComposeSpec {
  width: number; height: number; fps: number; durationS: number; output: string;
  /** Scene preset (default training). */
  preset?: ScenePreset;
  /** Live HLS playlists to capture and bind (the preset decides how many it shows). */
  streams?: string[];
}

export interface ProductResult {
  /** Frame-clock ticks of the encoder in the window, and how they went. */
  ticks: number;
  fresh: number;
  duplicated: number;
  encoderDropped: number;
  /** The encoder's non-fresh ticks and lost frames by reason (its frame counters over the window). */
  encoderByReason: { duplicated: number; droppedBackpressure: number; droppedOffline: number; skippedLate: number; superseded: number };
  /** The encoder's phase lock at the end (smoothed lead of frames before their tick, ms; leads used / ignored). */
  encoderPhase: EncoderStats['phase'];
  /** The encoder's jitter buffer at the end (frames passed over since start), null without one. */
  encoderJitter: EncoderStats['jitter'];
  /** Frames whose slot the compositor may have rewritten before ffmpeg had read it, in the window. */
  tornRisk: number;
  /** Render p99 per layer (ms) over the compositor's last 600 frames: what the slow renders spend their time on. */
  layerP99Ms: Record<string, number>;
  /** Compositor frames not rendered in the window: late (skipped), ring full (dropped), failed. */
  compositorSkipped: number;
  compositorDropped: number;
  compositorFailed: number;
  rendered: number;
  renderP50Ms: number;
  renderP99Ms: number;
  cpuOursCores: number;
  cpuFfmpegCores: number;
  rssOursMb: number;
  rssFfmpegMb: number;
  /** CPU of the capture actor's ffmpeg decoders (cores), 0 without streams. */
  cpuDecodersCores: number;
  /** Captures that delivered a frame in the window, and capture frames the compositor took. */
  captures: number;
  captureFrames: number;
  outputBytes: number;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as ComposeSpec;
const FRAMES = 'compose.frames';
const OVERLAYS = 'fanout.compositor';
const CONTROL = 'control.compositor';
const CAPTURE = 'frames.capture';
const CW = 640, CH = 360;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<ProductResult> {
  const { width, height, fps } = spec;
  const streams = spec.streams ?? [];
  const capturing = streams.length > 0;
  const compositor: CompositorOptions = {
    inRing: OVERLAYS, outRing: FRAMES, width, height, fps, controlRing: CONTROL,
    ...(capturing ? { captureRing: CAPTURE, captureWidth: CW, captureHeight: CH } : {}),
  };
  const encoder: EncoderOptions = { inRing: FRAMES, width, height, fps, outputs: [spec.output], bitrateKbps: 4500, preset: 'veryfast', keyframeSeconds: 2, encoder: 'libx264', audio: 'silence' };
  // The product's capture settings (config defaults): 1 decoder per core is the service's
  // default; here 1, the machine being shared; one analysis worker; a capture every 3 s.
  const capture: CaptureActorOptions = { outRing: CAPTURE, width: CW, height: CH, decoders: 1, analysisThreads: 1, intervalSec: 3, maxConcurrent: 32, quality: '480p' };
  const supervisor = new Supervisor({
    logLevel: 'warn',
    rings: {
      [OVERLAYS]: { kind: 'record', capacityBytes: 4 << 20, policy: 'drop-newest' },
      [CONTROL]: { kind: 'record', capacityBytes: 1 << 20, policy: 'drop-newest' },
      [FRAMES]: { kind: 'slot', slots: 5, slotBytes: width * height * 4, mode: 'queue', policy: 'drop-newest' },
      ...(capturing ? { [CAPTURE]: { kind: 'slot' as const, slots: 48, slotBytes: CW * CH * 3, mode: 'latest' as const } } : {}),
    },
    actors: [
      { name: 'feed', module: new URL('./feed-actor.js', import.meta.url), out: [OVERLAYS], options: { ring: OVERLAYS } },
      ...(capturing ? [{ name: 'capture', module: new URL('../../src/actors/capture/index.js', import.meta.url), out: [CAPTURE], options: capture }] : []),
      { name: 'compositor', module: new URL('../../src/actors/compositor/index.js', import.meta.url), in: [OVERLAYS, CONTROL, ...(capturing ? [CAPTURE] : [])], out: [FRAMES], options: compositor },
      { name: 'encoder', module: new URL('../../src/actors/encoder/index.js', import.meta.url), in: [FRAMES], options: encoder },
    ],
  }, pino({ level: 'warn' }));
  const scene = buildPresetScene(spec.preset ?? 'training', { width, height, fps, streams });
  supervisor.provide('scene.get', () => scene);
  const controls = new ControlRings({ [CONTROL]: supervisor.ring<RecordRing>(CONTROL) });
  let captures = 0;
  supervisor.provide('capture.sync', () => ({ streams: streams.map((name) => ({ name, priority: 50 })), config: {} }));
  supervisor.provide('capture.results', (batch: CaptureRecord[]) => {
    for (const rec of batch) {
      if (rec.status === 'ok') captures++;
      controls.publish({ type: 'capture_result', channel: 'capture', key: rec.stream, retain: true, data: rec });
    }
    return batch.length;
  });
  await supervisor.start();
  try {
    const enc = () => supervisor.call('encoder', 'stats') as Promise<EncoderStats>;
    const comp = () => supervisor.call('compositor', 'stats') as Promise<CompositorStats>;
    const decoderCpu = async () => (capturing ? ((await supervisor.call('capture', 'status')) as { decoderCpuMs: number }).decoderCpuMs / 1000 : 0);
    // Warm-up: ffmpeg started, the scene's caches filled, and (with streams) every stream captured once.
    for (let i = 0; i < 100 && !(await enc()).running; i++) await sleep(100);
    await sleep(2000);
    for (let i = 0; i < 300 && capturing && (await comp()).capture.frames < Math.min(streams.length, 9); i++) await sleep(100);
    const e0 = await enc();
    const c0 = await comp();
    const dec0 = await decoderCpu();
    const captures0 = captures;
    const ffPid = e0.pid;
    if (ffPid === undefined) throw new Error('encoder has no ffmpeg running after warm-up');
    const cpu0 = process.cpuUsage();
    const ff0 = liveProcCpu(ffPid).cpuMs / 1000;
    const t0 = performance.now();
    let rss = process.memoryUsage().rss;
    while (performance.now() - t0 < spec.durationS * 1000) {
      await sleep(250);
      rss = Math.max(rss, process.memoryUsage().rss);
    }
    const e1 = await enc();
    const c1 = await comp();
    const dec1 = await decoderCpu();
    const wall = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const ffCpu = liveProcCpu(ffPid).cpuMs / 1000 - ff0;
    const ffRss = (procPeakRssBytes(ffPid) ?? NaN) / 2 ** 20;
    return {
      ticks: e1.ticks - e0.ticks,
      fresh: e1.fresh - e0.fresh,
      duplicated: e1.duplicated - e0.duplicated,
      encoderDropped: (e1.droppedBackpressure - e0.droppedBackpressure) + (e1.droppedOffline - e0.droppedOffline) + (e1.skippedLate - e0.skippedLate) + (e1.superseded - e0.superseded),
      encoderByReason: {
        duplicated: e1.duplicated - e0.duplicated,
        droppedBackpressure: e1.droppedBackpressure - e0.droppedBackpressure,
        droppedOffline: e1.droppedOffline - e0.droppedOffline,
        skippedLate: e1.skippedLate - e0.skippedLate,
        superseded: e1.superseded - e0.superseded,
      },
      encoderPhase: e1.phase,
      encoderJitter: e1.jitter ?? null,
      tornRisk: e1.tornRisk - e0.tornRisk,
      layerP99Ms: Object.fromEntries(Object.entries(c1.layerMs).map(([id, p]) => [id, Number(p.p99.toFixed(2))])),
      compositorSkipped: c1.skipped - c0.skipped,
      compositorDropped: c1.dropped - c0.dropped,
      compositorFailed: c1.failed - c0.failed,
      rendered: c1.frames - c0.frames,
      renderP50Ms: Number(c1.renderMs.p50.toFixed(2)),
      renderP99Ms: Number(c1.renderMs.p99.toFixed(2)),
      cpuOursCores: (cpu.user + cpu.system) / 1e6 / wall,
      cpuFfmpegCores: ffCpu / wall,
      rssOursMb: rss / 2 ** 20,
      rssFfmpegMb: ffRss,
      cpuDecodersCores: (dec1 - dec0) / wall,
      captures: captures - captures0,
      captureFrames: c1.capture.frames - c0.capture.frames,
      outputBytes: 0,
    };
  } finally {
    await supervisor.stop(10_000);
  }
}

main().then(
  (result) => {
    try { result.outputBytes = statSync(spec.output).size; } catch { /* no file: outputBytes stays 0 */ }
    rmSync(spec.output, { force: true });
    process.send?.({ type: 'result', result }, () => process.exit(0));
  },
  (err: Error) => { process.send?.({ type: 'failed', error: err.stack ?? err.message }, () => process.exit(1)); },
);
