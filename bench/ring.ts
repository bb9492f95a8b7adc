/**
 * Ring benchmark: one producer thread -> one consumer thread, rings against postMessage.
 *
 *   small   64 B records through a RecordRing (batched publish and per-record publish)
 *           vs postMessage per record (structured clone) and per 64 records
 *   medium  9216 B (9x256 f32 SE weights) and 54108 B (13527 f32 policy) records
 *           through a RecordRing vs postMessage clone and postMessage transfer
 *   frames  3686400 B (1280x720 RGBA) and 8294400 B (1920x1080 RGBA) through a SlotRing
 *           (queue mode, read in place) vs clone and transfer
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

async function runPair(base: Omit<Job, 'role' | 'ctl' | 'port'>, timeoutMs: number): Promise<Pair> {
  const ctl = new SharedArrayBuffer(64);
  const ctlI32 = new Int32Array(ctl);
  ctlI32[C_TOTAL] = -1;
  const usesPort = base.method === 'clone' || base.method === 'clone-batch' || base.method === 'transfer' || base.kind === 'rtt';
  const channel = usesPort ? new MessageChannel() : undefined;
  const consumer = startWorker({ ...base, role: 'consumer', ctl, port: channel?.port2 }, channel ? [channel.port2] : []);
  const producer = startWorker({ ...base, role: 'producer', ctl, port: channel?.port1 }, channel ? [channel.port1] : []);
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

  // --- small records
  const smallRing = await throughput('ring', SMALL, dur, reps);
  log(`64 B ring batched: ${sig(smallRing.perSec / 1e6, 3)} M/s`);
  const smallUnbatched = await throughput('ring-unbatched', SMALL, dur, reps);
  log(`64 B ring per-record publish: ${sig(smallUnbatched.perSec / 1e6, 3)} M/s`);
  const smallClone = await throughput('clone', SMALL, dur, reps);
  log(`64 B postMessage: ${sig(smallClone.perSec / 1e3, 3)} k/s`);
  const smallCloneBatch = await throughput('clone-batch', SMALL, dur, reps);
  log(`64 B postMessage x64 batch: ${sig(smallCloneBatch.perSec / 1e6, 3)} M/s`);
  figures.small_records_per_s = smallRing.perSec;
  figures.small_ratio_vs_postmessage = smallRing.perSec / smallClone.perSec;
  figures.small_mb_per_s = smallRing.mbPerSec;
  figures.small_unbatched_records_per_s = smallUnbatched.perSec;
  figures.small_postmessage_per_s = smallClone.perSec;
  figures.small_postmessage_batch64_per_s = smallCloneBatch.perSec;
  baseline.small_records_per_s = smallClone.perSec;
  baseline.small_unbatched_records_per_s = smallClone.perSec;

  // --- medium records
  for (const [label, size] of [['9k', SE_WEIGHTS], ['54k', POLICY]] as const) {
    const r = await throughput('ring', size, dur, reps);
    const c = await throughput('clone', size, dur, reps);
    const t = await throughput('transfer', size, dur, reps);
    log(`${size} B: ring ${sig(r.perSec, 3)}/s, clone ${sig(c.perSec, 3)}/s, transfer ${sig(t.perSec, 3)}/s`);
    figures[`rec_${label}_per_s`] = r.perSec;
    figures[`rec_${label}_mb_per_s`] = r.mbPerSec;
    figures[`rec_${label}_clone_per_s`] = c.perSec;
    figures[`rec_${label}_transfer_per_s`] = t.perSec;
    figures[`rec_${label}_ratio_vs_transfer`] = r.perSec / t.perSec;
    figures[`rec_${label}_ratio_vs_clone`] = r.perSec / c.perSec;
    baseline[`rec_${label}_per_s`] = t.perSec;
  }

  // --- frames
  for (const [label, size] of [['3mb', FRAME_720P], ['8mb', FRAME_1080P]] as const) {
    const s = await throughput('slot', size, dur, reps);
    const c = await throughput('clone', size, dur, reps);
    const t = await throughput('transfer', size, dur, reps);
    log(`${size} B frames: slot ${sig(s.perSec, 3)}/s, clone ${sig(c.perSec, 3)}/s, transfer ${sig(t.perSec, 3)}/s`);
    figures[`frame_${label}_per_s`] = s.perSec;
    figures[`frame_${label}_mb_per_s`] = s.mbPerSec;
    figures[`frame_${label}_clone_per_s`] = c.perSec;
    figures[`frame_${label}_transfer_per_s`] = t.perSec;
    if (label === '8mb') {
      figures.frame_ratio_vs_transfer = s.perSec / t.perSec;
      figures.frame_ratio_vs_clone = s.perSec / c.perSec;
    } else {
      figures.frame_3mb_ratio_vs_transfer = s.perSec / t.perSec;
      figures.frame_3mb_ratio_vs_clone = s.perSec / c.perSec;
    }
    baseline[`frame_${label}_per_s`] = t.perSec;
  }

  // --- payloads where the producer writes and the consumer reads every byte (context for the above)
  {
    const r = await throughput('ring', POLICY, dur, reps, 'full');
    const c = await throughput('clone', POLICY, dur, reps, 'full');
    const t = await throughput('transfer', POLICY, dur, reps, 'full');
    log(`${POLICY} B records, every byte written and read: ring ${sig(r.perSec, 3)}/s, clone ${sig(c.perSec, 3)}/s, transfer ${sig(t.perSec, 3)}/s`);
    figures.rec_54k_fulltouch_per_s = r.perSec;
    figures.rec_54k_fulltouch_clone_per_s = c.perSec;
    figures.rec_54k_fulltouch_transfer_per_s = t.perSec;
    figures.rec_54k_fulltouch_ratio_vs_transfer = r.perSec / t.perSec;
  }
  {
    const s = await throughput('slot', FRAME_1080P, dur, reps, 'full');
    const t = await throughput('transfer', FRAME_1080P, dur, reps, 'full');
    log(`${FRAME_1080P} B frames, every byte written and read: slot ${sig(s.perSec, 3)}/s, transfer ${sig(t.perSec, 3)}/s`);
    figures.frame_8mb_fulltouch_per_s = s.perSec;
    figures.frame_8mb_fulltouch_transfer_per_s = t.perSec;
    figures.frame_fulltouch_ratio_vs_transfer = s.perSec / t.perSec;
  }

  // --- wake-up hand-off latency
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
  baseline.handoff_p50_us = pmOneWay.p50;
  baseline.handoff_p99_us = pmOneWay.p99;

  const restart = await restartFigures(opts);
  Object.assign(figures, restart.figures);

  const bar = (ok: boolean, text: string) => `${ok ? 'PASS' : 'MISS'} ${text}`;
  const notes = [
    'same producer-side work for every transport: records <= 4 KiB have every u32 word written; larger ones get one u32 stamp per 4 KiB page plus the last word; the consumer verifies them. Clone copies the whole payload, transfer allocates a fresh ArrayBuffer per message (its pages fault in when stamped), the rings write in place and the consumer reads in place',
    `throughput: ${reps === 1 ? 'one run' : `median of ${reps} runs`} of ${dur} ms each; postMessage runs keep as many messages in flight as the ring holds (4096 small, ring bytes/size medium, ${FRAME_SLOTS} frames)`,
    '*_mb_per_s counts payload bytes handed over, not bytes touched: with stamps only a few words per 4 KiB page are written and read. *_fulltouch_*: the producer writes every u32 of the payload (fill) and the consumer reads and checks every u32, for both transports, which is what a real renderer/encoder pair pays on top of the transport',
    'small_records_per_s: RecordRing with commit(false) and flush() every 64 records; small_unbatched_records_per_s publishes every record',
    `frames: SlotRing queue mode, ${FRAME_SLOTS} slots, policy block; medium records: RecordRing of ${MEDIUM_RING_BYTES >> 20} MiB, policy block`,
    `handoff: ${samples} records ${gapMs} ms apart, consumer asleep in waitReadable (spin 20 µs, then Atomics.wait); handoff_spinning_*: consumer still spinning when the record lands; postmessage_handoff_*: one-way postMessage to an idle event loop; baseline.handoff_* is postMessage, so ratio < 1 is better`,
    'ratios: baseline for *_per_s figures is postMessage transfer (medium, frames) or postMessage clone (small)',
    bar(figures.small_records_per_s >= 10e6, `small_records_per_s >= 10 M/s (${sig(figures.small_records_per_s / 1e6, 3)} M/s)`),
    bar(figures.small_ratio_vs_postmessage >= 20, `small_ratio_vs_postmessage >= 20 (${sig(figures.small_ratio_vs_postmessage, 3)})`),
    bar(figures.frame_8mb_per_s >= 1500, `frame_8mb_per_s >= 1500 (${sig(figures.frame_8mb_per_s, 4)})`),
    bar(figures.frame_ratio_vs_clone >= 5, `frame_ratio_vs_clone >= 5 (${sig(figures.frame_ratio_vs_clone, 3)})`),
    bar(figures.frame_ratio_vs_transfer >= 1.5, `frame_ratio_vs_transfer >= 1.5 (${sig(figures.frame_ratio_vs_transfer, 3)})`),
    bar(figures.handoff_p50_us < 10, `handoff_p50_us < 10 (${sig(figures.handoff_p50_us, 3)})`),
    restart.note,
  ];
  return { figures, baseline, notes };
}
