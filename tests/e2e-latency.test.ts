/**
 * ringcast_e2e_latency_seconds: from the trainer's own event timestamp to the gateway sending
 * the message, per channel, through the real service (HTTP ingest → aggregator → gateway → /ws).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeMetricsEvent } from '../src/sdk/encode.js';
import { INGEST_TOKEN, OverlayClient, startHarness, type Harness } from './helpers/service-harness.js';

let h: Harness;
beforeAll(async () => { h = await startHarness(); });
afterAll(async () => { await h?.close(); });

function histogram(metrics: string, channel: string): { count: number; sum: number; buckets: Map<string, number> } {
  let count = 0;
  let sum = 0;
  const buckets = new Map<string, number>();
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('ringcast_e2e_latency_seconds') || !line.includes(`channel="${channel}"`)) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (line.startsWith('ringcast_e2e_latency_seconds_count')) count += value;
    else if (line.startsWith('ringcast_e2e_latency_seconds_sum')) sum += value;
    else {
      const le = /le="([^"]+)"/.exec(line)![1];
      buckets.set(le, (buckets.get(le) ?? 0) + value);
    }
  }
  return { count, sum, buckets };
}

describe('end-to-end latency histogram', () => {
  it('measures from the trainer timestamp to the gateway send, per channel', async () => {
    const client = await OverlayClient.connect(h.service.port, { channels: ['metrics'] });
    const lagMs = 3_000;
    const event = encodeMetricsEvent({ 'ppo/policy_loss': 0.5 }, 7, undefined, { timestamp: Date.now() - lagMs, copy: true });
    const res = await fetch(`http://127.0.0.1:${h.service.port}/api/ingest?run=latency`, {
      method: 'POST', headers: { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': 'application/octet-stream' }, body: event,
    });
    expect(res.status).toBe(200);
    await client.waitFor((m) => m.type === 'ppo_metrics' && m.data?.run === 'latency', 5_000, 'the metrics update');
    client.close();

    const metrics = await (await fetch(`http://127.0.0.1:${h.service.port}/metrics`)).text();
    const m = histogram(metrics, 'metrics');
    expect(m.count).toBeGreaterThanOrEqual(1);
    // Every observation is at least the trainer's lag, and (on loopback) well under a minute.
    expect(m.sum / m.count).toBeGreaterThanOrEqual(lagMs / 1000);
    expect(m.sum / m.count).toBeLessThan(lagMs / 1000 + 10);
    expect(m.buckets.get('2.5')).toBe(0);
    expect(m.buckets.get('+Inf')).toBe(m.count);
    // Nothing was sent on channels nobody subscribed to.
    expect(histogram(metrics, 'attention').count).toBe(0);
  });
});
