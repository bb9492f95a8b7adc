/**
 * Cluster membership: which nodes share this Redis now, and what each carries.
 *
 * Each node writes its own heartbeat key `ringcast:node:<id>` (its Member as JSON) with a TTL and
 * adds its id to the sorted set `ringcast:nodes` (score: last heartbeat). Redis expiring the key
 * is the one clock that decides a node is gone, so nodes on hosts with skewed clocks agree. The
 * sorted set is only an index (no SCAN over the whole keyspace); ids whose key has expired are
 * removed from it by whoever notices.
 *
 * Timing: the key lives `nodeTimeoutMs - refreshMs` and every node re-reads the member list every
 * `refreshMs`, so a node that stops heartbeating has left every other node's view within
 * nodeTimeoutMs of its last heartbeat.
 *
 * Anything read back is checked: a value that is not a Member (garbage JSON, a wrong type, a
 * foreign key) is skipped with one log line naming the key.
 */
import { EventEmitter } from 'node:events';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Redis } from 'ioredis';

export const KEY_PREFIX = 'ringcast:';
export const NODES_KEY = `${KEY_PREFIX}nodes`;
export const nodeKey = (id: string) => `${KEY_PREFIX}node:${id}`;

/** What a node carries, exported with each heartbeat. */
export interface NodeLoad {
  /** /ws viewers connected to this node. */
  viewers: number;
  /** Runs whose aggregation this node owns. */
  runsOwned: number;
  /** Streams this node captures. */
  streamsCaptured: number;
  /** Process CPU use since the previous heartbeat, in % of one core. */
  cpuPercent: number;
  /** Main-thread event-loop delay p99 since the previous heartbeat (ms). */
  eventLoopP99Ms: number;
}

export interface Member {
  id: string;
  /** Where operators and other nodes reach its HTTP API. */
  url: string;
  startedAt: number;
  captureWeight: number;
  load: NodeLoad;
  /** When it last heartbeated (its own clock, ms since epoch). */
  lastSeen: number;
}

export type FiguresProvider = () => Partial<NodeLoad> | Promise<Partial<NodeLoad>>;

export interface MembershipOptions {
  redis: Redis;
  log: Logger;
  id: string;
  url: string;
  captureWeight: number;
  heartbeatMs: number;
  nodeTimeoutMs: number;
  now?: () => number;
}

/** How often the member list is re-read: a quarter of the slack between heartbeat and timeout, 20–250 ms. */
export function refreshInterval(heartbeatMs: number, nodeTimeoutMs: number): number {
  return Math.max(20, Math.min(250, Math.floor((nodeTimeoutMs - heartbeatMs) / 4)));
}

const NUMBER_FIELDS: ReadonlyArray<keyof NodeLoad> = ['viewers', 'runsOwned', 'streamsCaptured', 'cpuPercent', 'eventLoopP99Ms'];

/** A Member from JSON read at `key`, or the reason it is not one. */
export function parseMember(text: string, key: string): { ok: true; member: Member } | { ok: false; error: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    return { ok: false, error: `not JSON (${(error as Error).message})` };
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { ok: false, error: 'not a JSON object' };
  const m = raw as Record<string, unknown>;
  if (typeof m.id !== 'string' || nodeKey(m.id) !== key) return { ok: false, error: `"id" ${JSON.stringify(m.id)} does not match the key` };
  if (typeof m.url !== 'string') return { ok: false, error: '"url" is not a string' };
  for (const f of ['startedAt', 'captureWeight', 'lastSeen'] as const) {
    if (typeof m[f] !== 'number' || !Number.isFinite(m[f])) return { ok: false, error: `"${f}" is not a number` };
  }
  const load = m.load as Record<string, unknown> | null;
  if (load === null || typeof load !== 'object' || Array.isArray(load)) return { ok: false, error: '"load" is not an object' };
  for (const f of NUMBER_FIELDS) {
    if (typeof load[f] !== 'number' || !Number.isFinite(load[f])) return { ok: false, error: `"load.${f}" is not a number` };
  }
  const member: Member = {
    id: m.id, url: m.url, startedAt: m.startedAt as number, captureWeight: m.captureWeight as number, lastSeen: m.lastSeen as number,
    load: Object.fromEntries(NUMBER_FIELDS.map((f) => [f, load[f]])) as unknown as NodeLoad,
  };
  return { ok: true, member };
}

/** Emits `change` (the live members, sorted by id) whenever a node joins or leaves. */
export class Membership extends EventEmitter {
  readonly id: string;
  private readonly startedAt: number;
  private readonly now: () => number;
  private readonly refreshMs: number;
  private readonly ttlMs: number;
  private figures: FiguresProvider = () => ({});
  private members: Member[] = [];
  private self: Member;
  private beatTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private beating = false;
  private refreshing = false;
  private stopped = false;
  /** Keys already reported bad, so a planted value is logged once, not every refresh. */
  private readonly reported = new Set<string>();
  private cpuMark = process.cpuUsage();
  private cpuAt = performance.now();
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });

  constructor(private readonly o: MembershipOptions) {
    super();
    this.id = o.id;
    this.now = o.now ?? Date.now;
    this.startedAt = this.now();
    this.refreshMs = refreshInterval(o.heartbeatMs, o.nodeTimeoutMs);
    this.ttlMs = o.nodeTimeoutMs - this.refreshMs;
    this.self = this.member({ viewers: 0, runsOwned: 0, streamsCaptured: 0, cpuPercent: 0, eventLoopP99Ms: 0 });
  }

  /** The provider of this node's figures (viewers, runs owned, streams captured); CPU and event loop are measured here. */
  setFigures(fn: FiguresProvider): void {
    this.figures = fn;
  }

  start(): void {
    this.loopDelay.enable();
    void this.beat();
    void this.refresh();
    this.beatTimer = setInterval(() => void this.beat(), this.o.heartbeatMs);
    this.refreshTimer = setInterval(() => void this.refresh(), this.refreshMs);
    this.beatTimer.unref();
    this.refreshTimer.unref();
  }

  /** Stops heartbeating and leaves at once (deletes its key) so others need not wait for the timeout. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.beatTimer);
    clearInterval(this.refreshTimer);
    this.loopDelay.disable();
    if (this.o.redis.status !== 'ready') return;
    await this.o.redis.multi().del(nodeKey(this.id)).zrem(NODES_KEY, this.id).exec().catch(() => undefined);
  }

  /** The live members as last read (this node included while Redis is reachable), sorted by id. */
  live(): Member[] {
    return this.members;
  }

  /** This node's own entry as last announced. */
  selfMember(): Member {
    return this.self;
  }

  private member(load: NodeLoad): Member {
    return { id: this.id, url: this.o.url, startedAt: this.startedAt, captureWeight: this.o.captureWeight, load, lastSeen: this.now() };
  }

  private measure(): Pick<NodeLoad, 'cpuPercent' | 'eventLoopP99Ms'> {
    const usage = process.cpuUsage(this.cpuMark);
    const at = performance.now();
    const cpuPercent = at > this.cpuAt ? ((usage.user + usage.system) / 1000 / (at - this.cpuAt)) * 100 : 0;
    this.cpuMark = process.cpuUsage();
    this.cpuAt = at;
    const p99 = this.loopDelay.percentile(99) / 1e6;
    this.loopDelay.reset();
    return { cpuPercent: Math.round(cpuPercent * 10) / 10, eventLoopP99Ms: Math.round((Number.isFinite(p99) ? p99 : 0) * 10) / 10 };
  }

  private async beat(): Promise<void> {
    if (this.beating || this.stopped) return;
    this.beating = true;
    try {
      let given: Partial<NodeLoad> = {};
      try {
        given = await this.figures();
      } catch (error) {
        this.o.log.debug({ err: (error as Error).message }, 'cluster: figures provider failed; heartbeating zeros');
      }
      const load: NodeLoad = { viewers: 0, runsOwned: 0, streamsCaptured: 0, ...this.measure() };
      for (const f of ['viewers', 'runsOwned', 'streamsCaptured'] as const) {
        const v = given[f];
        if (typeof v === 'number' && Number.isFinite(v)) load[f] = v;
      }
      this.self = this.member(load);
      if (this.o.redis.status !== 'ready' || this.stopped) return;
      const results = await this.o.redis.multi()
        .set(nodeKey(this.id), JSON.stringify(this.self), 'PX', this.ttlMs)
        .zadd(NODES_KEY, this.self.lastSeen, this.id)
        .exec();
      for (const [error] of results ?? []) if (error) await this.repairIndex(error);
    } catch (error) {
      this.o.log.debug({ err: (error as Error).message }, 'cluster: heartbeat not written (redis unavailable)');
    } finally {
      this.beating = false;
    }
  }

  /** Our index key holds something else (WRONGTYPE): say which key, then replace it. */
  private async repairIndex(error: Error): Promise<void> {
    if (!/WRONGTYPE/.test(error.message)) throw error;
    this.o.log.error({ key: NODES_KEY, err: error.message }, `cluster: key ${NODES_KEY} holds a value of the wrong type; replacing it with the member index`);
    await this.o.redis.del(NODES_KEY);
  }

  private async refresh(): Promise<void> {
    if (this.refreshing || this.stopped) return;
    if (this.o.redis.status !== 'ready') return;
    this.refreshing = true;
    try {
      let ids: string[];
      try {
        ids = await this.o.redis.zrange(NODES_KEY, 0, -1);
      } catch (error) {
        if (/WRONGTYPE/.test((error as Error).message)) await this.repairIndex(error as Error);
        return;
      }
      const keys = ids.map(nodeKey);
      const values = keys.length > 0 ? await this.o.redis.mget(keys) : [];
      const live: Member[] = [];
      const gone: string[] = [];
      values.forEach((text, i) => {
        const key = keys[i];
        if (text === null) {
          gone.push(ids[i]);
          return;
        }
        const parsed = parseMember(text, key);
        if (parsed.ok) {
          live.push(parsed.member);
          this.reported.delete(key);
        } else if (!this.reported.has(key)) {
          if (this.reported.size > 1000) this.reported.clear();
          this.reported.add(key);
          this.o.log.error({ key, err: parsed.error }, `cluster: ignoring key ${key}: ${parsed.error}`);
        }
      });
      // MGET answers nil for an expired key and for a key of another type alike: both are not members.
      if (gone.length > 0) await this.o.redis.zrem(NODES_KEY, ...gone);
      live.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const before = this.members.map((m) => m.id).join('\n');
      this.members = live;
      if (live.map((m) => m.id).join('\n') !== before) this.emit('change', live);
    } catch (error) {
      this.o.log.debug({ err: (error as Error).message }, 'cluster: member list not refreshed (redis unavailable)');
    } finally {
      this.refreshing = false;
    }
  }
}
