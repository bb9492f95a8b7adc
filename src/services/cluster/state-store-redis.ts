/**
 * The StateStore on Redis, for nodes that share state (scene, prediction games, capture
 * registry and config): one hash per namespace, field = key, value = `{"t": updatedAt, "v": value}`.
 *
 * The StateStore interface is synchronous, so this is a write-through cache: every
 * namespace is read into memory at open, reads are served from memory, writes change
 * memory at once and go to Redis in order on the same connection (a transaction as one
 * MULTI), each followed by a notice on a channel. Other nodes re-read the keys a notice
 * names and emit `change` (ns, key), so a registry edited through one node's REST is seen
 * by every node within a round trip. After a reconnect everything is read again (notices
 * sent while a node was away are lost: PUB/SUB keeps nothing).
 *
 * Bad data (a key of the wrong type, a value that is not ours) is refused with a log line
 * naming the key and field, and left out of the cache; never a crash.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { StateStore, StoredEntry } from '../../shared/state-store.js';

interface Cached { json: string; updatedAt: number }
type Op = { ns: string; key: string; put?: Cached };

export interface RedisStateStoreOptions {
  /** Commands and writes, in order. */
  redis: Redis;
  /** A connection of its own for the change notices (subscribe mode). */
  subscriber: Redis;
  log: Logger;
  prefix?: string;
  /** How long open() waits for the first full read before starting empty (it reads again on connect). */
  loadTimeoutMs?: number;
}

function encode(value: unknown): string {
  const json = JSON.stringify(value);
  if (json === undefined) throw new TypeError(`state value must be JSON-serialisable, got ${typeof value}`);
  return json;
}

export class RedisStateStore extends EventEmitter implements StateStore {
  private namespaces = new Map<string, Map<string, Cached>>();
  private readonly id = randomBytes(6).toString('hex');
  private readonly prefix: string;
  private readonly channel: string;
  private depth = 0;
  private txOps: Op[] = [];
  private closed = false;
  writeFailures = 0;
  refused = 0;

  private constructor(private readonly o: RedisStateStoreOptions) {
    super();
    this.prefix = `${o.prefix ?? 'ringcast'}:state:`;
    this.channel = `${o.prefix ?? 'ringcast'}:state-changes`;
  }

  /** Opens the store: subscribes to change notices, then reads every namespace. */
  static async open(o: RedisStateStoreOptions): Promise<RedisStateStore> {
    const store = new RedisStateStore(o);
    o.subscriber.on('message', (channel: string, message: string) => { if (channel === store.channel) store.onNotice(message); });
    // ioredis re-subscribes by itself after a reconnect; what changed meanwhile is read again.
    let first = true;
    o.redis.on('ready', () => {
      if (first) { first = false; return; }
      void store.reload().catch((error: Error) => o.log.warn({ err: error.message }, 'state store: re-reading Redis after a reconnect failed'));
    });
    const load = (async () => {
      await o.subscriber.subscribe(store.channel);
      await store.reload();
    })();
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), o.loadTimeoutMs ?? 5000).unref());
    const outcome = await Promise.race([load.then(() => 'loaded' as const, (error: Error) => error), timeout]);
    if (outcome !== 'loaded') {
      o.log.warn({ err: outcome === 'timeout' ? 'timed out' : outcome.message }, 'state store: Redis not readable at start; starting from an empty cache, filled once Redis answers');
      load.catch(() => undefined);
    } else {
      first = false;
    }
    return store;
  }

  private hashKey(ns: string): string {
    return `${this.prefix}${ns}`;
  }

  private parse(raw: string, key: string, field: string): Cached | undefined {
    try {
      const o = JSON.parse(raw) as { t?: unknown; v?: unknown };
      if (o !== null && typeof o === 'object' && typeof o.t === 'number' && 'v' in o) return { json: JSON.stringify(o.v), updatedAt: o.t };
    } catch { /* reported below */ }
    this.refused++;
    this.o.log.warn({ key, field }, 'state store: refused a value that is not a state entry (expected {"t": ms, "v": value})');
    return undefined;
  }

  /** Reads every namespace again and emits `change` for each key that differs from the cache. */
  async reload(): Promise<void> {
    const fresh = new Map<string, Map<string, Cached>>();
    let cursor = '0';
    do {
      const [next, keys] = await this.o.redis.scan(cursor, 'MATCH', `${this.prefix}*`, 'COUNT', 500);
      cursor = next;
      for (const key of keys) {
        let fields: Record<string, string>;
        try {
          fields = await this.o.redis.hgetall(key);
        } catch (error) {
          this.refused++;
          this.o.log.warn({ key, err: (error as Error).message }, 'state store: refused a key that is not a hash of state entries');
          continue;
        }
        const entries = new Map<string, Cached>();
        for (const [field, raw] of Object.entries(fields)) {
          const c = this.parse(raw, key, field);
          if (c) entries.set(field, c);
        }
        fresh.set(key.slice(this.prefix.length), entries);
      }
    } while (cursor !== '0');
    const old = this.namespaces;
    this.namespaces = fresh;
    for (const ns of new Set([...old.keys(), ...fresh.keys()])) {
      const a = old.get(ns) ?? new Map<string, Cached>();
      const b = fresh.get(ns) ?? new Map<string, Cached>();
      for (const key of new Set([...a.keys(), ...b.keys()])) if (a.get(key)?.json !== b.get(key)?.json) this.emit('change', ns, key);
    }
  }

  private onNotice(message: string): void {
    let notice: { from?: unknown; ns?: unknown; keys?: unknown };
    try {
      notice = JSON.parse(message) as typeof notice;
    } catch {
      this.refused++;
      this.o.log.warn({ channel: this.channel }, 'state store: refused a change notice that is not JSON');
      return;
    }
    if (notice.from === this.id) return;
    if (typeof notice.ns !== 'string' || !Array.isArray(notice.keys) || !notice.keys.every((k) => typeof k === 'string')) {
      this.refused++;
      this.o.log.warn({ channel: this.channel }, 'state store: refused a change notice without ns and keys');
      return;
    }
    const ns = notice.ns;
    const keys = notice.keys as string[];
    if (keys.length === 0) return;
    this.o.redis.hmget(this.hashKey(ns), ...keys).then((values) => {
      if (this.closed) return;
      keys.forEach((key, i) => {
        const raw = values[i];
        const c = raw === null ? undefined : this.parse(raw, this.hashKey(ns), key);
        const entries = this.entries(ns);
        if (entries.get(key)?.json === c?.json) return;
        if (c) entries.set(key, c);
        else entries.delete(key);
        this.emit('change', ns, key);
      });
    }, (error: Error) => this.o.log.warn({ key: this.hashKey(ns), err: error.message }, 'state store: re-reading changed keys failed'));
  }

  private entries(ns: string): Map<string, Cached> {
    let m = this.namespaces.get(ns);
    if (!m) this.namespaces.set(ns, (m = new Map()));
    return m;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('state store is closed');
  }

  get<T = unknown>(ns: string, key: string): T | undefined {
    this.assertOpen();
    const c = this.namespaces.get(ns)?.get(key);
    return c ? (JSON.parse(c.json) as T) : undefined;
  }

  put(ns: string, key: string, value: unknown): void {
    this.assertOpen();
    const c = { json: encode(value), updatedAt: Date.now() };
    this.entries(ns).set(key, c);
    this.write([{ ns, key, put: c }]);
  }

  delete(ns: string, key: string): boolean {
    this.assertOpen();
    const had = this.namespaces.get(ns)?.delete(key) ?? false;
    if (had) this.write([{ ns, key }]);
    return had;
  }

  list<T = unknown>(ns: string): Array<StoredEntry<T>> {
    this.assertOpen();
    const entries = [...(this.namespaces.get(ns) ?? new Map<string, Cached>())];
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return entries.map(([key, e]) => ({ key, value: JSON.parse(e.json) as T, updatedAt: e.updatedAt }));
  }

  transaction<R>(fn: (store: StateStore) => R): R {
    this.assertOpen();
    // Cached entries are immutable records, so copying the maps is a full snapshot.
    const snapshot = new Map([...this.namespaces].map(([ns, entries]) => [ns, new Map(entries)]));
    const outer = this.depth === 0;
    const mark = this.txOps.length;
    this.depth++;
    try {
      const result = fn(this);
      this.depth--;
      if (outer) this.write(this.txOps.splice(0));
      return result;
    } catch (error) {
      this.depth--;
      this.namespaces = snapshot;
      this.txOps.length = mark;
      throw error;
    }
  }

  private write(ops: Op[]): void {
    if (ops.length === 0) return;
    if (this.depth > 0) { this.txOps.push(...ops); return; }
    const multi = this.o.redis.multi();
    const byNs = new Map<string, string[]>();
    for (const op of ops) {
      if (op.put) multi.hset(this.hashKey(op.ns), op.key, `{"t":${op.put.updatedAt},"v":${op.put.json}}`);
      else multi.hdel(this.hashKey(op.ns), op.key);
      let keys = byNs.get(op.ns);
      if (!keys) byNs.set(op.ns, (keys = []));
      if (!keys.includes(op.key)) keys.push(op.key);
    }
    for (const [ns, keys] of byNs) multi.publish(this.channel, JSON.stringify({ from: this.id, ns, keys }));
    multi.exec().catch((error: Error) => {
      this.writeFailures++;
      this.o.log.warn({ err: error.message, keys: [...byNs].map(([ns, keys]) => `${this.hashKey(ns)}:${keys.slice(0, 3).join(',')}`) }, 'state store: a write to Redis failed (kept in this node\'s cache only)');
    });
  }

  /** Resolves once every write issued so far has reached Redis (tests, a clean stop). */
  async flushed(): Promise<void> {
    await this.o.redis.ping();
  }

  close(): void {
    this.closed = true;
    this.o.subscriber.unsubscribe(this.channel).catch(() => undefined);
  }
}
