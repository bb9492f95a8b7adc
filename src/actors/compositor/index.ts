/**
 * Compositor actor: renders the live scene at `fps` into a slot ring of RGBA frames.
 *
 * Cadence: a frame clock (frame N at start + N/fps; when more than CATCH_UP_FRAMES + 1
 * periods late it skips ahead and counts the skipped frames, it never drifts; a frame up
 * to that late is still rendered, at once: the encoder's jitter buffer absorbs it). Frame N
 * is rendered at scene time N/fps, so a frame's pixels depend only on (scene, N, live
 * data): reproducible.
 *
 * Per frame: acquire a slot (a full ring under drop-newest refuses: the frame is counted
 * as dropped and not rendered at all) → pick up new video frames → render → copy the
 * canvas pixels into the slot → publish with tag = width, timestamp = wall-clock ms.
 * The copy is the one @napi-rs/canvas forces (it exposes no view of its pixels).
 *
 * Live data: the latest overlay message per type from the fan-out ring (`inRing`) and the
 * main thread's control ring (`controlRing`: prediction games, capture results), the latest
 * frame per video source ring (`videoRings`, see live-inputs.ts), and the newest frame of each
 * captured stream the scene binds, read from the capture ring (`captureRing`, see
 * capture-inputs.ts).
 *
 * Scene: on start it asks the main thread (`scene.get`, the state store's copy) and
 * falls back to the built-in showcase when there is none; `setScene` replaces it.
 *
 * RPC: `setScene(scene)` → `{version}`, `getScene()`, `stats()`, `png()` (the last frame).
 */
import { defineActor } from '../../shared/actor.js';
import { consumeLoop } from '../../shared/consume-loop.js';
import { captureSourceOf, defaultShowcaseScene, parseScene, type Scene } from '../../shared/scene/model.js';
import { MergedReader } from '../../shared/merged-reader.js';
import { CaptureFrames, CaptureStates } from './capture-inputs.js';
import type { SlotRing } from '../../shared/slot-ring.js';
import { DEFAULT_LEVEL, LEVELS, type Level } from '../../shared/telemetry/channels.js';
import { FrameClock, runFrameLoop } from './frame-clock.js';
import { fanoutRing, OverlayMessages, parseVideoRings, VideoSources } from './live-inputs.js';
import { registerCompositorMetrics, type CompositorTotals } from './metrics.js';
import { SceneRenderer, type LiveData, type RendererCounters } from './render/renderer.js';
import { RenderWindow, type Percentiles } from './render-window.js';

export interface CompositorOptions {
  /** Fan-out ring of overlay messages (`fanout.compositor`). */
  inRing: string;
  /** Slot ring the frames go to; slotBytes >= width * height * 4. */
  outRing: string;
  width: number;
  height: number;
  fps: number;
  /** Other slot rings drawn by `video` layers: "ring" or "source:ring" (props.source names the source). */
  videoRings?: string[];
  /** Which explanation level's message variant to draw (default intermediate). */
  level?: Level;
  /** The main thread's control ring (capture results: each stream's state), merged with `inRing`. */
  controlRing?: string;
  /** The capture actor's latest-mode RGB24 slot ring, for video layers with source {capture: name}. */
  captureRing?: string;
  /** Capture frame size (the capture ring's frames). */
  captureWidth?: number;
  captureHeight?: number;
}

export interface CompositorStats {
  width: number;
  height: number;
  fps: number;
  sceneVersion: number;
  frames: number;
  skipped: number;
  dropped: number;
  /** Frames whose render threw (logged, the loop goes on). */
  failed: number;
  /** Frames rendered per second over the last second. */
  measuredFps: number;
  renderMs: Percentiles;
  layerMs: Record<string, Percentiles>;
  messages: { kept: number; malformed: number; types: string[] };
  video: { frames: number; badFrames: number; torn: number; sources: string[] };
  capture: { frames: number; badFrames: number; torn: number; streams: string[]; states: number };
  /** videoDrawn as "layer\u0000source" → frames. */
  renderer: Omit<RendererCounters, 'videoDrawn'> & { videoDrawn: Record<string, number> };
}

const SCENE_GET_TIMEOUT_MS = 3_000;
/**
 * Frames rendered late rather than skipped: the encoder buffers one frame (its jitter buffer),
 * so a frame up to a period behind its schedule still makes its tick; one further behind would
 * not, and rendering it would only delay the next.
 */
const CATCH_UP_FRAMES = 1;

function validate(o: CompositorOptions): void {
  if (o === null || typeof o !== 'object') throw new Error('compositor: options object required');
  for (const key of ['inRing', 'outRing'] as const) {
    if (typeof o[key] !== 'string' || o[key] === '') throw new Error(`compositor: "${key}" must name a ring`);
  }
  for (const [key, max] of [['width', 7680], ['height', 4320], ['fps', 120]] as const) {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) throw new Error(`compositor: "${key}" must be an integer in 1 .. ${max} (got ${String(v)})`);
  }
  if (o.level !== undefined && !LEVELS.includes(o.level)) throw new Error(`compositor: "level" must be one of ${LEVELS.join(', ')}`);
}

export default defineActor<CompositorOptions>({
  async start(ctx) {
    const o = ctx.options;
    validate(o);
    const fanout = fanoutRing(ctx.in, o.inRing);
    const out = ctx.out[o.outRing] as SlotRing | undefined;
    if (!out || typeof (out as { acquire?: unknown }).acquire !== 'function') {
      throw new Error(`compositor: "${o.outRing}" is not a slot ring among this actor's out rings (${Object.keys(ctx.out).join(', ') || 'none'})`);
    }
    const frameBytes = o.width * o.height * 4;
    if (out.slotBytes < frameBytes) throw new Error(`compositor: ring "${o.outRing}" has ${out.slotBytes}-byte slots; ${o.width}x${o.height} RGBA needs ${frameBytes}`);

    const states = new CaptureStates();
    const live: LiveData = { messages: {}, frames: {}, captured: {}, streams: states.states };
    const overlay = new OverlayMessages(o.level ?? DEFAULT_LEVEL, ctx.log, (data) => states.take(data));
    live.messages = overlay.messages;
    const videoSpecs = parseVideoRings(o.videoRings);
    const video = new VideoSources(videoSpecs, ctx.in, live.frames);
    const control = o.controlRing === undefined ? undefined : fanoutRing(ctx.in, o.controlRing);
    let captured: CaptureFrames | undefined;
    if (o.captureRing !== undefined) {
      const ring = ctx.in[o.captureRing] as SlotRing | undefined;
      if (!ring || typeof (ring as { readSlot?: unknown }).readSlot !== 'function') throw new Error(`compositor: capture ring "${o.captureRing}" is not a slot ring among this actor's in rings`);
      if (!Number.isInteger(o.captureWidth) || !Number.isInteger(o.captureHeight)) throw new Error('compositor: captureWidth and captureHeight are required with captureRing');
      captured = new CaptureFrames(ring, o.captureWidth!, o.captureHeight!, live.captured!);
    }
    /** Streams the scene shows: only their frames are taken from the capture ring. */
    const bindCaptures = (s: Scene): void => {
      captured?.want(s.layers.map(captureSourceOf).filter((n): n is string => n !== undefined));
    };

    let scene: Scene;
    try {
      const saved = await Promise.race([
        ctx.callMain<unknown>('scene.get'),
        new Promise<null>((resolve) => setTimeout(() => resolve(null), SCENE_GET_TIMEOUT_MS).unref()),
      ]);
      scene = saved == null ? defaultShowcaseScene(o.width, o.height, o.fps) : parseScene(saved);
      ctx.log.info({ version: scene.version, layers: scene.layers.length, saved: saved != null }, 'compositor scene loaded');
    } catch (error) {
      ctx.log.warn({ err: error }, 'compositor: no usable saved scene; showing the built-in showcase');
      scene = defaultShowcaseScene(o.width, o.height, o.fps);
    }

    bindCaptures(scene);
    const renderer = new SceneRenderer(o.width, o.height);
    const window = new RenderWindow(600);
    const clock = new FrameClock(o.fps, undefined, CATCH_UP_FRAMES);
    let rendered = 0;
    let dropped = 0;
    let failed = 0;
    // Rendered-frame times of the last second for measuredFps (a ring of timestamps).
    const recent = new Float64Array(Math.max(2, o.fps * 2));
    let recentAt = 0;

    const totals = (): CompositorTotals => ({
      rendered, skipped: clock.skipped, dropped, failed,
      messagesKept: overlay.kept, messagesMalformed: overlay.malformed,
      videoFrames: video.newFrames + (captured?.newFrames ?? 0), videoBadFrames: video.badFrames + (captured?.badFrames ?? 0),
      renderer: renderer.counters,
    });
    const histogram = registerCompositorMetrics(ctx.metrics, totals, window);

    const tick = (frame: number): void => {
      const slot = out.acquire();
      if (slot < 0) {
        dropped++; // the ring counted it too (drop-newest / block-timeout)
        return;
      }
      const t0 = performance.now();
      video.poll();
      captured?.poll();
      live.now = Date.now();
      // The scene may run at another fps than the clock: render its time, not our index.
      const sceneFrame = scene.fps === o.fps ? frame : Math.round((frame * scene.fps) / o.fps);
      const st = renderer.render(scene, sceneFrame, live);
      out.slotView(slot).set(renderer.rgba());
      out.publish(slot, frameBytes, o.width, Date.now());
      const ms = performance.now() - t0;
      rendered++;
      histogram.observe(ms / 1000);
      window.record(st.totalMs, st.layers);
      recent[recentAt] = t0;
      recentAt = recentAt + 1 === recent.length ? 0 : recentAt + 1;
    };

    const messages = consumeLoop(control ? new MergedReader([fanout, control]) : fanout, overlay.onRecord, ctx.signal).catch((error: unknown) => {
      ctx.log.error({ err: error }, 'compositor: fan-out consumer stopped');
      return 0;
    });
    const loop = runFrameLoop(clock, ctx.signal, tick, (error) => {
      // A scene that fails every frame must not flood the log: the first few, then every 300th.
      if (++failed <= 5 || failed % 300 === 0) ctx.log.error({ err: error, failed }, 'compositor: frame failed');
    });
    ctx.log.info({ size: `${o.width}x${o.height}`, fps: o.fps, video: videoSpecs }, 'compositor started');

    const measuredFps = (): number => {
      const now = performance.now();
      let n = 0;
      for (let i = 0; i < recent.length; i++) if (recent[i] > 0 && now - recent[i] <= 1000) n++;
      return n;
    };

    const stats = (): CompositorStats => ({
      width: o.width, height: o.height, fps: o.fps, sceneVersion: scene.version,
      frames: rendered, skipped: clock.skipped, dropped, failed, measuredFps: measuredFps(),
      renderMs: window.frameMs(), layerMs: window.layerMs(),
      messages: { kept: overlay.kept, malformed: overlay.malformed, types: Object.keys(overlay.messages) },
      video: { frames: video.newFrames, badFrames: video.badFrames, torn: video.torn, sources: videoSpecs.map((s) => s.source) },
      capture: { frames: captured?.newFrames ?? 0, badFrames: captured?.badFrames ?? 0, torn: captured?.torn ?? 0, streams: captured?.streams ?? [], states: states.states.size },
      renderer: { ...renderer.counters, videoDrawn: Object.fromEntries(renderer.counters.videoDrawn) },
    });

    return {
      api: {
        /** Replaces the scene (validated: a bad scene is refused with the field that is wrong). */
        setScene(next: unknown) {
          scene = parseScene(next);
          bindCaptures(scene);
          window.retain(new Set(scene.layers.map((l) => l.id)));
          return { version: scene.version };
        },
        getScene: () => scene,
        stats,
        png: () => renderer.png(),
      },
      async stop() {
        await Promise.all([loop, messages]);
        return stats();
      },
    };
  },
});
