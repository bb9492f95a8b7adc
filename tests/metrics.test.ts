import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createActorRegistry, mergeActorMetrics, registerRingMetrics, type RingStats } from '../src/shared/metrics.js';

/** family name → how many # HELP and # TYPE lines it has, plus every sample line. */
function parseExposition(text: string) {
  const help = new Map<string, number>();
  const type = new Map<string, number>();
  const samples: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+)/.exec(line);
    if (meta) {
      const counts = meta[1] === 'HELP' ? help : type;
      counts.set(meta[2], (counts.get(meta[2]) ?? 0) + 1);
      continue;
    }
    samples.push(line);
  }
  return { help, type, samples };
}

const SAMPLE_LINE = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? [-+0-9.eEInfNa]+$/;

describe('mergeActorMetrics', () => {
  it('merges two actors into one valid exposition without losing series', async () => {
    const registries = ['alpha', 'beta'].map((actor, i) => {
      const registry = createActorRegistry(actor);
      const histogram = new Histogram({
        name: 'test_work_seconds',
        help: 'work time',
        buckets: [0.1, 1],
        registers: [registry],
      });
      histogram.observe(0.05 + i); // alpha lands in le=0.1, beta in le=+Inf only
      return registry;
    });

    const text = await mergeActorMetrics(await Promise.all(registries.map((r) => r.getMetricsAsJSON())));
    const { help, type, samples } = parseExposition(text);

    expect([...help.values()].every((n) => n === 1)).toBe(true);
    expect([...type.values()].every((n) => n === 1)).toBe(true);
    expect(help.size).toBe(type.size);
    for (const line of samples) expect(line).toMatch(SAMPLE_LINE);

    // Each actor keeps its own buckets: nothing got summed across actors.
    expect(samples).toContain('test_work_seconds_bucket{le="0.1",actor="alpha"} 1');
    expect(samples).toContain('test_work_seconds_bucket{le="0.1",actor="beta"} 0');
    expect(samples).toContain('test_work_seconds_count{actor="beta"} 1');
    // prom-client marks this default metric "omit" for cluster aggregation; we keep it.
    expect(samples.filter((l) => l.startsWith('process_start_time_seconds{'))).toHaveLength(2);
    expect(samples.some((l) => l.startsWith('nodejs_heap_size_used_bytes{actor="alpha"}'))).toBe(true);
    expect(samples.some((l) => l.startsWith('nodejs_heap_size_used_bytes{actor="beta"}'))).toBe(true);
  });
});

describe('registerRingMetrics', () => {
  it('reports the current ring stats at every collect', async () => {
    const stats: RingStats = {
      kind: 'record',
      name: 'telemetry',
      capacity: 4096,
      depth: 3,
      recordsIn: 10,
      recordsOut: 7,
      drops: { 'drop-newest': 2, 'overwrite-oldest': 0, 'block-timeout': 0, 'too-large': 1 },
      waitMs: 1500,
    };
    const registry = new Registry();
    registerRingMetrics(registry, () => [{ ring: 'telemetry', producer: 'trainer', consumer: 'aggregator', stats }]);
    const labels = 'ring="telemetry",producer="trainer",consumer="aggregator"';

    let text = await registry.metrics();
    expect(text).toContain(`ringcast_ring_depth{${labels}} 3`);
    expect(text).toContain(`ringcast_ring_capacity{${labels}} 4096`);
    expect(text).toContain(`ringcast_ring_records_in_total{${labels}} 10`);
    expect(text).toContain(`ringcast_ring_records_out_total{${labels}} 7`);
    expect(text).toContain(`ringcast_ring_drops_total{${labels},reason="drop-newest"} 2`);
    expect(text).toContain(`ringcast_ring_drops_total{${labels},reason="too-large"} 1`);
    expect(text).toContain(`ringcast_ring_wait_seconds_total{${labels}} 1.5`);
    expect(text).toContain('# TYPE ringcast_ring_records_in_total counter');

    // A later scrape shows the new totals, not old + new.
    stats.recordsIn = 25;
    stats.depth = 0;
    text = await registry.metrics();
    expect(text).toContain(`ringcast_ring_records_in_total{${labels}} 25`);
    expect(text).toContain(`ringcast_ring_depth{${labels}} 0`);
  });
});
