/**
 * Demo aggregator: drains the demo trainer's ring in batches and keeps 100 ms window
 * means per metric, totals, sequence-gap detection and hand-off latency. The supervisor
 * reads the summary over RPC (`summary`) for `/api/demo`, and the final summary on stop
 * is what the service flushes to the state store.
 */
import { Counter, Histogram } from 'prom-client';
import { defineActor } from '../../shared/actor.js';
import { consumeLoop } from '../../shared/consume-loop.js';
import type { RecordRing } from '../../shared/record-ring.js';
import { DEMO_METRIC_NAMES } from '../demo-trainer/demo-record.js';

export interface DemoAggregatorOptions { ring: string; windowMs: number }

export interface DemoSummary {
  records: number;
  lastSeq: number;
  sequenceGaps: number;
  windowMs: number;
  window: Record<string, number> | null;
  step: number;
  incarnation: number;
}

export default defineActor<DemoAggregatorOptions>({
  start(ctx) {
    const ring = ctx.in[ctx.options.ring] as RecordRing;
    const view = new DataView(ring.data.buffer, ring.data.byteOffset, ring.data.byteLength);
    const consumed = new Counter({ name: 'ringcast_demo_records_consumed_total', help: 'Records the demo aggregator consumed', registers: [ctx.metrics] });
    const gaps = new Counter({ name: 'ringcast_demo_sequence_gaps_total', help: 'Sequence gaps seen by the demo aggregator', registers: [ctx.metrics] });
    const handoff = new Histogram({
      name: 'ringcast_demo_handoff_seconds', help: 'Producer publish to aggregator read, sampled 1 in 64',
      buckets: [1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1], registers: [ctx.metrics],
    });
    const sums = new Float64Array(DEMO_METRIC_NAMES.length);
    let windowCount = 0;
    let lastWindow: Record<string, number> | null = null;
    let records = 0;
    let lastSeq = -1;
    let sequenceGaps = 0;
    let step = 0;

    const handler = (_data: Uint8Array, at: number) => {
      const seq = view.getUint32(at, true);
      // A restarted consumer may see its last uncommitted batch again: skip repeats.
      if (lastSeq >= 0 && seq <= lastSeq) return;
      if (lastSeq >= 0 && seq !== lastSeq + 1) { sequenceGaps += 1; gaps.inc(); }
      lastSeq = seq;
      records += 1;
      step = view.getFloat64(at + 8, true);
      for (let i = 0; i < sums.length; i++) sums[i] += view.getFloat64(at + 16 + i * 8, true);
      windowCount += 1;
      if ((seq & 63) === 0) handoff.observe(Math.max(0, performance.timeOrigin + performance.now() - view.getFloat64(at + 56, true)) / 1000);
    };
    const closeWindow = () => {
      if (windowCount > 0) {
        lastWindow = {};
        DEMO_METRIC_NAMES.forEach((name, i) => { lastWindow![name] = sums[i] / windowCount; });
        consumed.inc(windowCount);
      }
      sums.fill(0);
      windowCount = 0;
    };
    const windowTimer = setInterval(closeWindow, ctx.options.windowMs);
    const summary = (): DemoSummary => ({ records, lastSeq, sequenceGaps, windowMs: ctx.options.windowMs, window: lastWindow, step, incarnation: ctx.incarnation });
    const loop = consumeLoop(ring, handler, ctx.signal, { batch: 256 });
    return {
      api: { summary },
      async stop() {
        await loop; // drains the ring to empty before returning
        clearInterval(windowTimer);
        closeWindow();
        const final = summary();
        ctx.log.info(final, 'demo aggregator drained');
        return final;
      },
    };
  },
});
