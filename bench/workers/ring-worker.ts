/**
 * Worker side of bench/ring.ts: one producer or one consumer thread per job.
 *
 * Every method does the same producer-side work per message so that only the
 * transport differs:
 *   size <= 4 KiB   fill every u32 word: word k = seq + k
 *   size  > 4 KiB   stamp word 0 of every 4 KiB page: (seq * 31 + k), k = word index,
 *                   and the last word: ~seq (the rest of the payload is left as is)
 * and the consumer checks the first and last word (small) or every stamp (large).
 * What differs is inherent to each transport: the ring writes into shared memory in
 * place; structured clone copies the buffer (twice: serialize, deserialize); transfer
 * needs a fresh ArrayBuffer per message, whose pages the stamps then fault in, unless
 * ('transfer-reuse', what a user would write) the consumer transfers each buffer back and
 * the producer refills it: a pool of `window` buffers going round.
 *
 * Control words (ctl SharedArrayBuffer, i32): see C_* below; f64 word 8 is the
 * producer's start time (µs, bench/lib/clock.ts).
 */
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { RecordRing } from '../../src/shared/record-ring.js';
import { SlotRing } from '../../src/shared/slot-ring.js';
import { nowUs } from '../lib/clock.js';

export type Method = 'ring' | 'ring-unbatched' | 'slot' | 'clone' | 'clone-batch' | 'transfer' | 'transfer-reuse';

export interface Job {
  role: 'producer' | 'consumer';
  kind: 'throughput' | 'handoff' | 'rtt';
  method: Method;
  size: number;
  /** 'full': payloads > 4 KiB are written and checked in full instead of stamped. */
  touch: 'stamp' | 'full';
  durationMs: number;
  ctl: SharedArrayBuffer;
  sab?: SharedArrayBuffer;
  port?: MessagePort;
  /** 'transfer-reuse': the consumer transfers each buffer back on this port for the producer to refill. */
  returnPort?: MessagePort;
  /** postMessage flow control: most messages in flight. */
  window: number;
  /** records per postMessage in 'clone-batch'. */
  batch: number;
  samples: number;
  gapMs: number;
  spinUs: number;
}

export interface WorkerResult {
  received: number;
  errors: number;
  tStartUs: number;
  tLastUs: number;
  latenciesUs?: number[];
}

export const C_GO = 0;
export const C_CONSUMED = 1;
export const C_TOTAL = 2; // -1 until the producer is done
export const C_SLEEP = 3; // dummy word the producer sleeps on between hand-offs
export const F_START = 4; // f64 index (byte 32)

const job = workerData as Job;
const ctl = new Int32Array(job.ctl, 0, 4);
const ctlF64 = new Float64Array(job.ctl, 0, 8);

const full = job.touch === 'full';

function fill(i32: Int32Array, base: number, size: number, seq: number): void {
  const words = size >> 2;
  if (full && size > 4096) {
    i32.fill(seq, base, base + words);
  } else if (size <= 4096) {
    for (let k = 0; k < words; k++) i32[base + k] = (seq + k) | 0;
  } else {
    for (let k = 0; k < words; k += 1024) i32[base + k] = (seq * 31 + k) | 0;
    i32[base + words - 1] = ~seq;
  }
}

function check(i32: Int32Array, base: number, size: number, seq: number): boolean {
  const words = size >> 2;
  if (full && size > 4096) {
    let bad = 0;
    for (let k = base, e = base + words; k < e; k++) bad |= i32[k] ^ seq;
    return bad === 0;
  }
  if (size <= 4096) return i32[base] === (seq | 0) && i32[base + words - 1] === ((seq + words - 1) | 0);
  for (let k = 0; k < words; k += 1024) if (i32[base + k] !== ((seq * 31 + k) | 0)) return false;
  return i32[base + words - 1] === ~seq;
}

function waitGo(): void {
  while (Atomics.load(ctl, C_GO) === 0) Atomics.wait(ctl, C_GO, 0, 100);
}

function sleepMs(ms: number): void {
  Atomics.wait(ctl, C_SLEEP, 0, ms);
}

function done(result: WorkerResult): void {
  parentPort!.postMessage({ type: 'result', result });
}

// ------------------------------------------------------------------ producers

function produceRing(): void {
  const ring = RecordRing.attach(job.sab!);
  const i32 = ring.dataI32;
  const size = job.size;
  const batched = job.method === 'ring';
  waitGo();
  const t0 = nowUs();
  ctlF64[F_START] = t0;
  const end = t0 + job.durationMs * 1000;
  let seq = 0;
  let lost = 0;
  // Check the clock once per 256 records: performance.now() would cost more than a record.
  outer: for (;;) {
    for (let j = 0; j < 256; j++) {
      const at = ring.reserve(size);
      if (at < 0) { lost++; break outer; }
      fill(i32, at >> 2, size, seq);
      seq++;
      if (batched) {
        ring.commit(false);
        if ((seq & 63) === 0) ring.flush();
      } else {
        ring.commit();
      }
    }
    if (nowUs() >= end) break;
  }
  ring.flush();
  Atomics.store(ctl, C_TOTAL, seq);
  done({ received: seq, errors: lost, tStartUs: t0, tLastUs: nowUs() });
}

function produceSlot(): void {
  const ring = SlotRing.attach(job.sab!);
  const size = job.size;
  waitGo();
  const t0 = nowUs();
  ctlF64[F_START] = t0;
  const end = t0 + job.durationMs * 1000;
  let seq = 0;
  let lost = 0;
  while (nowUs() < end) {
    const i = ring.acquire();
    if (i < 0) { lost++; break; }
    fill(ring.slotI32(i), 0, size, seq);
    ring.publish(i, size);
    seq++;
  }
  Atomics.store(ctl, C_TOTAL, seq);
  done({ received: seq, errors: lost, tStartUs: t0, tLastUs: nowUs() });
}

function producePost(): void {
  const port = job.port!;
  const size = job.size;
  const words = size >> 2;
  const method = job.method;
  const batch = method === 'clone-batch' ? job.batch : 1;
  const reused = new Int32Array(words * batch);
  const pool: Int32Array<ArrayBuffer>[] = [];
  if (method === 'transfer-reuse') for (let i = 0; i < job.window; i++) pool.push(new Int32Array(words));
  waitGo();
  const t0 = nowUs();
  ctlF64[F_START] = t0;
  const end = t0 + job.durationMs * 1000;
  let seq = 0;
  let sent = 0;
  const checkEvery = size <= 4096 ? 64 : 1;
  for (;;) {
    // Flow control, like a ring's capacity: at most `window` messages in flight.
    for (;;) {
      const consumed = Atomics.load(ctl, C_CONSUMED);
      if (sent - consumed < job.window) break;
      Atomics.wait(ctl, C_CONSUMED, consumed, 20);
    }
    if (method === 'transfer') {
      const msg = new Int32Array(words); // transfer without reuse: a fresh buffer each time
      fill(msg, 0, size, seq);
      port.postMessage(msg, [msg.buffer]);
    } else if (method === 'transfer-reuse') {
      // The pool bounds what is in flight; take back whatever the consumer returned.
      for (let back = receiveMessageOnPort(job.returnPort!); back; back = receiveMessageOnPort(job.returnPort!)) pool.push(back.message as Int32Array<ArrayBuffer>);
      while (pool.length === 0) {
        Atomics.wait(ctl, C_CONSUMED, Atomics.load(ctl, C_CONSUMED), 1);
        for (let back = receiveMessageOnPort(job.returnPort!); back; back = receiveMessageOnPort(job.returnPort!)) pool.push(back.message as Int32Array<ArrayBuffer>);
      }
      const msg = pool.pop()!;
      fill(msg, 0, size, seq);
      port.postMessage(msg, [msg.buffer as ArrayBuffer]);
    } else {
      for (let b = 0; b < batch; b++) fill(reused, b * words, size, seq + b);
      port.postMessage(reused);
    }
    seq += batch;
    sent++;
    if (sent % checkEvery === 0 && nowUs() >= end) break;
  }
  port.postMessage({ end: seq });
  Atomics.store(ctl, C_TOTAL, seq);
  done({ received: seq, errors: 0, tStartUs: t0, tLastUs: nowUs() });
}

function produceHandoffRing(): void {
  const ring = RecordRing.attach(job.sab!);
  waitGo();
  for (let s = 0; s < job.samples; s++) {
    sleepMs(job.gapMs);
    const at = ring.reserve(8);
    ring.dataF64[at >> 3] = nowUs();
    ring.commit();
  }
  done({ received: job.samples, errors: 0, tStartUs: 0, tLastUs: 0 });
}

function produceHandoffPost(): void {
  const port = job.port!;
  waitGo();
  for (let s = 0; s < job.samples; s++) {
    sleepMs(job.gapMs);
    port.postMessage(nowUs());
  }
  done({ received: job.samples, errors: 0, tStartUs: 0, tLastUs: 0 });
}

async function produceRtt(): Promise<void> {
  const port = job.port!;
  const lat: number[] = [];
  let resolveEcho: (() => void) | undefined;
  port.on('message', () => resolveEcho?.());
  waitGo();
  for (let s = 0; s < job.samples; s++) {
    await new Promise((r) => setTimeout(r, job.gapMs));
    const echoed = new Promise<void>((r) => { resolveEcho = r; });
    const t0 = nowUs();
    port.postMessage(t0);
    await echoed;
    lat.push(nowUs() - t0);
  }
  port.close();
  done({ received: job.samples, errors: 0, tStartUs: 0, tLastUs: 0, latenciesUs: lat });
}

// ------------------------------------------------------------------ consumers

function consumeRing(): void {
  const ring = RecordRing.attach(job.sab!);
  const i32 = ring.dataI32;
  const size = job.size;
  let expect = 0;
  let errors = 0;
  const handler = (_d: Uint8Array, offset: number, length: number) => {
    if (length !== size || !check(i32, offset >> 2, size, expect)) errors++;
    expect++;
  };
  const tLast = drainUntilTotal(() => ring.poll(handler, 8192), (ms) => ring.waitReadable(ms), () => expect);
  done({ received: expect, errors, tStartUs: ctlF64[F_START], tLastUs: tLast });
}

/**
 * Polls until the producer has announced its total (C_TOTAL) and that many records were
 * received; returns the time of the last delivery, which ends the throughput window.
 */
function drainUntilTotal(poll: () => number, waitReadable: (ms: number) => boolean, received: () => number): number {
  let tLast = 0;
  for (;;) {
    if (poll() > 0) {
      tLast = nowUs();
      continue;
    }
    const total = Atomics.load(ctl, C_TOTAL);
    if (total >= 0 && received() >= total) return tLast;
    waitReadable(20);
  }
}

function consumeSlot(): void {
  const ring = SlotRing.attach(job.sab!);
  const size = job.size;
  let expect = 0;
  let errors = 0;
  const handler = (_v: Uint8Array, _seq: number, meta: { slot: number; length: number }) => {
    if (meta.length !== size || !check(ring.slotI32(meta.slot), 0, size, expect)) errors++;
    expect++;
  };
  const tLast = drainUntilTotal(() => ring.poll(handler), (ms) => ring.waitReadable(ms), () => expect);
  done({ received: expect, errors, tStartUs: ctlF64[F_START], tLastUs: tLast });
}

function consumePost(): void {
  const port = job.port!;
  const size = job.size;
  const words = size >> 2;
  let expect = 0;
  let errors = 0;
  let messages = 0;
  let tLast = 0;
  const notifyEvery = job.window >= 256 ? 64 : 1;
  port.on('message', (msg: Int32Array | { end: number }) => {
    if (msg instanceof Int32Array) {
      const n = msg.length / words;
      for (let b = 0; b < n; b++) {
        if (!check(msg, b * words, size, expect)) errors++;
        expect++;
      }
      messages++;
      tLast = nowUs();
      if (job.returnPort) job.returnPort.postMessage(msg, [msg.buffer as ArrayBuffer]);
      if (messages % notifyEvery === 0) {
        Atomics.store(ctl, C_CONSUMED, messages);
        Atomics.notify(ctl, C_CONSUMED);
      }
    } else {
      if (msg.end !== expect) errors++;
      port.close();
      job.returnPort?.close();
      done({ received: expect, errors, tStartUs: ctlF64[F_START], tLastUs: tLast });
    }
  });
}

function consumeHandoffRing(): void {
  const ring = RecordRing.attach(job.sab!);
  ring.spinUs = job.spinUs;
  const lat: number[] = [];
  const f64 = ring.dataF64;
  const handler = (_d: Uint8Array, offset: number) => {
    lat.push(nowUs() - f64[offset >> 3]);
  };
  while (lat.length < job.samples) {
    if (ring.waitReadable(1000)) ring.poll(handler);
    else break;
  }
  done({ received: lat.length, errors: job.samples - lat.length, tStartUs: 0, tLastUs: 0, latenciesUs: lat });
}

function consumeHandoffPost(): void {
  const port = job.port!;
  const lat: number[] = [];
  port.on('message', (stamp: number) => {
    lat.push(nowUs() - stamp);
    if (lat.length === job.samples) {
      port.close();
      done({ received: lat.length, errors: 0, tStartUs: 0, tLastUs: 0, latenciesUs: lat });
    }
  });
}

function consumeRtt(): void {
  const port = job.port!;
  let n = 0;
  port.on('message', (stamp: number) => {
    port.postMessage(stamp);
    if (++n === job.samples) {
      port.close();
      done({ received: n, errors: 0, tStartUs: 0, tLastUs: 0 });
    }
  });
}

// ------------------------------------------------------------------ dispatch

const ring = job.method === 'ring' || job.method === 'ring-unbatched';
parentPort!.postMessage({ type: 'ready' });
if (job.role === 'producer') {
  if (job.kind === 'handoff') (ring ? produceHandoffRing : produceHandoffPost)();
  else if (job.kind === 'rtt') void produceRtt();
  else if (ring) produceRing();
  else if (job.method === 'slot') produceSlot();
  else producePost();
} else {
  if (job.kind === 'handoff') (ring ? consumeHandoffRing : consumeHandoffPost)();
  else if (job.kind === 'rtt') consumeRtt();
  else if (ring) consumeRing();
  else if (job.method === 'slot') consumeSlot();
  else consumePost();
}
