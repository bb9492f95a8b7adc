/**
 * Capture results where every node can read them: per stream the latest result (a hash
 * field), the last historyLength results (a list, newest first, trimmed on every push) and
 * counts by status. The node that captured a stream writes; any node's REST reads, so
 * `/api/streams/<name>` answers the same on every node.
 *
 * Writes are pipelined per batch and never awaited by the capture path: a failed one is
 * counted and logged (the capturing node still has the result locally).
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

export interface SharedResult {
  stream: string;
  status: 'ok' | 'offline' | 'error';
}

export interface SharedDetails<R> {
  latest: R | null;
  history: R[];
  counts: { ok: number; offline: number; error: number };
}

export class SharedCaptureResults<R extends SharedResult = SharedResult> {
  writeFailures = 0;
  refused = 0;
  private readonly latestKey: string;

  constructor(private readonly redis: Redis, private readonly historyLength: number, private readonly log: Logger, private readonly prefix = 'ringcast') {
    this.latestKey = `${prefix}:capture:latest`;
  }

  private historyKey(stream: string): string {
    return `${this.prefix}:capture:history:${stream}`;
  }

  private countsKey(stream: string): string {
    return `${this.prefix}:capture:counts:${stream}`;
  }

  record(batch: readonly R[]): void {
    if (batch.length === 0) return;
    const p = this.redis.pipeline();
    for (const r of batch) {
      const json = JSON.stringify(r);
      p.hset(this.latestKey, r.stream, json);
      p.lpush(this.historyKey(r.stream), json);
      p.ltrim(this.historyKey(r.stream), 0, this.historyLength - 1);
      p.hincrby(this.countsKey(r.stream), r.status, 1);
    }
    p.exec().then((replies) => {
      const failed = (replies ?? []).filter(([error]) => error !== null);
      if (failed.length > 0) {
        this.writeFailures += failed.length;
        this.log.warn({ err: String(failed[0][0]), failed: failed.length }, 'capture results: some writes to Redis failed');
      }
    }, (error: Error) => {
      this.writeFailures += batch.length;
      this.log.warn({ err: error.message, results: batch.length }, 'capture results: writing to Redis failed');
    });
  }

  private parse(raw: string | null, key: string): R | null {
    if (raw === null) return null;
    try {
      const v = JSON.parse(raw) as R;
      if (v !== null && typeof v === 'object' && typeof v.stream === 'string') return v;
    } catch { /* reported below */ }
    this.refused++;
    this.log.warn({ key }, 'capture results: refused a stored result that is not one');
    return null;
  }

  async details(stream: string): Promise<SharedDetails<R>> {
    const [[e1, latest], [e2, history], [e3, counts]] = (await this.redis.pipeline()
      .hget(this.latestKey, stream)
      .lrange(this.historyKey(stream), 0, this.historyLength - 1)
      .hgetall(this.countsKey(stream))
      .exec()) as Array<[Error | null, unknown]>;
    for (const [error, key] of [[e1, this.latestKey], [e2, this.historyKey(stream)], [e3, this.countsKey(stream)]] as const) {
      if (error) this.log.warn({ key, err: error.message }, 'capture results: refused a key of the wrong type');
    }
    const c = (e3 ? {} : counts) as Record<string, string>;
    const n = (k: string) => { const v = Number(c[k] ?? 0); return Number.isFinite(v) && v >= 0 ? v : 0; };
    return {
      latest: e1 ? null : this.parse(latest as string | null, this.latestKey),
      // Stored newest first; answered oldest first like the single-node history.
      history: e2 ? [] : (history as string[]).map((raw) => this.parse(raw, this.historyKey(stream))).filter((r): r is R => r !== null).reverse(),
      counts: { ok: n('ok'), offline: n('offline'), error: n('error') },
    };
  }

  /** Forgets a removed stream's results. */
  forget(stream: string): void {
    this.redis.pipeline().hdel(this.latestKey, stream).del(this.historyKey(stream), this.countsKey(stream)).exec()
      .catch((error: Error) => this.log.warn({ err: error.message, stream }, 'capture results: forgetting a removed stream failed'));
  }
}
