/**
 * A piscina pool of analysis workers (./worker.ts) reading one frame ring in place.
 * Owns nothing but the threads: the ring and the template set belong to the caller.
 * The template set is copied into each worker once (workerData); changing templates
 * means creating a new pool.
 */
import { Piscina } from 'piscina';
import { runtimeModuleUrl } from '../../../shared/runtime-path.js';
import type { FrameAnalysis } from './analyze.js';
import type { TemplateSet } from './templates.js';
import type { AnalysisTask, AnalysisWorkerData, AnalyzeResult, FrameRef, Gone, JpegOptions, JpegResult } from './worker.js';

export type { FrameRef, Gone, JpegOptions, AnalyzeResult, JpegResult } from './worker.js';

export interface AnalysisPoolOptions {
  ring: SharedArrayBuffer;
  templates: TemplateSet;
  threads: number;
  /** Tasks waiting beyond the running ones; past it analyze()/jpeg() reject. Default threads * 8. */
  maxQueue?: number;
}

export interface AnalysisPoolStats {
  /** Waiting for a thread. */
  queued: number;
  /** On a thread now. */
  running: number;
  /** Finished with a result (including gone). */
  completed: number;
  /** Finished as { gone: true }: the frame was overwritten before or while it was read. */
  gone: number;
  /** Threw (bad task, worker error). */
  failed: number;
  /** Refused because the queue was full. */
  rejected: number;
}

export interface AnalysisPool {
  analyze(task: FrameRef): Promise<AnalyzeResult>;
  jpeg(task: FrameRef & JpegOptions): Promise<JpegResult>;
  stats(): AnalysisPoolStats;
  close(): Promise<void>;
}

export class AnalysisQueueFullError extends Error {
  constructor(maxQueue: number) {
    super(`analysis pool: ${maxQueue} tasks already queued; dropping this one`);
    this.name = 'AnalysisQueueFullError';
  }
}

export function isGone(r: unknown): r is Gone {
  return typeof r === 'object' && r !== null && (r as Partial<Gone>).gone === true;
}

export function createAnalysisPool(opts: AnalysisPoolOptions): AnalysisPool {
  const { ring, templates, threads } = opts;
  if (!(ring instanceof SharedArrayBuffer)) throw new TypeError('createAnalysisPool: ring must be a SlotRing SharedArrayBuffer');
  if (templates === null || typeof templates !== 'object' || !Array.isArray(templates.regions)) {
    throw new TypeError('createAnalysisPool: templates must be a TemplateSet (see loadTemplateSet)');
  }
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) throw new RangeError(`createAnalysisPool: threads must be an integer in 1 .. 64 (got ${String(threads)})`);
  const maxQueue = opts.maxQueue ?? threads * 8;
  if (!Number.isInteger(maxQueue) || maxQueue < 1) throw new RangeError(`createAnalysisPool: maxQueue must be a positive integer (got ${String(opts.maxQueue)})`);

  const workerData: AnalysisWorkerData = { ring, templates };
  const pool = new Piscina({
    filename: runtimeModuleUrl(new URL('./worker.js', import.meta.url)).href,
    minThreads: threads,
    maxThreads: threads,
    maxQueue,
    workerData,
  });
  let inFlight = 0;
  let completed = 0;
  let gone = 0;
  let failed = 0;
  let rejected = 0;
  let closed = false;

  async function submit<R>(task: AnalysisTask): Promise<R> {
    if (closed) throw new Error('analysis pool is closed');
    // piscina reports a full queue only by rejecting run(); check first so the caller
    // gets a typed error and the count is exact.
    if (pool.queueSize >= maxQueue) {
      rejected++;
      throw new AnalysisQueueFullError(maxQueue);
    }
    inFlight++;
    try {
      const r = (await pool.run(task)) as R;
      completed++;
      if (isGone(r)) gone++;
      return r;
    } catch (err) {
      failed++;
      throw err;
    } finally {
      inFlight--;
    }
  }

  return {
    analyze: (t) => submit<FrameAnalysis | Gone>({ ...t, op: 'analyze' }),
    jpeg: (t) => submit<JpegResult>({ ...t, op: 'jpeg' }),
    stats: () => {
      const queued = pool.queueSize;
      return { queued, running: Math.max(0, inFlight - queued), completed, gone, failed, rejected };
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await pool.destroy();
    },
  };
}
