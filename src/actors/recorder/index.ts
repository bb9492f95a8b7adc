/**
 * The recorder actor: keeps every accepted ingest event on disk, per run (store.ts), and
 * plays recordings back into the service as live runs (replayer.ts).
 *
 *   aggregator ──record.events──► recorder ──► <dataDir>/recordings/<run>/*.seg
 *   recorder (replays) ──ingest.replay──► aggregator
 *
 * Why the aggregator feeds it rather than the recorder reading the ingest rings: every
 * ingest ring has exactly one consumer (the aggregator commits its read position), and the
 * aggregator is where an event is known to be accepted and which run it belongs to. It
 * copies each accepted event's bytes into the record ring, which is drop-newest: a slow
 * disk costs recorded events (counted by the ring and the aggregator), never ingest speed.
 *
 * Replays write into a ring of their own that the aggregator reads but does not record:
 * a replay is a copy of a recording that is already on disk.
 */
import path from 'node:path';
import { Counter, Gauge } from 'prom-client';
import { defineActor } from '../../shared/actor.js';
import { RecordRing } from '../../shared/record-ring.js';
import { EVENT_HEADER_BYTES } from '../../shared/telemetry/event-codec.js';
import { readIngestRecord } from '../../shared/telemetry/ring-records.js';
import { isValidRunName } from '../../shared/telemetry/run-name.js';
import { eventStep } from './event-step.js';
import { Replay, type ReplayInfo, type ReplayRequest } from './replayer.js';
import { RecordingStore, type RunListing, type StoreBounds } from './store.js';

export interface RecorderOptions {
  /** The ring of accepted events to record; absent when recording is off (replays still work). */
  inRing?: string;
  /** The ingest ring replays write into. */
  replayRing: string;
  /** `<dataDir>/recordings`. */
  root: string;
  bounds: Omit<StoreBounds, 'maxOpenSegments' | 'idleCloseMs'> & Partial<Pick<StoreBounds, 'maxOpenSegments' | 'idleCloseMs'>>;
  /** Replays running at once, at most. */
  maxReplays: number;
  /** Start with this recording playing (`--replay <dir>`): its run name is the directory's name. */
  startReplay?: { dir: string; speed: number };
}

export type StartReplayResult = { ok: true; replay: ReplayInfo } | { ok: false; status: number; error: string };

/** Finished replays kept for GET /api/replays, at most. */
const KEEP_FINISHED = 32;
const BATCH = 512;
const IDLE_WAIT_MS = 50;
const HOUSEKEEPING_MS = 1_000;
const AGE_CHECK_MS = 60_000;
/** Producer ids of replays: above every gateway's and the ingest actor's ranges. */
const REPLAY_PRODUCER_BASE = 0xf0000000;

/** The time an event counts under: its own timestamp, else when it was received. */
function eventTime(data: Uint8Array, eventOffset: number, receivedAt: number): number {
  const ts = new DataView(data.buffer, data.byteOffset + eventOffset + 8, 8).getFloat64(0, true);
  return ts > 0 ? ts : receivedAt;
}

export default defineActor<RecorderOptions>({
  async start(ctx) {
    const o = ctx.options;
    if (!o || typeof o.root !== 'string' || typeof o.replayRing !== 'string') throw new TypeError(`recorder "${ctx.name}": options.root and options.replayRing are required`);
    const inRing = o.inRing === undefined ? undefined : ctx.in[o.inRing];
    if (o.inRing !== undefined && !(inRing instanceof RecordRing)) throw new Error(`recorder: "${o.inRing}" is not one of its input record rings`);
    const replayRing = ctx.out[o.replayRing];
    if (!(replayRing instanceof RecordRing)) throw new Error(`recorder: "${o.replayRing}" is not one of its output record rings`);

    const m = ctx.metrics;
    const recorded = new Counter({ name: 'ringcast_recording_events_total', help: 'Events written to recordings', registers: [m] });
    const recordedBytes = new Counter({ name: 'ringcast_recording_bytes_written_total', help: 'Bytes written to recording segments', registers: [m] });
    const dropped = new Counter({ name: 'ringcast_recording_dropped_total', help: 'Events not recorded, by reason (disk_full, write_error, total_bound, bad_run, undecodable)', labelNames: ['reason'], registers: [m] });
    const deleted = new Counter({ name: 'ringcast_recording_segments_deleted_total', help: 'Recording segments deleted to hold a bound, by reason (run_bytes, total_bytes, age)', labelNames: ['reason'], registers: [m] });
    const deletedBytes = new Counter({ name: 'ringcast_recording_deleted_bytes_total', help: 'Bytes of recording segments deleted to hold a bound', registers: [m] });
    const torn = new Counter({ name: 'ringcast_recording_torn_tails_total', help: 'Segments whose torn or corrupt tail was cut at start', registers: [m] });
    const tornBytes = new Counter({ name: 'ringcast_recording_torn_bytes_total', help: 'Bytes cut from torn segment tails at start', registers: [m] });
    const replayEvents = new Counter({ name: 'ringcast_replay_events_total', help: 'Events replays wrote into the replay ring', registers: [m] });
    for (const r of ['disk_full', 'write_error', 'total_bound', 'bad_run', 'undecodable']) dropped.inc({ reason: r }, 0);
    for (const r of ['run_bytes', 'total_bytes', 'age']) deleted.inc({ reason: r }, 0);

    const store = new RecordingStore(o.root, { maxOpenSegments: 64, idleCloseMs: 30_000, ...o.bounds }, {
      dropped: (reason, n) => dropped.inc({ reason }, n),
      deleted: (reason, bytes) => { deleted.inc({ reason }); deletedBytes.inc(bytes); },
      tornTail: (run, seq, bytes, problem) => {
        torn.inc();
        tornBytes.inc(bytes);
        ctx.log.warn({ run, segment: seq, cutBytes: bytes, problem }, 'recording: cut a torn tail');
      },
      written: (events, bytes) => { recorded.inc(events); recordedBytes.inc(bytes); },
    }, ctx.log);
    await store.load();
    new Gauge({ name: 'ringcast_recording_bytes', help: 'Bytes of recordings on disk', registers: [m], collect() { this.set(store.status().bytes); } });
    new Gauge({ name: 'ringcast_recording_runs', help: 'Runs with a recording on disk', registers: [m], collect() { this.set(store.status().runs); } });

    // ── recording ──
    let undecodable = 0;
    const onRecord = (data: Uint8Array, offset: number, length: number) => {
      try {
        const rec = readIngestRecord(data, offset, length);
        if (rec.eventLength < EVENT_HEADER_BYTES) throw new Error('record holds no event');
        const time = eventTime(data, rec.eventOffset, rec.receivedAt);
        const eventBytes = data.subarray(rec.eventOffset, rec.eventOffset + rec.eventLength);
        store.append(rec.run, time, eventStep(eventBytes), rec.receivedAt, eventBytes);
      } catch (error) {
        dropped.inc({ reason: 'undecodable' });
        if (undecodable++ < 5) ctx.log.warn({ err: (error as Error).message }, 'recorder: skipped an unreadable record');
      }
    };
    const loop = (async () => {
      if (!(inRing instanceof RecordRing)) return;
      let yieldAt = performance.now() + 5;
      for (;;) {
        const n = inRing.poll(onRecord, BATCH);
        if (n > 0) store.flush();
        if (n === 0) {
          if (ctx.signal.aborted) break;
          await inRing.waitReadableAsync(IDLE_WAIT_MS);
          yieldAt = performance.now() + 5;
        } else if (performance.now() >= yieldAt) {
          await new Promise((r) => setImmediate(r));
          yieldAt = performance.now() + 5;
        }
      }
      store.flush();
    })();
    const housekeeping = setInterval(() => store.closeIdle(), HOUSEKEEPING_MS);
    const ageCheck = setInterval(() => store.enforceAge(), AGE_CHECK_MS);

    // ── replays ──
    const replays = new Map<string, Replay>();
    let nextReplay = 1;
    const running = () => [...replays.values()].filter((r) => r.state === 'running');
    new Gauge({ name: 'ringcast_replays_active', help: 'Replays running now', registers: [m], collect() { this.set(running().length); } });
    const prune = () => {
      const finished = [...replays.values()].filter((r) => r.state !== 'running');
      for (const r of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) replays.delete(r.id);
    };
    const begin = (request: ReplayRequest): Replay => {
      const n = nextReplay++;
      const id = `r${n}-${Date.now().toString(36)}`;
      const replay = new Replay(id, request, replayRing, (REPLAY_PRODUCER_BASE + (n & 0xffffff)) >>> 0, store.has(request.run) ? store.span(request.run) : { firstTime: null, lastTime: null }, () => replayEvents.inc());
      replays.set(id, replay);
      void replay.done.then(() => {
        ctx.log.info({ replay: replay.info() }, 'replay ended');
        prune();
      });
      ctx.log.info({ id, run: request.run, asRun: request.asRun, speed: request.speed }, 'replay started');
      return replay;
    };

    const startReplay = (q: { run: string; asRun: string; speed: number; fromStep?: number; toStep?: number }): StartReplayResult => {
      if (!isValidRunName(q.run) || !store.has(q.run)) return { ok: false, status: 404, error: `no recording of run ${JSON.stringify(q.run)}` };
      if (running().length >= o.maxReplays) return { ok: false, status: 429, error: `${o.maxReplays} replays are running already (the most at once); stop one first` };
      if (running().some((r) => r.request.asRun === q.asRun)) return { ok: false, status: 409, error: `a replay is already playing as run ${JSON.stringify(q.asRun)}` };
      if (q.asRun === q.run && store.list().find((l) => l.run === q.run)?.recording) return { ok: false, status: 409, error: `run ${JSON.stringify(q.run)} is being recorded now; replay it under another name` };
      const replay = begin({ run: q.run, dir: store.dirOf(q.run), asRun: q.asRun, speed: q.speed, fromStep: q.fromStep, toStep: q.toStep });
      return { ok: true, replay: replay.info() };
    };

    if (o.startReplay && ctx.incarnation === 0) {
      const dir = path.resolve(o.startReplay.dir);
      const run = path.basename(dir);
      begin({ run, dir, asRun: run, speed: o.startReplay.speed });
    }

    /** Stops the replay with this id, or every running replay of this recorded run; the ids stopped. */
    const stopReplay = (which: { id?: string; run?: string }): string[] => {
      const stopped: string[] = [];
      for (const r of replays.values()) {
        // One already asked to stop was stopped by that request, not by this one.
        if (r.state !== 'running' || r.stopRequested) continue;
        if ((which.id !== undefined && r.id === which.id) || (which.run !== undefined && r.request.run === which.run)) {
          r.stop();
          stopped.push(r.id);
        }
      }
      return stopped;
    };

    ctx.log.info({ root: o.root, recording: inRing !== undefined, runs: store.status().runs }, 'recorder started');
    return {
      api: {
        list: (): RunListing[] => store.list(),
        status: () => ({ ...store.status(), recording: inRing !== undefined, replays: running().length }),
        replays: (): ReplayInfo[] => [...replays.values()].map((r) => r.info()),
        startReplay,
        stopReplay,
        knownReplay: (id: string) => replays.has(id),
      },
      async stop() {
        for (const r of replays.values()) r.stop();
        await Promise.all([...replays.values()].map((r) => r.done));
        await loop;
        clearInterval(housekeeping);
        clearInterval(ageCheck);
        store.close();
        return { ...store.status() };
      },
    };
  },
});
