/**
 * The overlay pages' "catching up" pill (overlay/lib/page.js) in real chromium against the
 * real service: late metrics events (a producer's spool draining: `meta.late`, `backlog`)
 * turn it on with the backlog, through the delta stream the pages subscribe to; it goes away
 * when the late events stop, and live values never move back to the old steps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { LATE_QUIET_MS } from '../src/actors/aggregator/run-state.js';
import { encodeEvent, encodeMetricsPayload, EventKind } from '../src/shared/telemetry/event-codec.js';
import { INGEST_TOKEN, startHarness, type Harness } from './helpers/service-harness.js';
import { launchBrowser, openPage } from './helpers/browser.js';
import { until } from './helpers/overlay-pages.js';

describe('catching-up pill (chromium)', () => {
  let h: Harness;
  let browser: Browser;
  beforeAll(async () => {
    h = await startHarness(['--fanout-threads', '1']);
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  const post = async (step: number, late?: number) => {
    const event = encodeEvent(EventKind.Metrics, late === undefined ? undefined : { late: true, backlog: late }, encodeMetricsPayload(step, { 'ppo/policy_loss': step / 1000 }));
    const res = await fetch(`http://127.0.0.1:${h.service.port}/api/ingest?run=cu`, {
      method: 'POST', headers: { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': 'application/octet-stream' }, body: event,
    });
    expect(res.status).toBe(200);
  };

  it('shows "catching up" with the backlog while late events arrive, and hides it after', async () => {
    await post(500);
    const page = await openPage(browser, `http://127.0.0.1:${h.service.port}/overlay/metrics?run=cu`);
    await until(() => page.evaluate(() => document.getElementById('status')!.dataset.state), (s) => s === 'open', 10_000, 'the page to connect');
    const pill = () => page.evaluate(() => { const el = document.getElementById('catching-up'); return el ? { hidden: el.hidden, text: el.textContent } : null; });
    expect(await pill()).toEqual({ hidden: true, text: 'catching up' });
    for (let step = 100; step < 110; step++) {
      await post(step, 1000 - step);
      await new Promise((r) => setTimeout(r, 100));
    }
    const shown = await until(pill, (p) => p?.hidden === false, 5_000, 'the pill');
    const left = Number(/^catching up · (\d+) to go$/.exec(shown!.text ?? '')?.[1]);
    expect(left).toBeGreaterThanOrEqual(891); // the backlog of a late event we sent (1000 − step)
    expect(left).toBeLessThanOrEqual(900);
    await post(501); // live news meanwhile: the page follows it, not the old steps
    const hidden = await until(pill, (p) => p?.hidden === true, LATE_QUIET_MS + 5_000, 'the pill to go once late events stop');
    expect(hidden).toEqual({ hidden: true, text: expect.stringMatching(/catching up/) });
    const state = await page.evaluate(() => (window as any).__overlay.state());
    expect(state.step).toBe(501);
    await page.close();
  }, 60_000);
});
