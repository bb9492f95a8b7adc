/**
 * The producer's offline spool: a bounded on-disk FIFO of encoded events, written while the
 * server is unreachable and drained once it is back. The layout is the Python client's
 * (clients/python/ringcast_client.py), so either client reads what the other left:
 *
 *   <dir>/<16 digits>.rcspool   segments, written in order; each a run of records
 *       4 bytes "RCS1" | u32 LE event length | u32 LE CRC-32 of the event | the event bytes
 *   <dir>/cursor                "<segment> <offset>": the first record not yet acknowledged
 *   <dir>/lock                  the pid of the process using the directory: two producers on one
 *                               spool would corrupt each other's segments (a lock whose process is
 *                               gone is taken over)
 *
 * A process killed mid-write leaves a torn record: it fails its length or CRC check and is
 * skipped (reading resumes at the next magic), every whole record around it is kept. A new
 * process always starts a new segment, so nothing is ever written after a torn tail. The
 * cursor is rewritten after each acknowledged frame, without fsync: losing it re-sends
 * records (at-least-once), never loses them. Past `maxBytes` whole oldest segments are
 * deleted and their records counted in `droppedOldest`.
 *
 * I/O is synchronous and small (page-cache writes and reads of at most one batch, from the
 * producer's timers, never from emit*); fsync is asynchronous, at most once per
 * `fsyncIntervalMs`, and on close.
 */
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { EVENT_HEADER_BYTES, MAX_META_BYTES } from '../shared/telemetry/event-codec.js';

const MAGIC = Buffer.from('RCS1', 'latin1');
const RECORD_HEAD = 12;
const SUFFIX = '.rcspool';
const SEGMENT_NAME = /^\d{16}\.rcspool$/;

interface Segment {
  number: number;
  size: number;
  /** Records not yet acknowledged. */
  records: number;
}

export interface SpoolBatch {
  segment: number;
  /** Offset just past the batch's last record: the cursor once it is acknowledged. */
  end: number;
  events: Uint8Array[];
}

export class Spool {
  readonly dir: string;
  readonly maxBytes: number;
  readonly segmentBytes: number;
  /** Records written since this process opened the spool. */
  spooled = 0;
  /** Records the server acknowledged. */
  sent = 0;
  /** Records deleted unsent because the spool passed maxBytes (oldest first). */
  droppedOldest = 0;
  /** Torn or corrupt records skipped when the spool was read back. */
  torn = 0;
  /** Records not yet acknowledged, and of those, the ones sent and awaiting their ack. */
  pending = 0;
  inflight = 0;
  bytes = 0;
  private readonly segments: Segment[] = [];
  private fd: number | undefined;
  private readFd: number | undefined;
  private readNumber: number | undefined;
  private committed: [number, number] = [0, 0];
  private sendAt: [number, number] = [0, 0];
  private dirty = false;
  private syncing = false;
  private syncedAt = Date.now();

  constructor(dir: string, maxBytes: number, private readonly fsyncIntervalMs = 1000) {
    this.dir = path.resolve(dir);
    this.maxBytes = Math.max(64 << 10, Math.floor(maxBytes));
    // Eight segments to the bound: dropping the oldest frees at most an eighth of the spool.
    this.segmentBytes = Math.max(8 << 10, Math.min(4 << 20, Math.floor(this.maxBytes / 8)));
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.takeLock();
    try {
      this.load();
    } catch (error) {
      this.releaseLock();
      throw error;
    }
  }

  private get lockPath(): string {
    return path.join(this.dir, 'lock');
  }

  private takeLock(): void {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        fs.writeFileSync(this.lockPath, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      let pid = 0;
      try { pid = Number.parseInt(fs.readFileSync(this.lockPath, 'utf8'), 10) || 0; } catch { /* unreadable: treat as stale */ }
      if (pid > 0 && pidAlive(pid)) throw new Error(`spool directory ${this.dir} is in use by process ${pid}`);
      fs.rmSync(this.lockPath, { force: true }); // left by a process that is gone
    }
    throw new Error(`could not take the lock of spool directory ${this.dir}`);
  }

  private releaseLock(): void {
    fs.rmSync(this.lockPath, { force: true });
  }

  private file(n: number): string {
    return path.join(this.dir, `${String(n).padStart(16, '0')}${SUFFIX}`);
  }

  private load(): void {
    const numbers = fs.readdirSync(this.dir).filter((n) => SEGMENT_NAME.test(n)).map((n) => Number(n.slice(0, 16))).sort((a, b) => a - b);
    let [curNumber, curOffset] = this.readCursor();
    for (const n of numbers) {
      if (n < curNumber) { this.unlink(n); continue; } // acknowledged before the last exit
      const data = fs.readFileSync(this.file(n)); // a segment is a few MiB: one read, then parsed in memory
      const size = data.byteLength;
      const start = n === curNumber && curOffset <= size ? curOffset : 0;
      const { records, torn } = countRecords(data, start);
      this.torn += torn;
      if (records === 0) { this.unlink(n); continue; }
      if (this.segments.length === 0) [curNumber, curOffset] = [n, start];
      this.segments.push({ number: n, size, records });
      this.pending += records;
      this.bytes += size;
    }
    if (this.segments.length === 0) [curNumber, curOffset] = [0, 0];
    this.committed = [curNumber, curOffset];
    this.sendAt = [curNumber, curOffset];
  }

  private readCursor(): [number, number] {
    try {
      const [a, b] = fs.readFileSync(path.join(this.dir, 'cursor'), 'utf8').trim().split(/\s+/).map(Number);
      if (Number.isSafeInteger(a) && Number.isSafeInteger(b) && a >= 0 && b >= 0) return [a, b];
    } catch { /* none yet */ }
    return [0, 0]; // no cursor, or a damaged one: every segment from its start
  }

  private writeCursor(): void {
    const tmp = path.join(this.dir, 'cursor.tmp');
    fs.writeFileSync(tmp, `${this.committed[0]} ${this.committed[1]}\n`);
    fs.renameSync(tmp, path.join(this.dir, 'cursor'));
  }

  private unlink(n: number): void {
    if (this.readNumber === n && this.readFd !== undefined) {
      fs.closeSync(this.readFd);
      this.readFd = this.readNumber = undefined;
    }
    try { fs.unlinkSync(this.file(n)); } catch { /* already gone */ }
  }

  /** [event, next offset] of the record at off; [undefined, next offset] past a torn one. */
  private recordAt(fd: number, off: number, end: number): [Uint8Array | undefined, number] {
    if (end - off >= RECORD_HEAD) {
      const head = Buffer.alloc(RECORD_HEAD);
      fs.readSync(fd, head, 0, RECORD_HEAD, off);
      const n = head.readUInt32LE(4);
      if (head.subarray(0, 4).equals(MAGIC) && n <= end - off - RECORD_HEAD) {
        const event = Buffer.alloc(n);
        if (fs.readSync(fd, event, 0, n, off + RECORD_HEAD) === n && crc32(event) === head.readUInt32LE(8)) return [event, off + RECORD_HEAD + n];
      }
    }
    return [undefined, this.nextMagic(fd, off + 1, end)];
  }

  private nextMagic(fd: number, off: number, end: number): number {
    const chunk = Buffer.alloc(1 << 16);
    while (off < end) {
      const got = fs.readSync(fd, chunk, 0, Math.min(chunk.length, end - off), off);
      if (got <= 0) break;
      const at = chunk.subarray(0, got).indexOf(MAGIC);
      if (at >= 0) return off + at;
      if (off + got >= end) break;
      off += got - (MAGIC.length - 1); // a magic may straddle two chunks
    }
    return end;
  }

  /** Appends events in order (one write per call). */
  append(events: readonly Uint8Array[]): void {
    for (const event of events) {
      let active = this.fd === undefined ? undefined : this.segments[this.segments.length - 1];
      const size = RECORD_HEAD + event.byteLength;
      if (!active || (active.size > 0 && active.size + size > this.segmentBytes)) active = this.roll();
      const record = Buffer.allocUnsafe(size);
      MAGIC.copy(record, 0);
      record.writeUInt32LE(event.byteLength, 4);
      record.writeUInt32LE(crc32(event), 8);
      record.set(event, RECORD_HEAD);
      let written = 0;
      while (written < size) written += fs.writeSync(this.fd!, record, written, size - written);
      active.size += size;
      active.records++;
      this.pending++;
      this.bytes += size;
      this.spooled++;
      this.dirty = true;
      this.bound();
    }
  }

  private roll(): Segment {
    if (this.fd !== undefined) {
      fs.fsyncSync(this.fd); // a sealed segment is durable (once per segment, not per write)
      fs.closeSync(this.fd);
    }
    const last = this.segments[this.segments.length - 1];
    const n = last ? last.number + 1 : 1;
    this.fd = fs.openSync(this.file(n), 'wx', 0o600);
    this.dirty = false;
    this.syncedAt = Date.now();
    const seg = { number: n, size: 0, records: 0 };
    this.segments.push(seg);
    if (this.segments.length === 1) this.committed = this.sendAt = [n, 0];
    return seg;
  }

  private bound(): void {
    while (this.bytes > this.maxBytes && this.segments.length > 1) {
      const seg = this.segments.shift()!;
      this.droppedOldest += seg.records;
      this.pending -= seg.records;
      this.bytes -= seg.size;
      if (this.sendAt[0] === seg.number) this.inflight = 0; // their acks find no segment and are ignored
      this.unlink(seg.number);
      const head = this.segments[0].number;
      this.committed = [head, 0];
      if (this.sendAt[0] < head) this.sendAt = [head, 0];
      this.writeCursor();
    }
  }

  /** fsync the segment being written at most every fsyncIntervalMs (asynchronously: the caller's thread never waits on the disk). */
  maybeSync(): void {
    const fd = this.fd;
    if (fd === undefined || !this.dirty || this.syncing || Date.now() - this.syncedAt < this.fsyncIntervalMs) return;
    this.dirty = false;
    this.syncing = true;
    fs.fsync(fd, () => { this.syncing = false; this.syncedAt = Date.now(); });
  }

  hasUnsent(): boolean {
    const last = this.segments[this.segments.length - 1];
    if (!last) return false;
    return this.sendAt[0] < last.number || this.sendAt[1] < last.size;
  }

  /** The next unsent records (within one segment), or undefined when everything was sent. */
  readBatch(maxEvents: number, maxBytes: number): SpoolBatch | undefined {
    while (this.segments.length > 0) {
      const i = this.segments.findIndex((s) => s.number === this.sendAt[0]);
      if (i < 0) { this.sendAt = [this.segments[0].number, 0]; continue; }
      const seg = this.segments[i];
      let off = this.sendAt[1];
      if (off >= seg.size) {
        if (i === this.segments.length - 1) return undefined;
        this.sendAt = [this.segments[i + 1].number, 0];
        continue;
      }
      if (this.readNumber !== seg.number) {
        if (this.readFd !== undefined) fs.closeSync(this.readFd);
        this.readFd = fs.openSync(this.file(seg.number), 'r');
        this.readNumber = seg.number;
      }
      const events: Uint8Array[] = [];
      let bytes = 0;
      while (off < seg.size && events.length < maxEvents) {
        const [event, next] = this.recordAt(this.readFd!, off, seg.size);
        if (event) {
          if (events.length > 0 && bytes + event.byteLength > maxBytes) break;
          events.push(event);
          bytes += event.byteLength;
        }
        off = next;
      }
      this.sendAt = [seg.number, off];
      if (events.length > 0) {
        this.inflight += events.length;
        return { segment: seg.number, end: off, events };
      }
    }
    return undefined;
  }

  /** The server acknowledged the records of one readBatch. */
  commit(segment: number, end: number, count: number): void {
    const seg = this.segments.find((s) => s.number === segment);
    if (!seg) return; // dropped by the bound while in flight (counted there)
    seg.records -= count;
    this.pending -= count;
    this.inflight = Math.max(0, this.inflight - count);
    this.sent += count;
    this.committed = [segment, end];
    // Segments sent in full and acknowledged are deleted (never the one being written).
    while (this.segments.length > 1 && this.segments[0].records <= 0 && (this.segments[0].number < segment || end >= this.segments[0].size)) {
      const old = this.segments.shift()!;
      this.bytes -= old.size;
      this.unlink(old.number);
      if (this.committed[0] === old.number) this.committed = [this.segments[0].number, 0];
    }
    this.writeCursor();
  }

  /** A connection was lost: what it had not acknowledged is sent again from the cursor. */
  rewind(): void {
    this.sendAt = [...this.committed];
    this.inflight = 0;
  }

  close(): void {
    if (this.fd !== undefined) {
      fs.fsyncSync(this.fd);
      fs.closeSync(this.fd);
      this.fd = undefined;
    }
    if (this.readFd !== undefined) {
      fs.closeSync(this.readFd);
      this.readFd = this.readNumber = undefined;
    }
    if (this.segments.length > 0) this.writeCursor();
    this.releaseLock();
  }
}

/** Whole and torn records in a segment's bytes from `off`, as readBatch would see them. */
function countRecords(data: Buffer, off: number): { records: number; torn: number } {
  let records = 0;
  let torn = 0;
  const end = data.byteLength;
  while (off < end) {
    if (end - off >= RECORD_HEAD) {
      const next = off + RECORD_HEAD + data.readUInt32LE(off + 4);
      if (data.subarray(off, off + 4).equals(MAGIC) && next <= end && crc32(data.subarray(off + RECORD_HEAD, next)) === data.readUInt32LE(off + 8)) {
        records++;
        off = next;
        continue;
      }
    }
    torn++;
    const at = data.indexOf(MAGIC, off + 1);
    off = at < 0 ? end : at;
  }
  return { records, torn };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // someone else's process: alive
  }
}

/**
 * The event with meta `late: true` and `backlog` (spooled events still to come after it), so
 * the server files it under its own step and time; unchanged if its meta cannot take them.
 */
export function markLate(event: Uint8Array, backlog: number): Uint8Array {
  if (event.byteLength < EVENT_HEADER_BYTES) return event;
  const view = new DataView(event.buffer, event.byteOffset, event.byteLength);
  const metaLen = view.getUint16(2, true);
  if (EVENT_HEADER_BYTES + metaLen > event.byteLength) return event;
  let meta: unknown = {};
  try {
    if (metaLen > 0) meta = JSON.parse(Buffer.from(event.buffer, event.byteOffset + EVENT_HEADER_BYTES, metaLen).toString('utf8'));
  } catch {
    return event;
  }
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) return event;
  const metaBytes = Buffer.from(JSON.stringify({ ...meta, late: true, backlog: Math.max(0, Math.floor(backlog)) }), 'utf8');
  if (metaBytes.byteLength > MAX_META_BYTES) return event;
  const rest = event.subarray(EVENT_HEADER_BYTES + metaLen);
  const out = new Uint8Array(EVENT_HEADER_BYTES + metaBytes.byteLength + rest.byteLength);
  out.set(event.subarray(0, EVENT_HEADER_BYTES), 0);
  new DataView(out.buffer).setUint16(2, metaBytes.byteLength, true);
  out.set(metaBytes, EVENT_HEADER_BYTES);
  out.set(rest, EVENT_HEADER_BYTES + metaBytes.byteLength);
  return out;
}
