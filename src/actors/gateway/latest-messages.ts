/**
 * The latest message per (channel, key, level): what a new client gets as its snapshot
 * (entries flagged retain) and what conflated tiers and drained slow clients catch up
 * from. Bounded: at most `maxKeys` keys; an update with a new key past that is still
 * published live but not kept (counted by the caller).
 *
 * Bytes are stored exactly as they came in the fan-out record (one copy out of the ring),
 * and the very same Uint8Array is handed to every publish and send.
 */
import { LEVELS } from '../../shared/telemetry/channels.js';

export interface LatestEntry {
  readonly channel: number;
  readonly key: string;
  /** Part of the snapshot a new client gets. */
  retain: boolean;
  /** The last update was critical: conflated tiers do not re-send it (it went out at once). */
  critical: boolean;
  /** Per level (LEVELS order): the message bytes, or undefined when never sent for that level. */
  readonly bytes: Array<Uint8Array | undefined>;
  /** Per level: store sequence number of the last change (conflated tiers publish what changed since their last flush). */
  readonly seq: number[];
}

export class LatestMessages {
  private readonly entries = new Map<string, LatestEntry>();
  private seqCounter = 0;

  constructor(private readonly maxKeys: number) {}

  get size(): number {
    return this.entries.size;
  }

  /** Current sequence number: everything changed so far has seq <= this. */
  get seq(): number {
    return this.seqCounter;
  }

  /**
   * Records `bytes` as the latest message for the levels in `levelMask`. Returns false
   * when the key is new and the table is full (nothing stored).
   */
  put(channel: number, key: string, levelMask: number, bytes: Uint8Array, retain: boolean, critical: boolean): boolean {
    const id = `${channel}\u0000${key}`;
    let entry = this.entries.get(id);
    if (!entry) {
      if (this.entries.size >= this.maxKeys) return false;
      entry = { channel, key, retain, critical, bytes: LEVELS.map(() => undefined), seq: LEVELS.map(() => 0) };
      this.entries.set(id, entry);
    }
    entry.retain = retain;
    entry.critical = critical;
    const seq = ++this.seqCounter;
    for (let level = 0; level < LEVELS.length; level++) {
      if (levelMask & (1 << level)) {
        entry.bytes[level] = bytes;
        entry.seq[level] = seq;
      }
    }
    return true;
  }

  get(channel: number, key: string): LatestEntry | undefined {
    return this.entries.get(`${channel}\u0000${key}`);
  }

  /** Drops one key of a channel, or everything when `key` is empty. */
  reset(channel: number, key: string): void {
    if (key === '') this.entries.clear();
    else this.entries.delete(`${channel}\u0000${key}`);
  }

  values(): IterableIterator<LatestEntry> {
    return this.entries.values();
  }
}
