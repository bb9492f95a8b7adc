/**
 * Compositor metrics (`ringcast_compositor_*`). Counters are read from the actor's totals
 * at scrape time; the per-frame path only observes the render-time histogram.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { RendererCounters } from './render/renderer.js';
import type { RenderWindow } from './render-window.js';

export interface CompositorTotals {
  rendered: number;
  skipped: number;
  dropped: number;
  failed: number;
  messagesKept: number;
  messagesMalformed: number;
  videoFrames: number;
  videoBadFrames: number;
  renderer: RendererCounters;
}

export function registerCompositorMetrics(registry: Registry, totals: () => CompositorTotals, window: RenderWindow): Histogram {
  const registers = [registry];
  new Counter({
    name: 'ringcast_compositor_frames_total',
    help: 'Frame-clock frames by outcome: rendered (published to the frame ring), skipped (the clock was late), dropped (frame ring full), failed (render threw)',
    labelNames: ['result'],
    registers,
    collect() {
      const t = totals();
      this.reset();
      this.inc({ result: 'rendered' }, t.rendered);
      this.inc({ result: 'skipped' }, t.skipped);
      this.inc({ result: 'dropped' }, t.dropped);
      this.inc({ result: 'failed' }, t.failed);
    },
  });
  new Counter({
    name: 'ringcast_compositor_layers_total',
    help: 'Layer outcomes summed over frames: culled (invisible/off-canvas), cache_hit / cache_miss (static layer bitmaps)',
    labelNames: ['result'],
    registers,
    collect() {
      const r = totals().renderer;
      this.reset();
      this.inc({ result: 'culled' }, r.culled);
      this.inc({ result: 'cache_hit' }, r.cacheHits);
      this.inc({ result: 'cache_miss' }, r.cacheMisses);
    },
  });
  new Counter({
    name: 'ringcast_compositor_inputs_total',
    help: 'Inputs read: overlay messages kept / malformed, video frames taken / rejected (bad size), video layers without a frame',
    labelNames: ['input'],
    registers,
    collect() {
      const t = totals();
      this.reset();
      this.inc({ input: 'message' }, t.messagesKept);
      this.inc({ input: 'message_malformed' }, t.messagesMalformed);
      this.inc({ input: 'video_frame' }, t.videoFrames);
      this.inc({ input: 'video_bad_frame' }, t.videoBadFrames + t.renderer.videoBadFrames);
      this.inc({ input: 'video_missing' }, t.renderer.videoMissing);
      this.inc({ input: 'image_failure' }, t.renderer.imageFailures);
    },
  });
  new Gauge({
    name: 'ringcast_compositor_layer_render_ms',
    help: 'Median render time per layer over the last frames (ms, rasterisation included)',
    labelNames: ['layer'],
    registers,
    collect() {
      this.reset();
      for (const [id, p] of Object.entries(window.layerMs())) this.set({ layer: id }, p.p50);
    },
  });
  return new Histogram({
    name: 'ringcast_compositor_render_seconds',
    help: 'Time to render one frame (all layers, rasterised) and copy it into the frame ring',
    buckets: [0.002, 0.005, 0.01, 0.016, 0.025, 0.033, 0.05, 0.1, 0.25],
    registers,
  });
}
