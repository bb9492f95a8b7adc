/**
 * Missing and malformed paths under /overlay/ against the whole service: every one is an
 * ordinary 404 (or 400 for a path that escapes the overlay folder or cannot be decoded),
 * repeated enough times that a crashing gateway would exceed the restart intensity, and no
 * actor is ever restarted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './helpers/service-harness.js';
import { actorRestarts } from './helpers/metrics-scrape.js';

describe('GET /overlay/<missing> through the real service', () => {
  let h: Harness;
  let base: string;

  beforeAll(async () => {
    h = await startHarness();
    base = `http://127.0.0.1:${h.service.port}`;
  });
  afterAll(async () => { await h?.close(); });

  it('answers 404 for missing files and 400 for bad paths, repeatedly, without restarting any actor', async () => {
    const before = await actorRestarts(h.service.port);
    const missing = ['/overlay/', '/overlay/favicon.ico', '/overlay/board/', '/overlay/nope'];
    const bad = ['/overlay/%E0%A4%A', '/overlay/..%2F..%2Fpackage.json'];
    for (let round = 0; round < 8; round++) {
      for (const p of missing) {
        const res = await fetch(`${base}${p}${round > 0 && p.endsWith('nope') ? round : ''}`);
        expect(res.status, p).toBe(404);
        expect(await res.text()).toContain('no overlay file');
      }
      for (const p of bad) {
        const res = await fetch(`${base}${p}`);
        expect(res.status, p).toBe(400);
        await res.arrayBuffer();
      }
    }
    // A page that exists still loads, from the same gateways.
    const page = await fetch(`${base}/overlay/showcase`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    await page.arrayBuffer();
    // Health and restarts last: a crash would have shown here (restarts are counted at once).
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect(await actorRestarts(h.service.port)).toBe(before);
    expect(h.lines.filter((l) => String(l.msg ?? '').includes('gateway crashed'))).toEqual([]);
  });
});
