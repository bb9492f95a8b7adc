/**
 * Bench actor for bench/ingest.ts: the aggregator's seat on the ingest ring, doing only
 * what any consumer must (walk every record, read its header), so the figure measures
 * ingest and the ring, not aggregation.
 */
import { defineActor } from '../../src/shared/actor.js';
import { consumeLoop } from '../../src/shared/consume-loop.js';
import type { RecordRing } from '../../src/shared/record-ring.js';
import { readIngestRecord } from '../../src/shared/telemetry/ring-records.js';

export interface IngestCounterOptions { ring: string }
export interface IngestCount { records: number; bytes: number; badHeaders: number }

export default defineActor<IngestCounterOptions>({
  start(ctx) {
    const ring = ctx.in[ctx.options.ring] as RecordRing;
    const count: IngestCount = { records: 0, bytes: 0, badHeaders: 0 };
    const loop = consumeLoop(ring, (data, offset, length) => {
      count.records++;
      count.bytes += length;
      // Every record must hold a whole event after its header (magic 'R' first).
      const r = readIngestRecord(data, offset, length);
      if (r.eventLength < 16 || data[r.eventOffset] !== 0x52) count.badHeaders++;
    }, ctx.signal, { batch: 4096 });
    return {
      api: { count: (): IngestCount => ({ ...count }) },
      async stop() {
        await loop;
        return { ...count };
      },
    };
  },
});
