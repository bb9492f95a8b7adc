/**
 * Retained state across nodes: what a new viewer's snapshot needs from the whole cluster.
 *
 * Out: this node's retained records wait here, latest per (channel, level, key), and are written
 * to the hash `ringcast:retained` in one go every flush (a few times a second), so Redis sees at
 * most one write per key per flush however fast the key changes. While Redis is away they keep
 * waiting (bounded), and go out when it is back.
 *
 * In: the retained records this relay delivered to the gateways (other nodes', and this node's
 * stamped critical ones) are kept for a gateway that restarts. After a start or an outage the
 * hash is read and what differs from what was delivered goes to the gateways as state (snapshot),
 * not as news: viewers are not sent the latest milestone again.
 */
import type { Redis } from 'ioredis';
import { FanoutFlag, FanoutType, readFanoutRecord } from '../../shared/telemetry/ring-records.js';
import { RETAINED_KEY, decodeRetained, encodeRetained, retainedField } from './wire.js';

/** Remote retained records kept for a restarted gateway (bounded like a gateway's state table). */
const MAX_KEPT = 16_384;
/** Retained fields waiting for Redis at most (beyond: counted, not written). */
const MAX_WAITING = 50_000;
/** Fields per HSET. */
const HSET_CHUNK = 500;

export interface RetainedStoreOptions {
  redis: Redis;
  nodeId: string;
  origin: Uint8Array;
  /** Counts a record not kept, by reason. */
  drop: (reason: string) => void;
  /** Reports trouble with Redis data, naming the key (rate-limited by the caller). */
  trouble: (kind: string, fields: Record<string, unknown>, message: string) => void;
}

export class RetainedStore {
  private readonly waiting = new Map<string, Buffer>();
  private readonly kept = new Map<string, Uint8Array>();
  /** Fields in the Redis hash after the last flush. */
  fields = 0;

  constructor(private readonly o: RetainedStoreOptions) {}

  /** This node's retained record, to be written at the next flush. */
  put(field: string, record: Uint8Array): void {
    if (!this.waiting.has(field) && this.waiting.size >= MAX_WAITING) {
      this.o.drop('retained_full');
      return;
    }
    this.waiting.set(field, encodeRetained(this.o.origin, record));
  }

  /** A retained record delivered to the gateways (may be a view into a batch: copied if kept). */
  keep(view: Uint8Array): void {
    const flags = view[3];
    if (view[0] !== FanoutType.Update || (flags & FanoutFlag.Retain) === 0 || (flags & FanoutFlag.LiveOnly) !== 0) return;
    const record = view.slice();
    const field = retainedField(readFanoutRecord(record, 0, record.byteLength));
    this.kept.delete(field);
    this.kept.set(field, record);
    if (this.kept.size > MAX_KEPT) this.kept.delete(this.kept.keys().next().value as string);
  }

  /** What a restarted gateway is given again. */
  keptRecords(): IterableIterator<Uint8Array> {
    return this.kept.values();
  }

  /** Writes what waits; on failure it waits again (unless newer values came meanwhile). */
  async flush(): Promise<void> {
    if (this.waiting.size === 0) return;
    const entries = [...this.waiting];
    this.waiting.clear();
    try {
      for (let i = 0; i < entries.length; i += HSET_CHUNK) {
        const args: Array<string | Buffer> = [];
        for (const [field, value] of entries.slice(i, i + HSET_CHUNK)) args.push(field, value);
        await this.o.redis.hset(RETAINED_KEY, ...(args as [string, Buffer]));
      }
      this.fields = await this.o.redis.hlen(RETAINED_KEY);
    } catch (error) {
      for (const [field, value] of entries) if (!this.waiting.has(field)) this.waiting.set(field, value);
      this.o.trouble('retained', { key: RETAINED_KEY, err: (error as Error).message }, `cluster: retained state not written to ${RETAINED_KEY}`);
    }
  }

  /**
   * Reads the other nodes' retained records and hands over, as state, those that differ from what
   * was delivered. Returns how many.
   */
  async load(deliver: (record: Uint8Array) => void): Promise<number> {
    let all: Record<string, Buffer>;
    try {
      all = await this.o.redis.hgetallBuffer(RETAINED_KEY);
    } catch (error) {
      this.o.trouble('retained_read', { key: RETAINED_KEY, err: (error as Error).message }, `cluster: cannot read retained state at ${RETAINED_KEY}`);
      return 0;
    }
    let loaded = 0;
    for (const [field, value] of Object.entries(all)) {
      const decoded = decodeRetained(value);
      if ('error' in decoded) {
        this.o.trouble('retained_bad', { key: RETAINED_KEY, field, err: decoded.error }, `cluster: ignoring field ${JSON.stringify(field)} of ${RETAINED_KEY}: ${decoded.error}`);
        continue;
      }
      if (decoded.origin === this.o.nodeId) continue;
      // Already delivered as it is: nothing to add (a critical message must not be shown twice).
      const held = this.kept.get(field);
      if (held && Buffer.compare(held, decoded.record) === 0) continue;
      // State, not news: it joins the snapshot (and what conflated tiers show) but is not pushed to
      // live viewers as a new event; after a relay restart they would see the latest milestone twice.
      const asState = decoded.record.slice();
      asState[3] = (asState[3] & ~FanoutFlag.Critical) | FanoutFlag.NoLive;
      deliver(asState);
      this.keep(decoded.record);
      loaded++;
    }
    return loaded;
  }
}
