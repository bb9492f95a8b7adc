/**
 * Wire formats of an `/experience` batch (one binary WebSocket message).
 *
 * Version 1 (the default, kept for existing consumers):
 *   u32 LE count, then per record: u32 LE length + the experience event (event-codec format)
 *
 * Version 2 (`?v=2`: sequence numbers and batch metadata):
 *   0   u8   magic 0x58 ('X')
 *   1   u8   version 2
 *   2   u16  flags        1 = the records section is deflated (raw deflate, `compress=deflate`)
 *   4   u32  headLen
 *   8   ...  head: UTF-8 JSON {seq_first, seq_last, count, dropped, missed, server_time}
 *   ...      records section: per record f64 LE seq, u32 LE length, the experience event
 *
 * Sequence numbers are assigned once, upstream of the gateways, so they agree on every gateway.
 *
 * The gateway keeps each retained record as its v2 wire block (`recordBlock`: seq, length, event)
 * and writes batches with a BatchWriter into one reused buffer, so a batch costs one copy per
 * record and no allocation; the v1 form of a record is the same block without its seq.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';

export const BATCH_V2_MAGIC = 0x58;
export const BATCH_FLAG_DEFLATE = 1;

export interface BatchHead {
  seq_first: number;
  seq_last: number;
  count: number;
  /** Records this consumer lost since its previous batch (queue full, rate limit). */
  dropped: number;
  /** Sequence numbers this consumer skipped that the gateway no longer (or never) had. */
  missed: number;
  server_time: number;
}

export interface BatchRecord {
  seq: number;
  bytes: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Bytes before the event in a v2 record block: f64 seq, u32 length. */
export const RECORD_PREFIX_BYTES = 12;

/**
 * Carves record blocks out of large chunks: one allocation per 4 MiB instead of one zero-filled
 * ArrayBuffer (and its GC bookkeeping) per 16 KB record.
 *
 * Chunks are recycled: each remembers the newest `mark` (an arrival number that only grows) it
 * holds a block of, and a full chunk is written over again once `released(mark)` says nothing
 * refers to a block up to that mark any more. Without it the stream allocated (and the GC swept,
 * and the kernel zero-filled and faulted in) its own size in fresh chunks every few seconds.
 * Without `released`, chunks are only freed by the GC once nothing refers to them.
 */
export class BlockArena {
  private chunk: Uint8Array;
  private used = 0;
  private newest = -Infinity;
  /** Full chunks, oldest first, with the newest mark each holds. */
  private readonly full: Array<{ chunk: Uint8Array; newest: number }> = [];
  /** Chunks allocated in all (recycled ones are not counted again). */
  chunks = 1;

  constructor(private readonly chunkBytes = 4 << 20, private readonly released?: (newestMark: number) => boolean) {
    this.chunk = new Uint8Array(chunkBytes);
  }

  /**
   * A block of `bytes`. `phase` (0–7): the block starts at an address ≡ phase (mod 8), up to 7
   * bytes skipped for it, so a copy into it from an equally aligned source runs word by word.
   */
  alloc(bytes: number, mark = 0, phase = 0): Uint8Array {
    if (bytes > this.chunkBytes >>> 2) return new Uint8Array(bytes);
    let at = this.used + ((phase - this.used) & 7);
    if (at + bytes > this.chunkBytes) {
      this.nextChunk();
      at = phase & 7;
    }
    this.used = at;
    const block = this.chunk.subarray(this.used, this.used + bytes);
    this.used += bytes;
    if (mark > this.newest) this.newest = mark;
    return block;
  }

  private nextChunk(): void {
    if (this.released) this.full.push({ chunk: this.chunk, newest: this.newest });
    const oldest = this.full[0];
    if (oldest !== undefined && this.released!(oldest.newest)) {
      this.full.shift();
      this.chunk = oldest.chunk;
    } else {
      // Under a bound (the retained window, the consumers' queues) the full list stops growing.
      this.chunk = new Uint8Array(this.chunkBytes);
      this.chunks++;
    }
    this.used = 0;
    this.newest = -Infinity;
  }
}

/** A record as it goes on the wire in a v2 batch (f64 seq, u32 length, the event): an own copy of `source[offset, offset + length)`. */
export function recordBlock(seq: number, source: Uint8Array, offset: number, length: number, arena?: BlockArena, mark = 0): Uint8Array {
  // The event lands at the source's offset mod 8: a copy out of a shared ring runs word by word only then.
  const phase = (source.byteOffset + offset - RECORD_PREFIX_BYTES) & 7;
  const block = arena ? arena.alloc(RECORD_PREFIX_BYTES + length, mark, phase) : new Uint8Array(RECORD_PREFIX_BYTES + length);
  const view = new DataView(block.buffer, block.byteOffset, RECORD_PREFIX_BYTES);
  view.setFloat64(0, seq, true);
  view.setUint32(8, length, true);
  block.set(source.subarray(offset, offset + length), RECORD_PREFIX_BYTES);
  return block;
}

const WRITER_INITIAL_BYTES = 1 << 20;
/** Batches larger than this get a buffer of their own instead of growing the shared one for good. */
const WRITER_MAX_KEPT_BYTES = 32 << 20;

/**
 * Writes batches from record blocks into one reused buffer. The returned bytes are valid until the
 * next call: send them at once (uWS copies what it sends before send() returns).
 */
export class BatchWriter {
  private buf = new Uint8Array(WRITER_INITIAL_BYTES);

  private room(bytes: number, keep = 0): Uint8Array {
    if (bytes <= this.buf.byteLength) return this.buf;
    if (bytes > WRITER_MAX_KEPT_BYTES) {
      const once = new Uint8Array(bytes);
      once.set(this.buf.subarray(0, keep));
      return once;
    }
    let size = this.buf.byteLength;
    while (size < bytes) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, keep));
    this.buf = next;
    return next;
  }

  /** Version 1: u32 count, then per record u32 length + event. */
  v1(blocks: readonly Uint8Array[]): Uint8Array {
    let total = 4;
    for (const b of blocks) total += b.byteLength - 8;
    const out = this.room(total);
    new DataView(out.buffer, out.byteOffset).setUint32(0, blocks.length, true);
    let p = 4;
    for (const b of blocks) {
      out.set(b.subarray(8), p);
      p += b.byteLength - 8;
    }
    return out.subarray(0, total);
  }

  /** Version 2 (layout above); `deflate` compresses the records section. */
  v2(head: BatchHead, blocks: readonly Uint8Array[], deflate = false): Uint8Array {
    const headBytes = encoder.encode(JSON.stringify(head));
    const at = 8 + headBytes.byteLength;
    let total = at;
    for (const b of blocks) total += b.byteLength;
    let out = this.room(total);
    let p = at;
    for (const b of blocks) {
      out.set(b, p);
      p += b.byteLength;
    }
    if (deflate) {
      // Level 1: most of the gain on bitset masks and sparse planes at a fraction of the CPU.
      const body = deflateRawSync(out.subarray(at, total), { level: 1 });
      total = at + body.byteLength;
      out = this.room(total);
      out.set(body, at);
    }
    writeBatchV2Header(out, headBytes, deflate);
    return out.subarray(0, total);
  }
}

export function encodeBatchV1(records: readonly Uint8Array[]): Uint8Array {
  let bytes = 0;
  for (const r of records) bytes += r.byteLength;
  const out = new Uint8Array(4 + records.length * 4 + bytes);
  const view = new DataView(out.buffer);
  view.setUint32(0, records.length, true);
  let p = 4;
  for (const r of records) {
    view.setUint32(p, r.byteLength, true);
    out.set(r, p + 4);
    p += 4 + r.byteLength;
  }
  return out;
}

export function decodeBatchV1(bytes: Uint8Array): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(0, true);
  const out: Uint8Array[] = [];
  let p = 4;
  for (let i = 0; i < count; i++) {
    const len = view.getUint32(p, true);
    out.push(bytes.subarray(p + 4, p + 4 + len));
    p += 4 + len;
  }
  return out;
}

export function encodeBatchV2(head: BatchHead, records: readonly BatchRecord[], deflate = false): Uint8Array {
  const headBytes = encoder.encode(JSON.stringify(head));
  let bodyLen = 0;
  for (const r of records) bodyLen += 12 + r.bytes.byteLength;
  const at = 8 + headBytes.byteLength;
  // Uncompressed, the records are written straight into the message: one allocation, one copy each.
  let out = new Uint8Array(at + bodyLen);
  const view = new DataView(out.buffer);
  let p = at;
  for (const r of records) {
    view.setFloat64(p, r.seq, true);
    view.setUint32(p + 8, r.bytes.byteLength, true);
    out.set(r.bytes, p + 12);
    p += 12 + r.bytes.byteLength;
  }
  if (deflate) {
    // Level 1: most of the gain on bitset masks and sparse planes at a fraction of the CPU.
    const body = deflateRawSync(out.subarray(at), { level: 1 });
    const packed = new Uint8Array(at + body.byteLength);
    packed.set(body, at);
    out = packed;
  }
  writeBatchV2Header(out, headBytes, deflate);
  return out;
}

/** The 8-byte v2 header (magic, version, flags, head length) and the JSON head after it. */
function writeBatchV2Header(out: Uint8Array, headBytes: Uint8Array, deflate: boolean): void {
  const hv = new DataView(out.buffer, out.byteOffset, 8);
  hv.setUint8(0, BATCH_V2_MAGIC);
  hv.setUint8(1, 2);
  hv.setUint16(2, deflate ? BATCH_FLAG_DEFLATE : 0, true);
  hv.setUint32(4, headBytes.byteLength, true);
  out.set(headBytes, 8);
}

export function decodeBatchV2(bytes: Uint8Array): { head: BatchHead; records: BatchRecord[] } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 8 || view.getUint8(0) !== BATCH_V2_MAGIC || view.getUint8(1) !== 2) throw new Error('not a version-2 experience batch');
  const flags = view.getUint16(2, true);
  const headLen = view.getUint32(4, true);
  const head = JSON.parse(decoder.decode(bytes.subarray(8, 8 + headLen))) as BatchHead;
  let body = bytes.subarray(8 + headLen);
  if (flags & BATCH_FLAG_DEFLATE) body = new Uint8Array(inflateRawSync(body));
  const bv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const records: BatchRecord[] = [];
  let p = 0;
  while (p < body.byteLength) {
    const seq = bv.getFloat64(p, true);
    const len = bv.getUint32(p + 8, true);
    records.push({ seq, bytes: body.subarray(p + 12, p + 12 + len) });
    p += 12 + len;
  }
  if (records.length !== head.count) throw new Error(`experience batch: head says ${head.count} records, body holds ${records.length}`);
  return { head, records };
}
