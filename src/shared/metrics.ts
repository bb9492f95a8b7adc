/**
 * Prometheus metrics across threads.
 *
 * Each thread (supervisor and every actor) owns a prom-client Registry whose
 * series all carry `actor="<name>"`. The supervisor asks each thread for
 * `registry.getMetricsAsJSON()` and merges the lot into one exposition for
 * GET /metrics.
 */
import { AggregatorRegistry, Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { DropReason, RingStats } from './ring-stats.js';

export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

export type { RingStats };

export interface RingMetricsSource {
  ring: string;
  producer: string;
  consumer: string;
  stats: RingStats;
}

/**
 * A registry for one thread with Node's default metrics, every series labelled
 * `actor`. Inside a worker thread the heap, GC and event-loop metrics describe
 * that thread's own isolate, while `process_*` (CPU, RSS, open fds, start time)
 * are process-wide and so repeat the same numbers under every actor label. We
 * keep them: they cost little and each actor's scrape stays self-contained.
 */
export function createActorRegistry(actorName: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ actor: actorName });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * Merge every thread's getMetricsAsJSON() into one Prometheus text exposition:
 * one HELP/TYPE per family, each series keeping its labels.
 *
 * prom-client's AggregatorRegistry.aggregate groups series by metric name and
 * full label set, so series from different actors never get summed together
 * and histogram buckets/summary quantiles come through intact. It does apply
 * each family's `aggregator` to the family as a whole, though, and
 * `process_start_time_seconds` is marked `omit`, which would drop it from the
 * output entirely. Because our series are already distinct per actor we
 * rewrite `omit` to `first` before aggregating. Only series with identical
 * labels from two threads (which would be a labelling bug) are ever combined.
 */
export async function mergeActorMetrics(jsons: MetricsJson[]): Promise<string> {
  const keepAll = jsons.map((families) =>
    families.map((family) => (family.aggregator === 'omit' ? { ...family, aggregator: 'first' as const } : family)),
  );
  return AggregatorRegistry.aggregate(keepAll).metrics();
}

const DROP_REASONS: readonly DropReason[] = ['drop-newest', 'overwrite-oldest', 'block-timeout', 'too-large'];
const RING_LABELS = ['ring', 'producer', 'consumer'] as const;

/**
 * Ring gauges and counters read at scrape time from `rings()`. Counters are
 * rebuilt from the rings' own monotonic totals on every collect (reset, then
 * inc by the total), so a ring that is gone stops being reported.
 */
export function registerRingMetrics(registry: Registry, rings: () => RingMetricsSource[]): void {
  const labelsOf = (r: RingMetricsSource) => ({ ring: r.ring, producer: r.producer, consumer: r.consumer });

  new Gauge({
    name: 'ringcast_ring_depth',
    help: 'Records (or slots) currently queued in the ring',
    labelNames: RING_LABELS,
    registers: [registry],
    collect() {
      this.reset();
      for (const r of rings()) this.set(labelsOf(r), r.stats.depth);
    },
  });
  new Gauge({
    name: 'ringcast_ring_capacity',
    help: 'Ring capacity (bytes for record rings, slots for slot rings)',
    labelNames: RING_LABELS,
    registers: [registry],
    collect() {
      this.reset();
      for (const r of rings()) this.set(labelsOf(r), r.stats.capacity);
    },
  });
  new Counter({
    name: 'ringcast_ring_records_in_total',
    help: 'Records written into the ring by its producer',
    labelNames: RING_LABELS,
    registers: [registry],
    collect() {
      this.reset();
      for (const r of rings()) this.inc(labelsOf(r), r.stats.recordsIn);
    },
  });
  new Counter({
    name: 'ringcast_ring_records_out_total',
    help: 'Records read from the ring by its consumer',
    labelNames: RING_LABELS,
    registers: [registry],
    collect() {
      this.reset();
      for (const r of rings()) this.inc(labelsOf(r), r.stats.recordsOut);
    },
  });
  new Counter({
    name: 'ringcast_ring_drops_total',
    help: 'Records lost at the ring, by reason',
    labelNames: [...RING_LABELS, 'reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of rings()) {
        for (const reason of DROP_REASONS) this.inc({ ...labelsOf(r), reason }, r.stats.drops[reason] ?? 0);
      }
    },
  });
  new Counter({
    name: 'ringcast_ring_wait_seconds_total',
    help: 'Time spent waiting at the ring: consumer for data plus producer for space',
    labelNames: RING_LABELS,
    registers: [registry],
    collect() {
      this.reset();
      for (const r of rings()) this.inc(labelsOf(r), r.stats.waitMs / 1000);
    },
  });
}

/**
 * A counter whose series are read from an actor's own totals at scrape time (reset, then
 * set to the totals), so the hot path only increments plain numbers. `read` returns the
 * total per value of `label`, in the order the series should appear.
 */
export function registerTotalsCounter(registry: Registry, name: string, help: string, label: string, read: () => Record<string, number>): void {
  new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      const totals = read();
      this.reset();
      for (const value in totals) this.inc({ [label]: value }, totals[value]);
    },
  });
}

/** The same for a counter without labels: one total read at scrape time. */
export function registerTotalCounter(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}
