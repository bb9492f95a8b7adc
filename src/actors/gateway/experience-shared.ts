/**
 * Batches shared between experience consumers with equal filters and format: the first of them
 * to send a batch writes it (and deflates it), the others send the same bytes. Several trainer
 * processes (or data-loader workers) on one unfiltered stream then cost one serialisation per
 * batch, not one each.
 *
 * Sharing never decides what a consumer gets: a kept batch is reused only for a batch of the very
 * same records (compared one by one) with the same head counts, so a consumer whose batches drift
 * from the others' (a drop, a reconfigure, a resume) just writes its own.
 */
import { describeFilter, type ExperienceFilter } from './experience-filter.js';

interface Kept {
  signature: string;
  marks: number[];
  dropped: number;
  missed: number;
  bytes: Uint8Array;
}

/** Batches kept at once: consumers of one group send a batch within one pass over the consumers. */
const KEEP = 4;
/** A larger batch is not kept (its copy would cost more memory than sharing is worth). */
const MAX_KEPT_BYTES = 8 << 20;

/**
 * What makes two consumers' batches interchangeable, or undefined when the filters hold
 * per-consumer state (sampling, per-game caps, a rate limit) and so decide differently.
 */
export function batchSignature(version: number, deflate: boolean, f: ExperienceFilter): string | undefined {
  if (f.sampleRate < 1 || f.perGameCap !== undefined || f.maxRate !== undefined) return undefined;
  return `${version}|${deflate ? 'deflate' : 'none'}|${JSON.stringify(describeFilter(f))}`;
}

export class SharedBatches {
  private readonly members = new Map<string, number>();
  private readonly kept: Kept[] = [];
  /** Batches sent from a kept copy instead of written again. */
  hits = 0;

  join(signature: string): void {
    this.members.set(signature, (this.members.get(signature) ?? 0) + 1);
  }

  leave(signature: string | undefined): void {
    if (signature === undefined) return;
    const n = (this.members.get(signature) ?? 0) - 1;
    if (n > 0) this.members.set(signature, n);
    else {
      this.members.delete(signature);
      for (let i = this.kept.length - 1; i >= 0; i--) if (this.kept[i].signature === signature) this.kept.splice(i, 1);
    }
  }

  /** True when another consumer may send the same batches (so a written batch is worth keeping). */
  sharing(signature: string | undefined): boolean {
    return signature !== undefined && (this.members.get(signature) ?? 0) > 1;
  }

  find(signature: string, records: readonly { mark: number }[], dropped: number, missed: number): Uint8Array | undefined {
    for (const k of this.kept) {
      if (k.signature !== signature || k.dropped !== dropped || k.missed !== missed || k.marks.length !== records.length) continue;
      let same = true;
      for (let i = 0; i < records.length && same; i++) same = k.marks[i] === records[i].mark;
      if (!same) continue;
      this.hits++;
      return k.bytes;
    }
    return undefined;
  }

  /** Keep an own copy of `bytes` (the writer's buffer is reused by the next batch). */
  keep(signature: string, records: readonly { mark: number }[], dropped: number, missed: number, bytes: Uint8Array): void {
    if (bytes.byteLength > MAX_KEPT_BYTES) return;
    if (this.kept.length >= KEEP) this.kept.shift();
    this.kept.push({ signature, marks: records.map((r) => r.mark), dropped, missed, bytes: bytes.slice() });
  }
}
