/**
 * Capture actor: runs the capture engine (scheduler → resolve → keyframe fetch → long-lived
 * decoders → frame slot ring) and the analysis pool (piscina + sharp workers reading frames in
 * place from the same ring), classifies each stream's frames over time, and hands results to
 * the main thread in batches (`capture.results`), which keeps them and relays them to overlays.
 *
 * The stream set and config come from the main thread's registry: pulled once at start
 * (`capture.sync`, so a restarted actor resumes exactly) and pushed on every change through
 * `setStreams` / `configure`.
 *
 * RPC: setStreams(list), configure(cfg), status(), stream(name) (its schedule), thumbnail(name, opts), restart().
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { RedisScript } from '../../services/cluster/run-lease.js';
import { defineActor } from '../../shared/actor.js';
import { resolveFfmpeg, type ResolvedBinary } from '../../shared/ffmpeg.js';
import type { ActorContext, ActorInstance } from '../../shared/actor.js';
import type { SlotRing } from '../../shared/slot-ring.js';
import { CaptureEngine, type CaptureResult } from './engine.js';
import { createAnalysisPool, type AnalysisPool } from './analysis/pool.js';
import { emptyTemplateSet, loadTemplateSet, type TemplateSet } from './analysis/templates.js';
import type { FrameAnalysis } from './analysis/analyze.js';
import { classifyFrame, type VisualState, type ScreenState } from './analysis/classify.js';

/** Claims the stream for about an interval unless another node holds the claim; this node renews its own. */
const CLAIM = new RedisScript(`
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`);

/**
 * Each capture first claims its stream for one interval in Redis: the node that captured it
 * last keeps it, any other node asking within the interval skips. So a stream is captured once
 * per interval even while the nodes' member lists disagree (a node seen gone that is not).
 */
export function captureClaims(o: { redis: string; nodeId: string }, log: Logger): { claim: (stream: string, intervalMs: number) => Promise<boolean>; close(): void } {
  const redis = new Redis(o.redis, { maxRetriesPerRequest: 1, connectionName: `${o.nodeId}:capture-claims`, commandTimeout: 1000, retryStrategy: (n: number) => Math.min(2000, 50 * 2 ** Math.min(n, 6)) });
  let warned = false;
  redis.on('error', (error: Error) => { if (!warned) { warned = true; log.warn({ err: error.message }, 'capture: claims cannot reach Redis; capturing without them until it is back'); } });
  redis.on('ready', () => { warned = false; });
  return {
    // A quarter interval beyond the interval: the holder's next capture (jittered by up to a tenth) still finds its own claim.
    claim: async (stream, intervalMs) => Number(await CLAIM.run(redis, [`ringcast:capture:claim:${stream}`], [o.nodeId, Math.max(1, Math.floor(intervalMs * 1.25))])) === 1,
    close: () => redis.disconnect(),
  };
}

export interface CaptureActorOptions {
  outRing: string;
  width: number;
  height: number;
  decoders: number;
  /** Keyframes between order-checking sentinels (see keyframe-decoder.ts). */
  decoderSyncEvery?: number;
  analysisThreads: number;
  templatesDir?: string;
  gqlUrl?: string;
  usherUrl?: string;
  fetchTimeoutMs?: number;
  offlineRecheckMs?: number;
  /** Initial values; the registry's stored config (capture.sync) overrides them. */
  intervalSec: number;
  maxConcurrent: number;
  quality: string;
  /** The ffmpeg the service resolved (defaults to resolving it in this thread). */
  ffmpeg?: ResolvedBinary;
  /** Set when the service found no usable ffmpeg: the actor keeps the stream list and reports this. */
  unavailable?: string;
  /** Clustered: each capture is claimed in Redis first, so a stream is captured once per interval however the nodes' member lists disagree. */
  cluster?: { redis: string; nodeId: string };
}

export interface CaptureConfigUpdate {
  capture_interval?: number;
  max_concurrent?: number;
  quality?: string;
}

/** What the main thread keeps per capture (structured-cloneable, compact). */
export interface CaptureRecord {
  stream: string;
  status: 'ok' | 'offline' | 'error';
  at: number;
  ms: Record<string, number>;
  error?: string;
  stage?: string;
  code?: string;
  frame?: number;
  slot?: number;
  segment?: { url: string; sequence: number };
  bytesFetched?: number;
  screen?: ScreenState;
  sceneChange?: boolean;
  hashDistance?: number | null;
  phash?: string;
  luma?: FrameAnalysis['luma'];
  matches?: Array<{ region: string; cell: number; template: string | null; score: number }>;
  offlineScore?: number | null;
  analysisGone?: boolean;
}

const BATCH_MS = 200;
const MAX_BATCH = 1000;

/**
 * No usable ffmpeg: nothing can be decoded, but the registry's pushes must still land and
 * every status must say why nothing is captured.
 */
function startUnavailable(ctx: ActorContext<CaptureActorOptions>, reason: string): ActorInstance {
  const message = `unavailable: ${reason}`;
  let streams = 0;
  new Gauge({ name: 'ringcast_capture_available', help: '1 when capture has a usable ffmpeg', registers: [ctx.metrics], collect() { this.set(0); } });
  ctx.log.warn({ reason }, 'capture unavailable');
  ctx.callMain<{ streams: unknown[] }>('capture.sync').then((init) => { streams = init.streams.length; }, () => undefined);
  const status = () => ({ unavailable: message, streams });
  return {
    api: {
      setStreams: (list: Array<{ name: string; priority: number }>) => { streams = list.length; return streams; },
      configure: () => true,
      status,
      restart: () => true,
      stream: () => ({ schedule: null }),
      thumbnail: () => { throw new Error(`capture ${message}`); },
    },
    stop: () => status(),
  };
}

export default defineActor<CaptureActorOptions>({
  async start(ctx) {
    const o = ctx.options;
    const ring = ctx.out[o.outRing] as SlotRing;
    if (!ring) throw new Error(`capture: output ring "${o.outRing}" is missing`);
    if (o.unavailable !== undefined) return startUnavailable(ctx, o.unavailable);
    const ffmpeg = o.ffmpeg ?? resolveFfmpeg();

    let templates: TemplateSet | null = null;
    let templatesError: string | null = null;
    if (o.templatesDir) {
      try {
        templates = await loadTemplateSet(o.templatesDir);
      } catch (err) {
        // A broken templates folder disables matching, not capture; it is reported in status.
        templatesError = (err as Error).message;
        ctx.log.error({ err }, 'capture: templates not loaded');
      }
    }
    // Created on the first frame: a service with no streams never pays for the worker threads.
    let poolInstance: AnalysisPool | null = null;
    const emptyTemplates = templates ?? emptyTemplateSet();
    const analysisPool = (): AnalysisPool | null => {
      if (o.analysisThreads <= 0) return null;
      poolInstance ??= createAnalysisPool({ ring: ring.sab, templates: emptyTemplates, threads: o.analysisThreads, maxQueue: 256 });
      return poolInstance;
    };

    const visual = new Map<string, VisualState>();
    const latest = new Map<string, CaptureRecord>();
    let batch: CaptureRecord[] = [];
    let droppedResults = 0;
    const totals = { ok: 0, offline: 0, error: 0, gone: 0 };

    const registers = [ctx.metrics];
    const latency = new Histogram({ name: 'ringcast_capture_latency_seconds', help: 'Capture latency from start to analysed frame', buckets: [0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2], registers });

    const toRecord = (r: CaptureResult): CaptureRecord => {
      if (r.status !== 'ok') {
        const rec: CaptureRecord = { stream: r.stream, status: r.status, at: r.at, ms: r.ms };
        if (r.status === 'error') Object.assign(rec, { error: r.error, stage: r.stage, code: r.code });
        return rec;
      }
      const rec: CaptureRecord = { stream: r.stream, status: 'ok', at: r.at, ms: { ...r.ms }, frame: r.frame, slot: r.slot, segment: r.segment, bytesFetched: r.bytesFetched };
      const a = r.analysis as (FrameAnalysis | { gone: true } | null);
      if (a && 'gone' in a) {
        rec.analysisGone = true;
        totals.gone++;
      } else if (a) {
        const c = classifyFrame(visual.get(r.stream), a, templates ? { offlineThreshold: templates.offlineThreshold } : {});
        visual.set(r.stream, c.next);
        Object.assign(rec, {
          screen: c.state, sceneChange: c.sceneChange, hashDistance: c.hashDistance, phash: a.phash, luma: a.luma,
          matches: a.matches.map((m) => ({ region: m.region, cell: m.cell, template: m.template, score: Math.round(m.score * 1000) / 1000 })),
          offlineScore: a.offlineScore,
        });
      }
      return rec;
    };

    const claims = o.cluster ? captureClaims(o.cluster, ctx.log) : undefined;
    const engine = new CaptureEngine({
      ffmpegPath: ffmpeg.path,
      ring,
      width: o.width,
      height: o.height,
      intervalMs: o.intervalSec * 1000,
      maxConcurrent: o.maxConcurrent,
      quality: o.quality,
      decoders: o.decoders,
      ...(o.decoderSyncEvery ? { decoderSyncEvery: o.decoderSyncEvery } : {}),
      resolve: { ...(o.gqlUrl ? { gqlUrl: o.gqlUrl } : {}), ...(o.usherUrl ? { usherUrl: o.usherUrl } : {}) },
      ...(o.fetchTimeoutMs ? { fetchTimeoutMs: o.fetchTimeoutMs } : {}),
      ...(o.offlineRecheckMs ? { offlineRecheckMs: o.offlineRecheckMs } : {}),
      log: ctx.log,
      ...(claims ? { claim: claims.claim } : {}),
      ...(o.analysisThreads > 0 ? { analyze: (slot: number, frame: number) => analysisPool()!.analyze({ slot, frame, width: o.width, height: o.height }) } : {}),
      onResult: (r) => {
        totals[r.status]++;
        if (r.status === 'ok') latency.observe(r.ms.total / 1000);
        const rec = toRecord(r);
        latest.set(r.stream, rec);
        if (batch.length >= MAX_BATCH) {
          droppedResults++; // main thread not keeping up: bounded, counted
          return;
        }
        batch.push(rec);
      },
    });

    new Counter({
      name: 'ringcast_capture_captures_total', help: 'Capture attempts by outcome (ok, offline, error)', labelNames: ['status'], registers,
      collect() { this.reset(); for (const k of ['ok', 'offline', 'error'] as const) this.inc({ status: k }, totals[k]); },
    });
    new Gauge({ name: 'ringcast_capture_available', help: '1 when capture has a usable ffmpeg', registers, collect() { this.set(1); } });
    new Counter({ name: 'ringcast_capture_claimed_elsewhere_total', help: 'Captures skipped because another cluster node had already captured the stream in this interval', registers, collect() { this.reset(); this.inc(engine.claimedElsewhere); } });
    new Counter({ name: 'ringcast_capture_missed_total', help: 'Capture deadlines that passed without an attempt (scheduler over capacity)', registers, collect() { this.reset(); this.inc(engine.stats().missed); } });
    new Gauge({ name: 'ringcast_capture_missed_ratio', help: 'missed / (attempts + missed)', registers, collect() { this.set(engine.stats().missed_pct / 100); } });
    new Gauge({
      name: 'ringcast_capture_streams', help: 'Registered streams by scheduler state', labelNames: ['state'], registers,
      collect() { const s = engine.stats(); this.reset(); for (const k of ['running', 'idle', 'backoff', 'offline'] as const) this.set({ state: k }, s[k]); },
    });
    new Counter({ name: 'ringcast_capture_bytes_fetched_total', help: 'Playlist and segment bytes read', registers, collect() { this.reset(); this.inc(engine.stats().bytesFetched); } });
    new Counter({ name: 'ringcast_capture_decoder_cpu_seconds_total', help: 'CPU used by the long-lived ffmpeg decoder processes', registers, collect() { this.reset(); this.inc(engine.stats().decoderCpuMs / 1000); } });
    new Counter({
      name: 'ringcast_capture_decoder_events_total', help: 'Decoder events: decoded, no_picture, stalls, restarts, sentinels, misaligned', labelNames: ['event'], registers,
      collect() { const d = engine.stats().decoder; this.reset(); for (const [k, v] of Object.entries(d)) this.inc({ event: k }, v); },
    });
    new Gauge({ name: 'ringcast_capture_in_flight', help: 'Captures running now (bounded by max_concurrent)', registers, collect() { this.set(engine.stats().inFlight); } });
    new Gauge({ name: 'ringcast_capture_decoder_outstanding', help: 'Keyframes written to the decoders and not yet answered', registers, collect() { this.set(engine.stats().decoderOutstanding); } });
    new Gauge({ name: 'ringcast_capture_analysis_queue', help: 'Frames waiting for an analysis worker', registers, collect() { this.set(poolInstance?.stats().queued ?? 0); } });
    new Counter({ name: 'ringcast_capture_analysis_gone_total', help: 'Frames overwritten in the ring before analysis read them', registers, collect() { this.reset(); this.inc(totals.gone); } });
    new Counter({ name: 'ringcast_capture_results_dropped_total', help: 'Results dropped because the main thread fell behind', registers, collect() { this.reset(); this.inc(droppedResults); } });

    const applyConfig = (c: CaptureConfigUpdate) => {
      engine.configure({
        ...(c.capture_interval !== undefined ? { intervalMs: c.capture_interval * 1000 } : {}),
        ...(c.max_concurrent !== undefined ? { maxConcurrent: c.max_concurrent } : {}),
        ...(c.quality !== undefined ? { quality: c.quality } : {}),
      });
    };

    await engine.start();
    try {
      const init = await ctx.callMain<{ streams: Array<{ name: string; priority: number }>; config: CaptureConfigUpdate }>('capture.sync');
      applyConfig(init.config);
      engine.setStreams(init.streams);
    } catch (err) {
      ctx.log.warn({ err }, 'capture: no registry from the main thread; starting empty');
    }

    const flush = setInterval(() => {
      if (batch.length === 0) return;
      const out = batch;
      batch = [];
      ctx.callMain('capture.results', out).catch((err: Error) => ctx.log.warn({ err }, 'capture: results not delivered'));
    }, BATCH_MS);

    const status = () => ({
      ...engine.stats(),
      width: o.width,
      height: o.height,
      decoders: o.decoders,
      analysis: o.analysisThreads > 0 ? { threads: o.analysisThreads, ...(poolInstance?.stats() ?? { queued: 0, running: 0, completed: 0, gone: 0, failed: 0, rejected: 0 }) } : null,
      templates: templates ? { regions: templates.regions.map((r) => r.name), error: templatesError } : { regions: [], error: templatesError },
      results: { ...totals, dropped: droppedResults },
    });

    return {
      api: {
        setStreams: (list: Array<{ name: string; priority: number }>) => {
          engine.setStreams(list);
          for (const name of [...latest.keys()]) if (!engine.stream(name)) {
            latest.delete(name);
            visual.delete(name);
          }
          return engine.stats().streams;
        },
        configure: (c: CaptureConfigUpdate) => {
          applyConfig(c);
          return true;
        },
        status,
        /** Operator restart: fresh decoders and resolution, registry and config re-read. */
        restart: async () => {
          await engine.reset();
          visual.clear();
          const init = await ctx.callMain<{ streams: Array<{ name: string; priority: number }>; config: CaptureConfigUpdate }>('capture.sync');
          applyConfig(init.config);
          engine.setStreams(init.streams);
          return true;
        },
        stream: (name: string) => ({ schedule: engine.stream(name) ?? null }),
        /**
         * JPEG of the stream's latest frame. If the ring has moved on since, capture it now and
         * wait for that frame (bounded by `waitMs`).
         */
        thumbnail: async (name: string, opts: { width?: number; quality?: number; waitMs?: number } = {}) => {
          const pool = analysisPool();
          if (!pool) throw new Error('analysis pool disabled (capture.analysisThreads = 0)');
          if (!engine.stream(name)) throw new Error(`stream "${name}" is not registered`);
          const deadline = Date.now() + (opts.waitMs ?? 8000);
          let asked = false;
          while (Date.now() < deadline) {
            const rec = latest.get(name);
            if (rec?.status === 'ok' && rec.slot !== undefined && rec.frame !== undefined && ring.frameInSlot(rec.slot) === rec.frame) {
              const r = await pool.jpeg({ slot: rec.slot, frame: rec.frame, width: o.width, height: o.height, ...(opts.width ? { maxWidth: opts.width } : {}), ...(opts.quality ? { quality: opts.quality } : {}) });
              if ('jpeg' in r) return { jpeg: r.jpeg, at: rec.at, frame: rec.frame };
            }
            if (!asked) asked = engine.captureNow(name);
            await new Promise((r) => setTimeout(r, 50));
          }
          throw new Error(`no frame of "${name}" available within ${opts.waitMs ?? 8000} ms (stream ${engine.stream(name)?.state ?? 'unknown'}: ${engine.stream(name)?.lastError ?? 'no capture yet'})`);
        },
      },
      async stop() {
        clearInterval(flush);
        await engine.stop();
        claims?.close();
        if (batch.length > 0) await ctx.callMain('capture.results', batch).catch(() => undefined);
        await poolInstance?.close();
        return status();
      },
    };
  },
});
