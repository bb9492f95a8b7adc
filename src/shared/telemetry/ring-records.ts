/**
 * Record layouts for the two telemetry rings.
 *
 * Ingest record (any producer-facing thread → aggregator), one accepted event per record:
 *
 *   0   f64  receivedAt   server clock when the event arrived (ms since epoch)
 *   8   u32  producerId   connection number, unique per producing thread
 *   12  u8   runLen
 *   13  ...  run (UTF-8, runLen bytes), then the event bytes exactly as received (event-codec.ts)
 *
 * Fan-out record (aggregator → each gateway), one ready-to-send message per record:
 *
 *   0   u8   type        1 = update, 2 = experience (raw experience event follows), 3 = reset (drop retained state)
 *   1   u8   channel     index in CHANNELS
 *   2   u8   levelMask   LEVEL_BIT bits this serialisation is for (7 = identical for every level)
 *   3   u8   flags       1 = critical (never skipped for a slow client), 2 = retain (part of the snapshot a new client gets),
 *                        4 = no-live (stored, not published at full rate), 8 = live-only (published, not stored)
 *   4   u16  keyLen      snapshot key, e.g. "ppo_metrics" — a new update with the same key replaces the retained one
 *   6   u16  reserved
 *   8   f64  stamp       where end-to-end latency is measured from (ms since epoch): for telemetry, the newest
 *                        source event's timestamp (the trainer's clock; receipt time when it sent none); for
 *                        relays and experience, when the server produced or received it
 *   16  ...  key (UTF-8), then the message: UTF-8 JSON `{"type", "timestamp", "data"}` for updates,
 *            the experience event bytes for type 2
 *
 * The message bytes are published as they are: serialised once per (channel, level) by the
 * aggregator, never per client.
 */
import type { RecordRing } from '../record-ring.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const INGEST_HEADER_BYTES = 13;

export interface IngestRecordView {
  receivedAt: number;
  producerId: number;
  run: string;
  /** Offset/length of the event inside `data`. */
  eventOffset: number;
  eventLength: number;
}

// One DataView per ring, made once: a view per record showed up at ~12 % of ingest time.
const ringViews = new WeakMap<RecordRing, DataView>();
function dataViewOf(ring: RecordRing): DataView {
  let view = ringViews.get(ring);
  if (!view) {
    view = new DataView(ring.data.buffer, ring.data.byteOffset, ring.data.byteLength);
    ringViews.set(ring, view);
  }
  return view;
}

const runCache = new Map<string, Uint8Array>();
function runBytes(run: string): Uint8Array {
  let b = runCache.get(run);
  if (!b) {
    b = encoder.encode(run);
    if (b.byteLength > 255) b = b.subarray(0, 255);
    if (runCache.size < 1024) runCache.set(run, b);
  }
  return b;
}

/**
 * Write one accepted event into an ingest ring without an intermediate copy.
 * Returns false when the ring refused it (full under drop-newest); the ring counts the drop.
 */
export function writeIngestRecord(
  ring: RecordRing,
  receivedAt: number,
  producerId: number,
  run: string,
  source: Uint8Array,
  eventOffset: number,
  eventLength: number,
  publish = true,
): boolean {
  const rb = runBytes(run);
  const total = INGEST_HEADER_BYTES + rb.byteLength + eventLength;
  const at = ring.reserve(total);
  if (at < 0) return false;
  const data = ring.data;
  const view = dataViewOf(ring);
  view.setFloat64(at, receivedAt, true);
  view.setUint32(at + 8, producerId >>> 0, true);
  view.setUint8(at + 12, rb.byteLength);
  data.set(rb, at + INGEST_HEADER_BYTES);
  data.set(source.subarray(eventOffset, eventOffset + eventLength), at + INGEST_HEADER_BYTES + rb.byteLength);
  ring.commit(publish);
  return true;
}

export function readIngestRecord(data: Uint8Array, offset: number, length: number): IngestRecordView {
  const view = new DataView(data.buffer, data.byteOffset + offset, INGEST_HEADER_BYTES);
  const runLen = view.getUint8(12);
  const runStart = offset + INGEST_HEADER_BYTES;
  return {
    receivedAt: view.getFloat64(0, true),
    producerId: view.getUint32(8, true),
    run: runLen === 0 ? '' : decoder.decode(data.subarray(runStart, runStart + runLen)),
    eventOffset: runStart + runLen,
    eventLength: length - INGEST_HEADER_BYTES - runLen,
  };
}

export const FANOUT_HEADER_BYTES = 16;
export const FanoutType = { Update: 1, Experience: 2, Reset: 3 } as const;
/**
 * Critical: never skipped for a slow client. Retain: part of the snapshot a new client gets.
 * NoLive: stored (snapshot, conflated tiers) but not published to full-rate clients.
 * LiveOnly: published to full-rate clients, not stored (a delta that only makes sense live).
 */
export const FanoutFlag = { Critical: 1, Retain: 2, NoLive: 4, LiveOnly: 8 } as const;

/** The fields of a fan-out record before its body, as written and as read back. */
export interface FanoutRecordHead {
  type: number;
  channel: number;
  levelMask: number;
  flags: number;
  key: string;
  stamp: number;
}

export interface FanoutRecordView extends FanoutRecordHead {
  /** Offset/length of the message (or experience event) inside `data`. */
  bodyOffset: number;
  bodyLength: number;
}

export interface FanoutRecordInput extends FanoutRecordHead {
  /** Already-encoded message bytes (UTF-8 JSON for updates). */
  body: Uint8Array;
}

/** `keyBytes`: the key already encoded (a record written into several rings encodes it once). */
export function writeFanoutRecord(ring: RecordRing, input: FanoutRecordInput, publish = true, keyBytes = encoder.encode(input.key)): boolean {
  const at = ring.reserve(FANOUT_HEADER_BYTES + keyBytes.byteLength + input.body.byteLength);
  if (at < 0) return false;
  fillFanoutRecord(ring.data, dataViewOf(ring), at, input, keyBytes);
  ring.commit(publish);
  return true;
}

/** The same record as a standalone buffer (for retained state handed over outside the ring). */
export function encodeFanoutRecord(input: FanoutRecordInput): Uint8Array {
  const keyBytes = encoder.encode(input.key);
  const out = new Uint8Array(FANOUT_HEADER_BYTES + keyBytes.byteLength + input.body.byteLength);
  fillFanoutRecord(out, new DataView(out.buffer), 0, input, keyBytes);
  return out;
}

/** Header, key and body of one fan-out record at `at` (layout at the top of this file). */
function fillFanoutRecord(data: Uint8Array, view: DataView, at: number, input: FanoutRecordInput, keyBytes: Uint8Array): void {
  view.setUint8(at, input.type);
  view.setUint8(at + 1, input.channel);
  view.setUint8(at + 2, input.levelMask);
  view.setUint8(at + 3, input.flags);
  view.setUint16(at + 4, keyBytes.byteLength, true);
  view.setUint16(at + 6, 0, true);
  view.setFloat64(at + 8, input.stamp, true);
  data.set(keyBytes, at + FANOUT_HEADER_BYTES);
  data.set(input.body, at + FANOUT_HEADER_BYTES + keyBytes.byteLength);
}

export function readFanoutRecord(data: Uint8Array, offset: number, length: number): FanoutRecordView {
  const view = new DataView(data.buffer, data.byteOffset + offset, FANOUT_HEADER_BYTES);
  const keyLen = view.getUint16(4, true);
  const keyStart = offset + FANOUT_HEADER_BYTES;
  return {
    type: view.getUint8(0),
    channel: view.getUint8(1),
    levelMask: view.getUint8(2),
    flags: view.getUint8(3),
    key: decoder.decode(data.subarray(keyStart, keyStart + keyLen)),
    stamp: view.getFloat64(8, true),
    bodyOffset: keyStart + keyLen,
    bodyLength: length - FANOUT_HEADER_BYTES - keyLen,
  };
}
