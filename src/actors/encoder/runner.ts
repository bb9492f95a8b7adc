/**
 * Keeps one ffmpeg process running: spawn, restart with exponential backoff when it
 * exits (RTMP server gone, network error, crash), and a graceful stop that closes stdin
 * so the muxers can finish their files (mp4 moov atom) before a deadline, then kills.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Logger } from 'pino';
import { backoffDelay } from '../obs/backoff.js';
import { ProgressParser, type StreamHealth } from './progress.js';

export interface RunnerOptions {
  ffmpegPath: string;
  /** Arguments for run number `part`. */
  argsFor: (part: number) => string[];
  /** Part number of the first run (see firstPart in options.ts). */
  firstPart: number;
  log: Logger;
  restartInitialMs: number;
  restartMaxMs: number;
  onReport?: (health: StreamHealth) => void;
  /** Applied to everything this runner logs or keeps (ffmpeg's arguments and log lines may hold a stream key). */
  redact?: (text: string) => string;
  /** Every ffmpeg log line (after redact). */
  onLogLine?: (line: string) => void;
  /** Called when a run ends unexpectedly (before the restart is scheduled). */
  onUnexpectedExit?: (info: ExitReport) => void;
}

export interface ExitReport {
  code: number | null;
  signal: string | null;
  ranMs: number;
  log: string[];
}

// A run this long counts as healthy: the next failure starts the backoff from scratch.
const HEALTHY_RUN_MS = 10_000;

export class FfmpegRunner {
  /** Completed restarts after an unexpected exit. */
  restarts = 0;
  lastExit: ExitReport | undefined;
  private child: ChildProcessWithoutNullStreams | undefined;
  private parser: ProgressParser | undefined;
  private part = 0;
  private attempt = 0;
  private startedAt = 0;
  private stopping = false;
  /** Set by recycle(): the coming exit was asked for. */
  private recycling = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private restartDueAt = 0;
  private exited: Promise<void> = Promise.resolve();
  private readonly o: RunnerOptions;

  constructor(options: RunnerOptions) {
    this.o = options;
    this.part = options.firstPart;
  }

  /** The stdin of the running process, or undefined while down (or between restarts). */
  get stdin(): NodeJS.WritableStream & { writableLength: number; writableNeedDrain: boolean } | undefined {
    const c = this.child;
    return c && c.exitCode === null && c.signalCode === null && c.stdin.writable ? c.stdin : undefined;
  }

  /** The number of the current (or next) run, as passed to argsFor. */
  get currentPart(): number {
    return this.part;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.stdin !== undefined;
  }

  get health(): StreamHealth | undefined {
    return this.parser?.health;
  }

  reconnectInMs(): number | null {
    return this.restartTimer ? Math.max(0, Math.round(this.restartDueAt - performance.now())) : null;
  }

  recentLog(): string[] {
    return this.parser?.log() ?? [];
  }

  start(): void {
    if (this.stopping) return;
    const args = this.o.argsFor(this.part);
    const redact = this.o.redact ?? ((text: string) => text);
    const parser = new ProgressParser(this.o.onReport, 20, redact, this.o.onLogLine);
    this.parser = parser;
    this.startedAt = performance.now();
    // Its own process group: a Ctrl-C in the terminal (SIGINT to the foreground group) or a
    // group-wide SIGTERM must reach ringcast only, which then ends ffmpeg by closing its stdin
    // so the file trailer is written. If ringcast dies hard, the closed pipe ends ffmpeg too.
    const child = spawn(this.o.ffmpegPath, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    this.child = child;
    this.o.log.info({ pid: child.pid, part: this.part, args: redact(args.join(' ')) }, 'ffmpeg started');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => parser.push(chunk));
    child.stdout.resume();
    // EPIPE when ffmpeg dies mid-write: the exit handler deals with it.
    child.stdin.on('error', () => {});
    this.exited = new Promise((resolve) => {
      let done = false;
      const finish = (code: number | null, signal: string | null, error?: Error) => {
        if (done) return;
        done = true;
        this.onExit(child, code, signal, error);
        resolve();
      };
      child.once('error', (error) => finish(null, null, error));
      child.once('close', (code, signal) => finish(code, signal));
    });
  }

  private onExit(child: ChildProcessWithoutNullStreams, code: number | null, signal: string | null, error?: Error): void {
    if (this.child !== child) return;
    const ranMs = Math.round(performance.now() - this.startedAt);
    const log = this.parser?.log() ?? [];
    if (error) log.push((this.o.redact ?? ((t: string) => t))(`spawn error: ${error.message}`));
    this.lastExit = { code, signal, ranMs, log };
    // A run that never got going (RTMP refused the connection) made at most an empty file:
    // let the next run reuse its name rather than leave a trail of empty parts.
    if ((this.parser?.health.frame ?? 0) > 0 || ranMs >= 1_000) this.part++;
    if (this.stopping) return;
    const recycled = this.recycling;
    this.recycling = false;
    if (recycled) this.o.log.info({ code, ranMs }, 'ffmpeg restarted on purpose (to reconnect a dropped destination)');
    else {
      this.o.log.warn({ code, signal, ranMs, log: log.slice(-5) }, 'ffmpeg exited unexpectedly; restarting with backoff');
      this.o.onUnexpectedExit?.(this.lastExit);
    }
    if (ranMs >= HEALTHY_RUN_MS || recycled) this.attempt = 0;
    const delay = recycled ? 0 : backoffDelay(this.attempt++, { initialMs: this.o.restartInitialMs, maxMs: this.o.restartMaxMs });
    this.restartDueAt = performance.now() + delay;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.restarts++;
      this.start();
    }, delay);
  }

  /**
   * Ends the running ffmpeg the graceful way (SIGTERM: it finishes its files) so a new run
   * starts at once; used to reconnect a destination the tee gave up on.
   */
  recycle(): void {
    const child = this.child;
    if (this.stopping || !child || child.exitCode !== null || child.signalCode !== null) return;
    this.recycling = true;
    child.kill('SIGTERM');
  }

  /** Close stdin, give ffmpeg `timeoutMs` to finish its outputs, then SIGKILL. */
  async stop(timeoutMs: number): Promise<{ graceful: boolean; code: number | null }> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return { graceful: true, code: child?.exitCode ?? null };
    child.stdin.end();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), timeoutMs); }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.o.log.warn({ timeoutMs }, 'ffmpeg did not finish in time after stdin closed; killing it');
      child.kill('SIGKILL');
      await this.exited;
    }
    return { graceful: !timedOut, code: child.exitCode };
  }
}
