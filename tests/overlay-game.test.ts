/**
 * The `game` (viewer prediction game) and `milestones` overlay pages in real chromium
 * against a running ringcast. prediction_game messages are published the way the chat actor's
 * are (through the main thread's control rings); milestones come from the admin API and from
 * published messages with fixed ids (to replay duplicates).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import type { PredictionGameData } from '../src/actors/chat/prediction-game.js';
import { ADMIN_TOKEN, startHarness, type Harness } from './helpers/service-harness.js';
import { launchBrowser, openPage, screenshot } from './helpers/browser.js';
import { canvasPixels, hasColour, overlayState, until } from './helpers/overlay-pages.js';

// The palette comes from overlay/lib/theme.css (dark theme).
const ACCENT = '#4aa3ff';
const GREEN = '#2e9d5b';
const AMBER = '#d99a1e';

describe('game and milestones overlay pages (chromium)', () => {
  let h: Harness;
  let browser: Browser;
  let base: string;

  const open = async (pageName: string, query = '') => {
    const page = await openPage(browser, `${base}/overlay/${pageName}${query}`);
    await until(() => page.evaluate(() => document.getElementById('status')!.dataset.state), (s) => s === 'open', 10_000, `${pageName} to connect`);
    return page;
  };
  const relay = (type: string, channel: string, data: unknown, key = type) => {
    expect(h.service.overlays.publish({ type, channel, key, retain: true, critical: true, data })).toBe(true);
  };

  beforeAll(async () => {
    h = await startHarness(['--fanout-threads', '1']);
    base = `http://127.0.0.1:${h.service.port}`;
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  describe('game page', () => {
    let page: Page;
    const started = Date.now();
    // The chat actor's message shape (src/actors/chat/prediction-game.ts), type-checked here.
    const game = (extra: Partial<PredictionGameData>): PredictionGameData => ({
      id: 'g1', state: 'collecting', started_at: started, ends_at: started + 30_000, closed_at: null, started_by: 'control',
      position: { sfen: 'lnsgkgsnl/1r5b1/ppppppppp/9/9/9/PPPPPPPPP/1B5R1/LNSGKGSNL b - 1', last_move: null, game_id: 'demo-1', run: 'default', move_count: 0 },
      votes: {}, vote_labels: {}, total_votes: 0, ai: null, ...extra,
    });

    it('shows "no prediction game yet" before any game', async () => {
      page = await open('game');
      const s = await until(() => overlayState(page), (st) => st.drawn.frames > 0, 5_000, 'a first frame');
      expect(s.game).toBeNull();
      expect(s.bars).toEqual([]);
    });

    it('draws a countdown and vote bars proportional to the votes, labelled as viewers typed', async () => {
      relay('prediction_game', 'game', game({
        votes: { '7g7f': 6, '2g2f': 3, '5i5h': 1 }, vote_labels: { '7g7f': 'P-7f', '2g2f': 'P-2f', '5i5h': 'K-5h' }, total_votes: 10,
      }));
      const s = await until(() => overlayState(page), (st) => st.drawn.id === 'g1' && st.bars.length === 3 && st.drawn.messages === st.messages, 5_000, 'three vote bars');
      expect(s.bars.map((b: any) => [b.label, b.count])).toEqual([['P-7f', 6], ['P-2f', 3], ['K-5h', 1]]);
      expect(s.bars.map((b: any) => b.w)).toEqual([0.6, 0.3, 0.1].map((f) => Math.round(s.barMaxWidth * f)));
      expect(s.drawn.remaining).toBeGreaterThan(20_000);
      expect(s.drawn.remaining).toBeLessThanOrEqual(30_000);
      // Real pixels: each bar is filled up to its width and empty past it.
      for (const b of s.bars) {
        expect(hasColour(await canvasPixels(page, '#view', b.x + b.w - 6, b.y + b.h / 2, 2), ACCENT, 30)).toBe(true);
        expect(hasColour(await canvasPixels(page, '#view', b.x + b.w + 8, b.y + b.h / 2, 2), ACCENT, 30)).toBe(false);
      }
      await screenshot(page, 'overlay-game-collecting');
      // The countdown moves on by itself (repaints while collecting, with no new message).
      const later = await until(() => overlayState(page), (st) => st.drawn.remaining < s.drawn.remaining - 500, 3_000, 'the countdown to tick');
      expect(later.messages).toBe(s.messages);
    });

    it('numbers the position by the game\'s move_count, not the SFEN ply field', async () => {
      // A move-96 position whose SFEN carries a reset ply ("… w - 1"), as the demo sends it.
      relay('prediction_game', 'game', game({
        position: { sfen: 'lnsgkgsnl/1r5b1/ppppppppp/9/9/9/PPPPPPPPP/1B5R1/LNSGKGSNL w - 1', last_move: '7g7f', game_id: 'demo-1', run: 'default', move_count: 95 },
        votes: { '7g7f': 6, '2g2f': 3, '5i5h': 1 }, vote_labels: { '7g7f': 'P-7f', '2g2f': 'P-2f', '5i5h': 'K-5h' }, total_votes: 10,
      }));
      const s = await until(() => overlayState(page), (st) => st.game?.position?.move_count === 95 && st.drawn.messages === st.messages, 5_000, 'the move-96 position');
      expect(s.positionLine).toBe('move 96 · Gote (white) to play');
      await screenshot(page, 'overlay-game-move-96');
    });

    it('updates bars live, ignores malformed messages and replays of older games', async () => {
      relay('prediction_game', 'game', game({ votes: { '7g7f': 6, '2g2f': 14 }, vote_labels: { '7g7f': 'P-7f', '2g2f': 'P-2f' }, total_votes: 20 }));
      const s = await until(() => overlayState(page), (st) => st.bars[0]?.count === 14 && st.drawn.messages === st.messages, 5_000, 'updated votes');
      expect(s.bars.map((b: any) => b.label)).toEqual(['P-2f', 'P-7f']);
      expect(s.bars[0].w).toBe(Math.round(s.barMaxWidth * 0.7));
      relay('prediction_game', 'game', { id: 'g1', state: 'bogus' });
      relay('prediction_game', 'game', game({ id: 'g0', started_at: started - 60_000, ends_at: started - 30_000, state: 'cancelled' }));
      const after = await until(() => overlayState(page), (st) => st.rejected === 1, 5_000, 'the malformed message to be rejected');
      await new Promise((r) => setTimeout(r, 200));
      const same = await overlayState(page);
      expect(after.game.id).toBe('g1');
      expect(same.game.id).toBe('g1');
      expect(same.game.state).toBe('collecting');
    });

    it('shows the result: AI move, confidence, community accuracy, justified, winners; the played move in green', async () => {
      const votes = { '7g7f': 6, '2g2f': 14 };
      const labels = { '7g7f': 'P-7f', '2g2f': 'P-2f' };
      relay('prediction_game', 'game', game({ state: 'waiting', closed_at: Date.now(), votes, vote_labels: labels, total_votes: 20, ai: { move: '7g7f', prob: 0.62, label: 'P-7f' } }));
      await until(() => overlayState(page), (st) => st.drawn.state === 'waiting', 5_000, 'waiting');
      relay('prediction_game', 'game', game({
        state: 'finished', closed_at: Date.now(), votes, vote_labels: labels, total_votes: 20, ai: { move: '7g7f', prob: 0.62, label: 'P-7f' },
        result: {
          played_move: '7g7f', played_label: 'P-7f', ai_move: '7g7f', ai_confidence: 0.62, ai_correct: true, ai_justified: true,
          community_move: '2g2f', community_label: 'P-2f', community_accuracy: 0.3,
          winners: ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'], winners_total: 6, closed_early: false,
        },
      }));
      const s = await until(() => overlayState(page), (st) => st.drawn.state === 'finished', 5_000, 'the result view');
      expect(s.resultRows).toEqual([
        ['AI played', 'P-7f'],
        ['AI predicted', 'P-7f with 62% confidence (right)'],
        ['Chat picked', 'P-2f · 30% of voters were right'],
        ['AI confidence justified', 'yes'],
        ['Winners', '6: alice, bob, carol, dave, erin, …'],
      ]);
      const played = s.bars.find((b: any) => b.usi === '7g7f');
      expect(hasColour(await canvasPixels(page, '#view', played.x + played.w / 2, played.y + played.h / 2, 2), GREEN, 30)).toBe(true);
      const other = s.bars.find((b: any) => b.usi === '2g2f');
      expect(hasColour(await canvasPixels(page, '#view', other.x + other.w / 2, other.y + other.h / 2, 2), ACCENT, 30)).toBe(true);
      await screenshot(page, 'overlay-game-resolved');
    });

    it('a page opened later gets the retained game from the snapshot', async () => {
      const late = await open('game');
      const s = await until(() => overlayState(late), (st) => st.drawn.state === 'finished', 5_000, 'the retained game');
      expect(s.game.id).toBe('g1');
      await late.close();
    });

    it('also reads the simpler shape (state "resolved", SFEN string, winners as a count) and shows a cancelled game', async () => {
      relay('prediction_game', 'game', {
        id: 'g2', state: 'resolved', started_at: started + 1, ends_at: started + 30_001, position: 'lnsgkgsnl/1r5b1/ppppppppp/9/9/9/PPPPPPPPP/1B5R1/LNSGKGSNL w - 2',
        votes: { '3c3d': 2 }, total_votes: 2, ai: null,
        result: { played_move: '8c8d', ai_move: null, ai_confidence: null, community_move: '3c3d', community_accuracy: 0, ai_justified: false, winners: 0 },
      });
      const s = await until(() => overlayState(page), (st) => st.drawn.id === 'g2', 5_000, 'game g2');
      expect(s.resultRows).toEqual([
        ['AI played', '8c8d'],
        ['AI predicted', 'no prediction received'],
        ['Chat picked', '3c3d · 0% of voters were right'],
        ['AI confidence justified', 'no'],
        ['Winners', '0'],
      ]);
      relay('prediction_game', 'game', game({ id: 'g3', started_at: started + 2, state: 'cancelled', reason: 'the game ended' }));
      const c = await until(() => overlayState(page), (st) => st.drawn.id === 'g3', 5_000, 'cancelled game g3');
      expect(c.drawn.state).toBe('cancelled');
      expect(c.resultRows).toBeNull();
      expect(c.bars).toEqual([]);
      await screenshot(page, 'overlay-game-cancelled');
    });
  });

  describe('milestones page', () => {
    it('celebrates one milestone at a time from a queue, each for ?duration seconds', async () => {
      const page = await open('milestones', '?duration=2');
      for (const name of ['first_win', 'kl_settled', 'hundred_games']) {
        const res = await fetch(`${base}/api/admin/milestone`, {
          method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ name, message: `${name} reached` }),
        });
        expect(res.status).toBe(202);
      }
      const first = await until(() => overlayState(page), (st) => st.current !== null && st.queued.length === 2, 5_000, 'one shown, two queued');
      expect(first.current.name).toBe('first_win');
      // Real pixels: once faded in, the celebration card is on the canvas (its amber side bar).
      // State and pixels are read in one evaluate, so no redraw comes between them.
      const drawnCard = await until(() => page.evaluate(() => {
        const st = (window as any).__overlay.state();
        const canvas = document.getElementById('view') as HTMLCanvasElement;
        const dpr = canvas.width / canvas.clientWidth;
        const d = canvas.getContext('2d')!.getImageData(Math.round(((1920 - 1300) / 2 + 3) * dpr), Math.round(268 * dpr), 4, 4).data;
        return { drawn: st.drawn, pixel: [d[0], d[1], d[2], d[3]] as [number, number, number, number] };
      }), (p) => p.drawn.id === first.current.id && p.drawn.alpha === 1, 3_000, 'the card fully drawn');
      expect(hasColour([drawnCard.pixel], AMBER, 30)).toBe(true);
      await screenshot(page, 'overlay-milestones');
      const seenCurrent = new Set<string>();
      const done = await until(async () => {
        const st = await overlayState(page);
        if (st.current) seenCurrent.add(st.current.name);
        return st;
      }, (st) => st.history.length === 3 && st.current === null && st.drawn.id === null, 10_000, 'all three shown and the card cleared');
      expect(done.counts.shown).toBe(3);
      expect([...seenCurrent]).toEqual(['first_win', 'kl_settled', 'hundred_games']);
      // Idle when nothing is shown: a cleared canvas.
      const blank = await canvasPixels(page, '#view', 960, 270, 3);
      expect(blank.every((p) => p[3] === 0)).toBe(true);
      await page.close();
    });

    it('de-duplicates by id, bounds the queue, and skips stale replays', async () => {
      // max_age=1: the snapshot's replay of the earlier test's milestone (> 1 s old) is stale; live ones are not.
      const page = await open('milestones', '?duration=30&queue=2&max_age=1');
      await until(() => overlayState(page), (st) => st.counts.stale === 1, 5_000, 'the stale snapshot replay');
      const m = (id: string) => ({ id, run: 'default', name: `m_${id}`, message: `milestone ${id}`, source: 'trainer', step: 1, value: null });
      relay('milestone', 'milestones', m('a'), 'milestone:x');
      relay('milestone', 'milestones', m('a'), 'milestone:x');
      for (const id of ['b', 'c', 'd', 'e']) relay('milestone', 'milestones', m(id), 'milestone:x');
      const s = await until(() => overlayState(page), (st) => st.counts.received >= 7, 5_000, 'six live milestone messages');
      expect(s.counts.duplicates).toBe(1);
      expect(s.current.id).toBe('a');
      expect(s.queued).toEqual(['d', 'e']); // bounded at 2: the oldest waiting (b, c) went
      expect(s.counts.dropped).toBe(2);
      await page.close();
      // The snapshot replays the last retained milestone; with max_age=1 a page opened later does not celebrate it.
      await new Promise((r) => setTimeout(r, 1_200));
      const late = await open('milestones', '?max_age=1');
      const l = await until(() => overlayState(late), (st) => st.counts.received >= 2, 5_000, 'the replayed milestones (admin run and relay key)');
      expect(l.counts.stale).toBe(l.counts.received);
      expect(l.current).toBeNull();
      await late.close();
    });

    it('the streamer\'s pause holds the queue; resume celebrates what waited, in order', async () => {
      const post = (body: Record<string, unknown>) => fetch(`${base}/api/control`, {
        method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
      });
      const page = await open('milestones', '?duration=1&max_age=1');
      expect((await post({ action: 'pause' })).status).toBe(200);
      await until(() => overlayState(page), (st) => st.paused === true, 5_000, 'paused');
      const m = (id: string) => ({ id, run: 'default', name: `p_${id}`, message: `paused ${id}`, source: 'trainer', step: 2, value: null });
      relay('milestone', 'milestones', m('p1'), 'milestone:p');
      relay('milestone', 'milestones', m('p2'), 'milestone:p');
      await until(() => overlayState(page), (st) => st.queued.length === 2, 5_000, 'two queued while paused');
      await new Promise((r) => setTimeout(r, 1_200));
      const held = await overlayState(page);
      expect(held.current).toBeNull();
      expect(held.counts.shown).toBe(0);
      expect((await post({ action: 'resume' })).status).toBe(200);
      const done = await until(() => overlayState(page), (st) => st.history.length === 2, 5_000, 'both shown after resume');
      expect(done.history).toEqual(['p1', 'p2']);
      await page.close();
    });
  });
});
