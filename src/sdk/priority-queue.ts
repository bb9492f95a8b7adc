/**
 * The network producer's send queue: bounded in events and in bytes, FIFO overall, and
 * when full it gives up the *lowest-priority, oldest* event first, so a burst of
 * experience tensors can never push out a milestone or a game result.
 *
 * One circular FIFO per priority level plus a global sequence number: eviction takes the
 * head of the lowest non-empty level, shift() takes the head with the smallest sequence
 * number (a handful of comparisons), so events still leave in the order they came.
 * A new event that would only fit by evicting something of higher priority is refused
 * instead.
 */

export interface QueueEntry<Tag> {
  bytes: Uint8Array;
  priority: number;
  tag: Tag;
}

class Fifo<Tag> {
  private readonly bytes: (Uint8Array | undefined)[];
  private readonly tags: (Tag | undefined)[];
  private readonly seqs: Float64Array;
  private head = 0;
  length = 0;

  constructor(capacity: number) {
    this.bytes = new Array(capacity);
    this.tags = new Array(capacity);
    this.seqs = new Float64Array(capacity);
  }

  push(bytes: Uint8Array, tag: Tag, seq: number): void {
    const i = (this.head + this.length) % this.bytes.length;
    this.bytes[i] = bytes;
    this.tags[i] = tag;
    this.seqs[i] = seq;
    this.length++;
  }

  /** Puts an event before the head (room is the caller's business: length < capacity). */
  unshift(bytes: Uint8Array, tag: Tag, seq: number): void {
    this.head = (this.head - 1 + this.bytes.length) % this.bytes.length;
    this.bytes[this.head] = bytes;
    this.tags[this.head] = tag;
    this.seqs[this.head] = seq;
    this.length++;
  }

  headSeq(): number {
    return this.length === 0 ? Infinity : this.seqs[this.head];
  }

  headBytes(): Uint8Array {
    return this.bytes[this.head]!;
  }

  shift(): { bytes: Uint8Array; tag: Tag } {
    const i = this.head;
    const out = { bytes: this.bytes[i]!, tag: this.tags[i]! };
    this.bytes[i] = undefined; // let the event be collected now, not when the slot is reused
    this.tags[i] = undefined;
    this.head = (i + 1) % this.bytes.length;
    this.length--;
    return out;
  }
}

export class PriorityDropQueue<Tag> {
  readonly maxEvents: number;
  readonly maxBytes: number;
  private readonly levels: Fifo<Tag>[];
  private seq = 0;
  /** Sequence numbers for events put back in front: below every one handed out by push(). */
  private frontSeq = -1;
  private count = 0;
  private size = 0;

  /** `levels` priorities 0 (dropped first) .. levels-1. */
  constructor(maxEvents: number, maxBytes: number, levels: number) {
    if (!Number.isInteger(maxEvents) || maxEvents < 1) throw new RangeError(`queue size must be a positive integer (got ${String(maxEvents)})`);
    if (!Number.isInteger(maxBytes) || maxBytes < 1) throw new RangeError(`queue byte limit must be a positive integer (got ${String(maxBytes)})`);
    this.maxEvents = maxEvents;
    this.maxBytes = maxBytes;
    this.levels = Array.from({ length: levels }, () => new Fifo<Tag>(maxEvents));
  }

  get length(): number {
    return this.count;
  }

  get bytes(): number {
    return this.size;
  }

  /**
   * Queues an event, evicting lower-or-equal-priority events (oldest first) as needed;
   * `onDrop` hears about each evicted tag, or about the new one when it is refused.
   * Returns whether the new event was queued.
   */
  push(bytes: Uint8Array, priority: number, tag: Tag, onDrop: (tag: Tag) => void): boolean {
    const len = bytes.byteLength;
    if (len > this.maxBytes) {
      onDrop(tag);
      return false;
    }
    while (this.count + 1 > this.maxEvents || this.size + len > this.maxBytes) {
      const victim = this.lowestAtMost(priority);
      if (victim === undefined) {
        onDrop(tag);
        return false;
      }
      const gone = victim.shift();
      this.count--;
      this.size -= gone.bytes.byteLength;
      onDrop(gone.tag);
    }
    this.levels[priority].push(bytes, tag, this.seq++);
    this.count++;
    this.size += len;
    return true;
  }

  /**
   * Puts events taken out earlier (oldest first) back in front of everything queued, in
   * their order: a connection that died before the server confirmed them. The bounds still
   * hold: past them the lowest-priority oldest event goes (counted through onDrop), and an
   * event that fits only by evicting higher priorities is dropped itself.
   */
  requeueFront(entries: readonly QueueEntry<Tag>[], onDrop: (tag: Tag) => void): void {
    for (let i = entries.length - 1; i >= 0; i--) {
      const { bytes, priority, tag } = entries[i];
      let fits = bytes.byteLength <= this.maxBytes;
      while (fits && (this.count + 1 > this.maxEvents || this.size + bytes.byteLength > this.maxBytes)) {
        const victim = this.lowestAtMost(priority);
        if (victim === undefined) { fits = false; break; }
        const gone = victim.shift();
        this.count--;
        this.size -= gone.bytes.byteLength;
        onDrop(gone.tag);
      }
      if (!fits) { onDrop(tag); continue; }
      this.levels[priority].unshift(bytes, tag, this.frontSeq--);
      this.count++;
      this.size += bytes.byteLength;
    }
  }

  /** Byte length of the event shift() would return (0 when empty). */
  peekBytes(): number {
    const p = this.oldest();
    return p < 0 ? 0 : this.levels[p].headBytes().byteLength;
  }

  /** The oldest event overall, or undefined when empty. */
  shift(): QueueEntry<Tag> | undefined {
    const p = this.oldest();
    if (p < 0) return undefined;
    const out = this.levels[p].shift();
    this.count--;
    this.size -= out.bytes.byteLength;
    return { bytes: out.bytes, tag: out.tag, priority: p };
  }

  /** The priority level holding the oldest event, or -1 when empty. */
  private oldest(): number {
    let best = -1;
    let bestSeq = Infinity;
    for (let p = 0; p < this.levels.length; p++) {
      const s = this.levels[p].headSeq();
      if (s < bestSeq) { bestSeq = s; best = p; }
    }
    return best;
  }

  private lowestAtMost(priority: number): Fifo<Tag> | undefined {
    for (let p = 0; p <= priority; p++) if (this.levels[p].length > 0) return this.levels[p];
    return undefined;
  }
}
