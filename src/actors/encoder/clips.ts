/**
 * Instant-replay clips in the encoder: keeps the clip buffer in step with ffmpeg's runs,
 * answers clip requests (wait for `after_s` to be recorded, pick the segments, cut them in a
 * child ffmpeg) and keeps the clips folder within its bounds.
 *
 * Stream time: the actor writes exactly one frame per tick, so frames written in the current
 * run / fps is the stream time of the frame being encoded now; the segment list carries the
 * same clock.
 */
import { mkdirSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { registerTotalCounter } from '../../shared/metrics.js';
import { enforceClipBounds, newClipId, type ClipInfo } from '../../shared/clip-library.js';
import { ClipBuffer } from './clip-buffer.js';
import { cutClip } from './clip-cutter.js';
import { clipBufferDir, type ClipOptions } from './options.js';

export interface ClipRequest {
  before_s: number;
  after_s: number;
  title?: string;
}

export type ClipResult = { ok: true; clip: ClipInfo } | { ok: false; status: number; error: string };

/** Clips being recorded or cut at once; more are refused (each holds segments and a child ffmpeg). */
const MAX_PENDING = 4;
const POLL_MS = 250;

export class ClipMaker {
  private readonly buffer: ClipBuffer;
  private run = -1;
  private writtenAtRunStart = 0;
  private written: () => number = () => 0;
  private pending = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly counts = { made: 0, failed: 0, refused: 0, deleted: 0 };
  /** Bounds are enforced one pass at a time, so two clips finishing together never count one deletion twice. */
  private bounding: Promise<void> = Promise.resolve();

  constructor(private readonly o: ClipOptions, private readonly keyframeSeconds: number, private readonly fps: number, private readonly ffmpegPath: string, private readonly log: Logger) {
    mkdirSync(o.dir, { recursive: true, mode: 0o700 });
    this.buffer = new ClipBuffer(clipBufferDir(o.dir), o.bufferSeconds, keyframeSeconds);
    this.timer = setInterval(() => this.poll(), 1_000);
    this.timer.unref();
  }

  /** An ffmpeg run is about to start as `part`; `written` counts frames the actor has written. */
  startRun(part: number, written: () => number): void {
    this.run = part;
    this.written = written;
    this.writtenAtRunStart = written();
    this.buffer.startRun(part);
  }

  private poll(): void {
    try {
      this.buffer.poll();
    } catch (error) {
      this.log.warn({ err: (error as Error).message }, 'clip buffer: reading the segment list failed');
    }
  }

  private streamNow(): number {
    return (this.written() - this.writtenAtRunStart) / this.fps;
  }

  bitrateKbps(): number {
    return this.buffer.recentBitrateKbps();
  }

  registerMetrics(registry: Registry): void {
    registerTotalCounter(registry, 'ringcast_clips_made_total', 'Instant-replay clips cut and stored', () => this.counts.made);
    registerTotalCounter(registry, 'ringcast_clips_failed_total', 'Clip requests that failed (ffmpeg could not cut, the output restarted meanwhile, timeout)', () => this.counts.failed);
    registerTotalCounter(registry, 'ringcast_clips_refused_total', 'Clip requests answered 409/503 (buffer not yet long enough, no output running, too many at once)', () => this.counts.refused);
    registerTotalCounter(registry, 'ringcast_clips_deleted_total', 'Stored clips deleted, oldest first, to stay within clips.maxCount / clips.maxBytes', () => this.counts.deleted);
    registerTotalCounter(registry, 'ringcast_clips_segments_pruned_total', 'Buffered segments deleted as they aged out of clips.bufferSeconds', () => this.buffer.pruned);
  }

  stats(): { bufferedSeconds: number; pending: number; made: number; failed: number; refused: number; deleted: number } {
    return { bufferedSeconds: Math.round(this.buffer.heldSeconds() * 10) / 10, pending: this.pending, ...this.counts };
  }

  private refuse(status: number, error: string): ClipResult {
    this.counts.refused++;
    return { ok: false, status, error };
  }

  /** `speed`: ffmpeg's encode speed (1 = real time), to explain a buffer that fills slowly. */
  async clip(request: ClipRequest, outputRunning: boolean, speed = 1): Promise<ClipResult> {
    if (!outputRunning || this.run < 0) return this.refuse(409, 'no output is running (ffmpeg is down or reconnecting), so there is nothing to clip');
    if (this.pending >= MAX_PENDING) return this.refuse(503, `${MAX_PENDING} clips are already being made; try again in a few seconds`);
    const { before_s: before, after_s: after } = request;
    this.poll();
    const now = this.streamNow();
    const from = now - before;
    const to = now + after;
    const oldest = this.buffer.oldestStart();
    const slack = this.keyframeSeconds / 2;
    if (oldest === undefined || from < oldest - slack) {
      const held = Math.max(0, now - (oldest ?? now));
      // Times are the show's own (frames encoded / fps): an encoder behind real time fills the buffer slower than the clock.
      const slow = speed > 0 && speed < 0.9 ? `; the encoder runs at ${speed.toFixed(2)}× real time, so it fills slower than the clock` : '';
      return this.refuse(409, `the clip buffer holds ${held.toFixed(1)} s of the show so far (it restarts with the output); before_s=${before} needs ${Math.max(0, before - held).toFixed(1)} s more${slow}`);
    }
    const run = this.run;
    this.pending++;
    let taken: ReturnType<ClipBuffer['take']> = [];
    // While waiting for `after`, the buffer moves on: the start of this clip must not age out meanwhile.
    const unhold = this.buffer.hold(from);
    try {
      // Every segment whose middle is before `to` must be complete (the list names it then).
      const deadline = Date.now() + (after + 3 * this.keyframeSeconds + 10) * 1000;
      while (this.buffer.newestEnd() < to + slack - 1 / this.fps) {
        if (this.run !== run) {
          this.counts.failed++;
          return { ok: false, status: 409, error: 'the output restarted while the clip was being recorded; ask again' };
        }
        if (Date.now() > deadline) {
          this.counts.failed++;
          return { ok: false, status: 503, error: 'the clip buffer stopped growing (is the encoder keeping up?); no clip was made' };
        }
        await new Promise((r) => setTimeout(r, POLL_MS));
        this.poll();
      }
      taken = this.buffer.take(from, to);
      if (taken.length === 0) return this.refuse(409, 'no buffered segment falls inside the asked time range');
      const startedAt = new Date(Date.now() - (this.streamNow() - taken[0].start) * 1000);
      const title = request.title?.trim() || `Clip ${startedAt.toISOString().slice(11, 19)}`;
      const clip = await cutClip({ id: newClipId(), title, startedAt, segments: taken, dir: this.o.dir, ffmpegPath: this.ffmpegPath, timeoutMs: 60_000 });
      this.counts.made++;
      this.log.info({ id: clip.id, duration_s: clip.duration_s, bytes: clip.bytes }, 'clip made');
      this.bounding = this.bounding
        .then(async () => { this.counts.deleted += await enforceClipBounds(this.o.dir, this.o.maxCount, this.o.maxBytes); })
        .catch((error: unknown) => this.log.warn({ err: (error as Error).message }, 'clips: keeping the clips folder within its bounds failed'));
      await this.bounding;
      return { ok: true, clip };
    } catch (error) {
      this.counts.failed++;
      this.log.error({ err: (error as Error).message }, 'clip failed');
      return { ok: false, status: 500, error: `the clip could not be made: ${(error as Error).message}` };
    } finally {
      unhold();
      this.buffer.release(taken);
      this.pending--;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.buffer.close();
  }
}
