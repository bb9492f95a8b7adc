/**
 * One replay: reads a recording in bounded chunks and writes its events into the replay
 * ingest ring under another run name, paced by the recorded times divided by `speed`, so
 * the aggregator (and everything after it: overlays, chat, OBS, the encoder) sees a live run.
 *
 * Each event's own timestamp is moved to the replay's clock (same spacing ÷ speed), so
 * latency figures and "last update" texts read as live rather than hours old. A full ring
 * is waited out, not dropped: a replay has no deadline, and losing steps would make it
 * a different run.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { RecordRing } from '../../shared/record-ring.js';
import { runRecords } from '../../shared/recording/reader.js';
import { writeIngestRecord } from '../../shared/telemetry/ring-records.js';

export interface ReplayRequest {
  /** The recorded run (its directory name). */
  run: string;
  dir: string;
  asRun: string;
  speed: number;
  fromStep?: number;
  toStep?: number;
}

export type ReplayState = 'running' | 'finished' | 'stopped' | 'failed';

export interface ReplayInfo {
  id: string;
  run: string;
  as_run: string;
  speed: number;
  from_step: number | null;
  to_step: number | null;
  state: ReplayState;
  events_sent: number;
  current_step: number | null;
  /** Share of the recorded time span already replayed, 0..1. */
  progress: number;
  started_at: string;
  finished_at: string | null;
  error?: string;
}

const RING_FULL_WAIT_MS = 10;

export class Replay {
  state: ReplayState = 'running';
  eventsSent = 0;
  ringFullWaits = 0;
  private currentStep: number | null = null;
  private progress = 0;
  private readonly startedAt = Date.now();
  private finishedAt: number | null = null;
  private error: string | undefined;
  private readonly abort = new AbortController();
  readonly done: Promise<void>;

  constructor(
    readonly id: string,
    readonly request: ReplayRequest,
    private readonly ring: RecordRing,
    private readonly producerId: number,
    /** Recorded time span of the run, for progress. */
    private readonly span: { firstTime: number | null; lastTime: number | null },
    private readonly onEvent: () => void,
  ) {
    this.done = this.run().then(
      () => { this.finish(this.abort.signal.aborted ? 'stopped' : 'finished'); },
      (error: unknown) => {
        if (this.abort.signal.aborted) this.finish('stopped');
        else { this.error = (error as Error)?.message ?? String(error); this.finish('failed'); }
      },
    );
  }

  /** Asked to stop; its state stays `running` until the replay loop notices. */
  get stopRequested(): boolean {
    return this.abort.signal.aborted;
  }

  stop(): void {
    this.abort.abort();
  }

  private finish(state: ReplayState): void {
    this.state = state;
    this.finishedAt = Date.now();
    if (state === 'finished') this.progress = 1;
  }

  private async run(): Promise<void> {
    const { dir, asRun, speed, fromStep, toStep } = this.request;
    const signal = this.abort.signal;
    let scratch = Buffer.alloc(64 * 1024);
    let t0 = Number.NaN;
    let wall0 = 0;
    let epoch0 = 0;
    const first = this.span.firstTime;
    const spanMs = first !== null && this.span.lastTime !== null ? this.span.lastTime - first : 0;
    for await (const r of runRecords(dir, { fromStep, toStep }, signal)) {
      if (Number.isNaN(t0)) {
        t0 = r.time;
        wall0 = performance.now();
        epoch0 = Date.now();
      }
      const offsetMs = (r.time - t0) / speed;
      const wait = wall0 + offsetMs - performance.now();
      if (wait > 1) await sleep(wait, undefined, { signal });
      if (r.event.byteLength > scratch.byteLength) scratch = Buffer.alloc(r.event.byteLength);
      const event = scratch.subarray(0, r.event.byteLength);
      event.set(r.event);
      // The event's own timestamp (0 = "stamp on receipt") moves to the replay's clock.
      if (event.readDoubleLE(8) > 0) event.writeDoubleLE(epoch0 + Math.max(0, offsetMs), 8);
      while (!writeIngestRecord(this.ring, Date.now(), this.producerId, asRun, event, 0, event.byteLength)) {
        this.ringFullWaits++;
        await sleep(RING_FULL_WAIT_MS, undefined, { signal });
      }
      this.eventsSent++;
      this.onEvent();
      if (!Number.isNaN(r.step)) this.currentStep = r.step;
      if (first !== null && spanMs > 0) this.progress = Math.min(1, Math.max(0, (r.time - first) / spanMs));
    }
  }

  info(): ReplayInfo {
    const q = this.request;
    return {
      id: this.id, run: q.run, as_run: q.asRun, speed: q.speed, from_step: q.fromStep ?? null, to_step: q.toStep ?? null,
      state: this.state, events_sent: this.eventsSent, current_step: this.currentStep, progress: Math.round(this.progress * 1000) / 1000,
      started_at: new Date(this.startedAt).toISOString(), finished_at: this.finishedAt === null ? null : new Date(this.finishedAt).toISOString(),
      ...(this.error !== undefined ? { error: this.error } : {}),
    };
  }
}
