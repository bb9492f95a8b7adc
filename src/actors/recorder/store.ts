/**
 * The recorder's writer: appends records to each run's open segment, rotates segments,
 * keeps the per-segment summaries GET /api/recordings is answered from, and holds the
 * size and age bounds by deleting the oldest closed segments (counted by reason).
 *
 * Writes are synchronous on purpose: this runs on the recorder's own thread, whose only
 * other work is replays, and a synchronous write makes "what the list says is on disk"
 * exact. Records are staged per run and written once per consumer batch. A write that
 * fails (ENOSPC, EDQUOT, EIO) cuts the file back to its last whole record, rolls the
 * summary back, and counts the staged events as dropped: a full disk never crashes the
 * recorder and never leaves garbage in front of later records.
 */
import { closeSync, existsSync, ftruncateSync, fstatSync, mkdirSync, openSync, readSync, readdirSync, rmdirSync, statSync, truncateSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import {
  INDEX_ENTRY_BYTES, INDEX_EVERY_BYTES, INDEX_EVERY_RECORDS, emptySummary, encodeIndexEntry, indexName, noteRecord, recordBytes, segmentHeader,
  segmentName, summaryName, writeRecord, type SegmentSummary,
} from '../../shared/recording/format.js';
import { listSegments, readSummary, segmentRecords, type SegmentEnd } from '../../shared/recording/reader.js';
import { isValidRunName } from '../../shared/telemetry/run-name.js';

export interface StoreBounds {
  segmentBytes: number;
  maxBytesPerRun: number;
  maxBytesTotal: number;
  maxAgeHours: number;
  /** Most segments open for appending at once; the least recently written is closed beyond it. */
  maxOpenSegments: number;
  /** An open segment nobody wrote to for this long is closed (its summary written). */
  idleCloseMs: number;
}

export type DropReason = 'disk_full' | 'write_error' | 'total_bound' | 'bad_run';
export type DeleteReason = 'run_bytes' | 'total_bytes' | 'age';

export interface StoreEvents {
  dropped(reason: DropReason, n: number): void;
  deleted(reason: DeleteReason, bytes: number): void;
  tornTail(run: string, seq: number, bytesCut: number, problem: string): void;
  written(events: number, bytes: number): void;
}

/** Index trackers of an open segment (copied to roll back a failed write). */
interface Cursor { maxStep: number; lastStep: number; maxTime: number; recordsSinceIndex: number; bytesSinceIndex: number }

interface OpenSegment {
  fd: number;
  idxFd: number;
  summary: SegmentSummary;
  cursor: Cursor;
  /** What is on disk: restored when a write fails. */
  durable: { summary: SegmentSummary; cursor: Cursor };
  staged: Buffer[];
  stagedIndex: Buffer[];
  stagedEvents: number;
  lastWriteMs: number;
}

interface RunLog {
  run: string;
  dir: string;
  /** Every segment on disk, oldest first; the last is `open`'s when one is open. */
  segments: SegmentSummary[];
  open: OpenSegment | undefined;
  nextSeq: number;
}

export interface RunListing {
  run: string;
  first_step: number | null;
  last_step: number | null;
  events: number;
  bytes: number;
  segments: number;
  started_at: string | null;
  ended_at: string | null;
  /** Written to within the last few seconds. */
  recording: boolean;
}

export interface StoreStatus {
  runs: number;
  bytes: number;
  /** Why appends are failing now (disk full, total bound), or null. */
  problem: string | null;
  problemSince: number | null;
}

const LIVE_MS = 5_000;
const isoOrNull = (ms: number | null) => (ms === null || !Number.isFinite(ms) ? null : new Date(ms).toISOString());

export class RecordingStore {
  private readonly runs = new Map<string, RunLog>();
  private totalBytes = 0;
  /** Why writes fail now (full disk, I/O error): cleared by the next write that succeeds. */
  private problem: string | null = null;
  private problemSince: number | null = null;
  /** Why the total bound refuses events now: cleared by the next event that fits. */
  private boundProblem: string | null = null;
  private boundProblemSince: number | null = null;

  constructor(
    readonly root: string,
    private readonly bounds: StoreBounds,
    private readonly events: StoreEvents,
    private readonly log: Logger,
    private readonly now = Date.now,
    /** The positional write (tests stand in a failing disk here). */
    private readonly write: typeof writeSync = writeSync,
  ) {}

  /** Loads every run on disk; cuts torn tails (the bytes after the last valid record). Every segment found is closed. */
  async load(): Promise<void> {
    try {
      mkdirSync(this.root, { recursive: true });
    } catch (error) {
      // Not fatal: the service runs without recordings, every event a counted drop.
      this.writeFailed(error, 0);
      return;
    }
    for (const run of readdirSync(this.root)) {
      const dir = path.join(this.root, run);
      if (!isValidRunName(run) || !statSync(dir).isDirectory()) continue;
      const log: RunLog = { run, dir, segments: [], open: undefined, nextSeq: 1 };
      for (const seq of await listSegments(dir)) {
        const file = path.join(dir, segmentName(seq));
        const size = statSync(file).size;
        let summary = await readSummary(dir, seq);
        if (!summary || summary.bytes !== size) summary = await this.scan(run, dir, seq, file);
        if (summary) {
          log.segments.push(summary);
          this.totalBytes += summary.bytes;
        }
        log.nextSeq = seq + 1;
      }
      if (log.segments.length > 0) this.runs.set(run, log);
    }
    this.enforceAge();
    this.enforceTotal();
  }

  /** Reads a segment with no (or a stale) summary: cuts a torn tail, writes the summary. */
  private async scan(run: string, dir: string, seq: number, file: string): Promise<SegmentSummary | undefined> {
    const stat = statSync(file);
    const summary = emptySummary(seq, stat.birthtimeMs || stat.mtimeMs);
    summary.writtenAt = stat.mtimeMs;
    const end: SegmentEnd = { goodEnd: 0, fileSize: 0 };
    for await (const r of segmentRecords(file, 0, end)) noteRecord(summary, r.time, r.step);
    if (end.goodEnd === 0) {
      // Not even a valid header: nothing in it can be read back.
      this.events.tornTail(run, seq, end.fileSize, end.problem ?? 'no header');
      this.removeFiles(dir, seq);
      return undefined;
    }
    if (end.goodEnd < end.fileSize) {
      truncateSync(file, end.goodEnd);
      this.events.tornTail(run, seq, end.fileSize - end.goodEnd, end.problem ?? 'trailing bytes');
      this.log.warn({ run, segment: seq, cutBytes: end.fileSize - end.goodEnd, problem: end.problem }, 'recording: cut a torn tail');
      this.trimIndex(dir, seq, end.goodEnd);
    }
    summary.bytes = end.goodEnd;
    writeFileSync(path.join(dir, summaryName(seq)), JSON.stringify(summary));
    return summary;
  }

  /** Drops index entries that point at or past `end` (they named records that were cut). */
  private trimIndex(dir: string, seq: number, end: number): void {
    const file = path.join(dir, indexName(seq));
    if (!existsSync(file)) return;
    const fd = openSync(file, 'r+');
    try {
      const size = statSync(file).size - (statSync(file).size % INDEX_ENTRY_BYTES);
      const b = Buffer.alloc(8);
      let keep = 0;
      for (let at = 0; at < size; at += INDEX_ENTRY_BYTES) {
        // The offset is the first field of each entry.
        readSyncAt(fd, b, at);
        if (b.readDoubleLE(0) >= end) break;
        keep = at + INDEX_ENTRY_BYTES;
      }
      ftruncateSync(fd, keep);
    } finally {
      closeSync(fd);
    }
  }

  /** Stages one event for `run`; written by the next flush(). */
  append(run: string, time: number, step: number, receivedAt: number, event: Uint8Array): void {
    if (!isValidRunName(run)) { this.events.dropped('bad_run', 1); return; }
    const size = recordBytes(event.byteLength);
    if (this.totalBytes + size > this.bounds.maxBytesTotal && !this.makeRoom(size)) {
      if (this.boundProblem === null) {
        this.boundProblemSince = this.now();
        this.boundProblem = `the total bound (recording.maxBytesTotal = ${this.bounds.maxBytesTotal} bytes) cannot be met: only open segments are left`;
        this.log.warn({ problem: this.boundProblem }, 'recording: dropping events');
      }
      this.events.dropped('total_bound', 1);
      return;
    }
    if (this.boundProblem !== null) {
      this.log.info({ was: this.boundProblem }, 'recording: events fit the total bound again');
      this.boundProblem = null;
      this.boundProblemSince = null;
    }
    let log = this.runs.get(run);
    if (!log) {
      log = { run, dir: path.join(this.root, run), segments: [], open: undefined, nextSeq: 1 };
      this.runs.set(run, log);
    }
    let seg = log.open;
    if (seg && seg.summary.events > 0 && seg.summary.bytes + size > this.bounds.segmentBytes) {
      this.closeSegment(log);
      seg = undefined;
    }
    if (!seg) {
      try {
        seg = this.openSegment(log);
      } catch (error) {
        this.writeFailed(error, 1);
        return;
      }
    }
    const offset = seg.summary.bytes;
    const c = seg.cursor;
    if (c.recordsSinceIndex >= INDEX_EVERY_RECORDS || c.bytesSinceIndex >= INDEX_EVERY_BYTES) {
      seg.stagedIndex.push(encodeIndexEntry({ offset, maxStepBefore: c.maxStep, lastStepBefore: c.lastStep, maxTimeBefore: c.maxTime }));
      c.recordsSinceIndex = 0;
      c.bytesSinceIndex = 0;
    }
    const b = Buffer.allocUnsafe(size);
    writeRecord(b, 0, time, step, receivedAt, event);
    seg.staged.push(b);
    seg.stagedEvents++;
    seg.summary.bytes += size;
    seg.summary.writtenAt = this.now();
    noteRecord(seg.summary, time, step);
    this.totalBytes += size;
    c.recordsSinceIndex++;
    c.bytesSinceIndex += size;
    if (!Number.isNaN(step)) {
      c.lastStep = step;
      if (!(step <= c.maxStep)) c.maxStep = step;
    }
    if (!(time <= c.maxTime)) c.maxTime = time;
    // A big burst for one run is written as it comes, not held for the whole batch.
    if (seg.staged.length >= 1024) this.writeStaged(log, seg);
  }

  /** Writes everything staged; then holds the bounds. */
  flush(): void {
    for (const log of this.runs.values()) if (log.open && log.open.staged.length > 0) this.writeStaged(log, log.open);
    this.enforceRuns();
    this.enforceTotal();
  }

  private writeStaged(log: RunLog, seg: OpenSegment): void {
    const data = seg.staged.length === 1 ? seg.staged[0] : Buffer.concat(seg.staged);
    const events = seg.stagedEvents;
    seg.staged = [];
    seg.stagedEvents = 0;
    try {
      writeAll(this.write, seg.fd, data, seg.durable.summary.bytes);
    } catch (error) {
      // Cut back to the last whole record and forget what was staged.
      try { ftruncateSync(seg.fd, seg.durable.summary.bytes); } catch { /* the next scan cuts it */ }
      this.totalBytes -= seg.summary.bytes - seg.durable.summary.bytes;
      // In place: the run's segment list holds this same summary object.
      Object.assign(seg.summary, seg.durable.summary);
      seg.cursor = { ...seg.durable.cursor };
      seg.stagedIndex = [];
      this.writeFailed(error, events);
      if (seg.summary.events === 0) this.discardOpen(log);
      return;
    }
    if (seg.stagedIndex.length > 0) {
      // The index is a hint: a failed index write costs reading speed, never records.
      try { writeAll(this.write, seg.idxFd, Buffer.concat(seg.stagedIndex), fstatSync(seg.idxFd).size); } catch { /* readers fall back to scanning */ }
      seg.stagedIndex = [];
    }
    seg.durable = { summary: { ...seg.summary }, cursor: { ...seg.cursor } };
    seg.lastWriteMs = this.now();
    this.events.written(events, data.byteLength);
    this.clearProblem();
  }

  private writeFailed(error: unknown, events: number): void {
    const code = (error as NodeJS.ErrnoException)?.code;
    const full = code === 'ENOSPC' || code === 'EDQUOT';
    this.events.dropped(full ? 'disk_full' : 'write_error', events);
    this.setProblem(full ? `the disk is full (${code}) under ${this.root}` : `writing under ${this.root} failed: ${(error as Error)?.message ?? String(error)}`);
  }

  private setProblem(problem: string): void {
    if (this.problem === null) {
      this.problemSince = this.now();
      this.log.warn({ problem }, 'recording: dropping events');
    }
    this.problem = problem;
  }

  private clearProblem(): void {
    if (this.problem !== null) this.log.info({ was: this.problem }, 'recording: writing again');
    this.problem = null;
    this.problemSince = null;
  }

  private openSegment(log: RunLog): OpenSegment {
    this.closeIdle(true);
    mkdirSync(log.dir, { recursive: true });
    const seq = log.nextSeq++;
    const createdAt = this.now();
    const fd = openSync(path.join(log.dir, segmentName(seq)), 'wx');
    let idxFd = -1;
    try {
      writeAll(this.write, fd, segmentHeader(createdAt), 0);
      idxFd = openSync(path.join(log.dir, indexName(seq)), 'w');
    } catch (error) {
      closeSync(fd);
      if (idxFd >= 0) closeSync(idxFd);
      this.removeFiles(log.dir, seq);
      throw error;
    }
    const summary = emptySummary(seq, createdAt);
    const cursor: Cursor = { maxStep: Number.NaN, lastStep: Number.NaN, maxTime: Number.NaN, recordsSinceIndex: 0, bytesSinceIndex: 0 };
    const seg: OpenSegment = { fd, idxFd, summary, cursor, durable: { summary: { ...summary }, cursor: { ...cursor } }, staged: [], stagedIndex: [], stagedEvents: 0, lastWriteMs: createdAt };
    log.open = seg;
    log.segments.push(summary);
    this.totalBytes += summary.bytes;
    return seg;
  }

  /** Closes a run's open segment (after writing what is staged) and writes its summary. */
  private closeSegment(log: RunLog): void {
    const seg = log.open;
    if (!seg) return;
    if (seg.staged.length > 0) this.writeStaged(log, seg);
    if (!log.open) return; // the write failed and the empty segment went away
    log.open = undefined;
    closeSync(seg.fd);
    closeSync(seg.idxFd);
    try {
      writeFileSync(path.join(log.dir, summaryName(seg.summary.seq)), JSON.stringify(seg.summary));
    } catch { /* a missing summary is rebuilt by scanning at the next start */ }
  }

  /** An open segment that never got a record (its first write failed): removed entirely. */
  private discardOpen(log: RunLog): void {
    const seg = log.open!;
    log.open = undefined;
    closeSync(seg.fd);
    closeSync(seg.idxFd);
    log.segments.pop();
    this.totalBytes -= seg.summary.bytes;
    this.removeFiles(log.dir, seg.summary.seq);
    if (log.segments.length === 0) this.forgetRun(log);
  }

  /** Closes segments idle for idleCloseMs; with `forRoom`, also the least recently written beyond maxOpenSegments - 1. */
  closeIdle(forRoom = false): void {
    const now = this.now();
    const open = [...this.runs.values()].filter((l) => l.open);
    for (const l of open) if (now - l.open!.lastWriteMs >= this.bounds.idleCloseMs && l.open!.staged.length === 0) this.closeSegment(l);
    if (!forRoom) return;
    const still = [...this.runs.values()].filter((l) => l.open).sort((a, b) => a.open!.lastWriteMs - b.open!.lastWriteMs);
    while (still.length >= this.bounds.maxOpenSegments) this.closeSegment(still.shift()!);
  }

  private deleteSegment(log: RunLog, index: number, reason: DeleteReason): void {
    const [s] = log.segments.splice(index, 1);
    this.totalBytes -= s.bytes;
    this.removeFiles(log.dir, s.seq);
    this.events.deleted(reason, s.bytes);
    if (log.segments.length === 0) this.forgetRun(log);
  }

  private forgetRun(log: RunLog): void {
    this.runs.delete(log.run);
    try { rmdirSync(log.dir); } catch { /* not empty (someone else's file): leave it */ }
  }

  private removeFiles(dir: string, seq: number): void {
    for (const name of [segmentName(seq), indexName(seq), summaryName(seq)]) {
      try { unlinkSync(path.join(dir, name)); } catch { /* already gone */ }
    }
  }

  private closedCount(log: RunLog): number {
    return log.segments.length - (log.open ? 1 : 0);
  }

  private enforceRuns(): void {
    for (const log of [...this.runs.values()]) {
      let bytes = log.segments.reduce((a, s) => a + s.bytes, 0);
      while (bytes > this.bounds.maxBytesPerRun && this.closedCount(log) > 0) {
        bytes -= log.segments[0].bytes;
        this.deleteSegment(log, 0, 'run_bytes');
      }
    }
  }

  /** Deletes the oldest closed segments until `extra` more bytes fit in the total; false when they cannot. */
  private makeRoom(extra: number): boolean {
    while (this.totalBytes + extra > this.bounds.maxBytesTotal) {
      let oldest: { log: RunLog; at: number } | undefined;
      for (const log of this.runs.values()) {
        if (this.closedCount(log) === 0) continue;
        const at = log.segments[0].writtenAt;
        if (!oldest || at < oldest.at) oldest = { log, at };
      }
      if (!oldest) return false;
      this.deleteSegment(oldest.log, 0, 'total_bytes');
    }
    return true;
  }

  private enforceTotal(): void {
    this.makeRoom(0);
  }

  /** Deletes closed segments last written before now − maxAgeHours. */
  enforceAge(): void {
    const cutoff = this.now() - this.bounds.maxAgeHours * 3_600_000;
    for (const log of [...this.runs.values()]) {
      while (this.closedCount(log) > 0 && log.segments[0].writtenAt < cutoff) this.deleteSegment(log, 0, 'age');
    }
  }

  list(): RunListing[] {
    const now = this.now();
    return [...this.runs.values()].map((log) => {
      const durable = log.segments.map((s, i) => (log.open && i === log.segments.length - 1 ? log.open.durable.summary : s));
      let first: number | null = null;
      let last: number | null = null;
      let start: number | null = null;
      let end: number | null = null;
      let events = 0;
      let bytes = 0;
      for (const s of durable) {
        events += s.events;
        bytes += s.bytes;
        if (s.minStep !== null) first = first === null ? s.minStep : Math.min(first, s.minStep);
        if (s.maxStep !== null) last = last === null ? s.maxStep : Math.max(last, s.maxStep);
        if (s.minTime !== null) start = start === null ? s.minTime : Math.min(start, s.minTime);
        if (s.maxTime !== null) end = end === null ? s.maxTime : Math.max(end, s.maxTime);
      }
      return {
        run: log.run, first_step: first, last_step: last, events, bytes, segments: log.segments.length,
        started_at: isoOrNull(start), ended_at: isoOrNull(end), recording: log.open !== undefined && now - log.open.lastWriteMs < LIVE_MS,
      };
    }).sort((a, b) => a.run.localeCompare(b.run));
  }

  has(run: string): boolean {
    return this.runs.has(run);
  }

  dirOf(run: string): string {
    return path.join(this.root, run);
  }

  /** Time span of a run's durable records (for replay progress). */
  span(run: string): { firstTime: number | null; lastTime: number | null } {
    const log = this.runs.get(run);
    if (!log) return { firstTime: null, lastTime: null };
    const times = log.segments.flatMap((s) => [s.minTime, s.maxTime]).filter((t): t is number => t !== null);
    return { firstTime: times.length ? Math.min(...times) : null, lastTime: times.length ? Math.max(...times) : null };
  }

  status(): StoreStatus {
    if (this.problem !== null) return { runs: this.runs.size, bytes: this.totalBytes, problem: this.problem, problemSince: this.problemSince };
    return { runs: this.runs.size, bytes: this.totalBytes, problem: this.boundProblem, problemSince: this.boundProblemSince };
  }

  close(): void {
    for (const log of [...this.runs.values()]) if (log.open) this.closeSegment(log);
  }
}

/** Writes all of `data` at `position` (positional: a failed write leaves no file offset to undo). */
function writeAll(write: typeof writeSync, fd: number, data: Uint8Array, position: number): void {
  let off = 0;
  while (off < data.byteLength) off += write(fd, data, off, data.byteLength - off, position + off);
}

function readSyncAt(fd: number, b: Buffer, at: number): void {
  readSync(fd, b, 0, b.byteLength, at);
}
