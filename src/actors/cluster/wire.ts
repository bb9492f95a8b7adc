/**
 * What the cluster relay puts on Redis, and how it checks what it reads back.
 *
 * One PUB/SUB message carries a batch of fan-out records exactly as the aggregator wrote them
 * (ring-records.ts), so a receiving gateway cannot tell a remote message from a local one:
 *
 *   0  u8   originLen, then the origin node id (UTF-8)
 *   …  u32  record length (LE), then the record; repeated
 *
 * Retained state (the snapshot a new viewer gets) lives in the hash `ringcast:retained`, one
 * field per (channel, level variant, key), each value `originLen, origin, record`.
 */
import { CHANNELS } from '../../shared/telemetry/channels.js';
import { FANOUT_HEADER_BYTES, FanoutType, type FanoutRecordView } from '../../shared/telemetry/ring-records.js';

export const FANOUT_CHANNEL = 'ringcast:fanout';
export const RETAINED_KEY = 'ringcast:retained';
/** A PUB/SUB message is cut at about this size (a big batch becomes several messages). */
export const MAX_BATCH_BYTES = 512 * 1024;

const encoder = new TextEncoder();

/** Concatenates records into one batch message from `origin`. */
export function encodeBatch(origin: Uint8Array, records: readonly Uint8Array[], from = 0, to = records.length): Buffer {
  let size = 1 + origin.byteLength;
  for (let i = from; i < to; i++) size += 4 + records[i].byteLength;
  const out = Buffer.allocUnsafe(size);
  out[0] = origin.byteLength;
  out.set(origin, 1);
  let at = 1 + origin.byteLength;
  for (let i = from; i < to; i++) {
    out.writeUInt32LE(records[i].byteLength, at);
    out.set(records[i], at + 4);
    at += 4 + records[i].byteLength;
  }
  return out;
}

/**
 * Builds one batch in place: records are copied once, straight from the ring into the message
 * (no per-record buffer), and the finished message is handed over whole.
 */
export class BatchBuilder {
  private buf: Buffer;
  private len = 0;
  count = 0;

  constructor(private readonly origin: Uint8Array, private readonly initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes);
    this.start();
  }

  /** Bytes in the batch so far (header included). */
  get bytes(): number {
    return this.len;
  }

  add(data: Uint8Array, offset: number, length: number): void {
    const need = this.len + 4 + length;
    if (need > this.buf.byteLength) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.buf.byteLength * 2));
      this.buf.copy(grown, 0, 0, this.len);
      this.buf = grown;
    }
    this.buf.writeUInt32LE(length, this.len);
    this.buf.set(data.subarray(offset, offset + length), this.len + 4);
    this.len = need;
    this.count++;
  }

  /** The finished message (now owned by the caller) and its record count; the builder starts a new one. */
  take(): { message: Buffer; count: number } {
    const taken = { message: this.buf.subarray(0, this.len), count: this.count };
    this.buf = Buffer.allocUnsafe(Math.max(this.initialBytes, Math.min(this.len, MAX_BATCH_BYTES + 64 * 1024)));
    this.start();
    return taken;
  }

  private start(): void {
    this.buf[0] = this.origin.byteLength;
    this.buf.set(this.origin, 1);
    this.len = 1 + this.origin.byteLength;
    this.count = 0;
  }
}

export function originBytes(nodeId: string): Uint8Array {
  const b = encoder.encode(nodeId);
  if (b.byteLength > 255) throw new Error(`node id is ${b.byteLength} bytes; at most 255`);
  return b;
}

/** Why `record` is not a fan-out record a gateway may take, or undefined when it is one (header bytes only: no decoding). */
export function checkRecord(record: Uint8Array): string | undefined {
  if (record.byteLength < FANOUT_HEADER_BYTES) return `record of ${record.byteLength} bytes is shorter than its header`;
  const type = record[0];
  if (type !== FanoutType.Update && type !== FanoutType.Reset) return `record type ${type} is not relayed`;
  if (record[1] >= CHANNELS.length) return `unknown channel ${record[1]}`;
  if (record[2] === 0 || record[2] > 7) return `level mask ${record[2]} out of range`;
  const keyLen = record[4] | (record[5] << 8);
  if (FANOUT_HEADER_BYTES + keyLen > record.byteLength) return 'key longer than the record';
  return undefined;
}

export interface DecodedBatch { origin: string; records: Uint8Array[]; error?: string }

/** Splits a batch; stops at the first malformed length (what came before it is kept). */
export function decodeBatch(message: Buffer): DecodedBatch {
  if (message.byteLength < 1 || message.byteLength < 1 + message[0]) return { origin: '', records: [], error: 'batch shorter than its origin' };
  const originLen = message[0];
  const origin = message.toString('utf8', 1, 1 + originLen);
  const records: Uint8Array[] = [];
  let at = 1 + originLen;
  while (at < message.byteLength) {
    if (at + 4 > message.byteLength) return { origin, records, error: 'truncated record length' };
    const len = message.readUInt32LE(at);
    if (at + 4 + len > message.byteLength) return { origin, records, error: `record of ${len} bytes runs past the batch` };
    records.push(new Uint8Array(message.buffer, message.byteOffset + at + 4, len));
    at += 4 + len;
  }
  return { origin, records };
}

export function retainedField(view: Pick<FanoutRecordView, 'channel' | 'levelMask' | 'key'>): string {
  return `${view.channel}/${view.levelMask}/${view.key}`;
}

export function encodeRetained(origin: Uint8Array, record: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(1 + origin.byteLength + record.byteLength);
  out[0] = origin.byteLength;
  out.set(origin, 1);
  out.set(record, 1 + origin.byteLength);
  return out;
}

export function decodeRetained(value: Buffer): { origin: string; record: Uint8Array } | { error: string } {
  if (value.byteLength < 1 || value.byteLength < 1 + value[0]) return { error: 'value shorter than its origin' };
  const origin = value.toString('utf8', 1, 1 + value[0]);
  const record = new Uint8Array(value.buffer, value.byteOffset + 1 + value[0], value.byteLength - 1 - value[0]);
  const bad = checkRecord(record);
  return bad ? { error: bad } : { origin, record };
}
