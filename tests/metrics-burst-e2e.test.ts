/**
 * A burst of metrics steps (a trainer catching up after a stall) through the whole service:
 * producer → ingest → aggregator → gateway → a full-rate /ws client, which must see every
 * step even though one window holds several times `aggregate.seriesPoints` of them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProducer } from '../src/sdk/index.js';
import { until } from './helpers/supervisor-harness.js';
import { INGEST_TOKEN, OverlayClient, startHarness, type Harness } from './helpers/service-harness.js';

const SERIES_POINTS = 50;
const BURST = 9 * SERIES_POINTS + 3;

let h: Harness;
beforeAll(async () => { h = await startHarness(['--series-points', String(SERIES_POINTS)]); }, 60_000);
afterAll(async () => { await h?.close(); }, 30_000);

describe('a metrics burst through the service', () => {
  it(`a live /ws client sees all ${BURST} steps of a burst sent in one frame`, async () => {
    const run = 'burst-e2e';
    const client = await OverlayClient.connect(h.service.port, { channels: ['metrics'], level: 'advanced', max_fps: 30 });
    const p = createProducer(`tcp://127.0.0.1:${h.tcpPort}`, { token: INGEST_TOKEN, run, batchMaxEvents: 4096, flushIntervalMs: 1_000 });
    try {
      await until(() => p.stats().connections === 1, 5_000, 'producer connected');
      for (let step = 1; step <= BURST; step++) p.emitPpoMetrics({ loss: step / 8, entropy: 2 - step / 1000 }, step);
      await p.close(5_000); // one frame: the whole burst reaches the aggregator at once
      expect(p.stats()).toMatchObject({ sent: BURST, delivered: BURST });
      const live = (m: { type: string; data?: Record<string, unknown> }) => m.type === 'ppo_metrics' && m.data?.run === run && m.data?.series === 'tail';
      await client.waitFor((m) => live(m) && ((m.data!.metrics as { loss: { steps: number[] } }).loss.steps.at(-1) === BURST), 10_000, 'the last step');
      const tails = client.messages.filter(live);
      for (const name of ['loss', 'entropy']) {
        const steps = tails.flatMap((m) => (m.data!.metrics as Record<string, { steps: number[] }>)[name].steps);
        expect(steps).toEqual(Array.from({ length: BURST }, (_, i) => i + 1));
      }
      const series = tails.flatMap((m) => (m.data!.metrics as { loss: { series: number[] } }).loss.series);
      expect(series).toEqual(Array.from({ length: BURST }, (_, i) => (i + 1) / 8));
      expect(tails.some((m) => (m.data!.parts as number) > 1)).toBe(true);
    } finally {
      client.close();
      await p.close(100);
    }
  }, 30_000);
});
