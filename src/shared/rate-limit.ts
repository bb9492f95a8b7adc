/**
 * Per-client token buckets for the anonymous routes that cost CPU (scene previews, frame
 * thumbnails). Each client address has a bucket of `burst` tokens refilled at `perMinute`;
 * a request takes `cost` tokens or is refused with how long until it would fit.
 *
 * Memory is bounded: at most `maxClients` buckets, least recently used evicted first (an
 * evicted client starts again with a full bucket, which only errs towards letting it in).
 * IPv6 clients are keyed by their /64, since one host usually holds a whole /64.
 */
import { HttpError } from './http-server.js';

export interface RateLimitOptions {
  perMinute: number;
  burst: number;
  /** Buckets kept at once (default 10,000). */
  maxClients?: number;
}

export type RateDecision = { ok: true } | { ok: false; retryAfterS: number };

interface Bucket {
  tokens: number;
  at: number;
}

export class ClientRateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;
  private readonly maxClients: number;

  constructor(private readonly o: RateLimitOptions) {
    if (!(o.perMinute > 0) || !(o.burst >= 1)) throw new RangeError('rate limit: perMinute must be > 0 and burst >= 1');
    this.perMs = o.perMinute / 60_000;
    this.maxClients = o.maxClients ?? 10_000;
  }

  get size(): number {
    return this.buckets.size;
  }

  take(address: string, cost = 1, now = Date.now()): RateDecision {
    const key = clientKey(address);
    let bucket = this.buckets.get(key);
    if (bucket) {
      this.buckets.delete(key); // re-inserted below: Map order is the LRU order
      bucket.tokens = Math.min(this.o.burst, bucket.tokens + (now - bucket.at) * this.perMs);
      bucket.at = now;
    } else {
      if (this.buckets.size >= this.maxClients) this.buckets.delete(this.buckets.keys().next().value as string);
      bucket = { tokens: this.o.burst, at: now };
    }
    this.buckets.set(key, bucket);
    const need = Math.min(cost, this.o.burst);
    if (bucket.tokens >= need) {
      bucket.tokens -= need;
      return { ok: true };
    }
    return { ok: false, retryAfterS: Math.max(1, Math.ceil((need - bucket.tokens) / this.perMs / 1000)) };
  }
}

/** The bucket key of an address: IPv4 as is (IPv4-mapped IPv6 too), other IPv6 by its first four groups (/64). */
export function clientKey(address: string): string {
  if (!address.includes(':')) return address;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  const body = dotted ? `${address.slice(0, dotted.index)}0:0` : address;
  const [head, tail] = body.split('::');
  const groups = head ? head.split(':') : [];
  if (tail !== undefined) {
    const tailGroups = tail ? tail.split(':') : [];
    while (groups.length + tailGroups.length < 8) groups.push('0');
    groups.push(...tailGroups);
  }
  const n = groups.map((g) => parseInt(g || '0', 16) || 0);
  if (n.length === 8 && n.slice(0, 5).every((g) => g === 0) && n[5] === 0xffff) {
    return dotted ? dotted[1] : `${n[6] >> 8}.${n[6] & 255}.${n[7] >> 8}.${n[7] & 255}`;
  }
  return `${n.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** What a request costs against its client's bucket (a thumbnail is 1; a full scene render more). */
export const COST_THUMBNAIL = 1;
export const COST_PREVIEW = 10;

export interface CostlyRouteGuardOptions extends RateLimitOptions {
  /** Counts refusals by route. */
  refused?: { inc(labels: { route: string }): void };
}

/**
 * `guard(req, route, cost)` throws HttpError 429 with Retry-After when the client is over
 * its budget. A request without an address (an in-process caller) is not limited.
 */
export function costlyRouteGuard(o: CostlyRouteGuardOptions): (req: { remoteAddress: string }, route: string, cost: number) => void {
  const limiter = new ClientRateLimiter(o);
  return (req, route, cost) => {
    if (req.remoteAddress === '') return;
    const decision = limiter.take(req.remoteAddress, cost);
    if (decision.ok) return;
    o.refused?.inc({ route });
    throw new HttpError(429, `too many requests for ${route} from this address (${o.perMinute} tokens/min, burst ${o.burst}; this costs ${cost}); retry in ${decision.retryAfterS} s`, undefined, { 'retry-after': String(decision.retryAfterS) });
  };
}
