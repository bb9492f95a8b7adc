/**
 * One Redis connection as the cluster uses it, and the health of the connections a node holds.
 *
 * Why these ioredis settings: a node must keep serving its local viewers while Redis is away,
 * so nothing may pile up or block waiting for it.
 *   - reconnect forever with capped, jittered exponential backoff (50 ms doubling to 2 s), so a
 *     restarted Redis is found again within about two seconds and N nodes do not reconnect in step;
 *   - a command waits through at most MAX_RETRIES reconnect attempts, then fails: the offline
 *     queue is bounded in time, and hot paths check `health.up` and skip (counted) rather than queue;
 *   - one log line when a connection is lost and one when it is back, never one per retry.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { Redis, type RedisOptions } from 'ioredis';

export const RECONNECT_MIN_MS = 50;
export const RECONNECT_MAX_MS = 2_000;
const MAX_RETRIES = 2;
const CONNECT_TIMEOUT_MS = 2_000;

/** Backoff before reconnect attempt `attempt` (1-based): doubling from RECONNECT_MIN_MS, capped, ±20 % jitter. */
export function reconnectDelay(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** Math.min(16, Math.max(0, attempt - 1)));
  return Math.round(base * (0.8 + 0.4 * random()));
}

export interface CreateRedisOptions {
  /** Health to report this connection's ups and downs to. */
  health?: RedisHealth;
  /** Extra ioredis options (e.g. for a subscriber connection). */
  redis?: RedisOptions;
}

/** A connection named `name` (in logs and as its Redis CLIENT name), connecting at once. */
export function createRedis(url: string, log: Logger, name: string, options: CreateRedisOptions = {}): Redis {
  const redis = new Redis(url, {
    connectionName: `ringcast:${name}`,
    retryStrategy: (attempt) => reconnectDelay(attempt),
    maxRetriesPerRequest: MAX_RETRIES,
    connectTimeout: CONNECT_TIMEOUT_MS,
    enableOfflineQueue: true,
    // A READONLY reply means a replica was promoted away from us: reconnect to find the primary.
    reconnectOnError: (error) => error.message.startsWith('READONLY'),
    ...options.redis,
  });
  let downSince: number | undefined = Date.now();
  let everUp = false;
  let lastError = '';
  redis.on('ready', () => {
    if (everUp) log.info({ redis: name, downMs: Date.now() - (downSince ?? Date.now()) }, 'redis connection back');
    else log.info({ redis: name }, 'redis connected');
    everUp = true;
    downSince = undefined;
    lastError = '';
  });
  redis.on('error', (error: Error) => {
    // ioredis emits one error per failed attempt: log the first of each outage only.
    if (lastError !== '') return;
    lastError = error.message;
    log.warn({ redis: name, err: error.message }, everUp ? 'redis connection lost; serving locally and reconnecting with backoff' : 'redis not reachable yet; retrying with backoff');
  });
  redis.on('close', () => { downSince ??= Date.now(); });
  options.health?.watch(name, redis);
  return redis;
}

export interface RedisHealthState {
  up: boolean;
  /** When `up` last changed (ms since epoch). */
  since: number;
  /** Outages since start (transitions from up to down). */
  outages: number;
  /** The connections that are not ready now, by name. */
  down: string[];
}

/**
 * Up while every watched connection is ready; emits `change` (with the new state) on each
 * transition. Starts down: nothing is known about Redis until the first connection is ready.
 */
export class RedisHealth extends EventEmitter {
  private readonly ready = new Map<string, boolean>();
  private state: RedisHealthState = { up: false, since: Date.now(), outages: 0, down: [] };

  get up(): boolean { return this.state.up; }
  get since(): number { return this.state.since; }
  get outages(): number { return this.state.outages; }

  snapshot(): RedisHealthState {
    return { ...this.state, down: [...this.state.down] };
  }

  watch(name: string, redis: Redis): void {
    this.ready.set(name, redis.status === 'ready');
    redis.on('ready', () => this.set(name, true));
    redis.on('close', () => this.set(name, false));
    redis.on('end', () => this.set(name, false));
    this.update();
  }

  /** Stops counting a connection (closed on purpose). */
  unwatch(name: string): void {
    this.ready.delete(name);
    this.update();
  }

  private set(name: string, ready: boolean): void {
    if (!this.ready.has(name) || this.ready.get(name) === ready) return;
    this.ready.set(name, ready);
    this.update();
  }

  private update(): void {
    const down = [...this.ready].filter(([, r]) => !r).map(([n]) => n);
    const up = this.ready.size > 0 && down.length === 0;
    const was = this.state.up;
    this.state = { up, since: up === was ? this.state.since : Date.now(), outages: this.state.outages + (was && !up ? 1 : 0), down };
    if (up !== was) this.emit('change', this.snapshot());
  }
}
