/**
 * One holder per cluster for a job that must not run twice (the chat bot, the OBS
 * director): a lease (run-lease.ts) every node contests, renewed by its holder every
 * leaseMs/3. The holder that dies (or is cut off from Redis) stops renewing; another node
 * takes the lease once it has expired, so the job moves within about one lease.
 *
 * A holder that cannot renew in time (Redis away) gives the job up itself when its lease
 * would have run out, rather than risk two holders. Emits `change` (holding: boolean).
 */
import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Leases, type LeaseGrant } from './run-lease.js';

/** The leases of the actors that run once per cluster (key `ringcast:lease:<name>`). */
export const CHAT_LEASE = 'chat bot';
export const OBS_LEASE = 'OBS director';

export class SingletonLease extends EventEmitter {
  private readonly leases: Leases;
  private grant: LeaseGrant | undefined;
  private validUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private stopped = false;

  constructor(redis: Redis, nodeId: string, readonly name: string, private readonly leaseMs: number, private readonly log: Logger, prefix = 'ringcast') {
    super();
    this.leases = new Leases(redis, nodeId, leaseMs, prefix);
  }

  get holding(): boolean {
    return this.grant !== undefined;
  }

  /** The fence of the current holding (for writes that must check it), or undefined. */
  get current(): LeaseGrant | undefined {
    return this.grant;
  }

  start(): this {
    this.timer = setInterval(() => void this.tick(), Math.max(50, Math.floor(this.leaseMs / 3)));
    void this.tick();
    return this;
  }

  private set(grant: LeaseGrant | undefined, why: string): void {
    const was = this.holding;
    this.grant = grant;
    if (was === this.holding) return;
    this.log.info({ singleton: this.name, holding: this.holding, token: grant?.token, why }, this.holding ? `cluster: this node now runs the ${this.name}` : `cluster: this node no longer runs the ${this.name}`);
    this.emit('change', this.holding);
  }

  private async tick(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    const at = Date.now();
    try {
      if (this.grant) {
        if (await this.leases.renew(this.grant)) this.validUntil = at + this.leaseMs;
        else this.set(undefined, 'the lease passed to another node');
      } else {
        const grant = await this.leases.acquire(this.name);
        if (grant && !this.stopped) {
          this.validUntil = at + this.leaseMs;
          this.set(grant, 'acquired');
        } else if (grant) {
          await this.leases.release(grant);
        }
      }
    } catch (error) {
      if (this.grant && Date.now() > this.validUntil) this.set(undefined, `could not renew within the lease: ${(error as Error).message}`);
    } finally {
      this.busy = false;
    }
  }

  /** Stops contesting and releases the lease if held (the next holder need not wait for it to expire). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    const grant = this.grant;
    this.set(undefined, 'stopping');
    if (grant) await this.leases.release(grant).catch(() => undefined);
  }
}

/** What an actor that must run once per cluster is told (absent: not clustered, it runs). */
export interface SingletonOptions {
  redis: string;
  nodeId: string;
  leaseMs: number;
}

/**
 * For an actor that must run once per cluster (chat bot, OBS director): `begin` runs once this
 * node holds the lease. Losing it afterwards calls `lost`, which should end the actor (it
 * throws, the supervisor restarts it, and the new incarnation contests the lease again): a
 * Twitch or OBS session half handed over is worse than a clean restart.
 */
export function runAsSingleton(o: SingletonOptions, name: string, log: Logger, begin: () => void, lost: () => void): { stop(): Promise<void> } {
  const redis = new Redis(o.redis, { maxRetriesPerRequest: 2, connectionName: `${o.nodeId}:${name.replace(/\s+/g, '-')}`, retryStrategy: (n: number) => Math.min(2000, 50 * 2 ** Math.min(n, 6)) });
  let logged = false;
  redis.on('error', (error: Error) => { if (!logged) { logged = true; log.warn({ err: error.message }, `cluster: the ${name} lease cannot reach Redis; retrying`); } });
  redis.on('ready', () => { logged = false; });
  const lease = new SingletonLease(redis, o.nodeId, name, o.leaseMs, log);
  let begun = false;
  lease.on('change', (holding: boolean) => {
    if (holding && !begun) { begun = true; begin(); }
    else if (!holding && begun) lost();
  });
  lease.start();
  log.info({ singleton: name }, `cluster: waiting to be the cluster's ${name} (one node runs it)`);
  return {
    async stop() {
      await lease.stop();
      redis.disconnect();
    },
  };
}
