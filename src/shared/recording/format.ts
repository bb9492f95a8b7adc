/**
 * The on-disk format of a recording: one directory per run (`<dataDir>/recordings/<run>/`)
 * holding numbered segments, each with a sparse index and, once closed, a summary.
 *
 *   <seq>.seg   32-byte header, then records back to back (append-only)
 *   <seq>.idx   fixed 32-byte entries, one every INDEX_EVERY_RECORDS records or INDEX_EVERY_BYTES bytes
 *   <seq>.sum   JSON summary (events, steps, times, bytes), written when the segment is closed
 *
 * Segment header (little-endian):
 *   0   8 bytes  magic "RCRECSEG"
 *   8   u32      version (1)
 *   12  u32      header bytes (32)
 *   16  f64      created at (ms since epoch)
 *   24  8 bytes  reserved (0)
 *
 * Record:
 *   0   u32  payload length
 *   4   u32  CRC-32 of the payload (zlib's polynomial)
 *   8   payload:
 *         0   f64  time         the event's own timestamp, else when it was received (ms since epoch)
 *         8   f64  step         NaN when the event carries none
 *         16  f64  receivedAt   server clock at receipt
 *         24  ...  the event bytes exactly as accepted (event-codec.ts)
 *
 * Why a checksum per record and a length in front: a crash (or a full disk) can leave the
 * last record half written. Reading stops at the first record whose length runs past the
 * end or whose checksum does not match; on start the recorder cuts the file there, so an
 * appended record never follows garbage.
 *
 * Index entry (all f64): offset of a record, the largest step and the largest time of every
 * record before it in the segment, and the step of the last stepped record before it. A
 * reader asked for steps >= S starts at the last entry whose "largest step before" is < S:
 * nothing before that entry can match, even when steps went backwards (a restarted trainer).
 */
import { crc32 } from 'node:zlib';

export const SEGMENT_MAGIC = Buffer.from('RCRECSEG', 'latin1');
export const SEGMENT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 32;
export const RECORD_HEAD_BYTES = 8;
export const RECORD_META_BYTES = 24;
export const INDEX_ENTRY_BYTES = 32;
export const INDEX_EVERY_RECORDS = 256;
export const INDEX_EVERY_BYTES = 256 * 1024;
/** Largest record payload a reader accepts: a length above it means the bytes are not a record. */
export const MAX_RECORD_PAYLOAD = 64 * 1024 * 1024;

export const RECORDINGS_DIR = 'recordings';
const SEQ_DIGITS = 12;

export const segmentName = (seq: number) => `${String(seq).padStart(SEQ_DIGITS, '0')}.seg`;
export const indexName = (seq: number) => `${String(seq).padStart(SEQ_DIGITS, '0')}.idx`;
export const summaryName = (seq: number) => `${String(seq).padStart(SEQ_DIGITS, '0')}.sum`;
export const SEGMENT_FILE = /^(\d{12})\.seg$/;

export function segmentHeader(createdAt: number): Buffer {
  const b = Buffer.alloc(SEGMENT_HEADER_BYTES);
  SEGMENT_MAGIC.copy(b, 0);
  b.writeUInt32LE(SEGMENT_VERSION, 8);
  b.writeUInt32LE(SEGMENT_HEADER_BYTES, 12);
  b.writeDoubleLE(createdAt, 16);
  return b;
}

/** Undefined when `b` starts with a valid header, else what is wrong with it. */
export function headerProblem(b: Uint8Array): string | undefined {
  if (b.byteLength < SEGMENT_HEADER_BYTES) return `header is ${b.byteLength} bytes, expected ${SEGMENT_HEADER_BYTES}`;
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (!buf.subarray(0, 8).equals(SEGMENT_MAGIC)) return 'not a recording segment (bad magic)';
  const version = buf.readUInt32LE(8);
  if (version !== SEGMENT_VERSION) return `segment version ${version} is not supported (expected ${SEGMENT_VERSION})`;
  return undefined;
}

export function checksum(bytes: Uint8Array): number {
  return crc32(bytes) >>> 0;
}

/** Bytes on disk for one record holding `eventLength` event bytes. */
export const recordBytes = (eventLength: number) => RECORD_HEAD_BYTES + RECORD_META_BYTES + eventLength;

/** Writes one record at `at` in `out` (which must have room); returns the bytes written. */
export function writeRecord(out: Buffer, at: number, time: number, step: number, receivedAt: number, event: Uint8Array): number {
  const payloadLength = RECORD_META_BYTES + event.byteLength;
  const p = at + RECORD_HEAD_BYTES;
  out.writeDoubleLE(time, p);
  out.writeDoubleLE(step, p + 8);
  out.writeDoubleLE(receivedAt, p + 16);
  out.set(event, p + RECORD_META_BYTES);
  out.writeUInt32LE(payloadLength, at);
  out.writeUInt32LE(checksum(out.subarray(p, p + payloadLength)), at + 4);
  return RECORD_HEAD_BYTES + payloadLength;
}

export interface RecordView {
  time: number;
  /** NaN when the event carries no step. */
  step: number;
  receivedAt: number;
  /** The event bytes (a view into the read buffer: valid until the next read). */
  event: Uint8Array;
  /** Offset of the record in its segment file. */
  offset: number;
}

/** What parsing found at `at`: a record, the end of the bytes, or a bad record. */
export type ParseResult =
  | { kind: 'record'; record: RecordView; size: number }
  | { kind: 'incomplete'; need: number }
  | { kind: 'bad'; reason: string };

/**
 * Parses the record at `at` in `buf[0, end)`. `incomplete` when the bytes end inside it
 * (`need`: the whole record's size, when its length is known and plausible).
 */
export function parseRecord(buf: Buffer, at: number, end: number, fileOffset: number): ParseResult {
  if (end - at < RECORD_HEAD_BYTES) return { kind: 'incomplete', need: RECORD_HEAD_BYTES };
  const length = buf.readUInt32LE(at);
  if (length < RECORD_META_BYTES || length > MAX_RECORD_PAYLOAD) return { kind: 'bad', reason: `record length ${length} is out of range` };
  const size = RECORD_HEAD_BYTES + length;
  if (end - at < size) return { kind: 'incomplete', need: size };
  const p = at + RECORD_HEAD_BYTES;
  const expected = buf.readUInt32LE(at + 4);
  if (checksum(buf.subarray(p, p + length)) !== expected) return { kind: 'bad', reason: 'checksum mismatch' };
  return {
    kind: 'record',
    size,
    record: {
      time: buf.readDoubleLE(p),
      step: buf.readDoubleLE(p + 8),
      receivedAt: buf.readDoubleLE(p + 16),
      event: buf.subarray(p + RECORD_META_BYTES, p + length),
      offset: fileOffset,
    },
  };
}

export interface IndexEntry {
  offset: number;
  maxStepBefore: number;
  lastStepBefore: number;
  maxTimeBefore: number;
}

export function encodeIndexEntry(e: IndexEntry): Buffer {
  const b = Buffer.alloc(INDEX_ENTRY_BYTES);
  b.writeDoubleLE(e.offset, 0);
  b.writeDoubleLE(e.maxStepBefore, 8);
  b.writeDoubleLE(e.lastStepBefore, 16);
  b.writeDoubleLE(e.maxTimeBefore, 24);
  return b;
}

/** Entries of an index file; a torn last entry is ignored. */
export function decodeIndex(b: Buffer): IndexEntry[] {
  const out: IndexEntry[] = [];
  for (let at = 0; at + INDEX_ENTRY_BYTES <= b.byteLength; at += INDEX_ENTRY_BYTES) {
    out.push({ offset: b.readDoubleLE(at), maxStepBefore: b.readDoubleLE(at + 8), lastStepBefore: b.readDoubleLE(at + 16), maxTimeBefore: b.readDoubleLE(at + 24) });
  }
  return out;
}

/** A segment's summary: what GET /api/recordings adds up per run. */
export interface SegmentSummary {
  seq: number;
  /** File size in bytes (header included). */
  bytes: number;
  events: number;
  /** NaN-free: null when no record carried a step. */
  firstStep: number | null;
  lastStep: number | null;
  minStep: number | null;
  maxStep: number | null;
  /** Record times (ms since epoch); null when empty. */
  firstTime: number | null;
  lastTime: number | null;
  minTime: number | null;
  maxTime: number | null;
  createdAt: number;
  /** Server clock at the last append (the age bound counts from here, not from trainer clocks). */
  writtenAt: number;
}

export function emptySummary(seq: number, createdAt: number): SegmentSummary {
  return { seq, bytes: SEGMENT_HEADER_BYTES, events: 0, firstStep: null, lastStep: null, minStep: null, maxStep: null, firstTime: null, lastTime: null, minTime: null, maxTime: null, createdAt, writtenAt: createdAt };
}

/** Adds one record to a summary (bytes not included: the writer knows them). */
export function noteRecord(s: SegmentSummary, time: number, step: number): void {
  s.events++;
  if (s.firstTime === null) s.firstTime = time;
  s.lastTime = time;
  s.minTime = s.minTime === null ? time : Math.min(s.minTime, time);
  s.maxTime = s.maxTime === null ? time : Math.max(s.maxTime, time);
  if (!Number.isNaN(step)) {
    if (s.firstStep === null) s.firstStep = step;
    s.lastStep = step;
    s.minStep = s.minStep === null ? step : Math.min(s.minStep, step);
    s.maxStep = s.maxStep === null ? step : Math.max(s.maxStep, step);
  }
}

export function isSummary(x: unknown): x is SegmentSummary {
  const s = x as SegmentSummary;
  return s !== null && typeof s === 'object' && Number.isInteger(s.seq) && Number.isInteger(s.bytes) && Number.isInteger(s.events) && typeof s.createdAt === 'number' && typeof s.writtenAt === 'number';
}
