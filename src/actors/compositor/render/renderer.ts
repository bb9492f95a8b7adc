/**
 * SceneRenderer: draws a Scene at frame N into one reusable @napi-rs/canvas (Skia) surface.
 *
 * - Deterministic: layer state comes from animations evaluated at t = frame / scene.fps; live data comes
 *   only from the LiveData argument. The same (scene, frame, data) gives the same pixels.
 * - Culling: invisible, zero-opacity, zero-scale and off-canvas layers are skipped and counted.
 * - Caching: text/image/placeholder layers, the board and the metrics panel are drawn into per-layer
 *   offscreen canvases and only redrawn when what they show changes (props, size, animated props, the
 *   data message they draw); every frame just blits them with the layer's transform/opacity/blend/mask.
 * - Allocation: the hot path reuses matrices, effective-layer structs, cache canvases and the stats
 *   object; canvases are only (re)allocated when a layer's size changes.
 * - Timing: @napi-rs/canvas records draw calls and rasterises lazily, so a timer around draw calls would
 *   measure only recording. The renderer forces rasterisation (a 1-pixel read) at the end of every frame,
 *   so totalMs is real render time. Forcing it after every layer as well costs ~40 % more per frame
 *   (measured at 1080p), so by default ('sampled') per-layer times are rasterised timings taken every
 *   `sampleEvery` frames and carried between samples; 'raster' measures every frame, 'record' never.
 */
import { createCanvas, ImageData, type Canvas, type SKRSContext2D } from '@napi-rs/canvas';
import type { AnimationEvent } from '../../../shared/animation/timeline.js';
import { animationsOf, LayerEvaluator, newEffectiveLayer, type EffectiveLayer } from '../../../shared/scene/evaluate.js';
import { BLEND_MODES, type Layer, type Mask, type Scene } from '../../../shared/scene/model.js';
import { asBoard, asGrid, asHands, drawBoard } from './draw-board.js';
import { drawStatic, isStaticType } from './draw-static.js';
import { layerMatrix, newBox, newMatrix, offCanvas, transformedBounds } from './geometry.js';
import { ImageCache } from './images.js';
import { drawMetricsPanel, MetricHistory } from './metrics-panel.js';
import { captureSourceOf } from '../../../shared/scene/model.js';
import { streamDisplayName } from '../../../shared/capture-frames.js';
import { positionFromSfen } from '../../../shared/shogi/tsshogi.js';
import {
  drawGamePanel, drawMilestoneBanner, drawPredictionPanel, fillBox, FG_DIM, freshness, milestoneShown, screenLabel, videoLayout,
} from './panels.js';

/** Layer × source series of ringcast_compositor_video_frames_total (the scene has at most 64 layers). */
const MAX_DRAWN_SERIES = 256;

/**
 * Placeholder types (host, assistant, visualFeed) are drawn only with an image bound (`src`), and a
 * video layer only with a source: an unbound layer is never a bare coloured box on air.
 */
function isBound(layer: Layer): boolean {
  if (layer.type === 'host' || layer.type === 'assistant' || layer.type === 'visualFeed') return typeof layer.props.src === 'string';
  if (layer.type === 'video') return layer.props.source !== undefined;
  return true;
}

/** Board, side to move and hands of an SFEN: what makes two positions the same (the move number does not). */
const sfenKey = (sfen: string) => sfen.trim().split(/\s+/).slice(0, 3).join(' ');

/** True when playing `move` (USI) from `before` gives `after` (SFENs). */
function leadsTo(before: string, move: unknown, after: string): boolean {
  if (typeof move !== 'string') return false;
  try {
    const p = positionFromSfen(before);
    const m = p.createMoveByUSI(move);
    return m !== null && p.doMove(m) && sfenKey(p.sfen) === sfenKey(after);
  } catch {
    return false;
  }
}

/**
 * Top moves of a move_prediction message's data: [{move: USI, prob}] best first. Drawn when the
 * prediction was made for the position shown, or for the one before the last move (a trainer
 * reports the move right after predicting it, so that is the usual case: the arrows then show
 * the candidates for the move just played); a prediction for any other position is not drawn.
 */
function topMoves(data: unknown, game: unknown): Array<{ move: string; prob: number }> | null {
  const d = data as { top_moves?: unknown; position?: unknown } | undefined;
  const list = d?.top_moves;
  if (!Array.isArray(list)) return null;
  const g = game as { sfen?: unknown; last_move?: unknown } | undefined;
  const shown = g?.sfen;
  if (typeof d?.position === 'string' && typeof shown === 'string' && sfenKey(d.position) !== sfenKey(shown) && !leadsTo(d.position, g?.last_move, shown)) return null;
  const out: Array<{ move: string; prob: number }> = [];
  for (const m of list) {
    const mv = (m as { move?: unknown; usi?: unknown })?.move ?? (m as { usi?: unknown })?.usi;
    const p = (m as { prob?: unknown })?.prob;
    if (typeof mv === 'string' && typeof p === 'number' && Number.isFinite(p)) out.push({ move: mv, prob: p });
    if (out.length === 3) break;
  }
  return out;
}

export interface OverlayMessage {
  type: string;
  timestamp: number;
  data: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- overlay payloads are checked where drawn
}

export interface VideoFrame {
  width: number;
  height: number;
  rgba: Uint8Array; // width*height*4, straight alpha
}

/** A captured stream's frame: `at` = wall-clock ms it was decoded (for the freshness badge). */
export interface CapturedFrame extends VideoFrame {
  at: number;
}

/** A captured stream's capture state, from its latest capture result. */
export interface StreamState {
  status: 'ok' | 'offline' | 'error';
  screen: string | null;
  at: number;
}

export interface LiveData {
  /** Latest overlay message per type (game_state, board_heatmap, ppo_metrics, …). */
  messages: Record<string, OverlayMessage>;
  /** Latest frame per video source name. Pass a new object per new frame (a reused object is not re-uploaded). */
  frames: Record<string, VideoFrame | undefined>;
  /** Latest frame per captured stream name (video layers with source {capture: name}). */
  captured?: Record<string, CapturedFrame | undefined>;
  /** Capture state per stream name. */
  streams?: ReadonlyMap<string, StreamState>;
  /** Wall-clock ms this frame shows (freshness, countdowns, banners); default Date.now(). */
  now?: number;
}

export interface RenderStats {
  frame: number;
  /** Wall time of the whole frame including rasterisation, ms. */
  totalMs: number;
  /** ms per drawn layer id (culled layers are absent); see RendererOptions.layerTiming for how fresh. */
  layers: Record<string, number>;
  /** Layers skipped this frame: invisible, zero opacity/scale/size, or off-canvas. */
  culled: number;
  /** Static/board/metrics layers served from their offscreen cache this frame. */
  cacheHits: number;
  /** Animation start/loop/end events that fall in this frame, with the layer they belong to. */
  events: { layer: string; event: AnimationEvent }[];
}

export interface RendererOptions {
  /**
   * 'sampled' (default): per-layer times with rasterisation every `sampleEvery` frames, carried in between;
   * 'raster': every frame (slower); 'record': never (per-layer times are draw-call recording only).
   */
  layerTiming?: 'sampled' | 'raster' | 'record';
  /** Frames between rasterised per-layer samples in 'sampled' mode (default 30). */
  sampleEvery?: number;
}

/** Running counters for metrics (the compositor actor exports them as ringcast_compositor_*). */
export interface RendererCounters {
  frames: number;
  culled: number;
  cacheHits: number;
  cacheMisses: number;
  imageFailures: number;
  /** Video layers drawn without a frame ("no signal"). */
  videoMissing: number;
  /** Video frames rejected because width*height*4 did not match the rgba length. */
  videoBadFrames: number;
  /** Frames in which a video layer drew a source's picture, by "layer\u0000source" (bounded by the layers). */
  videoDrawn: Map<string, number>;
}

interface CacheEntry {
  canvas: Canvas;
  ctx: SKRSContext2D;
  pw: number; // pixel size of the cache bitmap
  ph: number;
  k1: unknown; // cache key parts compared by identity/value (no string building per frame)
  k2: unknown;
  k3: unknown;
  k4: unknown;
  k5: unknown;
}

interface VideoSlot {
  canvas: Canvas;
  ctx: SKRSContext2D;
  width: number;
  height: number;
  last: Uint8Array | null;
  lastFrame: VideoFrame | null;
}

export class SceneRenderer {
  readonly width: number;
  readonly height: number;
  private readonly canvas: Canvas;
  private readonly ctx: SKRSContext2D;
  private readonly evaluator = new LayerEvaluator();
  private readonly effective = new Map<string, EffectiveLayer>();
  private readonly caches = new Map<string, CacheEntry>();
  private readonly videos = new Map<string, VideoSlot>();
  private readonly tiles = new Map<string, { canvas: Canvas; ctx: SKRSContext2D; w: number; h: number; key: string; frame: VideoFrame | null; props: unknown }>();
  private readonly histories = new Map<string, MetricHistory>();
  private readonly images = new ImageCache();
  private readonly matrix = newMatrix();
  private readonly box = newBox();
  private readonly eventScratch: AnimationEvent[] = [];
  private readonly layerTiming: 'sampled' | 'raster' | 'record';
  private readonly sampleEvery: number;
  private lastLayers: Layer[] | null = null;
  /** Smallest badge text: 24 px at 1080p, scaled with the output height. */
  private readonly minFont: number;
  private rgbaCache: { frame: number; bytes: Uint8Array } | null = null;
  private renderedFrame = -1;
  readonly counters: RendererCounters = {
    frames: 0, culled: 0, cacheHits: 0, cacheMisses: 0, imageFailures: 0, videoMissing: 0, videoBadFrames: 0, videoDrawn: new Map(),
  };
  private readonly stats: RenderStats = { frame: 0, totalMs: 0, layers: {}, culled: 0, cacheHits: 0, events: [] };

  constructor(width: number, height: number, options: RendererOptions = {}) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > 7680 || height > 4320) {
      throw new RangeError(`renderer size must be integers within 1..7680 × 1..4320, got ${width}×${height}`);
    }
    this.width = width;
    this.height = height;
    this.canvas = createCanvas(width, height);
    this.ctx = this.canvas.getContext('2d');
    this.minFont = Math.round((24 * height) / 1080);
    this.layerTiming = options.layerTiming ?? 'sampled';
    this.sampleEvery = Math.max(1, Math.floor(options.sampleEvery ?? 30));
  }

  /**
   * Renders frame N. Returns the renderer's stats object, overwritten by the next call (copy what you keep).
   * The scene may have a different size than the renderer: it is drawn 1:1 from the top-left.
   */
  render(scene: Scene, frame: number, data: LiveData): RenderStats {
    const start = performance.now();
    const ctx = this.ctx;
    const t = frame / scene.fps;
    const stats = this.stats;
    stats.frame = frame;
    stats.culled = 0;
    stats.cacheHits = 0;
    if (stats.events.length) stats.events = [];
    if (scene.layers !== this.lastLayers) this.onLayersChanged(scene.layers);
    const sampleLayers = this.layerTiming === 'raster' || (this.layerTiming === 'sampled' && this.counters.frames % this.sampleEvery === 0);
    this.feedMetrics(scene, data);

    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.globalAlpha = 1;
    ctx.globalCompositeOperation = 'source-over';
    if (scene.background) {
      ctx.fillStyle = scene.background;
      ctx.fillRect(0, 0, this.width, this.height);
    } else {
      ctx.clearRect(0, 0, this.width, this.height);
    }

    for (const layer of scene.layers) {
      const anims = animationsOf(layer, scene.fps);
      if (anims) {
        this.eventScratch.length = 0;
        anims.eventsAtFrame(frame, this.eventScratch);
        for (const event of this.eventScratch) stats.events.push({ layer: layer.id, event });
      }
      if (!layer.visible || !isBound(layer) || (layer.type === 'milestone' && !milestoneShown(data.messages.milestone, data.now ?? Date.now()))) {
        stats.culled++;
        delete stats.layers[layer.id];
        continue;
      }
      const eff = this.effective.get(layer.id)!;
      this.evaluator.evaluate(layer, scene.fps, t, eff);
      const m = layerMatrix(eff.x, eff.y, eff.scale, eff.rotation, layer.transform.anchor[0], layer.transform.anchor[1], eff.width, eff.height, this.matrix);
      if (eff.opacity <= 0 || eff.scale <= 0 || eff.width <= 0 || eff.height <= 0 ||
          offCanvas(transformedBounds(m, eff.width, eff.height, this.box), this.width, this.height)) {
        stats.culled++;
        delete stats.layers[layer.id];
        continue;
      }
      const t0 = performance.now();
      ctx.save();
      try {
        ctx.setTransform(m.a, m.b, m.c, m.d, m.e, m.f);
        ctx.globalAlpha = eff.opacity;
        ctx.globalCompositeOperation = BLEND_MODES[layer.blend];
        if (layer.mask) this.clipMask(layer.mask);
        this.drawLayer(layer, eff, data);
      } finally {
        ctx.restore(); // a throwing layer must not leave its transform/clip on the next frame
      }
      if (sampleLayers) {
        ctx.getImageData(0, 0, 1, 1);
        stats.layers[layer.id] = performance.now() - t0;
      } else if (this.layerTiming === 'record' || stats.layers[layer.id] === undefined) {
        stats.layers[layer.id] = performance.now() - t0;
      }
    }
    ctx.getImageData(0, 0, 1, 1); // rasterise now (background and all) so totalMs is honest
    this.renderedFrame = frame;
    this.rgbaCache = null;
    this.counters.frames++;
    this.counters.culled += stats.culled;
    this.counters.cacheHits += stats.cacheHits;
    this.counters.imageFailures = this.images.failures;
    stats.totalMs = performance.now() - start;
    return stats;
  }

  /**
   * RGBA bytes of the last frame (width*height*4, premultiplied alpha; identical to straight alpha where
   * the frame is opaque, i.e. whenever the scene has a background). @napi-rs/canvas exposes no view of
   * its pixel memory, so this is a copy, made once per rendered frame (repeat calls return the same bytes).
   */
  rgba(): Uint8Array {
    if (this.rgbaCache && this.rgbaCache.frame === this.renderedFrame) return this.rgbaCache.bytes;
    const bytes = this.canvas.data();
    this.rgbaCache = { frame: this.renderedFrame, bytes };
    return bytes;
  }

  /** PNG of the last frame (test artifacts, snapshots). */
  png(): Buffer {
    return this.canvas.toBuffer('image/png');
  }

  /** Per-layer metric history (tests and the control API can read what the panel shows). */
  metricHistory(layerId: string): MetricHistory | undefined {
    return this.histories.get(layerId);
  }

  private onLayersChanged(layers: Layer[]): void {
    this.lastLayers = layers;
    const ids = new Set(layers.map((l) => l.id));
    for (const l of layers) {
      if (!this.effective.has(l.id)) this.effective.set(l.id, newEffectiveLayer());
      if (l.type === 'metrics') {
        const cap = typeof l.props.history === 'number' ? l.props.history : 120;
        const h = this.histories.get(l.id);
        if (!h || h.capacity !== cap) this.histories.set(l.id, new MetricHistory(cap));
      }
    }
    // Bounded memory across edits: drop everything kept for layers that are gone.
    for (const map of [this.effective, this.caches, this.videos, this.tiles, this.histories] as Map<string, unknown>[]) {
      for (const id of map.keys()) if (!ids.has(id)) map.delete(id);
    }
    for (const id of Object.keys(this.stats.layers)) if (!ids.has(id)) delete this.stats.layers[id];
    this.evaluator.retain(ids);
  }

  /** Metric histories are fed every frame, whether or not the panel is visible, so no step is missed. */
  private feedMetrics(scene: Scene, data: LiveData): void {
    const msg = data.messages.ppo_metrics;
    if (!msg || this.histories.size === 0) return;
    for (const l of scene.layers) if (l.type === 'metrics') this.histories.get(l.id)?.feed(msg.data);
  }

  private clipMask(mask: Mask): void {
    const ctx = this.ctx;
    ctx.beginPath();
    if (mask.shape === 'rect') ctx.rect(mask.x, mask.y, mask.width, mask.height);
    else if (mask.shape === 'roundRect') ctx.roundRect(mask.x, mask.y, mask.width, mask.height, mask.radius);
    else ctx.arc(mask.cx, mask.cy, mask.r, 0, Math.PI * 2);
    ctx.clip();
  }

  private drawLayer(layer: Layer, eff: EffectiveLayer, data: LiveData): void {
    const w = eff.width;
    const h = eff.height;
    if (layer.type === 'video') return this.drawVideo(layer, eff, data);
    // Cache bitmaps follow the on-screen scale when enlarged (so text stays sharp), quantised to 1/4 steps
    // so a scale animation does not redraw on every tiny change.
    const cacheScale = eff.scale > 1 ? Math.min(4, Math.ceil(eff.scale * 4) / 4) : 1;
    let k1: unknown, k2: unknown, k3: unknown, k4: unknown, k5: unknown;
    if (layer.type === 'board') {
      k1 = data.messages.game_state;
      k2 = data.messages.board_heatmap;
      k3 = eff.props;
      k5 = data.messages.move_prediction;
    } else if (layer.type === 'metrics') {
      k1 = this.histories.get(layer.id)?.version;
      k2 = data.messages.ppo_metrics;
      k3 = eff.props;
    } else if (layer.type === 'game') {
      k1 = data.messages.game_state;
      k3 = eff.props;
    } else if (layer.type === 'prediction') {
      k1 = data.messages.prediction_game;
      k2 = Math.floor((data.now ?? Date.now()) / 1000); // the countdown moves once a second
      k3 = eff.props;
    } else if (layer.type === 'milestone') {
      k1 = data.messages.milestone;
      k3 = eff.props;
    } else if (isStaticType(layer.type)) {
      k1 = eff.propsAnimated ? JSON.stringify(eff.props) : eff.props;
    }
    k4 = cacheScale;
    const pw = Math.max(1, Math.ceil(w * cacheScale));
    const ph = Math.max(1, Math.ceil(h * cacheScale));
    let entry = this.caches.get(layer.id);
    if (entry && entry.pw === pw && entry.ph === ph && entry.k1 === k1 && entry.k2 === k2 && entry.k3 === k3 && entry.k4 === k4 && entry.k5 === k5) {
      this.stats.cacheHits++;
      this.ctx.drawImage(entry.canvas, 0, 0, pw, ph, 0, 0, w, h);
      return;
    }
    this.counters.cacheMisses++;
    if (!entry || entry.pw !== pw || entry.ph !== ph) {
      const canvas = createCanvas(pw, ph);
      entry = { canvas, ctx: canvas.getContext('2d'), pw, ph, k1, k2, k3, k4, k5 };
      this.caches.set(layer.id, entry);
    } else {
      entry.ctx.setTransform(1, 0, 0, 1, 0, 0);
      entry.ctx.clearRect(0, 0, pw, ph);
      entry.k1 = k1; entry.k2 = k2; entry.k3 = k3; entry.k4 = k4; entry.k5 = k5;
    }
    const c = entry.ctx;
    c.save();
    c.scale(pw / w, ph / h);
    if (layer.type === 'board') {
      const game = data.messages.game_state?.data as { board?: unknown; hands?: unknown } | undefined;
      const grid = asGrid((data.messages.board_heatmap?.data as { grid?: unknown } | undefined)?.grid);
      const arrows = eff.props.arrows === false ? null : topMoves(data.messages.move_prediction?.data, game);
      drawBoard(c, w, h, asBoard(game?.board), grid, eff.props, eff.props.hands === false ? null : asHands(game?.hands), arrows);
    } else if (layer.type === 'metrics') {
      drawMetricsPanel(c, w, h, this.histories.get(layer.id)!, eff.props, data.messages.ppo_metrics?.data);
    } else if (layer.type === 'game') {
      drawGamePanel(c, w, h, data.messages.game_state?.data);
    } else if (layer.type === 'prediction') {
      drawPredictionPanel(c, w, h, data.messages.prediction_game?.data, data.now ?? Date.now());
    } else if (layer.type === 'milestone') {
      drawMilestoneBanner(c, w, h, data.messages.milestone?.data);
    } else {
      drawStatic(c, layer.type, w, h, eff.props, this.images);
    }
    c.restore();
    this.ctx.drawImage(entry.canvas, 0, 0, pw, ph, 0, 0, w, h);
  }

  private countDrawn(layer: string, source: string): void {
    const key = `${layer}\u0000${source}`;
    const m = this.counters.videoDrawn;
    const n = m.get(key);
    if (n !== undefined) m.set(key, n + 1);
    else if (m.size < MAX_DRAWN_SERIES) m.set(key, 1);
  }

  private drawVideo(layer: Layer, eff: EffectiveLayer, data: LiveData): void {
    const capture = captureSourceOf(layer);
    if (capture !== undefined) return this.drawCaptured(layer, eff, data, capture);
    const ctx = this.ctx;
    const w = eff.width;
    const h = eff.height;
    const source = String(eff.props.source);
    const frame = data.frames[source];
    if (!frame || frame.rgba.length !== frame.width * frame.height * 4 || frame.width < 1 || frame.height < 1) {
      if (frame) this.counters.videoBadFrames++;
      else this.counters.videoMissing++;
      ctx.fillStyle = '#000000';
      ctx.fillRect(0, 0, w, h);
      ctx.fillStyle = '#8a8a8a';
      ctx.font = `${Math.max(10, Math.round(h * 0.08))}px "DejaVu Sans"`;
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText(frame ? 'bad frame' : 'no signal', w / 2, h / 2);
      return;
    }
    this.drawFrame(layer, eff, frame);
    this.countDrawn(layer.id, source);
  }

  /**
   * A captured stream: its newest frame with a badge (name, analysis label, age); the last frame
   * dimmed with "offline" once the stream stops (offline result, or no frame for offlineAfterSec);
   * a dark tile naming the stream until its first frame arrives. Never a black "no signal" box.
   */
  private drawCaptured(layer: Layer, eff: EffectiveLayer, data: LiveData, stream: string): void {
    const ctx = this.ctx;
    const w = eff.width;
    const h = eff.height;
    const now = data.now ?? Date.now();
    const frame = data.captured?.[stream];
    const state = data.streams?.get(stream);
    const offlineAfterMs = (typeof eff.props.offlineAfterSec === 'number' ? eff.props.offlineAfterSec : 20) * 1000;
    const stale = frame !== undefined && now - frame.at > offlineAfterMs;
    // A result newer than the frame says the stream is offline now; an older one is history.
    const offline = stale || (state?.status === 'offline' && (!frame || state.at >= frame.at));
    const usable = frame !== undefined && frame.rgba.length === frame.width * frame.height * 4;
    if (usable) this.countDrawn(layer.id, stream);
    else if (!frame) this.counters.videoMissing++;
    const name = typeof eff.props.label === 'string' && eff.props.label ? eff.props.label : streamDisplayName(stream);
    const label = offline ? 'offline' : !frame && !state ? 'no frame yet' : screenLabel(state?.status, state?.screen);
    const text = `${label}${frame ? ` · ${freshness(now - frame.at)}` : ''}`;
    // A tile changes when its stream delivers a frame (every few seconds) or its badge text
    // does (once a second): composed into its own bitmap then, and only blitted 1:1 in between
    // (scaling the frame and drawing text every output frame is what a tile would cost otherwise).
    const mode = offline ? 2 : frame ? 1 : 0;
    let tile = this.tiles.get(layer.id);
    const pw = Math.max(1, Math.ceil(w)), ph = Math.max(1, Math.ceil(h));
    if (!tile || tile.w !== pw || tile.h !== ph) {
      const canvas = createCanvas(pw, ph);
      tile = { canvas, ctx: canvas.getContext('2d'), w: pw, h: ph, key: '', frame: null, props: null };
      this.tiles.set(layer.id, tile);
    }
    const key = `${mode}\u0000${name}\u0000${text}`;
    const shown = usable ? frame : null;
    if (tile.key !== key || tile.frame !== shown || tile.props !== eff.props) {
      tile.key = key;
      tile.frame = shown;
      tile.props = eff.props;
      const c = tile.ctx;
      c.setTransform(1, 0, 0, 1, 0, 0);
      c.clearRect(0, 0, pw, ph);
      if (shown) this.drawFrame(layer, eff, shown, c);
      else {
        c.fillStyle = '#141c26';
        c.fillRect(0, 0, w, h);
      }
      const l = videoLayout(w, h, this.minFont);
      if (mode !== 1) {
        if (frame) {
          c.fillStyle = 'rgba(8,10,14,0.62)';
          c.fillRect(0, 0, w, h);
        }
        fillBox(c, l.offline, offline ? 'offline' : 'connecting…', { bold: true, color: offline ? '#ff8a80' : FG_DIM, align: 'center' });
      }
      c.fillStyle = 'rgba(8,12,18,0.78)';
      c.fillRect(l.badge.x, l.badge.y, l.badge.w, l.badge.h);
      fillBox(c, l.name, name, { bold: true });
      fillBox(c, l.state, text, { color: offline ? '#ff8a80' : label === 'live' ? '#7ee2a8' : '#ffd166', align: 'right' });
    }
    ctx.drawImage(tile.canvas, 0, 0, pw, ph, 0, 0, pw, ph);
  }

  private drawFrame(layer: Layer, eff: EffectiveLayer, frame: VideoFrame, ctx: SKRSContext2D = this.ctx): void {
    const w = eff.width;
    const h = eff.height;
    let slot = this.videos.get(layer.id);
    if (!slot || slot.width !== frame.width || slot.height !== frame.height) {
      const canvas = createCanvas(frame.width, frame.height);
      slot = { canvas, ctx: canvas.getContext('2d'), width: frame.width, height: frame.height, last: null, lastFrame: null };
      this.videos.set(layer.id, slot);
    }
    if (slot.last !== frame.rgba || slot.lastFrame !== frame) {
      // Upload only when the source produced a new frame; ImageData wraps the caller's bytes (no copy in JS).
      const view = new Uint8ClampedArray(frame.rgba.buffer, frame.rgba.byteOffset, frame.rgba.byteLength);
      slot.ctx.putImageData(new ImageData(view, frame.width, frame.height), 0, 0);
      slot.last = frame.rgba;
      slot.lastFrame = frame;
    }
    const fit = eff.props.fit === 'fill' || eff.props.fit === 'cover' ? eff.props.fit : 'contain';
    if (fit === 'fill') {
      ctx.drawImage(slot.canvas, 0, 0, w, h);
      return;
    }
    const s = fit === 'contain' ? Math.min(w / frame.width, h / frame.height) : Math.max(w / frame.width, h / frame.height);
    const dw = frame.width * s;
    const dh = frame.height * s;
    if (fit === 'contain' && (dw < w || dh < h)) {
      ctx.fillStyle = '#000000'; // letterbox bars
      ctx.fillRect(0, 0, w, h);
    }
    ctx.save();
    ctx.beginPath();
    ctx.rect(0, 0, w, h); // cover overflows the box: keep it inside the layer
    ctx.clip();
    ctx.drawImage(slot.canvas, (w - dw) / 2, (h - dh) / 2, dw, dh);
    ctx.restore();
  }
}
