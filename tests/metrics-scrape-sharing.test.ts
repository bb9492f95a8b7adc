/**
 * /metrics through the real service: concurrent scrapes share one merge of every thread's
 * metrics (the merge runs on the main thread), and each still gets a complete exposition.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './helpers/service-harness.js';

describe('concurrent /metrics scrapes', () => {
  let h: Harness;
  beforeAll(async () => { h = await startHarness(['--fanout-threads', '1']); });
  afterAll(async () => { await h?.close(); });

  it('eight at once cost fewer than eight merges, and every answer is whole', async () => {
    const supervisor = h.service.supervisor;
    const original = supervisor.metrics.bind(supervisor);
    let merges = 0;
    supervisor.metrics = (...args: Parameters<typeof original>) => { merges++; return original(...args); };
    try {
      const bodies = await Promise.all(Array.from({ length: 8 }, async () => {
        const res = await fetch(`http://127.0.0.1:${h.service.port}/metrics`);
        expect(res.status).toBe(200);
        return res.text();
      }));
      expect(merges).toBeGreaterThanOrEqual(1);
      expect(merges).toBeLessThan(8);
      for (const body of bodies) {
        expect(body).toContain('ringcast_actor_up{actor="aggregator"}');
        expect(body).toContain('actor="gateway-0"');
      }
      // A later scrape is a fresh merge, not a cached answer.
      const before = merges;
      await (await fetch(`http://127.0.0.1:${h.service.port}/metrics`)).text();
      expect(merges).toBe(before + 1);
    } finally {
      supervisor.metrics = original;
    }
  });
});
