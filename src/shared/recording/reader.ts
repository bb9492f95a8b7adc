/**
 * Reads recordings (format.ts) in bounded chunks, off whatever thread calls it: the
 * recorder (start-up scan, replays) and the gateways (the events and CSV routes). Memory
 * per reader is one chunk, or one record when a record is larger than a chunk.
 *
 * A reader may run while the recorder appends to the same segment: it reads up to the
 * size the file had when it got there, and a record still being written there ends the
 * segment for it like a torn tail would (it is not an error). A segment deleted under it
 * (the size or age bound) ends the read early.
 */
import { open, readdir, readFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import {
  SEGMENT_FILE, SEGMENT_HEADER_BYTES, decodeIndex, headerProblem, indexName, isSummary, parseRecord, segmentName, summaryName,
  type IndexEntry, type RecordView, type SegmentSummary,
} from './format.js';

export const READ_CHUNK_BYTES = 256 * 1024;

/** Segment numbers in `dir`, oldest first; [] when the directory does not exist. */
export async function listSegments(dir: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return names.map((n) => SEGMENT_FILE.exec(n)).filter((m): m is RegExpExecArray => m !== null).map((m) => Number(m[1])).sort((a, b) => a - b);
}

export async function readIndex(dir: string, seq: number): Promise<IndexEntry[]> {
  try {
    return decodeIndex(await readFile(path.join(dir, indexName(seq))));
  } catch {
    return []; // no index: read the segment from its start
  }
}

export async function readSummary(dir: string, seq: number): Promise<SegmentSummary | undefined> {
  try {
    const s = JSON.parse(await readFile(path.join(dir, summaryName(seq)), 'utf8')) as unknown;
    return isSummary(s) && s.seq === seq ? s : undefined;
  } catch {
    return undefined;
  }
}

/** How a segment read ended: the end of the last whole, valid record, and why it stopped if not at the file's end. */
export interface SegmentEnd {
  goodEnd: number;
  fileSize: number;
  /** Set when bytes after goodEnd are not a valid record (torn, corrupt, or still being written). */
  problem?: string;
}

/**
 * Yields every valid record of one segment from `startOffset`, in file order. The yielded
 * views are valid until the next iteration. `end` is filled in when the generator finishes.
 */
export async function* segmentRecords(file: string, startOffset: number, end: SegmentEnd, signal?: AbortSignal): AsyncGenerator<RecordView> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') { end.goodEnd = 0; end.fileSize = 0; end.problem = 'segment deleted'; return; }
    throw error;
  }
  try {
    const size = (await fh.stat()).size;
    end.fileSize = size;
    end.goodEnd = 0;
    const head = Buffer.alloc(SEGMENT_HEADER_BYTES);
    const { bytesRead } = await fh.read(head, 0, SEGMENT_HEADER_BYTES, 0);
    const bad = headerProblem(head.subarray(0, bytesRead));
    if (bad) { end.problem = bad; return; }
    let pos = Math.max(SEGMENT_HEADER_BYTES, startOffset);
    end.goodEnd = pos;
    let buf = Buffer.alloc(READ_CHUNK_BYTES);
    let have = 0; // bytes in buf, starting at file offset `base`
    let base = pos;
    while (!signal?.aborted) {
      // Fill the buffer from the file (up to the size seen at open).
      const want = Math.min(buf.byteLength - have, size - (base + have));
      if (want > 0) {
        const r = await fh.read(buf, have, want, base + have);
        have += r.bytesRead;
      }
      let at = 0;
      for (;;) {
        const parsed = parseRecord(buf, at, have, base + at);
        if (parsed.kind === 'record') {
          at += parsed.size;
          end.goodEnd = base + at;
          yield parsed.record;
          if (signal?.aborted) return;
          continue;
        }
        if (parsed.kind === 'bad') { end.problem = `${parsed.reason} at offset ${base + at}`; return; }
        // Incomplete: the rest of the file may hold it, unless the file ends here.
        if (base + have >= size) {
          if (base + at < size) end.problem = `truncated record at offset ${base + at} (${size - base - at} bytes of ${parsed.need})`;
          return;
        }
        // Move the partial record to the front; grow the buffer for a record bigger than it.
        buf.copy(buf, 0, at, have);
        have -= at;
        base += at;
        if (parsed.need > buf.byteLength) {
          const bigger = Buffer.alloc(parsed.need);
          buf.copy(bigger, 0, 0, have);
          buf = bigger;
        } else if (buf.byteLength > READ_CHUNK_BYTES && have <= READ_CHUNK_BYTES && parsed.need <= READ_CHUNK_BYTES) {
          const smaller = Buffer.alloc(READ_CHUNK_BYTES);
          buf.copy(smaller, 0, 0, have);
          buf = smaller;
        }
        break;
      }
    }
  } finally {
    await fh.close();
  }
}

export interface RecordRange {
  /** Inclusive step bounds; records without a step go with the last step before them. */
  fromStep?: number;
  toStep?: number;
  /** Inclusive bounds on record times (ms since epoch). */
  fromTime?: number;
  toTime?: number;
}

/** A record, with the step it counts under for range checks (its own, or the last before it). */
export interface RangedRecord extends RecordView { effectiveStep: number }

/** The last entry before which no record can be at or past `from` (by the column `key`), or undefined. */
function lastBelow(entries: IndexEntry[], key: 'maxStepBefore' | 'maxTimeBefore', from: number | undefined): number {
  if (from === undefined) return -1;
  // The largest-before columns only grow: binary search for the last entry below `from`.
  let lo = 0;
  let hi = entries.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = entries[mid][key];
    if (Number.isNaN(v) || v < from) { found = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return found;
}

/** Where to start reading a segment: the later of the step and the time starting points. */
function startEntry(entries: IndexEntry[], range: RecordRange): IndexEntry | undefined {
  const i = Math.max(lastBelow(entries, 'maxStepBefore', range.fromStep), lastBelow(entries, 'maxTimeBefore', range.fromTime));
  return i >= 0 ? entries[i] : undefined;
}

/** True when the summary proves no record of the segment is in the range. */
function outside(s: SegmentSummary, r: RecordRange): boolean {
  if (s.maxStep !== null && r.fromStep !== undefined && s.maxStep < r.fromStep) return true;
  if (s.minStep !== null && r.toStep !== undefined && s.minStep > r.toStep) return true;
  if (s.maxTime !== null && r.fromTime !== undefined && s.maxTime < r.fromTime) return true;
  if (s.minTime !== null && r.toTime !== undefined && s.minTime > r.toTime) return true;
  return false;
}

/**
 * Every valid record of a run's recording directory within the step range, oldest first.
 * Whole segments outside the range are skipped by their summaries, the start of the first
 * by its index.
 */
export async function* runRecords(dir: string, range: RecordRange = {}, signal?: AbortSignal): AsyncGenerator<RangedRecord> {
  const { fromStep, toStep, fromTime, toTime } = range;
  let lastStep = Number.NaN;
  for (const seq of await listSegments(dir)) {
    if (signal?.aborted) return;
    const summary = await readSummary(dir, seq);
    if (summary && outside(summary, range)) {
      lastStep = summary.lastStep ?? lastStep;
      continue;
    }
    const entry = startEntry(await readIndex(dir, seq), range);
    if (entry) lastStep = entry.lastStepBefore;
    const end: SegmentEnd = { goodEnd: 0, fileSize: 0 };
    for await (const r of segmentRecords(path.join(dir, segmentName(seq)), entry?.offset ?? SEGMENT_HEADER_BYTES, end, signal)) {
      if (!Number.isNaN(r.step)) lastStep = r.step;
      const effectiveStep = lastStep;
      if (fromStep !== undefined && !(effectiveStep >= fromStep)) continue;
      if (toStep !== undefined && !(effectiveStep <= toStep)) continue;
      if (fromTime !== undefined && r.time < fromTime) continue;
      if (toTime !== undefined && r.time > toTime) continue;
      yield Object.assign(r, { effectiveStep });
    }
  }
}
