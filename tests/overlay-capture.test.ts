/**
 * The capture wall overlay page (overlay/capture.html) in headless chromium against a real
 * ringcast capturing from the loopback Twitch fake (bench/lib/live-hls.ts): cards follow the
 * registry by priority, show each stream's state (live with the templates found, offline,
 * error with its stage), a thumbnail whose pixels are the captured picture, and react to a
 * channel going offline and to a stream being removed.
 */
import { createCanvas } from '@napi-rs/canvas';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeSegments, startLiveHls, type LiveHlsServer, type Overlay } from '../bench/lib/live-hls.js';
import { launchBrowser, openPage, screenshot } from './helpers/browser.js';
import { until } from './helpers/overlay-pages.js';
import { ADMIN_TOKEN, startHarness, type Harness } from './helpers/service-harness.js';

const CACHE = path.join(tmpdir(), 'ringcast-live-hls-cache');
const ENC_W = 640;
const ENC_H = 360;
/** Two cells of 128×72 px at (64, 36) in the 640×360 picture. */
const REGION = { name: 'heroes', x: 0.1, y: 0.1, w: 0.4, h: 0.2, cols: 2, rows: 1, group: 'heroes', threshold: 0.8 };
const CELL = { w: 128, h: 72, y: 36, x: [64, 192] };
const SKY = [0x70, 0xb0, 0xf0];
const MOSS = [0x2f, 0x7f, 0x20];

interface Card {
  name: string; state: string; label: string; matches: string; detail: string; age: string; stale: boolean; frame: number | null;
  thumb: { frame: number | null; width: number; height: number; shown: boolean };
  rect: { x: number; y: number; w: number; h: number };
}
interface PageState {
  layout: { cols: number; thumbW: number }; cards: Card[]; counts: Record<string, number>; listError: string | null;
  paging: { page: number; pages: number; total: number }; summary: string; nodata: string | null;
}

/** 'kite': sky blue with a black bar on top; 'moss': green/white checkerboard. Distinct in every way the matcher looks. */
function template(name: 'kite' | 'moss'): Buffer {
  const c = createCanvas(CELL.w, CELL.h);
  const g = c.getContext('2d');
  if (name === 'kite') {
    g.fillStyle = '#70b0f0'; g.fillRect(0, 0, CELL.w, CELL.h);
    g.fillStyle = '#000000'; g.fillRect(0, 0, CELL.w, CELL.h * 0.2);
  } else {
    for (let y = 0; y < 2; y++) for (let x = 0; x < 3; x++) {
      g.fillStyle = (x + y) % 2 === 0 ? '#2f7f20' : '#e8f8e0';
      g.fillRect((x * CELL.w) / 3, (y * CELL.h) / 2, CELL.w / 3 + 1, CELL.h / 2 + 1);
    }
  }
  return c.toBuffer('image/png');
}

let work: string;
let hls: LiveHlsServer;
let h: Harness;
let browser: Browser;
let page: Page;

const api = (method: string, p: string, body?: unknown) => fetch(`http://127.0.0.1:${h.service.port}${p}`, {
  method, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}),
});
const state = () => page.evaluate(() => (window as unknown as { __overlay: { state(): unknown } }).__overlay.state()) as Promise<PageState>;
const card = (s: PageState, name: string) => s.cards.find((c) => c.name === name);

describe('overlay page: capture wall', () => {
  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'ringcast-overlay-capture-'));
    const templates = path.join(work, 'templates');
    mkdirSync(path.join(templates, 'heroes'), { recursive: true });
    writeFileSync(path.join(templates, 'regions.json'), JSON.stringify({ regions: [REGION] }));
    const overlays: Overlay[] = (['kite', 'moss'] as const).map((name, i) => {
      const png = path.join(templates, 'heroes', `${name}.png`);
      writeFileSync(png, template(name));
      return { png, x: CELL.x[i], y: CELL.y, w: CELL.w, h: CELL.h };
    });
    mkdirSync(CACHE, { recursive: true });
    const segments = await encodeSegments({ dir: CACHE, width: ENC_W, height: ENC_H, fps: 30, segmentSeconds: 1, segments: 2, source: 'testsrc2', overlays }); // moving picture: 'live', not frozen
    hls = await startLiveHls({ segmentSeconds: 1 });
    for (const name of ['alpha', 'beta', 'broken']) hls.addChannel(name, { variants: { '480p': segments } });
    hls.setFault('broken', 'segment-404');
    [h, browser] = await Promise.all([
      startHarness([
        '--fanout-threads', '1', '--interval', '1', '--capture-width', '640', '--capture-height', '360', '--decoders', '1', '--offline-recheck-ms', '2000',
        '--templates-dir', templates, '--twitch-gql-url', hls.gqlUrl, '--twitch-usher-url', hls.usherUrl,
      ]),
      launchBrowser(),
    ]);
    // 'ghost' is not a channel of the fake: Twitch says offline (null token).
    const add = await api('POST', '/api/streams/bulk', { streams: [{ username: 'alpha', priority: 80 }, { username: 'ghost', priority: 50 }, { username: 'beta', priority: 20 }, { username: 'broken', priority: 10 }] });
    expect(add.status, await add.clone().text()).toBe(200);
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await h?.close();
    await hls?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  }, 30_000);

  it('one card per registered stream, by priority, each with its state; live cards name the templates found', async () => {
    page = await openPage(browser, `http://127.0.0.1:${h.service.port}/overlay/capture?cols=3&thumb_every=1&list_every=1`);
    const s = await until(state, (x) => {
      const a = card(x, 'alpha');
      return a?.state === 'ok' && a.matches !== '' && card(x, 'beta')?.state === 'ok' && card(x, 'ghost')?.state === 'offline' && card(x, 'broken')?.state === 'error';
    }, 30_000, 'alpha and beta live, ghost offline, broken failing');
    expect(s.cards.map((c) => c.name)).toEqual(['alpha', 'ghost', 'beta', 'broken']);
    expect(s.listError).toBeNull();
    expect(s.summary).toBe('4 streams · 2 with problems');
    const alpha = card(s, 'alpha')!;
    expect(alpha.label).toBe('live');
    expect(alpha.matches).toMatch(/^kite [01]\.\d\d · moss [01]\.\d\d$/);
    for (const score of alpha.matches.match(/[01]\.\d\d/g)!) expect(Number(score)).toBeGreaterThanOrEqual(REGION.threshold);
    expect(alpha.stale).toBe(false);
    expect(alpha.age).toMatch(/^(now|\d+ s ago)$/);
    expect(card(s, 'ghost')!.label).toBe('offline');
    expect(card(s, 'broken')!.detail).toMatch(/^segment\b.*returned HTTP 404/);
    // Three columns of equal cards, laid out left to right.
    const [a, g, b, k] = s.cards.map((c) => c.rect);
    expect(a.w).toBe(g.w);
    expect(g.x).toBeGreaterThan(a.x + a.w);
    expect(b.x).toBeGreaterThan(g.x + g.w);
    expect(k.y).toBeGreaterThan(a.y + a.h);
    expect(k.x).toBe(a.x);
  }, 60_000);

  it("a live card's thumbnail is the captured picture (the templates where they were drawn)", async () => {
    const s = await until(state, (x) => card(x, 'alpha')?.thumb.shown === true, 15_000, 'alpha thumbnail');
    const thumb = card(s, 'alpha')!.thumb;
    expect(thumb.width).toBe(s.layout.thumbW);
    expect(thumb.height).toBe(Math.round((s.layout.thumbW * ENC_H) / ENC_W));
    expect(thumb.frame).toBeGreaterThan(0);
    const k = thumb.width / ENC_W;
    const points = {
      kite: [(CELL.x[0] + CELL.w * 0.5) * k, (CELL.y + CELL.h * 0.6) * k],
      moss: [(CELL.x[1] + CELL.w / 6) * k, (CELL.y + CELL.h / 4) * k],
      kiteBar: [(CELL.x[0] + CELL.w * 0.5) * k, (CELL.y + CELL.h * 0.08) * k], // the black bar on top: right way up
    };
    const px = await page.evaluate((pts) => {
      const img = document.querySelector('.card[data-stream="alpha"] img') as HTMLImageElement;
      const c = document.createElement('canvas');
      c.width = img.naturalWidth; c.height = img.naturalHeight;
      const g = c.getContext('2d')!;
      g.drawImage(img, 0, 0);
      return Object.fromEntries(Object.entries(pts).map(([n, [x, y]]) => [n, Array.from(g.getImageData(Math.round(x), Math.round(y), 1, 1).data)]));
    }, points);
    const near = (got: number[], want: number[], tol: number) => want.every((v, i) => Math.abs(got[i] - v) <= tol);
    expect(near(px.kite, SKY, 40), `kite pixel ${px.kite}`).toBe(true);
    expect(near(px.moss, MOSS, 40), `moss pixel ${px.moss}`).toBe(true);
    expect(Math.max(...px.kiteBar.slice(0, 3)), `kite bar pixel ${px.kiteBar}`).toBeLessThan(50);
    await screenshot(page, 'overlay-capture');
  }, 30_000);

  it('a channel that goes offline turns its card offline; a removed stream loses its card', async () => {
    hls.setLive('beta', false);
    await until(state, (x) => card(x, 'beta')?.state === 'offline', 15_000, 'beta offline');
    const del = await api('DELETE', '/api/streams/alpha');
    expect(del.status).toBe(200);
    const s = await until(state, (x) => !card(x, 'alpha'), 8_000, 'alpha card removed');
    expect(s.cards.map((c) => c.name)).toEqual(['ghost', 'beta', 'broken']);
    expect(s.counts.malformed).toBe(0);
  }, 30_000);

  it('?streams= shows exactly those, in that order; a name with no results yet waits', async () => {
    const p2 = await openPage(browser, `http://127.0.0.1:${h.service.port}/overlay/capture?streams=broken,nobody,ghost&thumbs=0`);
    try {
      const s = await until(() => p2.evaluate(() => (window as unknown as { __overlay: { state(): PageState } }).__overlay.state()),
        (x) => card(x, 'broken')?.state === 'error' && card(x, 'ghost')?.state === 'offline', 15_000, 'pinned cards');
      expect(s.cards.map((c) => c.name)).toEqual(['broken', 'nobody', 'ghost']);
      expect(card(s, 'nobody')).toMatchObject({ state: 'waiting', label: 'waiting', stale: true });
      expect(s.counts.thumbLoads).toBe(0);
    } finally {
      await p2.close();
    }
  }, 30_000);

  it('?only=problems&max=1&rotate=1 pages through the streams that have a problem, one card at a time', async () => {
    // By now: ghost offline (never live), beta offline, broken failing; alpha was removed.
    const p3 = await openPage(browser, `http://127.0.0.1:${h.service.port}/overlay/capture?only=problems&max=1&rotate=1&thumbs=0&list_every=1`);
    try {
      const read = () => p3.evaluate(() => (window as unknown as { __overlay: { state(): PageState } }).__overlay.state());
      const seen = new Set<string>();
      const s = await until(read, (x) => {
        for (const c of x.cards) seen.add(c.name);
        return seen.size === 3;
      }, 10_000, 'each problem stream shown in turn');
      expect([...seen].sort()).toEqual(['beta', 'broken', 'ghost']);
      expect(s.cards).toHaveLength(1);
      expect(s.paging).toMatchObject({ pages: 3, total: 3 });
      expect(s.summary).toMatch(/^3 streams · 3 with problems · page [123]\/3$/);
    } finally {
      await p3.close();
    }
  }, 30_000);
});
