/**
 * The streamer control page in real chromium against a running ringcast: the token handling,
 * the exact requests each button sends to `POST /api/control`, how responses and errors are
 * shown, and the effects the overlays see (pause, level, a test-fired milestone).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page, Request } from 'playwright-core';
import { ADMIN_TOKEN, startHarness, type Harness } from './helpers/service-harness.js';
import { launchBrowser, openPage, screenshot, withTestFlag } from './helpers/browser.js';
import { overlayState, until } from './helpers/overlay-pages.js';

interface Sent { method: string; authorization?: string; body: unknown }

describe('control page (chromium)', () => {
  let h: Harness;
  let browser: Browser;
  let base: string;
  let control: Page;
  let metrics: Page;
  const sent: Sent[] = [];

  const lastResponse = async () => (await overlayState(control)).lastResponse;
  /** Clicks and waits for the page to show the response to this click. */
  const click = async (selector: string) => {
    const before = (await overlayState(control)).log.length;
    await control.click(selector);
    return until(() => overlayState(control), (s) => s.log.length > before, 5_000, `a response to ${selector}`).then((s) => s.lastResponse);
  };
  const posts = () => sent.filter((s) => s.method === 'POST');

  beforeAll(async () => {
    h = await startHarness(['--fanout-threads', '1']);
    base = `http://127.0.0.1:${h.service.port}`;
    browser = await launchBrowser();
    metrics = await openPage(browser, `${base}/overlay/metrics`);
    control = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
    control.on('pageerror', (error) => { throw error; });
    control.on('request', (req: Request) => {
      if (new URL(req.url()).pathname !== '/api/control') return;
      const data = req.postData();
      sent.push({ method: req.method(), authorization: req.headers().authorization, body: data ? JSON.parse(data) : undefined });
    });
    await control.goto(withTestFlag(`${base}/overlay/control?token=${ADMIN_TOKEN}`));
    await until(() => overlayState(metrics), (s) => s.drawn.frames > 0, 10_000, 'the metrics page');
  });

  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  it('takes the token from ?token=, keeps it in sessionStorage and out of the address bar, and loads the state', async () => {
    const s = await until(() => overlayState(control), (st) => st.serverState !== null, 5_000, 'GET /api/control');
    expect(s.hasToken).toBe(true);
    expect(control.url()).not.toContain('token');
    expect(await control.evaluate(() => sessionStorage.getItem('ringcast.adminToken'))).toBe(ADMIN_TOKEN);
    expect(s.serverState).toMatchObject({ level: null, paused: false, chat: null, obs: null });
    expect(sent[0]).toEqual({ method: 'GET', authorization: `Bearer ${ADMIN_TOKEN}`, body: undefined });
    expect(await control.textContent('#st-paused')).toBe('live');
    expect(await control.textContent('#st-chat')).toBe('not configured');
  });

  it('pause and resume: exact requests, shown responses, and the metrics overlay freezes and thaws', async () => {
    let r = await click('button[data-action="pause"]');
    expect(posts().at(-1)).toEqual({ method: 'POST', authorization: `Bearer ${ADMIN_TOKEN}`, body: { action: 'pause' } });
    expect(r).toMatchObject({ status: 200, ok: true });
    expect(await control.getAttribute('#response', 'data-ok')).toBe('true');
    await until(() => overlayState(metrics), (s) => s.paused === true, 5_000, 'the metrics page to pause');
    await until(() => control.textContent('#st-paused'), (t) => t === 'paused', 5_000, 'the state to show paused');
    await screenshot(metrics, 'overlay-control-metrics-paused');
    await screenshot(control, 'overlay-control-page');
    r = await click('button[data-action="resume"]');
    expect(posts().at(-1)!.body).toEqual({ action: 'resume' });
    expect(r.ok).toBe(true);
    await until(() => overlayState(metrics), (s) => s.paused === false, 5_000, 'the metrics page to resume');
  });

  it('level buttons set the level of every overlay that did not pin one', async () => {
    const r = await click('button[data-level="advanced"]');
    expect(posts().at(-1)!.body).toEqual({ action: 'level', level: 'advanced' });
    expect(r.body.control.level).toBe('advanced');
    await until(() => overlayState(metrics), (s) => s.level === 'advanced', 5_000, 'the metrics page at advanced');
    expect(await control.textContent('#st-level')).toBe('advanced');
  });

  it('scene and prediction buttons report clearly when OBS or chat is not configured (503)', async () => {
    let r = await click('button[data-preset="board_focus"]');
    expect(posts().at(-1)!.body).toEqual({ action: 'scene', preset: 'board_focus' });
    expect(r.status).toBe(503);
    expect(r.message).toMatch(/OBS is not configured/);
    expect(await control.getAttribute('#response', 'data-ok')).toBe('false');
    expect(await control.textContent('#response')).toMatch(/scene board_focus: failed \(503\): OBS is not configured/);
    r = await click('button[data-action="prediction_start"]');
    expect(posts().at(-1)!.body).toEqual({ action: 'prediction_start' });
    expect(r.status).toBe(503);
    expect(r.message).toMatch(/Twitch chat is not configured/);
    r = await click('button[data-action="prediction_stop"]');
    expect(posts().at(-1)!.body).toEqual({ action: 'prediction_stop' });
    expect(r.status).toBe(503);
    await screenshot(control, 'overlay-control-error');
  });

  it('test-fires a milestone that the milestones overlay celebrates', async () => {
    const celebrations = await openPage(browser, `${base}/overlay/milestones?duration=5`);
    await until(() => celebrations.evaluate(() => document.getElementById('status')!.dataset.state), (s) => s === 'open', 5_000, 'milestones page');
    await control.fill('#ms-name', 'stream_test');
    await control.fill('#ms-message', 'Hello chat');
    const r = await click('#ms-fire');
    expect(posts().at(-1)!.body).toEqual({ action: 'milestone', name: 'stream_test', message: 'Hello chat' });
    expect(r.status).toBe(202);
    const s = await until(() => overlayState(celebrations), (st) => st.current?.name === 'stream_test', 5_000, 'the celebration');
    expect(s.current.message).toBe('Hello chat');
    await celebrations.close();
  });

  it('a wrong token gets a clear 401, no token is refused before any request', async () => {
    await control.click('#token-clear');
    const before = sent.length;
    let r = await click('button[data-action="pause"]');
    expect(sent.length).toBe(before); // nothing sent without a token
    expect(r.message).toMatch(/admin token/);
    await control.fill('#token', 'not-the-token');
    await control.click('#token-save');
    // Saving a token checks it at once (GET /api/control): a wrong one is reported straight away.
    const checked = await until(() => overlayState(control), (st) => /^\S+ refresh → 401/.test(st.log[0] ?? ''), 5_000, 'the token check');
    expect(checked.lastResponse.message).toMatch(/wrong or missing admin token/);
    r = await click('button[data-action="pause"]');
    expect(posts().at(-1)).toEqual({ method: 'POST', authorization: 'Bearer not-the-token', body: { action: 'pause' } });
    expect(r.status).toBe(401);
    expect(r.message).toMatch(/wrong or missing admin token/);
    expect(await control.textContent('#response')).toMatch(/pause: failed \(401\)/);
    // Nothing changed on the server: the overlays are still live.
    expect((await overlayState(metrics)).paused).toBe(false);
  });

  it('puts a scene preset on air (PUT /api/scene/preset) and shows which one is on air', async () => {
    await control.evaluate((t) => sessionStorage.setItem('ringcast.adminToken', t), ADMIN_TOKEN); // an earlier test left a wrong one
    await until(() => overlayState(control), (s) => s.presets !== null, 5_000, 'GET /api/scene/presets');
    expect(await control.$$eval('#preset option', (o) => o.map((x) => (x as HTMLOptionElement).value))).toEqual(['training', 'multistream', 'intermission']);
    await control.selectOption('#preset', 'intermission');
    const before = (await overlayState(control)).log.length;
    await control.click('#preset-apply');
    const s = await until(() => overlayState(control), (st) => st.log.length > before, 5_000, 'the preset response');
    expect(s.lastResponse).toMatchObject({ action: 'scene preset intermission', status: 200, ok: true });
    expect(await control.textContent('#response')).toBe('scene preset intermission: done');
    const scene = await (await fetch(`${base}/api/scene`)).json() as { layers: Array<{ id: string }> };
    expect(scene.layers.map((l) => l.id)).toContain('headline');
    await until(() => control.textContent('#preset-current'), (t) => t === 'on air: intermission', 5_000, 'the preset on air');
  });

  it('fits a 1920×1080 screen and shows a running chat game and OBS as sentences, not JSON', async () => {
    // The chat and OBS actors need Twitch and OBS peers; their status is served here in the
    // shape GET /api/control returns it (the rest of the page talks to the real service).
    const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
    page.on('pageerror', (error) => { throw error; });
    const sfen = 'lnsgkgsnl/1r5b1/ppppppppp/9/9/9/PPPPPPPPP/1B5R1/LNSGKGSNL w - 1';
    const game = {
      id: 'g7', state: 'collecting', started_at: Date.now(), ends_at: Date.now() + 25_000, closed_at: null, started_by: 'control',
      position: { sfen, last_move: '7g7f', game_id: 'demo-1', run: 'default', move_count: 95 },
      votes: { '3c3d': 5, '8c8d': 2 }, vote_labels: { '3c3d': 'P-3d' }, total_votes: 7, ai: { move: '3c3d', prob: 0.6 },
    };
    await page.route('**/api/control', async (route) => {
      if (route.request().method() !== 'GET') return route.continue();
      const real = await (await route.fetch()).json();
      await route.fulfill({ json: {
        ...real,
        chat: { connected: true, state: 'connected', channel: 'ringcast', username: 'ringbot', readOnly: false, game, last: { ...game, id: 'g6', state: 'finished' },
          games: { started: 7, finished: 6, cancelled: 0 }, queue: { length: 0, queued: 0, sent: 40, merged: 2, limiterWaits: 3, dropped: { queue_full: 0, cooldown: 0, stale: 0, read_only: 0, send_failed: 0 } } },
        obs: { connected: true, breaker: 'closed', url: 'ws://127.0.0.1:4455', currentScene: 'Board', requestedScene: 'Board', lastError: null, queued: 0, reconnectInMs: null,
          celebrations: { active: null, pending: 0, shown: 2, dropped: 0 }, performanceText: null },
      } });
    });
    await page.goto(withTestFlag(`${base}/overlay/control?token=${ADMIN_TOKEN}`));
    await until(() => page.textContent('#st-chat'), (t) => /voting open/.test(t ?? ''), 5_000, 'the chat game on the page');
    await page.click('button[data-action="pause"]');
    await until(() => page.textContent('#response'), (t) => /^pause: done/.test(t ?? ''), 5_000, 'the pause response');
    const chatText = (await page.textContent('#st-chat'))!;
    expect(chatText).toMatch(/connected to #ringcast as ringbot/);
    expect(chatText).toMatch(/7 votes \(P-3d 5 · 8c8d 2\) · move 96/);
    expect(chatText).not.toMatch(/[{}"]/);
    expect(chatText).not.toMatch(/g6|last game/); // the game is shown once
    expect(await page.textContent('#st-obs')).toMatch(/connected · showing "Board"/);
    expect(await page.textContent('#response')).not.toMatch(/[{}]/);
    // Everything, including the responses, within one 1080-high screen: no scrolling.
    await screenshot(page, 'overlay-control-1080');
    const height = await page.evaluate(() => document.documentElement.scrollHeight);
    expect(height).toBeLessThanOrEqual(1080);
    await page.click('button[data-action="resume"]');
    await until(() => page.textContent('#response'), (t) => /^resume: done/.test(t ?? ''), 5_000, 'the resume response');
    // The page polls the state every 5 s: a poll in flight when it closes is no failure.
    await page.unrouteAll({ behavior: 'ignoreErrors' });
    await page.close();
  });
});
