/**
 * The standard consumer loop for an actor reading a RecordRing.
 *
 * Why not a blocking Atomics.wait loop: an actor also serves supervisor RPC, metrics scrapes
 * and its heartbeat timer on its event loop, so idle waiting uses Atomics.waitAsync and
 * a busy loop yields to the event loop every few milliseconds. Throughput stays in the
 * ring (batches), control stays responsive.
 *
 * On abort the loop drains: it keeps polling until the ring is empty, then returns, so
 * a graceful stop loses nothing that was already published.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';

export type RecordHandler = (data: Uint8Array, offset: number, length: number) => void;

/** A RecordRing, or several merged (MergedReader): whatever can be polled and waited on. */
export interface PollableRecords {
  poll(handler: RecordHandler, maxRecords?: number): number;
  waitReadableAsync(timeoutMs: number): Promise<boolean>;
}

export interface ConsumeLoopOptions {
  /** Records per poll (and so per read-position commit). */
  batch?: number;
  /** Longest idle wait before re-checking the abort signal. */
  idleWaitMs?: number;
  /** Longest time a busy loop runs before yielding to the event loop. */
  yieldEveryMs?: number;
}

export async function consumeLoop(ring: PollableRecords, handler: RecordHandler, signal: AbortSignal, options: ConsumeLoopOptions = {}): Promise<number> {
  const batch = options.batch ?? 1024;
  const idleWaitMs = options.idleWaitMs ?? 50;
  const yieldEveryMs = options.yieldEveryMs ?? 5;
  let total = 0;
  let sliceStart = performance.now();
  while (!signal.aborted) {
    const n = ring.poll(handler, batch);
    total += n;
    if (n === 0) {
      await ring.waitReadableAsync(idleWaitMs);
      sliceStart = performance.now();
    } else if (performance.now() - sliceStart >= yieldEveryMs) {
      await yieldToEventLoop();
      sliceStart = performance.now();
    }
  }
  for (let n = ring.poll(handler, batch); n > 0; n = ring.poll(handler, batch)) total += n;
  return total;
}
