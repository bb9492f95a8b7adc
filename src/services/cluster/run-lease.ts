/**
 * Leases in Redis, fenced by a token: one holder per name (a run, or a cluster-wide singleton).
 *
 * Acquire hands out a token from a counter that only grows (INCR, kept forever), so a
 * holder's token tells its acquisition apart from every earlier one. A lease alone is not
 * enough: a holder paused past its lease (GC, SIGSTOP, a partition) wakes up still
 * believing it holds it. So every write a holder makes to shared state goes through a
 * script that first checks the lease still names this holder *and token*; a refused write
 * tells the holder it has lost the lease.
 *
 * Keys, for a lease named N under prefix P:  P:lease:N (holder "node|token", PX leaseMs),
 * P:lease:N:token (the counter).
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A Lua script run by EVALSHA, loaded on first use and again after a Redis restart (NOSCRIPT). */
export class RedisScript {
  readonly sha: string;
  constructor(readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  async run<T = unknown>(redis: Redis, keys: readonly (string | Buffer)[], args: readonly (string | number | Buffer)[]): Promise<T> {
    try {
      return (await redis.evalsha(this.sha, keys.length, ...keys, ...args)) as T;
    } catch (error) {
      if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error;
      return (await redis.eval(this.lua, keys.length, ...keys, ...args)) as T;
    }
  }
}

const ACQUIRE = new RedisScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local t = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. t, 'PX', ARGV[2])
return t`);

const RENEW = new RedisScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`);

const RELEASE = new RedisScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1`);

/** The check every fenced script starts with: KEYS[1] is the lease, ARGV[1] "node|token". */
export const FENCE_CHECK = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end\n`;

/** A lease this node holds: pass it to every fenced write. */
export interface LeaseGrant {
  readonly name: string;
  readonly token: number;
  /** "node|token": what the lease key holds while this grant is current. */
  readonly holder: string;
  /** The lease key (KEYS[1] of every fenced script). */
  readonly key: string;
}

export interface LeaseHolder {
  node: string;
  token: number;
  /** Milliseconds left, as Redis sees it. */
  ttlMs: number;
}

export class Leases {
  constructor(
    private readonly redis: Redis,
    readonly nodeId: string,
    readonly leaseMs: number,
    private readonly prefix = 'ringcast',
  ) {
    if (nodeId.includes('|')) throw new RangeError(`node id "${nodeId}" must not contain "|"`);
  }

  key(name: string): string {
    return `${this.prefix}:lease:${name}`;
  }

  /** The lease when it was free (a fresh token), undefined when another holder has it. */
  async acquire(name: string): Promise<LeaseGrant | undefined> {
    const key = this.key(name);
    const token = Number(await ACQUIRE.run(this.redis, [key, `${key}:token`], [this.nodeId, this.leaseMs]));
    if (!(token > 0)) return undefined;
    return { name, token, holder: `${this.nodeId}|${token}`, key };
  }

  /** Extends the lease by leaseMs; false when it has expired or passed to someone else. */
  async renew(grant: LeaseGrant): Promise<boolean> {
    return Number(await RENEW.run(this.redis, [grant.key], [grant.holder, this.leaseMs])) === 1;
  }

  async release(grant: LeaseGrant): Promise<boolean> {
    return Number(await RELEASE.run(this.redis, [grant.key], [grant.holder])) === 1;
  }

  async holder(name: string): Promise<LeaseHolder | undefined> {
    const key = this.key(name);
    const [value, ttl] = await Promise.all([this.redis.get(key), this.redis.pttl(key)]);
    if (value === null) return undefined;
    const bar = value.lastIndexOf('|');
    const token = Number(value.slice(bar + 1));
    if (bar <= 0 || !Number.isInteger(token)) return undefined; // not a lease we wrote: treat as free-to-contest by expiry
    return { node: value.slice(0, bar), token, ttlMs: ttl };
  }
}

const FENCED_SET = new RedisScript(`${FENCE_CHECK}
if ARGV[4] ~= '0' then redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4]) else redis.call('SET', KEYS[2], ARGV[2]) end
return 1`);

const FENCED_PUBLISH = new RedisScript(`${FENCE_CHECK}
return redis.call('PUBLISH', ARGV[2], ARGV[3]) + 1`);

const FENCED_XADD = new RedisScript(`${FENCE_CHECK}
local args = {KEYS[2], 'MAXLEN', '~', ARGV[2], '*'}
for i = 3, #ARGV do args[#args + 1] = ARGV[i] end
redis.call('XADD', unpack(args))
return 1`);

/**
 * Writes made on behalf of a lease: each succeeds only while the lease still names the
 * grant. A refusal is counted and reported (false); the caller must stop acting as holder.
 */
export class FencedWriter {
  refused = 0;
  constructor(
    private readonly redis: Redis,
    private readonly onRefused: (grant: LeaseGrant, what: string) => void = () => undefined,
  ) {}

  private settle(grant: LeaseGrant, what: string, result: unknown): boolean {
    if (Number(result) >= 0) return true;
    this.refused++;
    this.onRefused(grant, what);
    return false;
  }

  async set(grant: LeaseGrant, key: string, value: string | Buffer, ttlMs = 0): Promise<boolean> {
    return this.settle(grant, `SET ${key}`, await FENCED_SET.run(this.redis, [grant.key, key], [grant.holder, value, '', ttlMs]));
  }

  async publish(grant: LeaseGrant, channel: string, message: string | Buffer): Promise<boolean> {
    return this.settle(grant, `PUBLISH ${channel}`, await FENCED_PUBLISH.run(this.redis, [grant.key], [grant.holder, channel, message]));
  }

  /** XADD with approximate MAXLEN trimming; fields as name, value pairs. */
  async xadd(grant: LeaseGrant, stream: string, maxLen: number, fields: Record<string, string | Buffer>): Promise<boolean> {
    const flat = Object.entries(fields).flat();
    return this.settle(grant, `XADD ${stream}`, await FENCED_XADD.run(this.redis, [grant.key, stream], [grant.holder, maxLen, ...flat]));
  }

  /** Runs any fenced script (FENCE_CHECK first, KEYS[1] the lease, ARGV[1] the holder). */
  async script(grant: LeaseGrant, what: string, script: RedisScript, keys: readonly string[], args: readonly (string | number | Buffer)[]): Promise<boolean> {
    return this.settle(grant, what, await script.run(this.redis, [grant.key, ...keys], [grant.holder, ...args]));
  }
}
