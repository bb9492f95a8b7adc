/**
 * Scene previews off the main thread: a small piscina pool running ./worker.ts, started on
 * the first preview (a service that never serves one never loads Skia) and bounded twice:
 * `threads` render at once and at most `maxQueue` wait; past that `render` refuses at
 * once with PreviewBusyError (the route answers 503 with Retry-After) rather than queueing.
 */
import { Piscina } from 'piscina';
import { Counter, Gauge, type Registry } from 'prom-client';
import { runtimeModuleUrl } from '../../shared/runtime-path.js';
import type { Scene } from '../../shared/scene/model.js';
import type { PreviewTask } from './preview-worker.js';

export interface PreviewPoolOptions {
  threads: number;
  maxQueue: number;
  registry?: Registry;
  /** An idle thread is kept this long (Skia and the renderer stay loaded), then exits. */
  idleTimeoutMs?: number;
}

export class PreviewBusyError extends Error {
  constructor(readonly limit: number) {
    super(`preview renderer busy: ${limit} previews already rendering or waiting; retry shortly`);
    this.name = 'PreviewBusyError';
  }
}

export class PreviewPool {
  private pool: Piscina | undefined;
  private inFlight = 0;
  private closed = false;
  private readonly renders: Counter<'outcome'>;
  private readonly busyGauge: Gauge;

  constructor(private readonly o: PreviewPoolOptions) {
    if (!Number.isInteger(o.threads) || o.threads < 1) throw new RangeError(`preview pool: threads must be a positive integer (got ${String(o.threads)})`);
    if (!Number.isInteger(o.maxQueue) || o.maxQueue < 0) throw new RangeError(`preview pool: maxQueue must be an integer >= 0 (got ${String(o.maxQueue)})`);
    const registers = o.registry ? [o.registry] : [];
    this.renders = new Counter({ name: 'ringcast_scene_previews_total', help: 'Scene previews by outcome: ok (rendered on the preview pool), busy (refused, pool saturated), failed', labelNames: ['outcome'], registers });
    this.busyGauge = new Gauge({ name: 'ringcast_scene_previews_in_flight', help: 'Scene previews rendering or waiting for a preview thread', registers });
  }

  /** Previews running or waiting now. */
  get pending(): number {
    return this.inFlight;
  }

  async render(scene: Scene, frame: number, width: number): Promise<Uint8Array> {
    if (this.closed) throw new Error('preview pool is closed');
    const limit = this.o.threads + this.o.maxQueue;
    if (this.inFlight >= limit) {
      this.renders.inc({ outcome: 'busy' });
      throw new PreviewBusyError(limit);
    }
    this.pool ??= new Piscina({
      filename: runtimeModuleUrl(new URL('./preview-worker.js', import.meta.url)).href,
      minThreads: 0,
      maxThreads: this.o.threads,
      idleTimeout: this.o.idleTimeoutMs ?? 60_000,
    });
    this.inFlight++;
    this.busyGauge.set(this.inFlight);
    try {
      const task: PreviewTask = { scene, frame, width };
      const png = (await this.pool.run(task)) as Uint8Array;
      this.renders.inc({ outcome: 'ok' });
      return png;
    } catch (error) {
      this.renders.inc({ outcome: 'failed' });
      throw error;
    } finally {
      this.inFlight--;
      this.busyGauge.set(this.inFlight);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool?.destroy();
  }
}
