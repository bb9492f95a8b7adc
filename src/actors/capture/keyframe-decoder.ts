/**
 * Long-lived ffmpeg decoders fed bare H.264 keyframes (Annex B, from ts-keyframe.ts) from many
 * streams, each returning one RGB24 frame scaled to a fixed W×H.
 *
 * Why: a fresh ffmpeg per capture costs ~60 ms CPU before it decodes anything (start-up,
 * probing, demuxing); measured here, a long-lived decoder given only the keyframe costs ~5-6 ms
 * CPU per 480p frame. One process handles a pipeline of keyframes from any number of streams
 * (resolution changes just re-initialise the scaler).
 *
 * Attribution: frames come out in input order, but ffmpeg holds a few frames back (parser
 * lookahead, the decoder's reorder delay taken from the SPS, muxer buffering: measured 2-4
 * frames), and a keyframe that fails to decode yields no frame at all, which would shift every
 * later frame onto the wrong stream. So the input is punctuated with a *sentinel* keyframe (a
 * tiny picture, magenta left half / green right half) that cannot be confused with video:
 *  - when the decoder goes idle with jobs outstanding, sentinels push the held frames out;
 *  - under load a sentinel goes in every `syncEvery` jobs (default 8); when a sentinel comes
 *    out while a job was expected, a job before it produced no picture: the jobs still
 *    waiting are failed. Limit: between two sentinels a picture-less job shifts the jobs after
 *    it by one (they get their successor's frame), which is why the extractor refuses
 *    keyframes it can tell will not decode, and why `syncEvery: 1` exists (exact attribution
 *    for ~2.5 ms more CPU per keyframe at 480p).
 * A job outstanding for longer than `stallMs` kills the process (all its jobs fail) and the
 * next decode starts a fresh one, with capped backoff if it keeps dying.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { nalTypes } from './ts-keyframe.js';
import { ffmpegFeatures, passthroughFrameRateArgs } from '../../shared/ffmpeg.js';

export class DecoderError extends Error {
  readonly code: 'no-picture' | 'stalled' | 'exited' | 'overloaded' | 'closed' | 'spawn';
  constructor(code: DecoderError['code'], message: string) {
    super(message);
    this.name = 'DecoderError';
    this.code = code;
  }
}

export interface DecoderOptions {
  ffmpegPath: string;
  width: number;
  height: number;
  /** Annex B keyframe used as a sentinel (see makeSentinel). */
  sentinel: Uint8Array;
  /** Skip the deblocking filter: ~10 % less CPU, slight blockiness analysis does not mind. */
  skipLoopFilter?: boolean;
  stallMs?: number;
  idleFlushMs?: number;
  syncEvery?: number;
  maxInFlight?: number;
}

type FrameSink = (rgb: Uint8Array) => void;

interface Job {
  kind: 'job';
  sink: FrameSink;
  resolve: () => void;
  reject: (err: Error) => void;
  at: number;
}
interface Sentinel {
  kind: 'sentinel';
}
type Entry = Job | Sentinel;

const SENTINEL_ENTRY: Sentinel = { kind: 'sentinel' };
/** Access unit delimiter NAL (type 9, primary_pic_type 7 = any slice type). */
const AUD = new Uint8Array([0, 0, 0, 1, 0x09, 0xf0]);

/** Pre-encode the sentinel picture once (libx264, ~100 ms), keeping only SPS/PPS/IDR. */
export async function makeSentinel(ffmpegPath: string): Promise<Uint8Array> {
  const args = ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i',
    'color=c=0xff00ff:size=64x64,drawbox=x=32:y=0:w=32:h=64:color=0x00ff00:t=fill',
    '-frames:v', '1', '-c:v', 'libx264', '-preset', 'ultrafast', '-x264-params', 'aud=0', '-f', 'h264', 'pipe:1'];
  const bytes = await new Promise<Buffer>((resolve, reject) => {
    const p = spawn(ffmpegPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new DecoderError('spawn', `cannot encode the decoder sentinel (ffmpeg exit ${code}): ${err.trim().split('\n').pop() ?? ''}`))));
  });
  return keepParameterSetsAndIdr(new Uint8Array(bytes));
}

/** Drop SEI/AUD units (x264 writes its settings as SEI) so the sentinel stays small. */
function keepParameterSetsAndIdr(b: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  const starts: number[] = [];
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 0 && b[i + 1] === 0 && b[i + 2] === 1) {
      starts.push(i + 3);
      i += 2;
    }
  }
  for (let k = 0; k < starts.length; k++) {
    let end = k + 1 < starts.length ? starts[k + 1] - 3 : b.length;
    if (end > 0 && b[end - 1] === 0) end--; // 4-byte start code of the next unit
    const type = b[starts[k]] & 0x1f;
    if (type === 5 || type === 7 || type === 8) parts.push(new Uint8Array([0, 0, 0, 1]), b.subarray(starts[k], end));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  if (!nalTypes(out).includes(5)) throw new DecoderError('spawn', 'sentinel encode produced no IDR picture');
  return out;
}

/** True when an output frame is the sentinel (magenta left, green right), checked at 6 points. */
export function isSentinelFrame(rgb: Uint8Array, width: number, height: number): boolean {
  const near = (x: number, y: number, r: number, g: number, b: number): boolean => {
    const o = (Math.floor(y) * width + Math.floor(x)) * 3;
    return Math.abs(rgb[o] - r) < 60 && Math.abs(rgb[o + 1] - g) < 60 && Math.abs(rgb[o + 2] - b) < 60;
  };
  for (const fy of [0.25, 0.5, 0.75]) {
    if (!near(width * 0.2, height * fy, 255, 0, 255)) return false;
    if (!near(width * 0.8, height * fy, 0, 255, 0)) return false;
  }
  return true;
}

/** utime + stime of a process in ms from /proc (Linux), or null. */
export function processCpuMs(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

export class KeyframeDecoder {
  private proc: ChildProcessWithoutNullStreams | null = null;
  private fifo: Entry[] = [];
  private jobsOutstanding = 0;
  private frameBuf: Uint8Array;
  private filled = 0;
  private sinceSync = 0;
  private lastWriteAt = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  private stallTimer: NodeJS.Timeout | null = null;
  private lastStderr = '';
  private closed = false;
  private cpuOfExited = 0;
  private lastCpu = 0;
  private consecutiveDeaths = 0;
  private notBefore = 0;
  readonly stats = { decoded: 0, noPicture: 0, stalls: 0, restarts: 0, sentinels: 0, misaligned: 0 };
  private readonly o: Required<DecoderOptions>;

  constructor(opts: DecoderOptions) {
    this.o = { skipLoopFilter: true, stallMs: 3000, idleFlushMs: 20, syncEvery: 8, maxInFlight: 64, ...opts };
    this.frameBuf = new Uint8Array(opts.width * opts.height * 3);
  }

  get outstanding(): number {
    return this.jobsOutstanding;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** CPU used by this decoder's ffmpeg processes so far, in ms (Linux; 0 elsewhere). */
  cpuMs(): number {
    const live = processCpuMs(this.proc?.pid);
    if (live !== null) this.lastCpu = live;
    return this.cpuOfExited + (this.proc ? this.lastCpu : 0);
  }

  /**
   * Decode one keyframe. `sink` is called synchronously with the RGB24 frame (a buffer reused
   * for the next frame: copy it out, e.g. into a SlotRing slot) before the promise resolves.
   */
  decode(annexB: Uint8Array, sink: FrameSink): Promise<void> {
    if (this.closed) return Promise.reject(new DecoderError('closed', 'decoder is closed'));
    if (this.jobsOutstanding >= this.o.maxInFlight) {
      return Promise.reject(new DecoderError('overloaded', `decoder has ${this.jobsOutstanding} keyframes in flight`));
    }
    if (!this.proc) {
      const wait = this.notBefore - Date.now();
      if (wait > 0) return Promise.reject(new DecoderError('exited', `decoder restarting after ${this.consecutiveDeaths} failures (retry in ${wait} ms): ${this.lastStderr}`));
      this.start();
    }
    return new Promise<void>((resolve, reject) => {
      this.fifo.push({ kind: 'job', sink, resolve, reject, at: Date.now() });
      this.jobsOutstanding++;
      this.write(annexB);
      if (++this.sinceSync >= this.o.syncEvery) this.writeSentinel();
      this.armTimers();
    });
  }

  close(): void {
    this.closed = true;
    this.kill(new DecoderError('closed', 'decoder closed'));
  }

  private start(): void {
    const { width, height } = this.o;
    const args = ['-hide_banner', '-loglevel', 'error', '-threads', '1'];
    if (this.o.skipLoopFilter) args.push('-skip_loop_filter', 'all');
    args.push('-f', 'h264', '-probesize', '32', '-analyzeduration', '0', '-i', 'pipe:0',
      '-vf', `scale=${width}:${height}:flags=bilinear`, ...passthroughFrameRateArgs(ffmpegFeatures(this.o.ffmpegPath)), '-flush_packets', '1',
      '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');
    const p = spawn(this.o.ffmpegPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc = p;
    this.filled = 0;
    this.sinceSync = 0;
    this.lastCpu = 0;
    p.stdout.on('data', (d: Buffer) => this.onData(p, d));
    p.stderr.on('data', (d: Buffer) => {
      const s = d.toString().trim();
      if (s) this.lastStderr = s.split('\n').pop()!.slice(0, 300);
    });
    p.stdin.on('error', () => undefined); // EPIPE when ffmpeg died: handled by 'exit'
    p.on('error', (err) => this.onExit(p, `cannot run ffmpeg: ${err.message}`));
    p.on('exit', (code, signal) => this.onExit(p, `ffmpeg exited (${signal ?? code}) ${this.lastStderr}`));
  }

  private write(bytes: Uint8Array): void {
    // An access unit delimiter after every picture: ffmpeg's parser ends the access unit
    // there instead of waiting for the next picture's first bytes (one frame less held
    // back, measured), and the AUD opens the next one, so a keyframe whose slices are
    // unreadable cannot be merged with the next job's picture.
    this.proc!.stdin.write(bytes);
    this.proc!.stdin.write(AUD);
    this.lastWriteAt = Date.now();
  }

  private writeSentinel(): void {
    this.fifo.push(SENTINEL_ENTRY);
    this.write(this.o.sentinel);
    this.sinceSync = 0;
    this.stats.sentinels++;
  }

  private armTimers(): void {
    if (!this.idleTimer) {
      this.idleTimer = setTimeout(() => {
        this.idleTimer = null;
        this.onIdleTick();
      }, this.o.idleFlushMs);
    }
    if (!this.stallTimer) {
      this.stallTimer = setTimeout(() => {
        this.stallTimer = null;
        this.onStallTick();
      }, this.o.stallMs);
    }
  }

  private onIdleTick(): void {
    if (!this.proc || this.jobsOutstanding === 0) return;
    // Nothing written for a while and frames still held back: push them out. Sentinels
    // already queued behind the last job count towards that.
    if (Date.now() - this.lastWriteAt >= this.o.idleFlushMs) {
      let queuedAfterLastJob = 0;
      for (let i = this.fifo.length - 1; i >= 0 && this.fifo[i].kind === 'sentinel'; i--) queuedAfterLastJob++;
      if (queuedAfterLastJob < 6) this.writeSentinel();
    }
    this.armTimers();
  }

  private onStallTick(): void {
    if (!this.proc || this.jobsOutstanding === 0) return;
    const oldest = this.fifo.find((e): e is Job => e.kind === 'job');
    if (oldest && Date.now() - oldest.at >= this.o.stallMs) {
      this.stats.stalls++;
      this.kill(new DecoderError('stalled', `no frame from the decoder within ${this.o.stallMs} ms`));
      return;
    }
    this.armTimers();
  }

  private onData(p: ChildProcessWithoutNullStreams, d: Buffer): void {
    if (p !== this.proc) return;
    let off = 0;
    const size = this.frameBuf.length;
    while (off < d.length) {
      const n = Math.min(size - this.filled, d.length - off);
      this.frameBuf.set(d.subarray(off, off + n), this.filled);
      this.filled += n;
      off += n;
      if (this.filled === size) {
        this.filled = 0;
        this.onFrame();
        if (p !== this.proc) return; // killed while handling (misalignment)
      }
    }
  }

  private onFrame(): void {
    const sentinel = isSentinelFrame(this.frameBuf, this.o.width, this.o.height);
    if (sentinel) {
      // Everything queued before the sentinel that has not come out produced no picture.
      for (;;) {
        const e = this.fifo.shift();
        if (!e) {
          this.stats.misaligned++;
          this.kill(new DecoderError('no-picture', 'decoder output a frame nobody asked for'));
          return;
        }
        if (e.kind === 'sentinel') return;
        this.jobsOutstanding--;
        this.stats.noPicture++;
        e.reject(new DecoderError('no-picture', `the keyframe did not decode to a picture${this.lastStderr ? `: ${this.lastStderr}` : ''}`));
      }
    }
    const e = this.fifo.shift();
    if (!e || e.kind === 'sentinel') {
      // A picture where a sentinel was due: the order is lost, so trust nothing in flight.
      this.stats.misaligned++;
      this.kill(new DecoderError('no-picture', 'decoder output out of step with its input; restarted'));
      return;
    }
    this.jobsOutstanding--;
    this.stats.decoded++;
    this.consecutiveDeaths = 0;
    try {
      e.sink(this.frameBuf);
      e.resolve();
    } catch (err) {
      e.reject(err as Error);
    }
  }

  private onExit(p: ChildProcessWithoutNullStreams, why: string): void {
    if (p !== this.proc) return;
    this.cpuOfExited += this.lastCpu;
    this.proc = null;
    if (!this.closed) {
      this.stats.restarts++;
      this.consecutiveDeaths++;
      this.notBefore = Date.now() + Math.min(5000, 100 * 2 ** Math.min(this.consecutiveDeaths - 1, 6));
    }
    this.failAll(new DecoderError('exited', why));
  }

  private kill(err: DecoderError): void {
    const p = this.proc;
    if (p) {
      const cpu = processCpuMs(p.pid);
      if (cpu !== null) this.lastCpu = cpu;
      this.cpuOfExited += this.lastCpu;
      this.proc = null;
      p.kill('SIGKILL');
    }
    this.failAll(err);
  }

  private failAll(err: Error): void {
    const entries = this.fifo;
    this.fifo = [];
    this.jobsOutstanding = 0;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.idleTimer = this.stallTimer = null;
    for (const e of entries) if (e.kind === 'job') e.reject(err);
  }
}

/** Keyframes in flight on one decoder before the pool uses the next one. */
const SPILL_AT = 4;

/** N decoders; each keyframe goes to the first with room, else the one with the fewest in flight. */
export class DecoderPool {
  readonly decoders: KeyframeDecoder[];

  constructor(count: number, opts: DecoderOptions) {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`decoder count must be an integer >= 1, got ${count}`);
    this.decoders = Array.from({ length: count }, () => new KeyframeDecoder(opts));
  }

  decode(annexB: Uint8Array, sink: FrameSink): Promise<void> {
    // Fill the first decoder before spilling over: a decoder with a full pipeline pushes
    // its held-back frames out with the next real keyframe, while an idle one has to be
    // flushed with sentinel pictures (each costs a scale + colour conversion). Spreading
    // thin at low load would turn most captures into flushes.
    let best: KeyframeDecoder | undefined;
    for (const d of this.decoders) {
      if (d.outstanding < SPILL_AT) {
        best = d;
        break;
      }
    }
    if (!best) {
      best = this.decoders[0];
      for (const d of this.decoders) if (d.outstanding < best.outstanding) best = d;
    }
    return best.decode(annexB, sink);
  }

  cpuMs(): number {
    return this.decoders.reduce((n, d) => n + d.cpuMs(), 0);
  }

  stats(): KeyframeDecoder['stats'] {
    const total = { decoded: 0, noPicture: 0, stalls: 0, restarts: 0, sentinels: 0, misaligned: 0 };
    for (const d of this.decoders) for (const k of Object.keys(total) as Array<keyof typeof total>) total[k] += d.stats[k];
    return total;
  }

  close(): void {
    for (const d of this.decoders) d.close();
  }
}
