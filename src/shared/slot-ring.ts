/**
 * SlotRing: N pre-allocated fixed-size slots in one SharedArrayBuffer, for large
 * payloads (attention tensors, RGBA frames) that are written and read in place.
 *
 * Memory layout (byte offsets; each header line is 64 bytes so words written by
 * different threads never share a cache line):
 *
 *   line 0    0  config, written once by create():
 *                i32[0] magic 'RCST'  i32[1] kind = 2 (slot)  i32[2] layout version
 *                i32[3] slots  i32[4] slotBytes  i32[5] mode (0 queue, 1 latest)
 *                i32[6] overflow policy code  i32[7] blockTimeoutMs  i32[8] name length
 *                i32[9] meta offset  i32[10] data offset  i32[11] slot stride
 *   line 1   64  name, UTF-8, at most 64 bytes
 *   line 2  128  i32 head: queue = publish position in [0, M); latest = newest slot (-1 none)
 *   line 3  192  i32 tail: queue = consume position in [0, M)
 *   line 4  256  f64 frames published                        (producer)
 *   line 5  320  f64 frames delivered (queue), f64 consumer wait ms   (consumer)
 *   line 6  384  f64 drops: drop-newest, overwrite-oldest, block-timeout, too-large;
 *                f64 producer wait ms                           (producer)
 *   line 7  448  i32 readable-waiters, i32 readable futex
 *   line 8  512  i32 space-waiters, i32 space futex
 *   line 9  576  latest-mode reader totals, each a (lo, hi) pair of u32 words:
 *                frames read, torn, skipped, wait µs. Several readers add to them,
 *                so they need Atomics.add; a BigInt64 counter would allocate a BigInt
 *                per add, so the 64-bit value is a u32 plus a carry word instead.
 *   1024         per-slot metadata, one 64-byte line per slot:
 *                i32 seq, i32 payload length, u32 tag, i32 reserved,
 *                f64 timestamp (+16), f64 frame number (+24)
 *   dataOffset   slots, each `slotBytes` rounded up to 64 (the stride); the first
 *                slot is page aligned (4096)
 *
 * Sequence numbers (a seqlock per slot): frame number F (1, 2, 3 ...) is written with
 * the slot's seq word odd (2F-1) and published by storing it even (2F), both with
 * Atomics.store, AFTER the payload and metadata. A reader loads seq, reads, and loads
 * seq again: an odd or changed seq means the producer was in the slot, i.e. the read
 * may be torn. The seq word wraps at 2^32 (after 2^31 frames); only equality and
 * parity are ever tested, so the wrap is harmless. Frame numbers themselves are f64.
 *
 * queue mode: a single-producer / single-consumer FIFO of slots. head and tail count
 * frames modulo M = N * floor(2^30 / N), the largest multiple of N that fits easily in
 * an i32: being a multiple of N keeps `pos % N` continuous across the wrap, and being
 * far larger than N keeps "full" (head - tail == N) and "empty" (head == tail) apart
 * and makes the overwrite-oldest CAS on tail immune to ABA (tail would have to come
 * round to the same value, ~2^30 overwrites, during one frame copy; with counters
 * modulo 2N that took only 2N overwrites while a preempted consumer copied). The
 * consumer handles frames in place and stores tail once per batch, after its
 * handlers, so a crashed consumer gets the uncommitted batch again (at-least-once).
 * Overflow policies as in RecordRing: drop-newest refuses acquire(); block waits up to
 * blockTimeoutMs; overwrite-oldest lets the producer CAS tail forward by one slot.
 * In overwrite-oldest mode the producer may rewrite the slot the consumer is
 * reading, so the consumer copies the frame to a private scratch buffer, commits tail
 * with compareExchange, and only then calls the handler (on the copy); a failed CAS
 * means the producer took that slot (and counted it), so the copy is discarded.
 * Use 'latest' mode when frames may be dropped but reads must stay zero-copy.
 *
 * latest mode: the producer always writes the slot after the newest one and then
 * publishes "newest = slot i". Readers (any number, on any thread) read the newest
 * complete frame in place and validate with the seqlock; nobody ever waits for a
 * reader. With N >= 3 a reader has N-1 frame times to finish before its slot is
 * rewritten. A torn read is reported (readLatest returns false and counts it);
 * frames a reader never saw are counted as skipped.
 *
 * Nothing on the produce/consume path allocates: slot views are created once, the
 * metadata object handed to handlers is one reused object per instance.
 */
import {
  CACHE_LINE, KIND_SLOT, RING_LAYOUT_VERSION, RING_MAGIC, H_KIND, H_MAGIC, H_VERSION,
  checkHeader, checkRingOptions, checkTimeout, blockForSpace, policyCode, policyFromCode, readName, writeName,
  type OverflowPolicy, type RingOptionsBase, type RingStats, dropsFromHeader,
  I_R_WAITERS, I_R_FUTEX, I_S_WAITERS, I_S_FUTEX, F_WRITTEN, F_READ, F_CONSUMER_WAIT, F_DROP_NEWEST, F_OVERWRITTEN, F_TOO_LARGE, F_PRODUCER_WAIT,
} from './ring-stats.js';
import { DEFAULT_SPIN_US, spinThenWait, spinThenWaitAsync, wake } from './wait.js';

export type SlotMode = 'queue' | 'latest';

/** Metadata of the frame being handled. One object per ring instance, reused: copy what you keep. */
export interface SlotMeta {
  slot: number;
  length: number;
  tag: number;
  timestamp: number;
  frame: number;
}

export type SlotHandler = (view: Uint8Array, seq: number, meta: SlotMeta) => void;

export interface SlotRingOptions extends RingOptionsBase {
  slots: number;
  slotBytes: number;
  mode: SlotMode;
}

const I_SLOTS = 3;
const I_SLOT_BYTES = 4;
const I_MODE = 5;
const I_POLICY = 6;
const I_BLOCK_MS = 7;
const I_NAME_LEN = 8;
const I_META_OFFSET = 9;
const I_DATA_OFFSET = 10;
const I_STRIDE = 11;
const I_HEAD = (2 * CACHE_LINE) >> 2;
const I_TAIL = (3 * CACHE_LINE) >> 2;
// i32 indexes of (lo, hi) pairs
const W_READS = (9 * CACHE_LINE) >> 2;
const W_TORN = W_READS + 2;
const W_SKIPPED = W_READS + 4;
const W_WAIT_US = W_READS + 6;

const HEADER_BYTES = 1024;
const META_BYTES = CACHE_LINE;
// word offsets inside one slot's metadata line
const M_SEQ = 0;
const M_LENGTH = 1;
const M_TAG = 2;
const MF_TIMESTAMP = 2; // f64 index: byte 16
const MF_FRAME = 3; // f64 index: byte 24

const MODE_QUEUE = 0;
const MODE_LATEST = 1;
const MAX_SLOTS = 65536;

const P_DROP = policyCode('drop-newest');
const P_OVERWRITE = policyCode('overwrite-oldest');

/** Adds v (0 <= v < 2^32) to the wide counter at i32[idx] (lo) / i32[idx + 1] (hi). */
function addWide(i32: Int32Array, idx: number, v: number): void {
  const old = Atomics.add(i32, idx, v) >>> 0;
  if (old + v > 0xffffffff) Atomics.add(i32, idx + 1, 1);
}

/**
 * Reads a wide counter. Retries if the carry word moved while reading; in the instant
 * between a wrap of lo and the carry add a reader can see a value 2^32 low (once per
 * 4 billion events; these are statistics).
 */
function loadWide(i32: Int32Array, idx: number): number {
  for (;;) {
    const hi = Atomics.load(i32, idx + 1) >>> 0;
    const lo = Atomics.load(i32, idx) >>> 0;
    if ((Atomics.load(i32, idx + 1) >>> 0) === hi) return hi * 4294967296 + lo;
  }
}

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

export class SlotRing {
  readonly sab: SharedArrayBuffer;
  readonly name: string;
  readonly slots: number;
  readonly slotBytes: number;
  readonly mode: SlotMode;
  readonly policy: OverflowPolicy;
  readonly blockTimeoutMs: number;
  spinUs = DEFAULT_SPIN_US;

  /** This instance's own latest-mode reader counters. */
  reads = 0;
  torn = 0;
  skipped = 0;

  private readonly hdr: Int32Array;
  private readonly hdrF64: Float64Array;
  private readonly metaI32: Int32Array;
  private readonly metaF64: Float64Array;
  private readonly views: Uint8Array[];
  private readonly viewsI32: Int32Array[];
  private readonly viewsF32: Float32Array[];
  private readonly span: number; // M, see the header comment
  private readonly policyCode: number;
  private readonly isLatest: boolean;
  private readonly meta: SlotMeta = { slot: 0, length: 0, tag: 0, timestamp: 0, frame: 0 };

  private pendingSlot = -1;
  private pendingFrame = 0;
  private lastSeq = 0; // latest mode: seq word of the last frame this reader saw
  private lastFrame = 0;
  private scratch: Uint8Array | undefined;
  private readonly hasRoom: () => boolean;
  private readonly readable: () => boolean;

  static create(opts: SlotRingOptions): SlotRing {
    const who = 'SlotRing.create';
    if (opts === null || typeof opts !== 'object') throw new TypeError(`${who}: options object required`);
    const { slots, slotBytes, mode } = opts;
    if (mode !== 'queue' && mode !== 'latest') throw new TypeError(`${who}: mode must be 'queue' or 'latest' (got ${String(mode)})`);
    const minSlots = mode === 'latest' ? 2 : 1;
    if (typeof slots !== 'number' || !Number.isInteger(slots) || slots < minSlots || slots > MAX_SLOTS) {
      throw new RangeError(`${who}: slots must be an integer in ${minSlots} .. ${MAX_SLOTS} for ${mode} mode (got ${String(slots)})`);
    }
    if (typeof slotBytes !== 'number' || !Number.isInteger(slotBytes) || slotBytes < 1 || slotBytes > 2 ** 30) {
      throw new RangeError(`${who}: slotBytes must be an integer in 1 .. 2^30 (got ${String(slotBytes)})`);
    }
    const { policy, blockTimeoutMs, name } = checkRingOptions(opts, who, 'slot-ring');
    const stride = roundUp(slotBytes, 64);
    const dataOffset = roundUp(HEADER_BYTES + slots * META_BYTES, 4096);
    const total = dataOffset + slots * stride;
    if (total > 2 ** 32) throw new RangeError(`${who}: ${slots} slots of ${slotBytes} bytes need ${total} bytes; at most 4 GiB per ring`);

    const sab = new SharedArrayBuffer(total);
    const hdr = new Int32Array(sab, 0, HEADER_BYTES >> 2);
    hdr[H_KIND] = KIND_SLOT;
    hdr[H_VERSION] = RING_LAYOUT_VERSION;
    hdr[I_SLOTS] = slots;
    hdr[I_SLOT_BYTES] = slotBytes;
    hdr[I_MODE] = mode === 'latest' ? MODE_LATEST : MODE_QUEUE;
    hdr[I_POLICY] = policyCode(policy);
    hdr[I_BLOCK_MS] = Math.ceil(blockTimeoutMs);
    hdr[I_NAME_LEN] = writeName(sab, name, who);
    hdr[I_META_OFFSET] = HEADER_BYTES;
    hdr[I_DATA_OFFSET] = dataOffset;
    hdr[I_STRIDE] = stride;
    hdr[I_HEAD] = mode === 'latest' ? -1 : 0;
    Atomics.store(hdr, H_MAGIC, RING_MAGIC);
    return new SlotRing(sab);
  }

  static attach(sab: SharedArrayBuffer): SlotRing {
    checkHeader(sab, KIND_SLOT, 'SlotRing.attach', HEADER_BYTES);
    return new SlotRing(sab);
  }

  private constructor(sab: SharedArrayBuffer) {
    this.sab = sab;
    const hdr = (this.hdr = new Int32Array(sab, 0, HEADER_BYTES >> 2));
    this.hdrF64 = new Float64Array(sab, 0, HEADER_BYTES >> 3);
    this.slots = hdr[I_SLOTS];
    this.slotBytes = hdr[I_SLOT_BYTES];
    const stride = hdr[I_STRIDE];
    const dataOffset = hdr[I_DATA_OFFSET];
    if (this.slots < 1 || this.slots > MAX_SLOTS || stride < this.slotBytes || hdr[I_META_OFFSET] !== HEADER_BYTES
      || dataOffset < HEADER_BYTES + this.slots * META_BYTES || sab.byteLength < dataOffset + this.slots * stride) {
      throw new Error(`SlotRing.attach: header describes ${this.slots} slots of ${this.slotBytes} bytes, which does not match the ${sab.byteLength}-byte buffer`);
    }
    this.isLatest = hdr[I_MODE] === MODE_LATEST;
    this.mode = this.isLatest ? 'latest' : 'queue';
    this.policyCode = hdr[I_POLICY];
    this.policy = policyFromCode(this.policyCode);
    this.blockTimeoutMs = hdr[I_BLOCK_MS];
    this.name = readName(sab, hdr[I_NAME_LEN]);
    this.span = this.slots * Math.floor(2 ** 30 / this.slots);
    this.metaI32 = new Int32Array(sab, HEADER_BYTES, (this.slots * META_BYTES) >> 2);
    this.metaF64 = new Float64Array(sab, HEADER_BYTES, (this.slots * META_BYTES) >> 3);
    this.views = [];
    this.viewsI32 = [];
    this.viewsF32 = [];
    for (let i = 0; i < this.slots; i++) {
      const at = dataOffset + i * stride;
      this.views.push(new Uint8Array(sab, at, this.slotBytes));
      this.viewsI32.push(new Int32Array(sab, at, this.slotBytes >> 2));
      this.viewsF32.push(new Float32Array(sab, at, this.slotBytes >> 2));
    }
    this.hasRoom = () => this.queued(Atomics.load(this.hdr, I_HEAD), Atomics.load(this.hdr, I_TAIL)) < this.slots;
    this.readable = this.isLatest
      ? () => {
        const i = Atomics.load(this.hdr, I_HEAD);
        if (i < 0) return false;
        const s = Atomics.load(this.metaI32, i * (META_BYTES >> 2) + M_SEQ);
        return s !== this.lastSeq && (s & 1) === 0;
      }
      : () => Atomics.load(this.hdr, I_HEAD) !== Atomics.load(this.hdr, I_TAIL);
  }

  // ---------------------------------------------------------------- views

  /** The whole slot `i` as bytes (write or read the payload in place). */
  slotView(i: number): Uint8Array {
    return this.views[i];
  }

  /** Slot `i` as i32 / f32 words (slots start 64-byte aligned). */
  slotI32(i: number): Int32Array {
    return this.viewsI32[i];
  }

  slotF32(i: number): Float32Array {
    return this.viewsF32[i];
  }

  // ---------------------------------------------------------------- producer

  /**
   * Returns the slot to write the next frame into, or -1 when the queue is full and the
   * policy refuses (counted). Latest mode never refuses. Calling acquire() again before
   * publish() returns the same slot.
   */
  acquire(): number {
    if (this.pendingSlot >= 0) return this.pendingSlot;
    const hdr = this.hdr;
    let i: number;
    if (this.isLatest) {
      const newest = Atomics.load(hdr, I_HEAD);
      i = newest < 0 || newest + 1 === this.slots ? 0 : newest + 1;
    } else {
      const h = Atomics.load(hdr, I_HEAD);
      // Always load tail (one load per frame is nothing next to a frame): a cached copy
      // could be M frames stale if another instance produced meanwhile, and mod-M
      // arithmetic would then take a full queue for an empty one.
      if (this.queued(h, Atomics.load(hdr, I_TAIL)) >= this.slots && !this.makeRoom(h)) return -1;
      i = h % this.slots;
    }
    const frame = this.hdrF64[F_WRITTEN] + 1;
    // Odd seq before the first payload byte: a reader that overlaps us sees it change.
    Atomics.store(this.metaI32, i * (META_BYTES >> 2) + M_SEQ, (frame * 2 - 1) | 0);
    this.pendingSlot = i;
    this.pendingFrame = frame;
    return i;
  }

  /**
   * Publishes the acquired slot: metadata first, then the even seq, then head. `length`
   * defaults to slotBytes; `tag` is a free u32; `timestamp` a free f64 (e.g. capture time).
   */
  publish(i: number, length = this.slotBytes, tag = 0, timestamp = 0): void {
    if (i !== this.pendingSlot || i < 0) {
      throw new Error(`SlotRing "${this.name}": publish(${i}) but the acquired slot is ${this.pendingSlot}`);
    }
    if ((length >>> 0) !== length || length > this.slotBytes) {
      throw new RangeError(`SlotRing "${this.name}": publish length ${length} is not an integer in 0 .. ${this.slotBytes}`);
    }
    const m = i * (META_BYTES >> 2);
    const mf = i * (META_BYTES >> 3);
    const frame = this.pendingFrame;
    this.metaI32[m + M_LENGTH] = length;
    this.metaI32[m + M_TAG] = tag | 0;
    this.metaF64[mf + MF_TIMESTAMP] = timestamp;
    this.metaF64[mf + MF_FRAME] = frame;
    Atomics.store(this.metaI32, m + M_SEQ, (frame * 2) | 0);
    this.hdrF64[F_WRITTEN] = frame;
    this.pendingSlot = -1;
    if (this.isLatest) {
      Atomics.store(this.hdr, I_HEAD, i);
    } else {
      const h = Atomics.load(this.hdr, I_HEAD) + 1;
      Atomics.store(this.hdr, I_HEAD, h === this.span ? 0 : h);
    }
    wake(this.hdr, I_R_WAITERS, I_R_FUTEX);
  }

  /** Frames published so far (lives in the ring, so a restarted producer can read it). */
  get recordsWritten(): number {
    return this.hdrF64[F_WRITTEN];
  }

  private queued(h: number, t: number): number {
    const d = h - t;
    return d < 0 ? d + this.span : d;
  }

  /** Slow path of acquire(): the queue looked full. */
  private makeRoom(h: number): boolean {
    const t = Atomics.load(this.hdr, I_TAIL);
    if (this.queued(h, t) < this.slots) return true;
    const code = this.policyCode;
    if (code === P_DROP) {
      this.hdrF64[F_DROP_NEWEST] += 1;
      return false;
    }
    if (code === P_OVERWRITE) {
      // Take the oldest slot unless the consumer frees one first (then the CAS fails
      // and that freed slot is ours).
      const next = t + 1 === this.span ? 0 : t + 1;
      if (Atomics.compareExchange(this.hdr, I_TAIL, t, next) === t) this.hdrF64[F_OVERWRITTEN] += 1;
      return true;
    }
    // P_BLOCK
    return blockForSpace(this.hdr, this.hdrF64, this.hasRoom, this.blockTimeoutMs, this.spinUs);
  }

  // ---------------------------------------------------------------- queue consumer

  /**
   * queue mode: calls `handler(view, seq, meta)` for up to `max` queued frames in order,
   * in place, then commits tail once. `seq` is the frame number; `view` is the whole
   * slot (payload is meta.length bytes). Returns the number handled.
   */
  poll(handler: SlotHandler, max = 0x7fffffff): number {
    if (this.isLatest) throw new Error(`SlotRing "${this.name}" is in latest mode: use readLatest()`);
    if (this.policyCode === P_OVERWRITE) return this.pollCopy(handler, max);
    const hdr = this.hdr;
    const t0 = Atomics.load(hdr, I_TAIL);
    const h = Atomics.load(hdr, I_HEAD);
    let t = t0;
    let n = 0;
    while (t !== h && n < max) {
      const i = t % this.slots;
      this.fillMeta(i);
      handler(this.views[i], this.meta.frame, this.meta);
      t = t + 1 === this.span ? 0 : t + 1;
      n++;
    }
    if (n > 0) {
      this.hdrF64[F_READ] += n;
      Atomics.store(hdr, I_TAIL, t);
      wake(hdr, I_S_WAITERS, I_S_FUTEX);
    }
    return n;
  }

  private pollCopy(handler: SlotHandler, max: number): number {
    if (this.scratch === undefined) this.scratch = new Uint8Array(this.slotBytes);
    const hdr = this.hdr;
    let n = 0;
    while (n < max) {
      const t = Atomics.load(hdr, I_TAIL);
      if (t === Atomics.load(hdr, I_HEAD)) break;
      const i = t % this.slots;
      this.fillMeta(i);
      const length = Math.min(this.meta.length >>> 0, this.slotBytes);
      this.scratch.set(length === this.slotBytes ? this.views[i] : this.views[i].subarray(0, length));
      const next = t + 1 === this.span ? 0 : t + 1;
      // Success means tail stayed at t while we copied: the producer did not touch slot i.
      if (Atomics.compareExchange(hdr, I_TAIL, t, next) !== t) continue;
      this.hdrF64[F_READ] += 1;
      wake(hdr, I_S_WAITERS, I_S_FUTEX);
      n++;
      handler(this.scratch, this.meta.frame, this.meta);
    }
    return n;
  }

  // ---------------------------------------------------------------- latest readers

  /**
   * latest mode: calls `handler(view, seq, meta)` on the newest complete frame, in place,
   * if this reader has not seen it yet. After the handler it re-checks the slot's seq:
   * returns true when the read was clean, false when there was nothing new or the
   * producer rewrote the slot during the handler (counted as torn; discard what the
   * handler computed). Frames published in between that this reader never saw are
   * counted as skipped.
   */
  readLatest(handler: SlotHandler): boolean {
    if (!this.isLatest) throw new Error(`SlotRing "${this.name}" is in queue mode: use poll()`);
    const hdr = this.hdr;
    const meta = this.metaI32;
    for (let attempt = 0; attempt < 4; attempt++) {
      const i = Atomics.load(hdr, I_HEAD);
      if (i < 0) return false;
      const m = i * (META_BYTES >> 2) + M_SEQ;
      const s1 = Atomics.load(meta, m);
      if (s1 === this.lastSeq) return false;
      if ((s1 & 1) !== 0) continue; // lapped: the producer is rewriting it; re-read head
      this.fillMeta(i);
      const frame = this.meta.frame;
      handler(this.views[i], frame, this.meta);
      if (Atomics.load(meta, m) !== s1) {
        this.torn++;
        addWide(hdr, W_TORN, 1);
        return false;
      }
      this.lastSeq = s1;
      if (this.lastFrame > 0 && frame > this.lastFrame + 1) {
        const missed = frame - this.lastFrame - 1;
        this.skipped += missed;
        addWide(hdr, W_SKIPPED, missed > 0xffffffff ? 0xffffffff : missed);
      }
      this.lastFrame = frame;
      this.reads++;
      addWide(hdr, W_READS, 1);
      return true;
    }
    return false;
  }

  /**
   * latest mode, addressed read: calls `handler` on slot `i` in place only if it still holds
   * frame number `frame` (as published), and re-checks the seqlock afterwards. For
   * consumers told "frame F is in slot i" out of band (e.g. a task given to a worker pool):
   * returns false when the producer has already moved on (the frame is gone, nothing was
   * read) or rewrote the slot during the handler (torn, counted; discard the result).
   */
  readSlot(i: number, frame: number, handler: SlotHandler): boolean {
    if (!this.isLatest) throw new Error(`SlotRing "${this.name}" is in queue mode: use poll()`);
    if (!Number.isInteger(i) || i < 0 || i >= this.slots) throw new RangeError(`SlotRing "${this.name}": slot ${i} is not in 0 .. ${this.slots - 1}`);
    const m = i * (META_BYTES >> 2) + M_SEQ;
    const want = (frame * 2) | 0;
    if (Atomics.load(this.metaI32, m) !== want) return false;
    this.fillMeta(i);
    handler(this.views[i], frame, this.meta);
    if (Atomics.load(this.metaI32, m) !== want) {
      addWide(this.hdr, W_TORN, 1);
      return false;
    }
    addWide(this.hdr, W_READS, 1);
    return true;
  }

  /** The frame number slot `i` holds now, or -1 while it is being written or never was. */
  frameInSlot(i: number): number {
    const s = Atomics.load(this.metaI32, i * (META_BYTES >> 2) + M_SEQ);
    if ((s & 1) !== 0) return -1;
    return this.metaF64[i * (META_BYTES >> 3) + MF_FRAME] || -1;
  }

  /** Ring-wide latest-mode reader totals (all readers). */
  latestTotals(): { reads: number; torn: number; skipped: number } {
    return {
      reads: loadWide(this.hdr, W_READS),
      torn: loadWide(this.hdr, W_TORN),
      skipped: loadWide(this.hdr, W_SKIPPED),
    };
  }

  // ---------------------------------------------------------------- waiting

  /** queue: a frame is queued; latest: a frame newer than this reader's last one exists. */
  waitReadable(timeoutMs: number): boolean {
    if (this.readable()) return true;
    checkTimeout(timeoutMs, `SlotRing "${this.name}" waitReadable`);
    const t0 = performance.now();
    const ok = spinThenWait(this.hdr, I_R_WAITERS, I_R_FUTEX, this.readable, timeoutMs, this.spinUs);
    this.addWait(performance.now() - t0);
    return ok;
  }

  async waitReadableAsync(timeoutMs: number): Promise<boolean> {
    if (this.readable()) return true;
    checkTimeout(timeoutMs, `SlotRing "${this.name}" waitReadableAsync`);
    const t0 = performance.now();
    const ok = await spinThenWaitAsync(this.hdr, I_R_WAITERS, I_R_FUTEX, this.readable, timeoutMs);
    this.addWait(performance.now() - t0);
    return ok;
  }

  /** Frames queued (queue mode); 0 in latest mode. */
  available(): number {
    return this.isLatest ? 0 : this.queued(Atomics.load(this.hdr, I_HEAD), Atomics.load(this.hdr, I_TAIL));
  }

  stats(): RingStats {
    const f = this.hdrF64;
    const latestWaitMs = loadWide(this.hdr, W_WAIT_US) / 1000;
    return {
      kind: 'slot',
      name: this.name,
      capacity: this.slots,
      depth: this.available(),
      recordsIn: f[F_WRITTEN],
      recordsOut: this.isLatest ? loadWide(this.hdr, W_READS) : f[F_READ],
      drops: dropsFromHeader(f),
      waitMs: f[F_CONSUMER_WAIT] + f[F_PRODUCER_WAIT] + latestWaitMs,
    };
  }

  private addWait(ms: number): void {
    // latest mode may have several readers, so their total needs an atomic add.
    if (this.isLatest) addWide(this.hdr, W_WAIT_US, Math.min(0xffffffff, Math.round(ms * 1000)));
    else this.hdrF64[F_CONSUMER_WAIT] += ms;
  }

  private fillMeta(i: number): void {
    const m = i * (META_BYTES >> 2);
    const mf = i * (META_BYTES >> 3);
    const meta = this.meta;
    meta.slot = i;
    meta.length = this.metaI32[m + M_LENGTH];
    meta.tag = this.metaI32[m + M_TAG] >>> 0;
    meta.timestamp = this.metaF64[mf + MF_TIMESTAMP];
    meta.frame = this.metaF64[mf + MF_FRAME];
  }
}
