/**
 * The `metrics` overlay page in real chromium against a running ringcast fed by a scripted
 * producer (Node SDK over TCP) at 10 Hz: values, status colours, trend arrows, explanation
 * per level, sparkline pixels, the streamer's pause/level control, and frame times.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { createProducer, type NetworkProducer } from '../src/sdk/index.js';
import { ADMIN_TOKEN, INGEST_TOKEN, startHarness, type Harness } from './helpers/service-harness.js';
import { launchBrowser, openPage, screenshot } from './helpers/browser.js';
import { hasColour, overlayState, p95, rafIntervals, until, type Rgba } from './helpers/overlay-pages.js';

// The palette comes from overlay/lib/theme.css (dark theme).
const GREEN = '#2e9d5b';
const RED = '#c8412f';
const ACCENT = '#4aa3ff';

// Known curves: the page must show exactly these values.
const policyLoss = (step: number) => 2 - 0.01 * step;
const winRate = (step: number) => Math.min(0.95, 0.2 + 0.002 * step);
const zigzag = (step: number) => (step % 2 === 0 ? 1 : 3);

interface SparkProbe {
  g: { x: number; y: number; w: number; h: number; first: [number, number]; last: [number, number]; rawPoints: number };
  firstY: number;
  atFirst: Rgba[]; atLast: Rgba[]; bottomLeft: Rgba[]; statusBar: Rgba[];
  /** The right half of the box, 8 px high around the row of `bandValue`. */
  band: Rgba[];
}

/**
 * Geometry of a card's sparkline as last drawn and the canvas pixels around its points,
 * read in one go inside the page (so no redraw can come between them). The pixel of
 * (step, value) follows overlay/lib/sparkline.js: x by step across the box, y by value.
 */
function sparkProbe(page: Page, name: string, bandValue = 0): Promise<SparkProbe> {
  return page.evaluate(([metric, band]) => {
    const g = (window as any).__overlay.state().cards[metric].geometry;
    const canvas = document.getElementById('view') as HTMLCanvasElement;
    const ctx = canvas.getContext('2d')!;
    const dpr = canvas.width / canvas.clientWidth;
    const at = (step: number, value: number): [number, number] => [
      g.maxStep > g.minStep ? g.x + ((step - g.minStep) / (g.maxStep - g.minStep)) * g.w : g.x + g.w,
      g.y + g.h - ((value - g.lo) / (g.hi - g.lo)) * g.h,
    ];
    const px = (x: number, y: number, w: number, hgt: number) => {
      const d = ctx.getImageData(Math.round(x * dpr), Math.round(y * dpr), Math.max(1, Math.round(w * dpr)), Math.max(1, Math.round(hgt * dpr))).data;
      const out: number[][] = [];
      for (let i = 0; i < d.length; i += 4) out.push([d[i], d[i + 1], d[i + 2], d[i + 3]]);
      return out;
    };
    const [fx, fy] = at(g.first[0], g.first[1]);
    const [lx, ly] = at(g.last[0], g.last[1]);
    return {
      g, firstY: fy,
      atFirst: px(fx, fy - 3, 6, 6),
      atLast: px(lx - 6, ly - 3, 6, 6),
      bottomLeft: px(g.x + 2, g.y + g.h - 10, 8, 8),
      statusBar: px(g.x - 21, g.y, 4, 4),
      band: px(g.x + g.w / 2, at(g.minStep, band)[1] - 4, g.w / 2, 8),
    };
  }, [name, bandValue] as const) as Promise<SparkProbe>;
}

// The page's series store is a plain ES module: checked here directly, no browser needed.
describe('overlay/lib/sparkline.js Series', () => {
  interface SeriesLike { steps: number[]; values: number[]; length: number; append(step: number, value: number): boolean; replace(steps: unknown[], values: unknown[]): void }
  const load = async (): Promise<new (capacity?: number) => SeriesLike> => (await import(new URL('../overlay/lib/sparkline.js', import.meta.url).href)).Series;

  it('keeps the newest 100 points and appends only newer steps', async () => {
    const Series = await load();
    const s = new Series();
    for (let step = 1; step <= 150; step++) s.append(step, step * 2);
    expect(s.length).toBe(100);
    expect(s.steps[0]).toBe(51);
    expect(s.append(150, 0)).toBe(false); // a live tail overlapping what is kept
    expect(s.append(151, 302)).toBe(true);
    expect(s.values.at(-1)).toBe(302);
  });

  it('stats() gives mean/min/max over the points held', async () => {
    const Series = await load();
    const s = new Series(3) as SeriesLike & { stats(): { count: number; mean: number | null; min: number | null; max: number | null } };
    expect(s.stats()).toEqual({ count: 0, mean: null, min: null, max: null });
    for (const [step, v] of [[1, 10], [2, 2], [3, 4], [4, 6]]) s.append(step, v);
    expect(s.stats()).toEqual({ count: 3, mean: 4, min: 2, max: 6 });
  });

  it('replace() skips nulls and keeps a stepped-back series from the restart on', async () => {
    const Series = await load();
    const s = new Series();
    s.replace([1, 2, 3, 4], [1, null, 3, Number.NaN]);
    expect([s.steps, s.values]).toEqual([[1, 3], [1, 3]]);
    s.replace([8, 9, 10, 1, 2], [8, 9, 10, 1, 2]);
    expect(s.steps).toEqual([1, 2]);
  });

  it('merge() keeps held points older than a shorter server series, takes the server\'s from its first step, caps at capacity', async () => {
    const Series = await load();
    const s = new Series(6) as SeriesLike & { merge(steps: unknown[], values: unknown[]): void };
    s.merge([1, 2, 3], [1, 2, 3]);
    s.merge([2, 3, 4], [2, 3, 4]); // a server keeping 3 points, one window later
    s.merge([3, 4, 5], [3, 4, 5]);
    expect([s.steps, s.values]).toEqual([[1, 2, 3, 4, 5], [1, 2, 3, 4, 5]]);
    // A late point filed among the server's points (and a value the server changed) is taken in.
    s.merge([3, 3.5, 4, 5, 6], [3, 3.5, 40, 5, 6]);
    expect([s.steps, s.values]).toEqual([[2, 3, 3.5, 4, 5, 6], [2, 3, 3.5, 40, 5, 6]]); // step 1 past the capacity
    // A series that steps back inside (the run restarted) replaces what was held.
    s.merge([6, 1, 2], [6, 1, 2]);
    expect(s.steps).toEqual([1, 2]);
  });
});

describe('metrics overlay page (chromium)', () => {
  let h: Harness;
  let browser: Browser;
  const producers: NetworkProducer[] = [];
  const timers: NodeJS.Timeout[] = [];
  let base: string;
  const pages: Page[] = [];

  const open = async (query: string) => {
    const page = await openPage(browser, `${base}/overlay/metrics${query}`);
    pages.push(page);
    await until(() => page.evaluate(() => document.getElementById('status')!.dataset.state), (s) => s === 'open', 10_000, 'the page to connect');
    return page;
  };
  const control = async (body: Record<string, unknown>) => {
    const res = await fetch(`${base}/api/control`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.status).toBe(200);
  };

  beforeAll(async () => {
    h = await startHarness(['--fanout-threads', '1']);
    base = `http://127.0.0.1:${h.service.port}`;
    browser = await launchBrowser();
    // Run "main": healthy (KL 0.005, clip 0.05); run "hot": exploring (KL 0.2); run "restart":
    // a trainer that starts over at step 1 every 3 s.
    for (const [run, kl] of [['main', 0.005], ['hot', 0.2], ['restart', 0.005]] as const) {
      const producer = createProducer(`tcp://127.0.0.1:${h.tcpPort}`, { token: INGEST_TOKEN, run });
      producers.push(producer);
      let step = 0;
      timers.push(setInterval(() => {
        step = run === 'restart' && step >= 30 ? 1 : step + 1;
        producer.emitPpoMetrics({
          'ppo/policy_loss': policyLoss(step), 'ppo/entropy': 3, 'ppo/kl_divergence_approx': kl, 'ppo/clip_fraction': 0.05,
          win_rate: winRate(step), 'custom/zigzag': zigzag(step),
        }, step);
      }, 100));
    }
  });

  afterAll(async () => {
    for (const t of timers) clearInterval(t);
    await Promise.all(producers.map((p) => p.close(1000)));
    await browser?.close();
    await h?.close();
  });

  it('shows values, healthy colour, trend arrows, explanation and a drawn sparkline (intermediate)', async () => {
    const page = await open('?run=main');
    const s = await until(() => overlayState(page), (st) => (st.cards['ppo/policy_loss']?.smooth.steps.length ?? 0) >= 15 && st.drawn.step === st.step, 15_000, '15 smoothed points');
    const loss = s.cards['ppo/policy_loss'];
    // The snapshot carried the whole kept series, the live tail appended newer steps: no gaps, no repeats.
    const steps: number[] = loss.smooth.steps;
    for (let i = 1; i < steps.length; i++) expect(steps[i]).toBeGreaterThan(steps[i - 1]);
    expect(steps.length).toBeLessThanOrEqual(100);
    // Raw values are the trainer's own (kept by the page at intermediate).
    for (let i = 0; i < loss.raw.steps.length; i++) expect(loss.raw.values[i]).toBe(policyLoss(loss.raw.steps[i]));
    expect(loss.latest).toBe(policyLoss(steps.at(-1)!));
    expect(loss.direction).toBe('falling');
    // The card's mean/min/max cover the series it shows (the server's 100 ms window holds one
    // sample, so its stats only repeat the latest value): a falling loss spans a real range.
    const vals: number[] = loss.raw.values;
    expect(loss.stats.over).toBe('series');
    expect(loss.stats.min).toBe(Math.min(...vals));
    expect(loss.stats.max).toBe(Math.max(...vals));
    expect(loss.stats.mean).toBeCloseTo(vals.reduce((a, b) => a + b, 0) / vals.length, 9);
    expect(loss.stats.max).toBeGreaterThan(loss.stats.min);
    expect(s.cards.win_rate.direction).toBe('rising');
    expect(s.cards['ppo/entropy'].direction).toBe('flat');
    expect(s.health.status).toBe('healthy');
    expect(s.statusColour).toBe(GREEN);
    expect(s.explanation).toMatch(/Health: healthy/);
    // Default set first (Keisei gen 1 order), then what else arrived.
    expect(s.shown.slice(0, 4)).toEqual(['ppo/policy_loss', 'ppo/entropy', 'ppo/kl_divergence_approx', 'ppo/clip_fraction']);
    expect(s.shown).toContain('custom/zigzag');

    // Real pixels: the bold smoothed line passes through its first and last points; the
    // bottom-left of the box (a falling line starts high) stays empty; the status bar is green.
    const probe = await sparkProbe(page, 'ppo/policy_loss');
    expect(probe.firstY).toBeLessThan(probe.g.y + probe.g.h / 2);
    expect(hasColour(probe.atFirst, ACCENT, 40)).toBe(true);
    expect(hasColour(probe.atLast, ACCENT, 40)).toBe(true);
    expect(hasColour(probe.bottomLeft, ACCENT, 40)).toBe(false);
    expect(hasColour(probe.statusBar, GREEN, 30)).toBe(true);
    await screenshot(page, 'overlay-metrics-intermediate');
  });

  it('advanced level: raw series from the server, faint raw under bold smoothed; picked metrics with "no data"', async () => {
    const page = await open('?run=main&level=advanced&metrics=custom/zigzag,ppo/policy_loss,missing/metric');
    const s = await until(() => overlayState(page), (st) => (st.cards['custom/zigzag']?.raw.steps.length ?? 0) >= 20 && st.drawn.step === st.step, 15_000, 'raw zigzag points');
    expect(s.shown).toEqual(['custom/zigzag', 'ppo/policy_loss', 'missing/metric']);
    expect(s.cards['missing/metric']).toBeUndefined();
    const z = s.cards['custom/zigzag'];
    for (let i = 0; i < z.raw.steps.length; i++) expect(z.raw.values[i]).toBe(zigzag(z.raw.steps[i]));
    // Smoothed stays between the zigzag's extremes, raw hits them.
    expect(Math.max(...z.smooth.values.slice(5))).toBeLessThan(3);
    expect(Math.min(...z.smooth.values.slice(5))).toBeGreaterThan(1);
    // Pixels: the raw zigzag reaches its peak row (value 3) where the smoothed line never goes
    // (it settles between 1.8 and 2.2): faint raw pixels there, none in the bold accent colour.
    const probe = await sparkProbe(page, 'custom/zigzag', 3);
    expect(probe.g.rawPoints).toBeGreaterThan(10);
    expect(probe.band.some((p) => p[2] > 80 && p[3] > 0)).toBe(true);
    expect(hasColour(probe.band, ACCENT, 40)).toBe(false);
    // "no data" for a picked metric that never arrived: shown, with nothing invented.
    const state = await overlayState(page);
    expect(state.cards['missing/metric']).toBeUndefined();
    expect(state.explanation).toMatch(/threshold|slope|per step|0\.01/);
    await screenshot(page, 'overlay-metrics-advanced');
  });

  it('beginner level: own series from latest values, plain-language explanation', async () => {
    const page = await open('?run=main&level=beginner');
    const s = await until(() => overlayState(page), (st) => (st.cards['ppo/policy_loss']?.raw.steps.length ?? 0) >= 10, 15_000, '10 beginner points');
    const loss = s.cards['ppo/policy_loss'];
    for (let i = 0; i < loss.raw.steps.length; i++) expect(loss.raw.values[i]).toBe(policyLoss(loss.raw.steps[i]));
    expect(loss.smooth.steps.length).toBe(loss.raw.steps.length);
    expect(s.explanation).toMatch(/Training is steady/);
    expect(s.explanation).not.toMatch(/\bKL\b/);
    await screenshot(page, 'overlay-metrics-beginner');
  });

  it('exploring run is red (light theme)', async () => {
    const page = await open('?run=hot&theme=light');
    const s = await until(() => overlayState(page), (st) => st.health?.status === 'exploring' && st.drawn.step !== null, 10_000, 'exploring health');
    expect(s.statusColour).toBe(RED);
    expect(s.colours.fg).toBe('#16181d'); // theme.css light palette
    expect(await page.evaluate(() => document.body.className)).toContain('theme-light');
    expect(hasColour((await sparkProbe(page, 'ppo/policy_loss')).statusBar, RED, 30)).toBe(true);
    await screenshot(page, 'overlay-metrics-exploring-light');
  });

  it('starts the series over when the trainer restarts a run from an earlier step', async () => {
    const page = await open('?run=restart&level=advanced');
    let highest = 0;
    const s = await until(async () => {
      const st = await overlayState(page);
      highest = Math.max(highest, st.step ?? 0);
      return st;
    }, (st) => highest >= 20 && st.step !== null && st.step < 10 && st.cards['ppo/policy_loss']?.smooth.steps.length >= 3, 10_000, 'a restart from step 1');
    const steps: number[] = s.cards['ppo/policy_loss'].smooth.steps;
    expect(Math.max(...steps)).toBeLessThanOrEqual(s.step);
    for (let i = 1; i < steps.length; i++) expect(steps[i]).toBeGreaterThan(steps[i - 1]);
    const raw = s.cards['ppo/policy_loss'].raw;
    for (let i = 0; i < raw.steps.length; i++) expect(raw.values[i]).toBe(policyLoss(raw.steps[i]));
    // A page opened right after a restart gets a full series that steps back: it keeps the points since the restart.
    await until(() => overlayState(page), (st) => st.step !== null && st.step >= 3 && st.step < 8, 5_000, 'just after the next restart');
    const fresh = await openPage(browser, `${base}/overlay/metrics?run=restart&level=advanced`);
    const f = await until(() => overlayState(fresh), (st) => st.cards['ppo/policy_loss']?.raw.steps.length > 0, 5_000, 'the fresh page snapshot');
    const fs: number[] = f.cards['ppo/policy_loss'].raw.steps;
    expect(fs[0]).toBeLessThanOrEqual(10);
    expect(Math.max(...fs)).toBeLessThanOrEqual(f.step);
    await fresh.close();
    await page.close();
    pages.pop();
  });

  it('frame times over 5 s of live 10 Hz updates stay under 16.7 ms at p95', async () => {
    const page = pages[0];
    await page.evaluate(() => (window as any).__overlay.resetFrames());
    const intervals = await rafIntervals(page, 5_000);
    const work = await page.evaluate(() => (window as any).__overlay.frames());
    console.log(`metrics page: draw work per frame p50 ${work.p50?.toFixed(2)} ms, p95 ${work.p95?.toFixed(2)} ms, max ${work.max?.toFixed(2)} ms over ${work.count} frames; `
      + `rAF interval p95 ${p95(intervals).toFixed(2)} ms over ${intervals.length} frames`);
    expect(work.count).toBeGreaterThan(30); // ~10 redraws per second, only on change
    expect(work.p95).toBeLessThan(16.7);
    // The rAF interval is reported, not asserted: headless chromium paces frames at exactly
    // 60 Hz, and on a 2-core machine running the whole suite it misses vsync slots for reasons
    // that have nothing to do with the page (seen in CI: p95 33 ms while draw work was ~2 ms).
    expect(intervals.length).toBeGreaterThan(60);
  });

  it('reconnects after the gateway crashes and keeps one continuous series', async () => {
    const page = pages[2]; // beginner: its series is the page's own, so a replay must not duplicate points
    const states: string[] = [];
    await page.exposeFunction('__badge', (s: string) => { states.push(s); });
    await page.evaluate(() => {
      const el = document.getElementById('status')!;
      new MutationObserver(() => (window as any).__badge(el.dataset.state)).observe(el, { attributes: true });
    });
    const before = await overlayState(page);
    await h.service.supervisor.crash('gateway-0', 'test: overlay reconnect');
    await until(async () => states, (st) => st.includes('reconnecting') && st.at(-1) === 'open', 15_000, 'reconnecting, then live again');
    const after = await until(() => overlayState(page), (st) => st.messages > before.messages + 5, 10_000, 'messages after the reconnect');
    const loss = after.cards['ppo/policy_loss'];
    for (let i = 1; i < loss.raw.steps.length; i++) expect(loss.raw.steps[i]).toBeGreaterThan(loss.raw.steps[i - 1]);
    for (let i = 0; i < loss.raw.steps.length; i++) expect(loss.raw.values[i]).toBe(policyLoss(loss.raw.steps[i]));
  });

  it('honours the control channel: pause freezes the display, level changes unpinned pages only', async () => {
    const unpinned = pages[0];
    const pinned = pages[1];
    await control({ action: 'pause' });
    const paused = await until(() => overlayState(unpinned), (st) => st.paused === true, 5_000, 'paused');
    await new Promise((r) => setTimeout(r, 600));
    const later = await overlayState(unpinned);
    expect(later.drawn.step).toBe(paused.drawn.step);
    expect(later.step).toBeGreaterThan(later.drawn.step); // data kept flowing underneath
    expect(await unpinned.isVisible('#paused')).toBe(true); // the "paused" pill
    await screenshot(unpinned, 'overlay-metrics-paused');
    await control({ action: 'resume' });
    await until(() => overlayState(unpinned), (st) => st.paused === false && st.drawn.step > later.drawn.step, 5_000, 'resumed drawing');
    expect(await unpinned.isVisible('#paused')).toBe(false);

    await control({ action: 'level', level: 'beginner' });
    const b = await until(() => overlayState(unpinned), (st) => st.level === 'beginner' && /Training is steady/.test(st.explanation), 5_000, 'beginner explanation');
    expect(b.level).toBe('beginner');
    const p = await overlayState(pinned);
    expect(p.level).toBe('advanced');
    await new Promise((r) => setTimeout(r, 300));
    expect((await overlayState(pinned)).explanation).not.toMatch(/Training is steady/);
  });
});
