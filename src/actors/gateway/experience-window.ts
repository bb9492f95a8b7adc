/**
 * The retained window of experience records on one gateway thread: the newest records, bounded
 * by bytes and by age, so a consumer can start at "earliest" or resume at a sequence number.
 *
 * Sequence numbers come from upstream (the aggregator numbers each experience record once and
 * writes the same number into every gateway's fan-out ring), so every gateway thread holds the
 * same numbering and a consumer that reconnects to another thread resumes exactly.
 */
import type { ExperienceFacts } from './experience-filter.js';

export interface RetainedRecord extends ExperienceFacts {
  seq: number;
  /** Arrival number on this thread (only grows, whatever the sequence numbering does): what the block arena recycles by. */
  mark: number;
  /** The record's v2 wire block (seq, length, event: experience-batch.ts recordBlock), an own copy shared by every consumer's batches. */
  block: Uint8Array;
  /** The experience event bytes (a view into `block`). */
  bytes: Uint8Array;
  /** Receipt time at the ingest edge (ms since epoch). */
  stamp: number;
  /** When this gateway got it (for the age bound). */
  at: number;
}

export interface WindowLimits {
  maxBytes: number;
  maxAgeMs: number;
}

export class RetainedWindow {
  private items: RetainedRecord[] = [];
  private start = 0;
  private totalBytes = 0;
  evicted = 0;

  constructor(private readonly limits: WindowLimits) {}

  get size(): number {
    return this.items.length - this.start;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  first(): RetainedRecord | undefined {
    return this.items[this.start];
  }

  last(): RetainedRecord | undefined {
    return this.size === 0 ? undefined : this.items[this.items.length - 1];
  }

  /** Append (sequence numbers only grow; an out-of-order one means the numbering restarted: start over). */
  push(r: RetainedRecord): void {
    const tail = this.last();
    if (tail && r.seq <= tail.seq) this.clear();
    this.items.push(r);
    this.totalBytes += r.bytes.byteLength;
    this.evict(r.at);
  }

  /** Drop what is over the byte bound or older than the age bound. */
  evict(now: number): void {
    const { maxBytes, maxAgeMs } = this.limits;
    while (this.size > 0) {
      const head = this.items[this.start];
      if (this.totalBytes <= maxBytes && now - head.at <= maxAgeMs) break;
      this.totalBytes -= head.bytes.byteLength;
      this.items[this.start] = undefined as unknown as RetainedRecord;
      this.start++;
      this.evicted++;
    }
    // Compact now and then so the array does not grow without bound.
    if (this.start > 1024 && this.start * 2 > this.items.length) {
      this.items = this.items.slice(this.start);
      this.start = 0;
    }
  }

  /** Index (for at()) of the first record with seq >= `seq`; size when there is none. */
  indexOf(seq: number): number {
    let lo = this.start;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.items[mid].seq < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo - this.start;
  }

  at(i: number): RetainedRecord | undefined {
    return this.items[this.start + i];
  }

  clear(): void {
    this.evicted += this.size;
    this.items = [];
    this.start = 0;
    this.totalBytes = 0;
  }
}
