/**
 * RecordRing: a wait-free single-producer / single-consumer ring of variable-length
 * records over one SharedArrayBuffer.
 *
 * Memory layout (byte offsets; every line is 64 bytes so that words written by
 * different threads never share a cache line and never ping-pong between cores):
 *
 *   line 0    0  config, written once by create():
 *                i32[0] magic 'RCST'  i32[1] kind = 1 (record)  i32[2] layout version
 *                i32[3] capacity (data bytes, power of two <= 2^30)
 *                i32[4] overflow policy code  i32[5] blockTimeoutMs
 *                i32[6] max payload bytes  i32[7] name length  i32[8] data offset
 *   line 1   64  name, UTF-8, at most 64 bytes
 *   line 2  128  i32 write position                (producer stores)
 *   line 3  192  i32 read position                 (consumer stores; producer CAS in overwrite-oldest)
 *   line 4  256  f64 records published            (producer)
 *   line 5  320  f64 records delivered, f64 consumer wait ms   (consumer)
 *   line 6  384  f64 drops: drop-newest, overwrite-oldest, block-timeout, too-large;
 *                f64 producer wait ms                         (producer)
 *   line 7  448  i32 readable-waiters, i32 readable futex     (consumer sleeps here)
 *   line 8  512  i32 space-waiters, i32 space futex           (producer sleeps here, 'block')
 *   1024         data region, `capacity` bytes
 *
 * Positions are byte counters kept as u32 that wrap at 2^32. All arithmetic on them is
 * modular (`(a - b) >>> 0`), and because the capacity is a power of two <= 2^30 it
 * divides 2^32, so `pos & (capacity - 1)` is the data offset of any position, across
 * the wrap too. `write - read` (mod 2^32) is the number of bytes queued, never more
 * than the capacity. The f64 counters are exact up to 2^53; each has exactly one
 * writing thread, and aligned 8-byte stores are single-copy atomic on x64 and arm64,
 * so readers on other threads never see a torn value.
 *
 * Records: an 8-byte header (i32 payload length, i32 reserved) then the payload, the
 * whole padded to 8 bytes, so every payload starts 8-byte aligned and can be viewed
 * directly as Int32/Float32/Float64 (see dataI32/dataF32/dataF64). (With a 4-byte
 * header the payload would only be 4-aligned; for payloads that are a multiple of 8
 * bytes both cost the same space.) A record never straddles the end of the data region:
 * when it does not fit before the end, the producer writes a wrap marker (length -1)
 * and the record starts at offset 0, so every payload is contiguous and can be handed
 * out zero-copy. The largest payload is capacity/2 - 8 bytes, which guarantees that
 * a record plus the wasted tail always fits in an empty ring; larger records are
 * refused and counted as 'too-large'.
 *
 * Publishing: the producer writes header and payload with plain stores, then ONE
 * Atomics.store of the write position. That store is sequentially consistent, so a
 * consumer that loads the write position sees every byte written before it: a record
 * is never visible before it is complete. `commit(false)` defers that store so a
 * producer of many small records publishes once per batch (`flush()`).
 *
 * Consuming: `poll` hands out (data, offset, length) views into the ring for a batch of
 * records and stores the read position ONCE, after the last handler returns. The
 * producer cannot reuse those bytes before that store, so the views stay valid during
 * the handler. A consumer that crashes (or throws) mid-batch has not committed: after
 * restart it gets the whole batch again. Delivery is therefore at-least-once, with a
 * duplicate window of one uncommitted batch; `poll(h, 1)` commits after every record.
 *
 * Overflow policies, decided by the producer when a record does not fit:
 *   drop-newest       refuse the new record (reserve returns -1), count it.
 *   block             spin briefly, then Atomics.wait for the consumer to free space,
 *                     bounded by blockTimeoutMs; then refuse and count 'block-timeout'.
 *                     (On a main thread this blocks the event loop for that long.)
 *   overwrite-oldest  the producer advances the READ position itself with
 *                     compareExchange past the oldest records and counts them.
 *                     Because the producer may now write into bytes the consumer is
 *                     reading, the consumer may not hand out views into the ring: it
 *                     copies the batch into a private scratch buffer, then commits its
 *                     read position with compareExchange(read, old, new). If the CAS
 *                     fails the producer reclaimed (and counted) some of those records
 *                     while we copied, so the copy is discarded and the batch retried.
 *                     Handlers then see the scratch buffer (the `data` argument; a
 *                     record sits at the same offset there as in the ring, but only
 *                     the copy is stable), and a batch is committed before its
 *                     handlers run, so delivered +
 *                     overwritten == published holds exactly, at the cost of losing
 *                     that batch if the consumer crashes mid-handler (this policy is
 *                     lossy by design anyway). The CAS could be fooled only if the
 *                     read position moved exactly 2^32 bytes while one batch was
 *                     being copied (ABA), i.e. the consumer stalled for gigabytes of
 *                     overwrites; we accept that.
 *
 * Waiting: see wait.ts. The producer makes the notify system call only when the
 * consumer has announced that it sleeps, so a busy stream costs no syscalls.
 *
 * Nothing on the write or read path allocates: views are created once per instance,
 * handlers are passed in and called, never wrapped.
 */
import {
  CACHE_LINE, KIND_RECORD, RING_LAYOUT_VERSION, RING_MAGIC, H_KIND, H_MAGIC, H_VERSION,
  checkHeader, checkRingOptions, checkTimeout, blockForSpace, policyCode, policyFromCode, readName, writeName,
  type OverflowPolicy, type RingOptionsBase, type RingStats, dropsFromHeader,
  I_R_WAITERS, I_R_FUTEX, I_S_WAITERS, I_S_FUTEX, F_WRITTEN, F_READ, F_CONSUMER_WAIT, F_DROP_NEWEST, F_OVERWRITTEN, F_TOO_LARGE, F_PRODUCER_WAIT,
} from './ring-stats.js';
import { DEFAULT_SPIN_US, spinThenWait, spinThenWaitAsync, wake } from './wait.js';

export type RecordHandler = (data: Uint8Array, offset: number, length: number) => void;

export interface RecordRingOptions extends RingOptionsBase {
  /** Data bytes; rounded up to a power of two, 256 .. 2^30. */
  capacityBytes: number;
  /**
   * Testing only: start both positions here (a multiple of 8 below 2^32) so a test can
   * cross the 2^32 wrap of the position counters without writing 4 GiB first.
   */
  startPosition?: number;
}

// i32 word indexes into the header
const I_CAPACITY = 3;
const I_POLICY = 4;
const I_BLOCK_MS = 5;
const I_MAX_PAYLOAD = 6;
const I_NAME_LEN = 7;
const I_DATA_OFFSET = 8;
const I_WRITE = (2 * CACHE_LINE) >> 2;
const I_READ = (3 * CACHE_LINE) >> 2;
// f64 word indexes into the header

const HEADER_BYTES = 1024;
const RECORD_HEADER = 8;
const WRAP = -1;
const MIN_CAPACITY = 256;
const MAX_CAPACITY = 2 ** 30;

const P_DROP = policyCode('drop-newest');
const P_OVERWRITE = policyCode('overwrite-oldest');

/** Bytes a record of `length` payload bytes occupies: header + payload, padded to 8. */
function recordSize(length: number): number {
  return (length + RECORD_HEADER + 7) & ~7;
}

export class RecordRing {
  readonly sab: SharedArrayBuffer;
  readonly name: string;
  readonly capacity: number;
  readonly policy: OverflowPolicy;
  readonly blockTimeoutMs: number;
  /** Largest payload a record may have. */
  readonly maxRecordBytes: number;
  /** The data region. reserve() and poll() offsets index it. */
  readonly data: Uint8Array;
  /** The same region as i32 / f32 / f64; payload offsets are 8-aligned, so `offset >> 2` / `offset >> 3` index these. */
  readonly dataI32: Int32Array;
  readonly dataF32: Float32Array;
  readonly dataF64: Float64Array;
  /** How long waitReadable / a blocking producer spin before sleeping. */
  spinUs = DEFAULT_SPIN_US;

  private readonly hdr: Int32Array;
  private readonly hdrF64: Float64Array;
  private readonly mask: number;
  private readonly policyCode: number;

  // producer-side state (private to the producing thread)
  private wLocal = 0; // write position including committed-but-unpublished records
  private rCache = 0; // last read position seen; re-loaded only when the ring looks full
  private unpublished = 0; // records committed since the last publish
  private reservedEnd = -1; // position just past the reserved record, -1 when none
  private needBytes = 0; // what a blocked producer waits for
  private readonly hasRoom: () => boolean;
  private readonly readable: () => boolean;

  // consumer-side scratch for overwrite-oldest (allocated on first poll)
  private scratch: Uint8Array | undefined;
  private scratchI32: Int32Array | undefined;

  // readInto() state, so it needs no closure per call
  private intoDest: Uint8Array | undefined;
  private intoLength = -1;
  private readonly intoHandler: RecordHandler;

  static create(opts: RecordRingOptions): RecordRing {
    const who = 'RecordRing.create';
    if (opts === null || typeof opts !== 'object') throw new TypeError(`${who}: options object required`);
    const { capacityBytes } = opts;
    if (typeof capacityBytes !== 'number' || !Number.isInteger(capacityBytes) || capacityBytes <= 0 || capacityBytes > MAX_CAPACITY) {
      throw new RangeError(`${who}: capacityBytes must be an integer in 1 .. 2^30 (got ${String(capacityBytes)})`);
    }
    const { policy, blockTimeoutMs, name } = checkRingOptions(opts, who, 'record-ring');
    const start = opts.startPosition ?? 0;
    if (!Number.isInteger(start) || start < 0 || start >= 2 ** 32 || start % 8 !== 0) {
      throw new RangeError(`${who}: startPosition must be a multiple of 8 in [0, 2^32) (got ${String(start)})`);
    }
    let capacity = MIN_CAPACITY;
    while (capacity < capacityBytes) capacity *= 2;

    const sab = new SharedArrayBuffer(HEADER_BYTES + capacity);
    const hdr = new Int32Array(sab, 0, HEADER_BYTES >> 2);
    hdr[H_KIND] = KIND_RECORD;
    hdr[H_VERSION] = RING_LAYOUT_VERSION;
    hdr[I_CAPACITY] = capacity;
    hdr[I_POLICY] = policyCode(policy);
    hdr[I_BLOCK_MS] = Math.ceil(blockTimeoutMs);
    hdr[I_MAX_PAYLOAD] = capacity / 2 - RECORD_HEADER;
    hdr[I_NAME_LEN] = writeName(sab, name, who);
    hdr[I_DATA_OFFSET] = HEADER_BYTES;
    hdr[I_WRITE] = start | 0;
    hdr[I_READ] = start | 0;
    // Magic last: a half-initialised buffer never passes attach's check.
    Atomics.store(hdr, H_MAGIC, RING_MAGIC);
    return new RecordRing(sab);
  }

  /** Re-attaches to an existing ring (in another thread, or after a restart). */
  static attach(sab: SharedArrayBuffer): RecordRing {
    checkHeader(sab, KIND_RECORD, 'RecordRing.attach', HEADER_BYTES);
    return new RecordRing(sab);
  }

  private constructor(sab: SharedArrayBuffer) {
    this.sab = sab;
    this.hdr = new Int32Array(sab, 0, HEADER_BYTES >> 2);
    this.hdrF64 = new Float64Array(sab, 0, HEADER_BYTES >> 3);
    const hdr = this.hdr;
    this.capacity = hdr[I_CAPACITY];
    if (this.capacity < MIN_CAPACITY || this.capacity > MAX_CAPACITY || (this.capacity & (this.capacity - 1)) !== 0
      || hdr[I_DATA_OFFSET] !== HEADER_BYTES || sab.byteLength < HEADER_BYTES + this.capacity) {
      throw new Error(`RecordRing.attach: header describes a ${this.capacity}-byte ring that does not match the ${sab.byteLength}-byte buffer`);
    }
    this.mask = this.capacity - 1;
    this.policyCode = hdr[I_POLICY];
    this.policy = policyFromCode(this.policyCode);
    this.blockTimeoutMs = hdr[I_BLOCK_MS];
    this.maxRecordBytes = hdr[I_MAX_PAYLOAD];
    this.name = readName(sab, hdr[I_NAME_LEN]);
    this.data = new Uint8Array(sab, HEADER_BYTES, this.capacity);
    this.dataI32 = new Int32Array(sab, HEADER_BYTES, this.capacity >> 2);
    this.dataF32 = new Float32Array(sab, HEADER_BYTES, this.capacity >> 2);
    this.dataF64 = new Float64Array(sab, HEADER_BYTES, this.capacity >> 3);
    this.wLocal = Atomics.load(hdr, I_WRITE) >>> 0;
    this.rCache = Atomics.load(hdr, I_READ) >>> 0;
    this.hasRoom = () => {
      this.rCache = Atomics.load(this.hdr, I_READ) >>> 0;
      return ((this.wLocal - this.rCache) >>> 0) + this.needBytes <= this.capacity;
    };
    this.readable = () => Atomics.load(this.hdr, I_WRITE) !== Atomics.load(this.hdr, I_READ);
    this.intoHandler = (data, offset, length) => {
      const dest = this.intoDest!;
      this.intoLength = length;
      if (length <= dest.length) dest.set(data.subarray(offset, offset + length));
    };
  }

  // ---------------------------------------------------------------- producer

  /**
   * Reserves room for a record of `length` payload bytes and returns the offset in
   * `data` where the caller writes them, or -1 when the policy refuses the record
   * (counted in stats().drops). Follow with commit(). A reservation that is not
   * committed is simply replaced by the next reserve().
   */
  reserve(length: number): number {
    if ((length >>> 0) !== length || length > this.maxRecordBytes) return this.refuseLength(length);
    // With nothing in flight, take the shared position: another instance (a restarted
    // producer, a test) may have produced since this one last did.
    if (this.unpublished === 0) {
      const shared = Atomics.load(this.hdr, I_WRITE) >>> 0;
      if (shared !== this.wLocal) {
        this.wLocal = shared;
        this.rCache = Atomics.load(this.hdr, I_READ) >>> 0;
      }
    }
    const cap = this.capacity;
    const size = recordSize(length);
    let w = this.wLocal;
    let off = w & this.mask;
    const need = off + size > cap ? size + (cap - off) : size;
    if (((w - this.rCache) >>> 0) + need > cap && !this.makeRoom(need)) {
      this.reservedEnd = -1;
      return -1;
    }
    if (need !== size) {
      // Not enough room before the end: mark the tail as skipped and start at 0,
      // so the payload stays contiguous.
      this.dataI32[off >> 2] = WRAP;
      w = (w + (cap - off)) >>> 0;
      off = 0;
    }
    this.dataI32[off >> 2] = length;
    this.dataI32[(off >> 2) + 1] = 0;
    this.reservedEnd = (w + size) >>> 0;
    return off + RECORD_HEADER;
  }

  /**
   * Commits the reserved record. With `publish` (the default) it becomes visible to the
   * consumer now; with `publish = false` it becomes visible at the next flush() or
   * publishing commit(), which lets a producer of many small records pay one atomic
   * store (and at most one notify) per batch.
   */
  commit(publish = true): void {
    if (this.reservedEnd < 0) throw new Error(`RecordRing "${this.name}": commit() without a successful reserve()`);
    this.wLocal = this.reservedEnd;
    this.reservedEnd = -1;
    this.unpublished++;
    if (publish) this.flush();
  }

  /** Publishes every committed record. Cheap when there is nothing to publish. */
  flush(): void {
    if (this.unpublished === 0) return;
    // Counter first, position second: whoever sees the position also sees the count.
    this.hdrF64[F_WRITTEN] += this.unpublished;
    this.unpublished = 0;
    Atomics.store(this.hdr, I_WRITE, this.wLocal | 0);
    wake(this.hdr, I_R_WAITERS, I_R_FUTEX);
  }

  /** Copies `bytes` in as one record; false when the policy refused it. */
  tryWrite(bytes: Uint8Array, publish = true): boolean {
    const at = this.reserve(bytes.length);
    if (at < 0) return false;
    this.data.set(bytes, at);
    this.commit(publish);
    return true;
  }

  /** Records published so far (survives restarts: it lives in the ring). */
  get recordsWritten(): number {
    return this.hdrF64[F_WRITTEN];
  }

  private refuseLength(length: number): number {
    this.reservedEnd = -1; // a stray commit() after a refusal must not publish an older reservation
    if (typeof length !== 'number' || !Number.isInteger(length) || length < 0) {
      throw new TypeError(`RecordRing "${this.name}": record length must be a non-negative integer (got ${String(length)})`);
    }
    this.hdrF64[F_TOO_LARGE] += 1;
    return -1;
  }

  /** Slow path of reserve(): the ring looked full with the cached read position. */
  private makeRoom(need: number): boolean {
    // Our own unpublished records may be what fills the ring; the consumer cannot
    // free space it cannot see, and overwrite-oldest must only reclaim published ones.
    this.flush();
    this.rCache = Atomics.load(this.hdr, I_READ) >>> 0;
    if (((this.wLocal - this.rCache) >>> 0) + need <= this.capacity) return true;
    const code = this.policyCode;
    if (code === P_DROP) {
      this.hdrF64[F_DROP_NEWEST] += 1;
      return false;
    }
    if (code === P_OVERWRITE) {
      this.reclaim(need);
      return true;
    }
    // P_BLOCK
    this.needBytes = need;
    return blockForSpace(this.hdr, this.hdrF64, this.hasRoom, this.blockTimeoutMs, this.spinUs);
  }

  /** overwrite-oldest: move the read position past the oldest records until `need` bytes are free. */
  private reclaim(need: number): void {
    const cap = this.capacity;
    const mask = this.mask;
    const words = this.dataI32;
    const w = this.wLocal; // == published write position: makeRoom flushed
    let r = this.rCache;
    for (;;) {
      let nr = r;
      let dropped = 0;
      // Records in [r, w) were all written by us and published, so their headers are valid.
      while (((w - nr) >>> 0) + need > cap) {
        const off = nr & mask;
        const len = words[off >> 2];
        if (len === WRAP) {
          nr = (nr + (cap - off)) >>> 0;
        } else {
          nr = (nr + recordSize(len)) >>> 0;
          dropped++;
        }
      }
      const seen = Atomics.compareExchange(this.hdr, I_READ, r | 0, nr | 0) >>> 0;
      if (seen === r) {
        this.hdrF64[F_OVERWRITTEN] += dropped;
        this.rCache = nr;
        return;
      }
      // The consumer committed meanwhile; maybe that already made room.
      r = seen;
      if (((w - r) >>> 0) + need <= cap) {
        this.rCache = r;
        return;
      }
    }
  }

  // ---------------------------------------------------------------- consumer

  /**
   * Calls `handler(data, offset, length)` for up to `maxRecords` available records, in
   * order, then commits the read position once. Returns how many were handled. The
   * views are valid only during the handler. If the handler throws, nothing of the
   * batch is committed and it is delivered again by the next poll (at-least-once).
   * In overwrite-oldest mode `data` is a private copy (see the header comment) whose
   * offsets match the ring's: always read through the `data` argument, not `ring.data`.
   */
  poll(handler: RecordHandler, maxRecords = 0x7fffffff): number {
    if (this.policyCode === P_OVERWRITE) return this.pollCopy(handler, maxRecords);
    const hdr = this.hdr;
    const r0 = Atomics.load(hdr, I_READ) >>> 0;
    const w = Atomics.load(hdr, I_WRITE) >>> 0;
    if (r0 === w) return 0;
    const cap = this.capacity;
    const mask = this.mask;
    const words = this.dataI32;
    const data = this.data;
    let r = r0;
    let n = 0;
    while (r !== w && n < maxRecords) {
      const off = r & mask;
      const len = words[off >> 2];
      if (len === WRAP) {
        r = (r + (cap - off)) >>> 0;
        continue;
      }
      r = (r + recordSize(len)) >>> 0;
      n++;
      handler(data, off + RECORD_HEADER, len);
    }
    this.hdrF64[F_READ] += n;
    Atomics.store(hdr, I_READ, r | 0);
    wake(hdr, I_S_WAITERS, I_S_FUTEX);
    return n;
  }

  /**
   * Copies the next record into `dest` and commits it. Returns its length (if that is
   * more than dest.length nothing is copied but the record is still consumed, so
   * check the result), or -1 when the ring is empty.
   */
  readInto(dest: Uint8Array): number {
    this.intoDest = dest;
    this.intoLength = -1;
    this.poll(this.intoHandler, 1);
    this.intoDest = undefined;
    return this.intoLength;
  }

  /** Bytes queued (records, their headers and padding). */
  available(): number {
    return (Atomics.load(this.hdr, I_WRITE) - Atomics.load(this.hdr, I_READ)) >>> 0;
  }

  /** Records delivered so far. */
  get recordsRead(): number {
    return this.hdrF64[F_READ];
  }

  /**
   * Worker threads: blocks until a record is readable or `timeoutMs` passes (spins
   * `spinUs` first, then sleeps on the futex). Returns whether a record is readable.
   */
  waitReadable(timeoutMs: number): boolean {
    if (Atomics.load(this.hdr, I_WRITE) !== Atomics.load(this.hdr, I_READ)) return true;
    checkTimeout(timeoutMs, `RecordRing "${this.name}" waitReadable`);
    const t0 = performance.now();
    const ok = spinThenWait(this.hdr, I_R_WAITERS, I_R_FUTEX, this.readable, timeoutMs, this.spinUs);
    this.hdrF64[F_CONSUMER_WAIT] += performance.now() - t0;
    return ok;
  }

  /** Main thread (or any event-loop thread): the same, with Atomics.waitAsync. */
  async waitReadableAsync(timeoutMs: number): Promise<boolean> {
    if (Atomics.load(this.hdr, I_WRITE) !== Atomics.load(this.hdr, I_READ)) return true;
    checkTimeout(timeoutMs, `RecordRing "${this.name}" waitReadableAsync`);
    const t0 = performance.now();
    const ok = await spinThenWaitAsync(this.hdr, I_R_WAITERS, I_R_FUTEX, this.readable, timeoutMs);
    this.hdrF64[F_CONSUMER_WAIT] += performance.now() - t0;
    return ok;
  }

  /** @internal MergedReader sleeps on this ring's readable futex. */
  readableFutex(): { i32: Int32Array; waiters: number; futex: number } {
    return { i32: this.hdr, waiters: I_R_WAITERS, futex: I_R_FUTEX };
  }

  /** @internal Adds to the consumer wait-time counter (MergedReader waits on our behalf). */
  addConsumerWaitMs(ms: number): void {
    this.hdrF64[F_CONSUMER_WAIT] += ms;
  }

  stats(): RingStats {
    const f = this.hdrF64;
    return {
      kind: 'record',
      name: this.name,
      capacity: this.capacity,
      depth: this.available(),
      recordsIn: f[F_WRITTEN],
      recordsOut: f[F_READ],
      drops: dropsFromHeader(f),
      waitMs: f[F_CONSUMER_WAIT] + f[F_PRODUCER_WAIT],
    };
  }

  /** overwrite-oldest consumer: copy, CAS-commit, then hand out the copy. */
  private pollCopy(handler: RecordHandler, maxRecords: number): number {
    if (this.scratch === undefined) {
      this.scratch = new Uint8Array(this.capacity);
      this.scratchI32 = new Int32Array(this.scratch.buffer);
    }
    const scratch = this.scratch;
    const sWords = this.scratchI32!;
    const hdr = this.hdr;
    const cap = this.capacity;
    const mask = this.mask;
    const words = this.dataI32;
    const maxLen = this.maxRecordBytes;
    for (;;) {
      // READ before WRITE: the producer never moves READ past the published WRITE, so r0 <= w.
      const r0 = Atomics.load(hdr, I_READ) >>> 0;
      const w = Atomics.load(hdr, I_WRITE) >>> 0;
      if (r0 === w) return 0;
      // 1. Find the batch end. Headers may be overwritten under us; bound everything,
      //    and let the CAS below decide whether what we read was real.
      let r = r0;
      let n = 0;
      let sane = true;
      while (r !== w && n < maxRecords) {
        const off = r & mask;
        const len = words[off >> 2];
        let next: number;
        if (len === WRAP) {
          next = (r + (cap - off)) >>> 0;
        } else if (len >= 0 && len <= maxLen) {
          next = (r + recordSize(len)) >>> 0;
          n++;
        } else {
          sane = false;
          break;
        }
        if (((next - r0) >>> 0) > ((w - r0) >>> 0)) { sane = false; break; }
        r = next;
      }
      if (!sane) {
        if ((Atomics.load(hdr, I_READ) >>> 0) === r0) {
          throw new Error(`RecordRing "${this.name}": corrupt record header at position ${r} (read position did not move)`);
        }
        continue; // the producer reclaimed under us: retry from the new read position
      }
      // 2. Copy positions [r0, r) into scratch at the SAME offsets as in the ring (two
      //    pieces when they cross the end), so handler offsets mean the same in both.
      const span = (r - r0) >>> 0;
      const off0 = r0 & mask;
      if (off0 + span <= cap) {
        scratch.set(this.data.subarray(off0, off0 + span), off0);
      } else {
        scratch.set(this.data.subarray(off0, cap), off0);
        scratch.set(this.data.subarray(0, span - (cap - off0)), 0);
      }
      // 3. Commit. Success means READ stayed at r0 all along, so the producer wrote
      //    nothing into [r0, r) while we copied, and the copy is exact.
      if ((Atomics.compareExchange(hdr, I_READ, r0 | 0, r | 0) >>> 0) !== r0) continue;
      this.hdrF64[F_READ] += n;
      wake(hdr, I_S_WAITERS, I_S_FUTEX);
      // 4. Hand out the records from the copy, walking it exactly like poll() walks the ring.
      let p = r0;
      while (p !== r) {
        const off = p & mask;
        const len = sWords[off >> 2];
        if (len === WRAP) {
          p = (p + (cap - off)) >>> 0;
          continue;
        }
        p = (p + recordSize(len)) >>> 0;
        handler(scratch, off + RECORD_HEADER, len);
      }
      return n;
    }
  }
}
