/**
 * The capture loop: scheduler → source resolution (cached) → media playlist → newest segment's
 * first keyframe (streamed, stopped early) → long-lived decoder → RGB24 frame committed into a
 * SlotRing ('latest' mode) → optional analysis → result callback.
 *
 * Everything is bounded: at most `maxConcurrent` captures (so sockets and in-flight keyframes)
 * at once, a fixed decoder count, a fixed number of frame slots. A stream that fails backs off
 * (capped); an offline one is re-checked on its own cadence; one bad stream never affects the
 * others. Runs in the capture actor's thread; the engine itself knows nothing of actors.
 */
import { setMaxListeners } from 'node:events';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { SlotRing } from '../../shared/slot-ring.js';
import { captureStreamTag } from '../../shared/capture-frames.js';
import { CaptureScheduler, type CaptureOutcome, type SchedulerStats, type StreamStats } from './scheduler.js';
import { parseMediaPlaylist, newestSegment, PlaylistError, type Segment } from './hls-playlist.js';
import { resolveSource, parseSource, ResolveError, type ResolveOptions } from './twitch-resolver.js';
import { fetchInitSection, fetchKeyframe } from './keyframe-fetch.js';
import type { Fmp4Init } from './fmp4-keyframe.js';
import { httpGet, type HttpGetError } from './http-get.js';
import { SegmentFetchError } from './segment-fetch.js';
import { DecoderPool, DecoderError, makeSentinel } from './keyframe-decoder.js';

type DecoderStats = ReturnType<DecoderPool['stats']>;

/** Twitch playback tokens last ~20 min; re-resolve well before. */
const RESOLVE_MAX_AGE_MS = 10 * 60_000;
/** fMP4 init sections kept (one per stream and variant; each a few KB once parsed). */
const MAX_INIT_SECTIONS = 2048;
const initKey = (map: NonNullable<Segment['map']>): string => (map.byteRange ? `${map.url}#${map.byteRange.length}@${map.byteRange.offset}` : map.url);

export interface CaptureEngineOptions {
  ffmpegPath: string;
  ring: SlotRing;
  width: number;
  height: number;
  intervalMs: number;
  maxConcurrent: number;
  quality: string;
  decoders: number;
  decoderSyncEvery?: number;
  resolve?: Pick<ResolveOptions, 'gqlUrl' | 'usherUrl' | 'clientId' | 'timeoutMs'>;
  fetchTimeoutMs?: number;
  maxKeyframeBytes?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  offlineRecheckMs?: number;
  maxStreams?: number;
  /** Analyse the committed frame (e.g. in a worker pool); null = the frame was overwritten first. */
  analyze?: (slot: number, frame: number) => Promise<unknown | null>;
  onResult: (r: CaptureResult) => void;
  log?: Logger;
  /**
   * Several nodes capture from one registry: true when this node may capture the stream in this
   * interval, false when another node holds it (the capture is skipped, not a result). A
   * claim that fails (Redis away) counts as granted: capturing twice beats not capturing.
   */
  claim?: (stream: string, intervalMs: number) => Promise<boolean>;
}

export interface CaptureTimings {
  total: number;
  resolve: number;
  playlist: number;
  keyframe: number;
  decode: number;
  analyze: number;
}

export type CaptureResult =
  | {
      stream: string;
      status: 'ok';
      at: number;
      slot: number;
      frame: number;
      segment: { url: string; sequence: number };
      bytesFetched: number;
      ms: CaptureTimings;
      analysis: unknown | null;
    }
  | { stream: string; status: 'offline'; at: number; ms: { total: number } }
  | { stream: string; status: 'error'; at: number; stage: CaptureStage; code: string; error: string; ms: { total: number } };

export type CaptureStage = 'resolve' | 'playlist' | 'segment' | 'decode' | 'analyze';

class StageError extends Error {
  constructor(readonly stage: CaptureStage, readonly code: string, message: string) {
    super(message);
  }
}

interface Resolved {
  mediaUrl: string;
  at: number;
  variant: string;
}

export interface EngineStats extends SchedulerStats {
  decoder: DecoderStats;
  decoderCpuMs: number;
  bytesFetched: number;
  inFlight: number;
  decoderOutstanding: number;
}

export class CaptureEngine {
  readonly scheduler: CaptureScheduler;
  private pool: DecoderPool | null = null;
  private sentinel: Promise<Uint8Array> | null = null;
  /** Pools replaced by reset() whose captures are still finishing. */
  private readonly retiring = new Set<DecoderPool>();
  private readonly retired: { stats: DecoderStats; cpuMs: number } = {
    stats: { decoded: 0, noPicture: 0, stalls: 0, restarts: 0, sentinels: 0, misaligned: 0 },
    cpuMs: 0,
  };
  private resolved = new Map<string, Resolved>();
  /** Parsed fMP4 init sections by EXT-X-MAP URL (+ byte range); shared by concurrent captures. */
  private inits = new Map<string, { init: Promise<Fmp4Init>; at: number }>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private inFlight = new Set<Promise<void>>();
  private bytesFetched = 0;
  /** Captures skipped because another node had claimed the stream for the interval. */
  claimedElsewhere = 0;
  private quality: string;
  private readonly o: CaptureEngineOptions;
  private readonly aborter = new AbortController();

  constructor(opts: CaptureEngineOptions) {
    this.o = opts;
    // Every capture in flight listens for stop on this one signal (up to maxConcurrent × 2).
    setMaxListeners(0, this.aborter.signal);
    this.quality = opts.quality;
    if (opts.ring.slotBytes < opts.width * opts.height * 3) {
      throw new RangeError(`frame ring slots hold ${opts.ring.slotBytes} bytes; ${opts.width}x${opts.height} RGB needs ${opts.width * opts.height * 3}`);
    }
    this.scheduler = new CaptureScheduler({
      intervalMs: opts.intervalMs,
      maxConcurrent: opts.maxConcurrent,
      ...(opts.backoffInitialMs ? { backoffInitialMs: opts.backoffInitialMs } : {}),
      ...(opts.backoffMaxMs ? { backoffMaxMs: opts.backoffMaxMs } : {}),
      ...(opts.offlineRecheckMs ? { offlineRecheckMs: opts.offlineRecheckMs } : {}),
      ...(opts.maxStreams ? { maxStreams: opts.maxStreams } : {}),
    });
  }

  async start(): Promise<void> {
    this.tick();
  }

  /**
   * The decoder pool, made on the first keyframe: a service with no streams never runs
   * ffmpeg. The sentinel picture is encoded once per engine (it never changes), so a reset
   * does not pay for it again; a failed encode is retried on the next keyframe.
   */
  private async decoders(): Promise<DecoderPool> {
    if (this.pool) return this.pool;
    this.sentinel ??= makeSentinel(this.o.ffmpegPath).catch((err: Error) => {
      this.sentinel = null;
      throw err instanceof DecoderError ? err : new DecoderError('spawn', `cannot run ffmpeg (${this.o.ffmpegPath}): ${err.message}`);
    });
    const sentinel = await this.sentinel;
    this.pool ??= new DecoderPool(this.o.decoders, {
      ffmpegPath: this.o.ffmpegPath, width: this.o.width, height: this.o.height, sentinel,
      ...(this.o.decoderSyncEvery ? { syncEvery: this.o.decoderSyncEvery } : {}),
    });
    return this.pool;
  }

  /** Replace the stream set (names → priority), keeping the schedule of streams that stay. */
  setStreams(streams: ReadonlyArray<{ name: string; priority: number }>): void {
    const want = new Map(streams.map((s) => [s.name, s.priority]));
    for (const s of this.scheduler.streams()) {
      if (!want.has(s.name)) {
        this.scheduler.remove(s.name);
        this.resolved.delete(s.name);
      }
    }
    for (const [name, priority] of want) {
      if (this.scheduler.has(name)) this.scheduler.setPriority(name, priority);
      else this.scheduler.add(name, { priority });
    }
  }

  configure(c: { intervalMs?: number; maxConcurrent?: number; quality?: string }): void {
    const partial: { intervalMs?: number; maxConcurrent?: number } = {};
    if (c.intervalMs !== undefined) partial.intervalMs = c.intervalMs;
    if (c.maxConcurrent !== undefined) partial.maxConcurrent = c.maxConcurrent;
    this.scheduler.configure(partial);
    if (c.quality !== undefined && c.quality !== this.quality) {
      this.quality = c.quality;
      this.resolved.clear(); // the variant choice changed
    }
  }

  stream(name: string): StreamStats | undefined {
    return this.scheduler.stream(name);
  }

  stats(): EngineStats {
    // Decoder figures are totals over every pool this engine had (the current one, those a
    // reset is retiring, and the closed ones), so the counters exported from them never
    // go backwards after an operator's restart.
    const decoder = { ...this.retired.stats };
    let decoderCpuMs = this.retired.cpuMs;
    let decoderOutstanding = 0;
    for (const pool of [this.pool, ...this.retiring]) {
      if (!pool) continue;
      const st = pool.stats();
      for (const k of Object.keys(decoder) as Array<keyof DecoderStats>) decoder[k] += st[k];
      decoderCpuMs += pool.cpuMs();
      decoderOutstanding += pool.decoders.reduce((n, d) => n + d.outstanding, 0);
    }
    return {
      ...this.scheduler.stats(),
      decoder,
      decoderCpuMs,
      bytesFetched: this.bytesFetched,
      inFlight: this.inFlight.size,
      decoderOutstanding,
    };
  }

  /**
   * Fresh decoders and fresh source resolution (e.g. after an operator's restart request),
   * keeping the registered streams and their schedule. Captures in flight finish on the old
   * decoders, which close once they are done.
   */
  async reset(): Promise<void> {
    this.resolved.clear();
    this.inits.clear();
    const old = this.pool;
    this.pool = null; // the next keyframe starts a fresh pool
    if (!old) return;
    this.retiring.add(old);
    // Closing the old pool under captures still decoding on it would turn an operator's
    // restart into a burst of 'decoder closed' errors (and backoffs) for healthy streams.
    void Promise.allSettled([...this.inFlight]).then(() => {
      old.close();
      const st = old.stats();
      for (const k of Object.keys(st) as Array<keyof DecoderStats>) this.retired.stats[k] += st[k];
      this.retired.cpuMs += old.cpuMs();
      this.retiring.delete(old);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.aborter.abort();
    await Promise.allSettled([...this.inFlight]);
    this.pool?.close();
    for (const pool of this.retiring) pool.close();
  }

  private tick(): void {
    if (this.stopped) return;
    for (const name of this.scheduler.due()) this.launch(name);
    // 10 ms granularity: 500 streams at 3 s start ~170 captures/s, so a coarser tick
    // would bunch them; a scan of 500 entries costs microseconds.
    this.timer = setTimeout(() => this.tick(), 10);
  }

  /** Start a capture of `name` now if it is idle (used for on-demand thumbnails). */
  captureNow(name: string): boolean {
    const s = this.scheduler.stream(name);
    if (!s || s.state === 'running' || this.scheduler.running >= this.scheduler.options.maxConcurrent) return false;
    this.launch(name);
    return true;
  }

  private launch(name: string): void {
    this.scheduler.started(name);
    const p = this.capture(name).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  private async capture(name: string): Promise<void> {
    const t0 = performance.now();
    const ms: CaptureTimings = { total: 0, resolve: 0, playlist: 0, keyframe: 0, decode: 0, analyze: 0 };
    let outcome: CaptureOutcome = 'ok';
    try {
      if (this.o.claim && !(await this.o.claim(name, this.scheduler.options.intervalMs).catch(() => true))) {
        this.claimedElsewhere++;
        return; // another node captured it this interval; the next deadline is an interval on
      }
      const r = await this.captureOnce(name, ms);
      ms.total = performance.now() - t0;
      if (r === 'offline') {
        outcome = 'offline';
        this.emit({ stream: name, status: 'offline', at: Date.now(), ms: { total: ms.total } });
      } else {
        this.emit({ ...r, ms });
      }
    } catch (err) {
      // A capture cut short by stop() is not a result: reporting it would record an error for
      // every stream that happened to be in flight at shutdown.
      if (this.stopped) return;
      const e = err instanceof StageError ? err : new StageError('segment', 'internal', (err as Error).message);
      outcome = { error: `${e.stage}: ${e.message}` };
      this.emit({ stream: name, status: 'error', at: Date.now(), stage: e.stage, code: e.code, error: e.message, ms: { total: performance.now() - t0 } });
    } finally {
      if (!this.stopped) this.scheduler.finished(name, outcome);
    }
  }

  private emit(r: CaptureResult): void {
    try {
      this.o.onResult(r);
    } catch (err) {
      this.o.log?.error({ err, stream: r.stream }, 'capture result handler failed');
    }
  }

  private async captureOnce(name: string, ms: CaptureTimings): Promise<'offline' | Omit<Extract<CaptureResult, { status: 'ok' }>, 'ms'>> {
    const timeoutMs = this.o.fetchTimeoutMs ?? 5000;
    let media = await this.resolveCached(name, ms);
    if (media === 'offline') return 'offline';

    // Media playlist; a 403/404 on a cached URL usually means the token expired or the
    // stream restarted: resolve once more before calling it offline.
    let t = performance.now();
    let text = await this.fetchText(media.mediaUrl, timeoutMs);
    if (text.status === 403 || text.status === 404) {
      this.resolved.delete(name);
      media = await this.resolveCached(name, ms);
      if (media === 'offline') return 'offline';
      text = await this.fetchText(media.mediaUrl, timeoutMs);
      if (text.status === 404) {
        this.resolved.delete(name);
        return 'offline';
      }
    }
    if (text.status !== 200) throw new StageError('playlist', 'http', `media playlist returned HTTP ${text.status}`);
    let segUrl: string;
    let sequence: number;
    let map: Segment['map'];
    let range: Segment['byteRange'];
    try {
      const pl = parseMediaPlaylist(text.body, media.mediaUrl);
      const seg = newestSegment(pl);
      if (!seg) {
        if (pl.endList) return 'offline';
        throw new StageError('playlist', 'no-segment', 'media playlist has no content segment (only ads or prefetch)');
      }
      segUrl = seg.url;
      sequence = seg.sequence;
      map = seg.map;
      range = seg.byteRange;
    } catch (err) {
      if (err instanceof PlaylistError) throw new StageError('playlist', 'bad-playlist', err.message);
      throw err;
    }
    this.bytesFetched += text.body.length;
    ms.playlist = performance.now() - t;

    t = performance.now();
    let kf;
    try {
      const init = map ? await this.initSection(map, timeoutMs) : undefined;
      kf = await fetchKeyframe(segUrl, { timeoutMs, maxBytes: this.o.maxKeyframeBytes ?? 1024 * 1024, signal: this.aborter.signal, ...(init ? { init } : {}), ...(range ? { range } : {}) });
    } catch (err) {
      if (err instanceof SegmentFetchError) {
        // A keyframe the init's parameter sets do not fit (or a bad init) is refetched next time.
        if (map && err.code === 'garbage') this.inits.delete(initKey(map));
        throw new StageError('segment', err.code, err.message);
      }
      throw err;
    }
    this.bytesFetched += kf.bytesRead;
    ms.keyframe = performance.now() - t;

    t = performance.now();
    const ring = this.o.ring;
    // The tag says whose frame a slot holds, for readers that scan the ring (see capture-frames.ts).
    const tag = captureStreamTag(name);
    let slot = -1;
    let frame = 0;
    try {
      const pool = await this.decoders();
      await pool.decode(kf.annexB, (rgb) => {
        slot = ring.acquire();
        ring.slotView(slot).set(rgb);
        ring.publish(slot, rgb.length, tag, Date.now());
        frame = ring.recordsWritten;
      });
    } catch (err) {
      if (map) this.inits.delete(initKey(map)); // stale parameter sets are one cause: fetch them again
      if (err instanceof DecoderError) throw new StageError('decode', err.code, err.message);
      throw err;
    }
    ms.decode = performance.now() - t;

    let analysis: unknown | null = null;
    if (this.o.analyze) {
      t = performance.now();
      try {
        analysis = await this.o.analyze(slot, frame);
      } catch (err) {
        throw new StageError('analyze', 'failed', (err as Error).message);
      }
      ms.analyze = performance.now() - t;
    }
    return { stream: name, status: 'ok', at: Date.now(), slot, frame, segment: { url: segUrl, sequence }, bytesFetched: kf.bytesRead + text.body.length, analysis };
  }

  /**
   * The parsed init section of an fMP4 rendition, fetched once and kept as long as a
   * resolution (a self-hosted encoder may restart with new parameter sets behind the same URL);
   * a failure is not kept, and a decode failure drops it (see capture()).
   */
  private initSection(map: NonNullable<Segment['map']>, timeoutMs: number): Promise<Fmp4Init> {
    const key = initKey(map);
    const cached = this.inits.get(key);
    if (cached && Date.now() - cached.at < RESOLVE_MAX_AGE_MS) return cached.init;
    const entry = { init: fetchInitSection(map.url, map.byteRange, { timeoutMs, signal: this.aborter.signal }), at: Date.now() };
    entry.init.catch(() => { if (this.inits.get(key) === entry) this.inits.delete(key); });
    this.inits.delete(key); // re-inserted last: the Map's order is oldest first
    this.inits.set(key, entry);
    if (this.inits.size > MAX_INIT_SECTIONS) this.inits.delete(this.inits.keys().next().value!);
    return entry.init;
  }

  private async resolveCached(name: string, ms: CaptureTimings): Promise<Resolved | 'offline'> {
    const cached = this.resolved.get(name);
    if (cached && Date.now() - cached.at < RESOLVE_MAX_AGE_MS) return cached;
    const t = performance.now();
    try {
      const source = parseSource(name);
      const r = await resolveSource(source, { ...this.o.resolve, quality: this.quality, signal: this.aborter.signal });
      ms.resolve += performance.now() - t;
      if (r.status === 'offline') {
        this.resolved.delete(name);
        return 'offline';
      }
      const entry = { mediaUrl: r.variant.url, at: Date.now(), variant: r.variant.name };
      this.resolved.set(name, entry);
      return entry;
    } catch (err) {
      if (err instanceof ResolveError) throw new StageError('resolve', err.code, err.message);
      throw err;
    }
  }

  private async fetchText(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
    if (url.startsWith('file:')) {
      try {
        return { status: 200, body: await readFile(fileURLToPath(url), 'utf8') };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { status: 404, body: '' };
        throw new StageError('playlist', 'network', (err as Error).message);
      }
    }
    try {
      const r = await httpGet(url, { timeoutMs, signal: this.aborter.signal, maxBytes: 2 * 1024 * 1024 });
      return { status: r.status, body: r.status === 200 ? r.body.toString('utf8') : '' };
    } catch (err) {
      const e = err as HttpGetError;
      throw new StageError('playlist', e.code ?? 'network', `media playlist: ${e.message}`);
    }
  }
}
