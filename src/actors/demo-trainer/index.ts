/**
 * Demo trainer: stands in for a live PPO trainer until the real ingest actor lands.
 * Publishes fixed-layout binary metric records (see demo-record.ts) into its output ring
 * at a configured rate, the way a trainer's telemetry would arrive: no JSON on the hot path.
 *
 * Its sequence number is the ring's published-record count, so after a crash and
 * restart it continues where it stopped with no gap and no repeat.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Counter } from 'prom-client';
import { defineActor } from '../../shared/actor.js';
import type { RecordRing } from '../../shared/record-ring.js';
import { DEMO_RECORD_MIN_BYTES, writeDemoRecord } from './demo-record.js';

export interface DemoTrainerOptions {
  ring: string;
  ratePerSec: number;
  recordBytes: number;
  /** Chaos knob: crash this often (ms) to watch supervision work; 0 disables. */
  crashEveryMs: number;
}

const TICK_MS = 10;

export default defineActor<DemoTrainerOptions>({
  start(ctx) {
    const { ratePerSec, crashEveryMs } = ctx.options;
    const recordBytes = Math.max(DEMO_RECORD_MIN_BYTES, ctx.options.recordBytes);
    const ring = ctx.out[ctx.options.ring] as RecordRing;
    const view = new DataView(ring.data.buffer, ring.data.byteOffset, ring.data.byteLength);
    const published = new Counter({ name: 'ringcast_demo_records_published_total', help: 'Records the demo trainer published', registers: [ctx.metrics] });
    const refused = new Counter({ name: 'ringcast_demo_records_refused_total', help: 'Records the ring refused (full)', registers: [ctx.metrics] });
    if (crashEveryMs > 0) {
      setTimeout(() => { throw new Error(`demo trainer chaos crash after ${crashEveryMs} ms`); }, crashEveryMs);
    }
    let running = true;
    const loop = (async () => {
      let seq = ring.stats().recordsIn;
      let carry = 0;
      let last = performance.now();
      while (running) {
        await sleep(TICK_MS);
        const now = performance.now();
        carry += ((now - last) / 1000) * ratePerSec;
        last = now;
        const due = Math.floor(carry);
        carry -= due;
        let sent = 0;
        for (; sent < due; sent++) {
          const at = ring.reserve(recordBytes);
          if (at < 0) { refused.inc(due - sent); break; }
          writeDemoRecord(view, at, seq, now);
          ring.commit();
          seq += 1;
        }
        published.inc(sent);
      }
    })();
    return {
      async stop() {
        running = false; // stop intake first; the aggregator drains what is queued
        await loop;
        ctx.log.info({ published: ring.stats().recordsIn }, 'demo trainer stopped');
      },
    };
  },
});
