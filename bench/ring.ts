/**
 * Ring benchmark: one producer thread -> one consumer thread, rings against postMessage.
 *
 *   small   64 B records through a RecordRing (batched publish and per-record publish)
 *           vs postMessage per 64 records (the same batching: the headline) and per record
 *   medium  9216 B (9x256 f32 SE weights) and 54108 B (13527 f32 policy) records
 *           through a RecordRing vs postMessage clone, transfer with buffers returned and
 *           reused, and transfer of a fresh buffer per message
 *   frames  3686400 B (1280x720 RGBA) and 8294400 B (1920x1080 RGBA) through a SlotRing
 *           (queue mode, read in place) vs the same three; the like-for-like rows write
 *           and read every byte on both sides (full touch)
 *   handoff one timestamped record at a time, 1 ms apart, consumer asleep in
 *           waitReadable; latency = consumer clock - producer stamp (shared monotonic
 *           clock). Also: consumer still spinning, postMessage one-way and round trip.
 *
 * Throughput = records delivered / (consumer's last delivery - producer's start), each
 * run `durationMs` long, median of `reps` runs. Every transport has bounded in-flight
 * data (ring capacity, or a postMessage window with the same number of messages), so
 * nothing queues without limit. Worker side: bench/workers/ring-worker.ts.
 *
 * Restart latency is measured by the supervisor's own module, dist/bench/ring-restart.js,
 * merged in when present.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { RecordRing } from '../src/shared/record-ring.js';
import { SlotRing } from '../src/shared/slot-ring.js';
import { median, percentile, sig } from './lib/stats.js';
import type { BenchOptions, BenchResult } from './lib/types.js';
import type { Job, Method, WorkerResult } from './workers/ring-worker.js';

const WORKER_URL = new URL('./workers/ring-worker.js', import.meta.url);
const C_GO = 0;
const C_TOTAL = 2;

const SMALL = 64;
const SE_WEIGHTS = 9 * 256 * 4; // 9216
const POLICY = 13527 * 4; // 54108
const FRAME_720P = 1280 * 720 * 4; // 3686400
const FRAME_1080P = 1920 * 1080 * 4; // 8294400
const FRAME_SLOTS = 4;
const MEDIUM_RING_BYTES = 4 << 20;
const SMALL_RING_BYTES = 1 << 20;

interface Pair {
  producer: WorkerResult;
  consumer: WorkerResult;
}

function startWorker(job: Job, transfer: MessagePort[]): { worker: Worker; ready: Promise<void>; result: Promise<WorkerResult> } {
  const worker = new Worker(WORKER_URL, { workerData: job, transferList: transfer });
  let onReady!: () => void;
  const ready = new Promise<void>((r) => { onReady = r; });
  const result = new Promise<WorkerResult>((resolve, reject) => {
    worker.on('message', (m: { type: string; result?: WorkerResult }) => {
      if (m.type === 'ready') onReady();
      else if (m.type === 'result') resolve(m.result!);
    });
    worker.on('error', reject);
    worker.on('exit', (code) => reject(new Error(`bench ${job.role} (${job.method}/${job.kind}) exited with code ${code} before reporting`)));
  });
  return { worker, ready, result };
}

async function runPair(base: Omit<Job, 'role' | 'ctl' | 'port' | 'returnPort'>, timeoutMs: number): Promise<Pair> {
  const ctl = new SharedArrayBuffer(64);
  const ctlI32 = new Int32Array(ctl);
  ctlI32[C_TOTAL] = -1;
  const usesPort = base.method === 'clone' || base.method === 'clone-batch' || base.method === 'transfer' || base.method === 'transfer-reuse' || base.kind === 'rtt';
  const channel = usesPort ? new MessageChannel() : undefined;
  // Buffers travel back to the producer on a second channel, so they can be refilled.
  const back = base.method === 'transfer-reuse' ? new MessageChannel() : undefined;
  const consumerPorts = [channel?.port2, back?.port2].filter((x): x is MessagePort => x !== undefined);
  const producerPorts = [channel?.port1, back?.port1].filter((x): x is MessagePort => x !== undefined);
  const consumer = startWorker({ ...base, role: 'consumer', ctl, port: channel?.port2, returnPort: back?.port2 }, consumerPorts);
  const producer = startWorker({ ...base, role: 'producer', ctl, port: channel?.port1, returnPort: back?.port1 }, producerPorts);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.all([consumer.ready, producer.ready]);
    Atomics.store(ctlI32, C_GO, 1);
    Atomics.notify(ctlI32, C_GO);
    const timeout = new Promise<never>((_r, reject) => {
      timer = setTimeout(() => reject(new Error(`bench ${base.method}/${base.kind} size ${base.size} did not finish in ${timeoutMs} ms`)), timeoutMs);
    });
    const [p, c] = await Promise.race([Promise.all([producer.result, consumer.result]), timeout]);
    return { producer: p, consumer: c };
  } finally {
    clearTimeout(timer);
    producer.worker.removeAllListeners('exit');
    consumer.worker.removeAllListeners('exit');
    await Promise.all([producer.worker.terminate(), consumer.worker.terminate()]);
  }
}

interface Throughput {
  perSec: number;
  mbPerSec: number;
}

async function throughput(method: Method, size: number, durationMs: number, reps: number, touch: 'stamp' | 'full' = 'stamp'): Promise<Throughput> {
  const rates: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    let sab: SharedArrayBuffer | undefined;
    let window = 4;
    if (method === 'ring' || method === 'ring-unbatched') {
      const ring = RecordRing.create({ capacityBytes: size <= 4096 ? SMALL_RING_BYTES : MEDIUM_RING_BYTES, policy: 'block', blockTimeoutMs: 2000, name: 'bench' });
      sab = ring.sab;
    } else if (method === 'slot') {
      sab = SlotRing.create({ slots: FRAME_SLOTS, slotBytes: size, mode: 'queue', policy: 'block', blockTimeoutMs: 2000, name: 'bench' }).sab;
    } else {
      // The same number of messages in flight as the ring would hold.
      window = size <= 4096 ? 4096 : size < 1 << 20 ? Math.max(4, Math.floor(MEDIUM_RING_BYTES / (size + 8))) : FRAME_SLOTS;
      if (method === 'clone-batch') window = 64;
    }
    const pair = await runPair({ kind: 'throughput', method, size, touch, durationMs, sab, window, batch: 64, samples: 0, gapMs: 0, spinUs: 0 }, durationMs + 30_000);
    const { consumer, producer } = pair;
    if (consumer.errors > 0 || producer.errors > 0) {
      throw new Error(`bench ${method} size ${size}: ${consumer.errors} corrupt records, ${producer.errors} refused by the transport`);
    }
    if (consumer.received !== producer.received) {
      throw new Error(`bench ${method} size ${size}: produced ${producer.received}, delivered ${consumer.received}`);
    }
    rates.push(consumer.received / ((consumer.tLastUs - consumer.tStartUs) / 1e6));
  }
  const perSec = median(rates);
  return { perSec, mbPerSec: (perSec * size) / 1e6 };
}

interface Latency {
  p50: number;
  p99: number;
}

async function handoff(method: 'ring' | 'clone', kind: 'handoff' | 'rtt', samples: number, gapMs: number, spinUs: number): Promise<Latency> {
  const sab = method === 'ring' ? RecordRing.create({ capacityBytes: 4096, name: 'handoff' }).sab : undefined;
  const pair = await runPair({ kind, method, size: 8, touch: 'stamp', durationMs: 0, sab, window: 1, batch: 1, samples, gapMs, spinUs }, samples * gapMs * 4 + 30_000);
  const source = kind === 'rtt' ? pair.producer : pair.consumer;
  if (source.errors > 0) throw new Error(`handoff ${method}/${kind}: ${source.errors} samples lost`);
  const lat = (source.latenciesUs ?? []).slice(Math.min(20, Math.floor(samples / 10))); // drop warm-up
  return { p50: percentile(lat, 50), p99: percentile(lat, 99) };
}

async function restartFigures(opts: BenchOptions): Promise<{ figures: Record<string, number>; note: string }> {
  try {
    const mod = (await import(new URL('./ring-restart.js', import.meta.url).href)) as {
      measureRestart?: (o: { quick: boolean }) => Promise<Record<string, number>>;
    };
    if (typeof mod.measureRestart !== 'function') return { figures: {}, note: 'ring-restart.js has no measureRestart(); restart figures skipped' };
    const r = await mod.measureRestart({ quick: opts.quick });
    // restart_p50_ms and restart_p99_ms at least; keep whatever else it measured.
    const figures: Record<string, number> = {};
    for (const [k, v] of Object.entries(r)) if (typeof v === 'number' && Number.isFinite(v)) figures[k] = v;
    return { figures, note: 'restart_* figures from dist/bench/ring-restart.js (supervisor owner)' };
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND') return { figures: {}, note: 'dist/bench/ring-restart.js not present; restart figures skipped' };
    return { figures: {}, note: `restart measurement failed: ${(err as Error).message}` };
  }
}

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const quick = opts.quick;
  const dur = quick ? 250 : 1200;
  const reps = quick ? 1 : 3;
  const figures: Record<string, number> = {};
  const baseline: Record<string, number> = {};
  const log = (s: string) => process.stderr.write(`  ${s}\n`);
  // MB/s of payload against payload size, every byte written and read on both sides (report chart).
  const series: Record<string, Array<[number, number]>> = {
    ring_fulltouch_mb_per_s: [],
    postmessage_clone_fulltouch_mb_per_s: [],
    postmessage_transfer_reuse_fulltouch_mb_per_s: [],
    postmessage_transfer_fresh_fulltouch_mb_per_s: [],
    postmessage_batched_mb_per_s: [],
  };

  // --- small records (every word written and checked, whatever the transport)
  const smallRing = await throughput('ring', SMALL, dur, reps);
  log(`64 B ring batched: ${sig(smallRing.perSec / 1e6, 3)} M/s`);
  const smallUnbatched = await throughput('ring-unbatched', SMALL, dur, reps);
  log(`64 B ring per-record publish: ${sig(smallUnbatched.perSec / 1e6, 3)} M/s`);
  const smallClone = await throughput('clone', SMALL, dur, reps);
  log(`64 B postMessage: ${sig(smallClone.perSec / 1e3, 3)} k/s`);
  const smallCloneBatch = await throughput('clone-batch', SMALL, dur, reps);
  log(`64 B postMessage x64 batch: ${sig(smallCloneBatch.perSec / 1e6, 3)} M/s`);
  figures.small_records_per_s = smallRing.perSec;
  // The headline: the ring publishes once per 64 records, so the like-for-like postMessage carries 64 records a message.
  figures.small_ratio_vs_postmessage_batched = smallRing.perSec / smallCloneBatch.perSec;
  figures.small_unbatched_ratio_vs_postmessage = smallUnbatched.perSec / smallClone.perSec;
  figures.small_ratio_vs_postmessage = smallRing.perSec / smallClone.perSec;
  figures.small_mb_per_s = smallRing.mbPerSec;
  figures.small_unbatched_records_per_s = smallUnbatched.perSec;
  figures.small_postmessage_per_s = smallClone.perSec;
  figures.small_postmessage_batch64_per_s = smallCloneBatch.perSec;
  baseline.small_records_per_s = smallCloneBatch.perSec;
  baseline.small_unbatched_records_per_s = smallClone.perSec;
  series.ring_fulltouch_mb_per_s.push([SMALL, smallRing.mbPerSec]);
  series.postmessage_clone_fulltouch_mb_per_s.push([SMALL, smallClone.mbPerSec]);
  series.postmessage_batched_mb_per_s.push([SMALL, smallCloneBatch.mbPerSec]);

  // --- medium records and frames, stamped: one word per 4 KiB page, so this is the hand-over alone
  for (const [label, size] of [['9k', SE_WEIGHTS], ['54k', POLICY]] as const) {
    const r = await throughput('ring', size, dur, reps);
    const c = await throughput('clone', size, dur, reps);
    const t = await throughput('transfer', size, dur, reps);
    log(`${size} B stamped: ring ${sig(r.perSec, 3)}/s, clone ${sig(c.perSec, 3)}/s, transfer ${sig(t.perSec, 3)}/s`);
    figures[`rec_${label}_per_s`] = r.perSec;
    figures[`rec_${label}_mb_per_s`] = r.mbPerSec;
    figures[`rec_${label}_clone_per_s`] = c.perSec;
    figures[`rec_${label}_transfer_per_s`] = t.perSec;
    figures[`rec_${label}_ratio_vs_transfer`] = r.perSec / t.perSec;
    figures[`rec_${label}_ratio_vs_clone`] = r.perSec / c.perSec;
  }
  for (const [label, size] of [['3mb', FRAME_720P], ['8mb', FRAME_1080P]] as const) {
    const sl = await throughput('slot', size, dur, reps);
    const c = await throughput('clone', size, dur, reps);
    const t = await throughput('transfer', size, dur, reps);
    log(`${size} B frames stamped: slot ${sig(sl.perSec, 3)}/s, clone ${sig(c.perSec, 3)}/s, transfer ${sig(t.perSec, 3)}/s`);
    figures[`frame_${label}_per_s`] = sl.perSec;
    figures[`frame_${label}_mb_per_s`] = sl.mbPerSec;
    figures[`frame_${label}_clone_per_s`] = c.perSec;
    figures[`frame_${label}_transfer_per_s`] = t.perSec;
    const suffix = label === '8mb' ? '' : '_3mb';
    figures[`frame${suffix}_ratio_vs_transfer`] = sl.perSec / t.perSec;
    figures[`frame${suffix}_ratio_vs_clone`] = sl.perSec / c.perSec;
  }

  // --- the same sizes with every byte written by the producer and read by the consumer, for every
  // transport: what a renderer/encoder pair pays, and the comparison the README quotes
  for (const [label, size, ringMethod] of [['9k', SE_WEIGHTS, 'ring'], ['54k', POLICY, 'ring'], ['3mb', FRAME_720P, 'slot'], ['8mb', FRAME_1080P, 'slot']] as const) {
    const r = await throughput(ringMethod, size, dur, reps, 'full');
    const c = await throughput('clone', size, dur, reps, 'full');
    const tr = await throughput('transfer-reuse', size, dur, reps, 'full');
    const tf = await throughput('transfer', size, dur, reps, 'full');
    log(`${size} B every byte written and read: ${ringMethod} ${sig(r.perSec, 3)}/s, clone ${sig(c.perSec, 3)}/s, transfer reusing buffers ${sig(tr.perSec, 3)}/s, transfer fresh ${sig(tf.perSec, 3)}/s`);
    const key = size >= FRAME_720P ? `frame_${label}_fulltouch` : `rec_${label}_fulltouch`;
    figures[`${key}_per_s`] = r.perSec;
    figures[`${key}_clone_per_s`] = c.perSec;
    figures[`${key}_transfer_reuse_per_s`] = tr.perSec;
    figures[`${key}_transfer_per_s`] = tf.perSec;
    figures[`${key}_ratio_vs_transfer_reuse`] = r.perSec / tr.perSec;
    figures[`${key}_ratio_vs_transfer`] = r.perSec / tf.perSec;
    figures[`${key}_ratio_vs_clone`] = r.perSec / c.perSec;
    baseline[`${key}_per_s`] = tr.perSec;
    series.ring_fulltouch_mb_per_s.push([size, r.mbPerSec]);
    series.postmessage_clone_fulltouch_mb_per_s.push([size, c.mbPerSec]);
    series.postmessage_transfer_reuse_fulltouch_mb_per_s.push([size, tr.mbPerSec]);
    series.postmessage_transfer_fresh_fulltouch_mb_per_s.push([size, tf.mbPerSec]);
  }
  // Names kept from earlier results, now against the transfer a user would write (buffers reused).
  figures.frame_fulltouch_ratio_vs_transfer = figures.frame_8mb_fulltouch_ratio_vs_transfer_reuse;
  figures.rec_54k_fulltouch_ratio_vs_transfer = figures.rec_54k_fulltouch_ratio_vs_transfer_reuse;

  // --- wake-up hand-off latency, reported both ways round: where the ring wins and where it loses
  const samples = quick ? 300 : 2000;
  const gapMs = 1;
  const sleeping = await handoff('ring', 'handoff', samples, gapMs, 20);
  const spinning = await handoff('ring', 'handoff', quick ? 200 : 1000, gapMs, 5000);
  const pmOneWay = await handoff('clone', 'handoff', samples, gapMs, 0);
  const pmRtt = await handoff('clone', 'rtt', quick ? 200 : 1000, gapMs, 0);
  log(`handoff p50: ring asleep ${sig(sleeping.p50, 3)} µs, ring spinning ${sig(spinning.p50, 3)} µs, postMessage ${sig(pmOneWay.p50, 3)} µs, rtt ${sig(pmRtt.p50, 3)} µs`);
  figures.handoff_p50_us = sleeping.p50;
  figures.handoff_p99_us = sleeping.p99;
  figures.handoff_spinning_p50_us = spinning.p50;
  figures.handoff_spinning_p99_us = spinning.p99;
  figures.postmessage_handoff_p50_us = pmOneWay.p50;
  figures.postmessage_handoff_p99_us = pmOneWay.p99;
  figures.postmessage_rtt_p50_us = pmRtt.p50;
  // > 1: the ring takes longer than postMessage to wake an idle consumer.
  figures.handoff_asleep_ring_over_postmessage = sleeping.p50 / pmOneWay.p50;
  figures.handoff_spinning_ring_over_postmessage = spinning.p50 / pmOneWay.p50;
  baseline.handoff_p50_us = pmOneWay.p50;
  baseline.handoff_p99_us = pmOneWay.p99;
  baseline.handoff_spinning_p50_us = pmOneWay.p50;

  const restart = await restartFigures(opts);
  Object.assign(figures, restart.figures);

  const bar = (ok: boolean, text: string) => `${ok ? 'PASS' : 'MISS'} ${text}`;
  const notes = [
    'headline small_ratio_vs_postmessage_batched: the ring publishes once per 64 records (commit(false), flush() every 64), against postMessage carrying the same 64 records per message; small_ratio_vs_postmessage (one record per message) compares unlike batching and is kept only as a raw figure',
    'records <= 4 KiB: every u32 word written and checked for every transport. *_fulltouch_*: the producer writes every u32 of the payload and the consumer reads and checks every u32, for every transport: the like-for-like comparison. Figures without _fulltouch write one u32 stamp per 4 KiB page plus the last word, so their *_mb_per_s counts bytes handed over, not bytes touched (raw figures, not a fair comparison)',
    'transfer_reuse: the consumer transfers each buffer back and the producer refills it (a pool as large as the in-flight window), as a user would; transfer (fresh): a new ArrayBuffer per message; clone copies the payload',
    `throughput: ${reps === 1 ? 'one run' : `median of ${reps} runs`} of ${dur} ms each; postMessage runs keep as many messages in flight as the ring holds (4096 small, 64 batched, ring bytes/size medium, ${FRAME_SLOTS} frames)`,
    `frames: SlotRing queue mode, ${FRAME_SLOTS} slots, policy block; medium records: RecordRing of ${MEDIUM_RING_BYTES >> 20} MiB, policy block`,
    `handoff: ${samples} records ${gapMs} ms apart; ring asleep = consumer in waitReadable (spin 20 µs, then Atomics.wait), ring spinning = consumer still spinning when the record lands, postmessage = one-way postMessage to an idle event loop. handoff_asleep_ring_over_postmessage > 1 means the ring is slower than postMessage at waking an idle consumer (${sig(figures.handoff_asleep_ring_over_postmessage, 3)}x here)`,
    'ratios column: *_per_s against the same-work postMessage (batched for small, transfer with buffer reuse for full-touch); handoff against postMessage one-way, so ratio > 1 is worse',
    bar(figures.small_records_per_s >= 10e6, `small_records_per_s >= 10 M/s (${sig(figures.small_records_per_s / 1e6, 3)} M/s)`),
    bar(figures.frame_8mb_per_s >= 1500, `frame_8mb_per_s >= 1500 (${sig(figures.frame_8mb_per_s, 4)}, stamped)`),
    bar(figures.handoff_p50_us < 10, `handoff_p50_us < 10 (${sig(figures.handoff_p50_us, 3)})`),
    restart.note,
  ];
  return { figures, baseline, notes, series };
}
