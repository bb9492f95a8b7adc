/**
 * MergedReader: several producers into one consumer, as one SPSC RecordRing per
 * producer, merged on the consumer side.
 *
 * Why not one multi-producer ring: producers would have to claim space with a CAS on
 * a shared write position, so every record would pay a contended read-modify-write
 * and a slow producer that claimed space but had not finished writing would hold up
 * publication for everybody behind it. With one ring per producer the hot path stays
 * the wait-free SPSC one, each producer keeps its own overflow policy and drop
 * counters (so stats say *which* producer is losing data), and a producer that
 * crashes and restarts re-attaches to its own ring without disturbing the others.
 *
 * Fairness: poll() visits the rings round-robin, taking at most `batchPerRing` records
 * from each per pass, and starts the next call one ring later, so a flooding producer
 * cannot starve a quiet one. Each ring's batch is committed after its handlers, as in
 * RecordRing.poll (at-least-once per ring).
 *
 * Waiting: a futex sleep covers exactly one address, and the rings are separate
 * SharedArrayBuffers that no producer shares, so one thread cannot sleep on all of
 * them at once. waitReadable() therefore spins across all rings, then announces
 * itself as a waiter on every ring and sleeps on the ring that delivered most recently
 * in slices of at most `sliceMs`: that ring wakes us at once, any other within one
 * slice. Every wait is bounded by the caller's timeout. waitReadableAsync() has no such
 * limit: it waits on all rings' futexes at once (Atomics.waitAsync + Promise.race).
 */
import { RecordRing } from './record-ring.js';
import { checkTimeout, emptyDrops, type RingStats } from './ring-stats.js';
import { DEFAULT_SPIN_US, waitAsync } from './wait.js';

export type MergedHandler = (data: Uint8Array, offset: number, length: number, source: number) => void;

export interface MergedReaderOptions {
  /** Records taken from one ring per round-robin pass. Default 256. */
  batchPerRing?: number;
  /** Longest single sleep in waitReadable(); bounds the wake latency of the rings not slept on. Default 1 ms. */
  sliceMs?: number;
  spinUs?: number;
}

type Futex = { i32: Int32Array; waiters: number; futex: number };

const noop: MergedHandler = () => undefined;

export class MergedReader {
  readonly rings: readonly RecordRing[];
  readonly batchPerRing: number;
  readonly sliceMs: number;
  spinUs: number;

  private readonly futexes: Futex[];
  private readonly adapters: ((data: Uint8Array, offset: number, length: number) => void)[];
  private readonly gens: Int32Array;
  private handler: MergedHandler = noop;
  private cursor = 0;
  private hot = 0;

  /** Attach to the producers' rings by their buffers (index = source number in handlers). */
  static attach(sabs: readonly SharedArrayBuffer[], opts: MergedReaderOptions = {}): MergedReader {
    if (!Array.isArray(sabs)) throw new TypeError('MergedReader.attach: expected an array of SharedArrayBuffers');
    return new MergedReader(sabs.map((s) => RecordRing.attach(s)), opts);
  }

  constructor(rings: readonly RecordRing[], opts: MergedReaderOptions = {}) {
    if (!Array.isArray(rings) || rings.length === 0) throw new TypeError('MergedReader: needs a non-empty array of RecordRings');
    for (const r of rings) {
      if (!(r instanceof RecordRing)) throw new TypeError('MergedReader: every source must be a RecordRing');
    }
    if (new Set(rings.map((r) => r.sab)).size !== rings.length) throw new Error('MergedReader: the same ring is listed twice');
    const batch = opts.batchPerRing ?? 256;
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`MergedReader: batchPerRing must be a positive integer (got ${batch})`);
    this.rings = rings.slice();
    this.batchPerRing = batch;
    this.sliceMs = checkTimeout(opts.sliceMs ?? 1, 'MergedReader sliceMs');
    if (this.sliceMs <= 0) throw new RangeError('MergedReader: sliceMs must be > 0');
    this.spinUs = opts.spinUs ?? DEFAULT_SPIN_US;
    this.futexes = this.rings.map((r) => r.readableFutex());
    this.gens = new Int32Array(this.rings.length);
    this.adapters = this.rings.map((_r, k) => (data: Uint8Array, offset: number, length: number) => this.handler(data, offset, length, k));
  }

  /**
   * Hands out up to `maxRecords` records (default: one fair pass) from all rings,
   * round-robin, as handler(data, offset, length, source). Returns how many.
   */
  poll(handler: MergedHandler, maxRecords = this.batchPerRing * this.rings.length): number {
    const rings = this.rings;
    const n = rings.length;
    this.handler = handler;
    let total = 0;
    try {
      let progress = true;
      while (progress && total < maxRecords) {
        progress = false;
        for (let j = 0; j < n && total < maxRecords; j++) {
          let k = this.cursor + j;
          if (k >= n) k -= n;
          const room = maxRecords - total;
          const got = rings[k].poll(this.adapters[k], room < this.batchPerRing ? room : this.batchPerRing);
          if (got > 0) {
            total += got;
            progress = true;
            this.hot = k;
          }
        }
        this.cursor = this.cursor + 1 === n ? 0 : this.cursor + 1;
      }
    } finally {
      this.handler = noop;
    }
    return total;
  }

  /** Bytes queued over all rings. */
  available(): number {
    let sum = 0;
    for (const r of this.rings) sum += r.available();
    return sum;
  }

  private anyReadable(): boolean {
    const f = this.futexes;
    for (let k = 0; k < f.length; k++) {
      if (this.rings[k].available() !== 0) return true;
    }
    return false;
  }

  /** Blocks (worker threads) until any ring is readable or timeoutMs passes. */
  waitReadable(timeoutMs: number): boolean {
    if (this.anyReadable()) return true;
    checkTimeout(timeoutMs, 'MergedReader waitReadable');
    const start = performance.now();
    const spinEnd = start + this.spinUs / 1000;
    const deadline = start + timeoutMs;
    let ok = false;
    for (let i = 1; ; i++) {
      if (this.anyReadable()) { ok = true; break; }
      if ((i & 31) === 0 && performance.now() >= spinEnd) break;
    }
    const f = this.futexes;
    while (!ok) {
      for (let k = 0; k < f.length; k++) Atomics.add(f[k].i32, f[k].waiters, 1);
      const sleepOn = f[this.hot];
      const gen = Atomics.load(sleepOn.i32, sleepOn.futex);
      if (this.anyReadable()) ok = true;
      const remaining = deadline - performance.now();
      if (!ok && remaining > 0) Atomics.wait(sleepOn.i32, sleepOn.futex, gen, remaining < this.sliceMs ? remaining : this.sliceMs);
      for (let k = 0; k < f.length; k++) Atomics.sub(f[k].i32, f[k].waiters, 1);
      if (ok || this.anyReadable()) { ok = true; break; }
      if (performance.now() >= deadline) break;
    }
    this.chargeWait(performance.now() - start);
    return ok;
  }

  /** Event-loop threads: waits on every ring's futex at once. */
  async waitReadableAsync(timeoutMs: number): Promise<boolean> {
    if (this.anyReadable()) return true;
    checkTimeout(timeoutMs, 'MergedReader waitReadableAsync');
    const start = performance.now();
    const deadline = start + timeoutMs;
    const f = this.futexes;
    let ok = false;
    for (;;) {
      for (let k = 0; k < f.length; k++) {
        Atomics.add(f[k].i32, f[k].waiters, 1);
        this.gens[k] = Atomics.load(f[k].i32, f[k].futex);
      }
      const remaining = deadline - performance.now();
      if (this.anyReadable() || remaining <= 0) {
        for (let k = 0; k < f.length; k++) Atomics.sub(f[k].i32, f[k].waiters, 1);
        ok = this.anyReadable();
        break;
      }
      const pending: Promise<unknown>[] = [];
      let immediate = false;
      for (let k = 0; k < f.length; k++) {
        const res = waitAsync(f[k].i32, f[k].futex, this.gens[k], remaining);
        if (res.async) pending.push(res.value);
        else if (res.value === 'not-equal') immediate = true;
      }
      try {
        if (!immediate && pending.length > 0) await Promise.race(pending);
      } finally {
        for (let k = 0; k < f.length; k++) {
          Atomics.sub(f[k].i32, f[k].waiters, 1);
          // Release our own still-pending waits on the other rings now rather than at
          // their timeout (nobody else sleeps on a ring's readable futex: one consumer).
          Atomics.add(f[k].i32, f[k].futex, 1);
          Atomics.notify(f[k].i32, f[k].futex);
        }
      }
      if (this.anyReadable()) { ok = true; break; }
      if (performance.now() >= deadline) break;
    }
    this.chargeWait(performance.now() - start);
    return ok;
  }

  /** Per-producer stats, index = source. */
  stats(): RingStats[] {
    return this.rings.map((r) => r.stats());
  }

  /** All producers summed into one RingStats (kind 'record', name 'a+b+...'). */
  totals(): RingStats {
    const all = this.stats();
    const drops = emptyDrops();
    let capacity = 0, depth = 0, recordsIn = 0, recordsOut = 0, waitMs = 0;
    for (const s of all) {
      capacity += s.capacity; depth += s.depth; recordsIn += s.recordsIn; recordsOut += s.recordsOut; waitMs += s.waitMs;
      for (const k of Object.keys(drops) as (keyof typeof drops)[]) drops[k] += s.drops[k];
    }
    return { kind: 'record', name: all.map((s) => s.name).join('+'), capacity, depth, recordsIn, recordsOut, drops, waitMs };
  }

  private chargeWait(ms: number): void {
    // Spread evenly: the wait was on behalf of all rings.
    const share = ms / this.rings.length;
    for (const r of this.rings) r.addConsumerWaitMs(share);
  }
}
