/**
 * Compositor metrics (`ringcast_compositor_*`). Counters are read from the actor's totals
 * at scrape time; the per-frame path only observes the render-time histogram.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { registerTotalsCounter } from '../../shared/metrics.js';
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
  registerTotalsCounter(registry, 'ringcast_compositor_frames_total',
    'Frame-clock frames by outcome: rendered (published to the frame ring), skipped (the clock was late), dropped (frame ring full), failed (render threw)',
    'result', () => {
      const t = totals();
      return { rendered: t.rendered, skipped: t.skipped, dropped: t.dropped, failed: t.failed };
    });
  registerTotalsCounter(registry, 'ringcast_compositor_layers_total',
    'Layer outcomes summed over frames: culled (invisible/off-canvas), cache_hit / cache_miss (static layer bitmaps)',
    'result', () => {
      const r = totals().renderer;
      return { culled: r.culled, cache_hit: r.cacheHits, cache_miss: r.cacheMisses };
    });
  registerTotalsCounter(registry, 'ringcast_compositor_inputs_total',
    'Inputs read: overlay messages kept / malformed, video frames taken / rejected (bad size), video layers without a frame',
    'input', () => {
      const t = totals();
      return {
        message: t.messagesKept,
        message_malformed: t.messagesMalformed,
        video_frame: t.videoFrames,
        video_bad_frame: t.videoBadFrames + t.renderer.videoBadFrames,
        video_missing: t.renderer.videoMissing,
        image_failure: t.renderer.imageFailures,
      };
    });
  new Counter({
    name: 'ringcast_compositor_video_frames_total',
    help: 'Output frames in which a video layer drew its source\'s picture, by layer and source (a captured stream\'s name, or a video ring\'s source)',
    labelNames: ['layer', 'source'],
    registers,
    collect() {
      this.reset();
      for (const [key, n] of totals().renderer.videoDrawn) {
        const cut = key.indexOf('\u0000');
        this.inc({ layer: key.slice(0, cut), source: key.slice(cut + 1) }, n);
      }
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
