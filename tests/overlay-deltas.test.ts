/**
 * The overlay pages drawn from deltas match those drawn from full messages: the `metrics`
 * page (and `board` and `predictions`: heatmap cells, bars, an explanation whose numbers
 * change; the board at advanced with its SE strips) opened twice in chromium, once as the
 * pages run by default (delta subscription) and once with `?delta=0` (full messages), fed the
 * same scripted run through the real service; once the run stops, the two pages' pixels are
 * compared. The metrics run outlasts the kept series (100 points), so its series slide too;
 * and with a server that keeps fewer points than a page draws (`--series-points 20`), the
 * page fed whole series (deltas) draws as many points as the page fed window tails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { createProducer, type NetworkProducer } from '../src/sdk/index.js';
import { INGEST_TOKEN, startHarness, type Harness } from './helpers/service-harness.js';
import { launchBrowser, screenshot, withTestFlag } from './helpers/browser.js';
import { drawnState, overlayState, until } from './helpers/overlay-pages.js';

const STEPS = 40;
/** Past the 100 points a series keeps: the last ones slide (a delta carries only the new points). */
const METRIC_STEPS = 110;

type Frames = { deltas: number; total: number; textEdits: number; pushes: number };
type Opener = (query: string, name?: string) => Promise<{ page: Page; frames: Frames }>;

/** Opens a page in test mode (as openPage does), counting the delta frames it receives from the start. */
async function openCounting(browser: Browser, base: string, query: string, name = 'metrics'): Promise<{ page: Page; frames: Frames }> {
  const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
  page.on('pageerror', (error) => { throw error; });
  const frames = { deltas: 0, total: 0, textEdits: 0, pushes: 0 };
  page.on('websocket', (ws) => ws.on('framereceived', (f) => {
    frames.total++;
    const text = String(f.payload);
    if (text.startsWith('{"type":"delta"')) frames.deltas++;
    if (text.includes('"x":[')) frames.textEdits++;
    // New points onto full series: `{"p": [v]}`, or a `"p"` column of a table (one point onto each metric's series).
    if (/"p":\[|\[\d+,"p"/.test(text)) frames.pushes++;
  }));
  await page.goto(withTestFlag(`${base}/overlay/${name}${query}`));
  await until(() => page.evaluate(() => document.getElementById('status')!.dataset.state), (s) => s === 'open', 10_000, 'the page to connect');
  return { page, frames };
}

/**
 * The metrics page opened from deltas and from full messages, fed `steps` windows of a run
 * whose curves move every window, on a server keeping `kept` points per series: same pixels,
 * and both hold the page's own 100 points (or all of the run, when shorter) whatever the server keeps.
 */
async function compareMetricsPages(open: Opener, producer: NetworkProducer, run: string, steps: number, kept: number): Promise<void> {
  const { page: deltaPage, frames: deltaFrames } = await open(`?run=${run}`);
  const { page: fullPage, frames: fullFrames } = await open(`?run=${run}&delta=0`);
  // One step per 100 ms window.
  for (let step = 1; step <= steps; step++) {
    producer.emitPpoMetrics({ 'ppo/policy_loss': 2 - 0.013 * step + 0.1 * Math.sin(step), 'ppo/entropy': 3 + Math.cos(step / 3), 'ppo/kl_divergence_approx': 0.004 + 0.001 * (step % 5), 'ppo/clip_fraction': 0.05, win_rate: 0.2 + 0.01 * step }, step);
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const page of [deltaPage, fullPage]) {
    await until(() => overlayState(page), (s) => s.drawn?.step === steps && s.step === steps, 10_000, `step ${steps} drawn`);
  }
  await new Promise((r) => setTimeout(r, 500)); // any easing settles
  const [a, b] = [await deltaPage.screenshot(), await fullPage.screenshot()];
  if (!a.equals(b)) { await screenshot(deltaPage, `metrics-from-deltas-${kept}`); await screenshot(fullPage, `metrics-from-full-${kept}`); }
  // The delta page really drew from deltas (most of its updates), the other from full messages only.
  expect(deltaFrames.deltas).toBeGreaterThan(steps / 2);
  expect(fullFrames.deltas).toBe(0);
  expect(fullFrames.total).toBeGreaterThan(steps / 2);
  // Once the server's series were full, each delta carried the new points only.
  expect(deltaFrames.pushes).toBeGreaterThan((steps - kept) / 2);
  const [fromDeltas, fromFull] = [await overlayState(deltaPage), await overlayState(fullPage)];
  const smooth = (s: typeof fromDeltas) => s.cards['ppo/policy_loss'].smooth.steps;
  expect(smooth(fromDeltas).at(-1)).toBe(steps);
  // Every point since the page opened (before the run's first), up to the page's 100, whether it was fed tails or whole series.
  expect(smooth(fromDeltas).length).toBe(Math.min(100, steps));
  expect(smooth(fromDeltas)).toEqual(smooth(fromFull));
  expect(a.equals(b)).toBe(true);
  await Promise.all([deltaPage.close(), fullPage.close()]);
}

describe('overlay pages: deltas draw what full messages draw', () => {
  let h: Harness;
  let browser: Browser;
  let producer: NetworkProducer;
  let base: string;

  beforeAll(async () => {
    h = await startHarness(['--fanout-threads', '1']);
    base = `http://127.0.0.1:${h.service.port}`;
    browser = await launchBrowser();
    producer = createProducer(`tcp://127.0.0.1:${h.tcpPort}`, { token: INGEST_TOKEN, run: 'pix' });
  }, 60_000);

  afterAll(async () => {
    await producer?.close(1000);
    await browser?.close();
    await h?.close();
  });

  const open: Opener = (query, name) => openCounting(browser, base, query, name);

  it('metrics page (intermediate): identical pixels from a delta subscription and from full messages', async () => {
    await compareMetricsPages(open, producer, 'pix', METRIC_STEPS, 100);
  }, 60_000);

  it('board and predictions pages (intermediate), board with SE strips (advanced): identical pixels from deltas and from full messages', async () => {
    const SFEN = 'lnsgkgsnl/1r5b1/ppppppppp/9/9/2P6/PP1PPPPPP/1B5R1/LNSGKGSNL w - 2';
    const MOVES = ['7g7f', '3c3d', '2g2f', '8c8d', '6i7h'];
    const pages = [];
    for (const name of ['board', 'predictions']) {
      pages.push({ name, ...(await open('?run=pix2', name)), full: false });
      pages.push({ name, ...(await open('?run=pix2&delta=0', name)), full: true });
    }
    pages.push({ name: 'board-advanced', ...(await open('?run=pix2&level=advanced', 'board')), full: false });
    pages.push({ name: 'board-advanced', ...(await open('?run=pix2&level=advanced&delta=0', 'board')), full: true });
    const run = createProducer(`tcp://127.0.0.1:${h.tcpPort}`, { token: INGEST_TOKEN, run: 'pix2' });
    try {
      run.emitGameState({ gameId: 'g', sfen: SFEN, moves: ['7g7f'], lastMove: '7g7f', moveCount: 1 });
      let last = { move: '', prob: 0 };
      for (let step = 1; step <= STEPS; step++) {
        // A hot square that wanders, probabilities and a value that move every window (so do the explanation's numbers).
        const grid = Array.from({ length: 9 }, (_, r) => Array.from({ length: 9 }, (_, c) => 0.05 + 0.04 * Math.sin(step + r * 9 + c) ** 2));
        grid[(step * 2) % 9][step % 9] = 1;
        run.emitBoardHeatmap(grid, step);
        const top = MOVES.map((move, i) => ({ move, prob: Math.round((0.5 / (i + 1)) * (1 + 0.3 * Math.sin(step + i)) * 1e4) / 1e4 }));
        run.emitPredictions(top, SFEN, Math.sin(step / 4), step);
        // SE gates drifting slowly, as a trainer's do: few cells move at the strips' precision.
        run.cacheAttentionWeights(Array.from({ length: 4 }, (_, b) => Array.from({ length: 32 }, (_, c) => 1 / (1 + Math.exp(-2 * Math.sin(c / 5 + b + step / 20))))), undefined, step);
        last = top[0]; // drawn in thousandths (README, Numbers)
        await new Promise((r) => setTimeout(r, 100));
      }
      for (const p of pages) {
        await until(() => drawnState<{ bars?: { move: string; prob: number }[]; heatmapCells?: unknown[]; se?: { blocks: number } | null; draws: number }>(p.page),
          (d) => (p.name === 'board-advanced' ? d.se?.blocks === 4 : true) && (p.name.startsWith('board') ? (d.heatmapCells?.length ?? 0) > 0 : d.bars?.[0]?.prob === Math.round(last.prob * 1000) / 1000), 10_000, `${p.name} drawn to the last step`);
      }
      await new Promise((r) => setTimeout(r, 800)); // easing and the last window settle
      for (const name of ['board', 'predictions', 'board-advanced']) {
        const [d, f] = [pages.find((p) => p.name === name && !p.full)!, pages.find((p) => p.name === name && p.full)!];
        // Both pages hold the last step by now; on a loaded machine one may still be a frame behind drawing it.
        let [a, b] = [await d.page.screenshot(), await f.page.screenshot()];
        for (const end = Date.now() + 5_000; !a.equals(b) && Date.now() < end;) {
          await new Promise((r) => setTimeout(r, 250));
          [a, b] = [await d.page.screenshot(), await f.page.screenshot()];
        }
        if (!a.equals(b)) { await screenshot(d.page, `${name}-from-deltas`); await screenshot(f.page, `${name}-from-full`); }
        expect(d.frames.deltas, `${name} page got deltas`).toBeGreaterThan(STEPS / 2);
        // The explanation went out as edits of the words that changed, and was rebuilt from them.
        if (name === 'predictions') expect(d.frames.textEdits).toBeGreaterThan(STEPS / 2);
        expect(f.frames.deltas).toBe(0);
        expect(a.equals(b), `${name}: same pixels`).toBe(true);
      }
    } finally {
      await run.close(1000);
      await Promise.all(pages.map((p) => p.page.close()));
    }
  }, 90_000);
});

describe('metrics page: deltas draw what full messages draw on a server that keeps fewer points than the page', () => {
  let h: Harness;
  let browser: Browser;
  let producer: NetworkProducer;

  beforeAll(async () => {
    h = await startHarness(['--fanout-threads', '1', '--series-points', '20']);
    browser = await launchBrowser();
    producer = createProducer(`tcp://127.0.0.1:${h.tcpPort}`, { token: INGEST_TOKEN, run: 'kept20' });
  }, 60_000);

  afterAll(async () => {
    await producer?.close(1000);
    await browser?.close();
    await h?.close();
  });

  it('--series-points 20: the delta page draws the same 60 points as the page fed window tails (metrics page and the showcase\'s metrics panel)', async () => {
    const base = `http://127.0.0.1:${h.service.port}`;
    const open: Opener = (query, name) => openCounting(browser, base, query, name);
    const showcase = [await open('?run=kept20', 'showcase'), await open('?run=kept20&delta=0', 'showcase')];
    await compareMetricsPages(open, producer, 'kept20', 60, 20);
    type Drawn = { metrics: { cards: { name: string; points: number }[] } | null };
    const points = async (page: Page) => (await drawnState<Drawn>(page)).metrics?.cards.find((c) => c.name === 'ppo/policy_loss')?.points;
    for (const { page } of showcase) await until(() => points(page), (n) => n === 60, 10_000, 'the showcase metrics panel to hold the run\'s 60 points');
    expect(showcase[0].frames.deltas).toBeGreaterThan(30);
    await Promise.all(showcase.map((p) => p.page.close()));
  }, 90_000);
});
