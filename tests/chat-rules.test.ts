/**
 * The chat actor as a plain (non-moderator) Twitch user against a local IRC peer that enforces
 * Twitch's rules as Twitch does: a line under 1 s after the previous one is dropped
 * (msg_ratelimit), a line identical to one sent in the last 30 s is dropped (msg_duplicate).
 * No line may be lost: none refused, or a refused one sent again.
 * Needs `npx tsc -p .` first (actors load from dist/).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createProducer, type NetworkProducer } from '../src/sdk/index.js';
import { STANDARD_SFEN } from '../src/shared/shogi/tsshogi.js';
import { INGEST_TOKEN, OverlayClient, startHarness, type Harness } from './helpers/service-harness.js';
import { TwitchIrcServer, type ScriptedUser } from './helpers/twitch-irc-server.js';

let irc: TwitchIrcServer;
let h: Harness;

beforeAll(async () => {
  irc = await TwitchIrcServer.start(); // the bot is a plain user
  h = await startHarness([
    '--twitch-channel', 'TestChan', '--twitch-server', `127.0.0.1:${irc.port}`,
    '--twitch-token', 'rules-secret-token', '--twitch-user-cooldown-ms', '0', '--prediction-seconds', '5',
  ]);
  await irc.waitFor(() => irc.joins.length > 0, 10_000, 'the bot to join');
}, 60_000);
afterAll(async () => {
  await h?.close();
  await irc?.close();
}, 30_000);
beforeEach(async () => {
  // Each test starts after the previous one's lines are out and the 1 s rule has passed.
  await new Promise((r) => setTimeout(r, 1_200));
  irc.privmsgs.length = 0;
  irc.refused.length = 0;
});

const user = (i: number): ScriptedUser => ({ login: `viewer${i}`, displayName: `Viewer${i}` });

describe('chat as a plain Twitch user', () => {
  it('a flood: every user answered in merged lines, ≥ 1 s apart at the server, nothing refused', async () => {
    for (let i = 0; i < 12; i++) irc.say(user(i), '!level advanced');
    await irc.waitFor(() => Array.from({ length: 12 }, (_, i) => i).every((i) => irc.privmsgs.some((p) => p.text.includes(`@Viewer${i}:`))), 20_000, 'every viewer answered');
    expect(irc.refused).toEqual([]);
    expect(irc.privmsgs.length).toBeLessThan(12); // merged
    for (let i = 1; i < irc.privmsgs.length; i++) expect(irc.privmsgs[i].at - irc.privmsgs[i - 1].at).toBeGreaterThanOrEqual(1_000);
  }, 30_000);

  it('the same reply twice within 30 s reaches chat both times (varied, not refused as a duplicate)', async () => {
    const alice: ScriptedUser = { login: 'alice', displayName: 'Alice' };
    irc.say(alice, '!level intermediate');
    await irc.waitFor(() => irc.privmsgs.length >= 1, 5_000, 'the first reply');
    await new Promise((r) => setTimeout(r, 1_500));
    irc.say(alice, '!level intermediate');
    await irc.waitFor(() => irc.privmsgs.length >= 2 || irc.refused.length > 0 ? true : undefined, 5_000, 'the second reply');
    await new Promise((r) => setTimeout(r, 300));
    expect(irc.refused).toEqual([]);
    expect(irc.privmsgs).toHaveLength(2);
    expect(irc.privmsgs[0].text).toBe('@Alice: explanation level set to intermediate');
    expect(irc.privmsgs[1].text).not.toBe(irc.privmsgs[0].text);
    expect(irc.privmsgs[1].text.startsWith('@Alice: explanation level set to intermediate')).toBe(true);
  }, 20_000);

  it('a line the server drops is sent again', async () => {
    irc.refuseNext = 1;
    irc.say({ login: 'bob', displayName: 'Bob' }, '!level beginner');
    await irc.waitFor(() => irc.privmsgs.find((p) => p.text === '@Bob: explanation level set to beginner'), 10_000, 'the retried line');
    expect(irc.refused.map((r) => r.text)).toEqual(['@Bob: explanation level set to beginner']);
    const status = (await h.service.supervisor.call('chat', 'status')) as { queue: { retried: number } };
    expect(status.queue.retried).toBe(1);
    const metrics = await (await fetch(`http://127.0.0.1:${h.service.port}/metrics`)).text();
    expect(metrics).toMatch(/ringcast_chat_errors_total\{[^}]*reason="msg_ratelimit"[^}]*\} 1/);
  }, 20_000);
});

describe('prediction game with a fast trainer (a move every 100 ms)', () => {
  it('votes count for the whole announced window on the frozen position; the answer is the move played from it', async () => {
    const producer = createProducer(`tcp://127.0.0.1:${h.tcpPort}`, { token: INGEST_TOKEN, run: 'fast' }) as NetworkProducer;
    const overlay = await OverlayClient.connect(h.service.port, { channels: ['game'], level: 'beginner', max_fps: 30 });
    const line = ['7g7f', '3c3d', '2g2f', '8c8d', '2f2e', '8d8e', '6i7h', '4a3b', '2e2d', '2c2d'];
    let n = 0;
    producer.emitGameState({ gameId: 'fast1', sfen: STANDARD_SFEN, moves: [], moveCount: 0 });
    await overlay.waitFor((m) => m.type === 'game_state' && m.data?.game_id === 'fast1', 5_000, 'the first position');
    let trainer: NodeJS.Timeout | undefined;
    try {
      irc.say({ login: 'modguy', displayName: 'ModGuy', mod: true }, '!startpredict');
      const started = await overlay.waitFor((m) => m.type === 'prediction_game' && m.data?.state === 'collecting', 5_000, 'a collecting game');
      // From here the trainer plays a move every 100 ms; after its line it starts the next game,
      // and the answer must survive that too.
      trainer = setInterval(() => {
        n = Math.min(n + 1, line.length);
        if (n === line.length) producer.emitGameState({ gameId: 'fast2', sfen: STANDARD_SFEN, moves: [], moveCount: 0 });
        else producer.emitGameState({ gameId: 'fast1', moves: line.slice(0, n), lastMove: line[n - 1], moveCount: n });
      }, 100);
      await irc.waitForPrivmsg(/^Prediction game! .* 5 s to vote\.$/);
      const frozen = started.data!.position as { move_count: number; game_id: string };
      expect(frozen).toMatchObject({ game_id: 'fast1', move_count: 0 });
      const votes: [string, string, number][] = [['v1', '!predict 7g7f', 300], ['v2', '!predict 2g2f', 2_500], ['v3', '!predict P-7f', 4_600]];
      const t0 = started.data!.started_at as number;
      for (const [login, text, at] of votes) {
        await new Promise((r) => setTimeout(r, Math.max(0, t0 + at - Date.now())));
        irc.say({ login, displayName: login.toUpperCase() }, text);
      }
      const done = await overlay.waitFor((m) => m.type === 'prediction_game' && m.data?.state === 'finished', 8_000, 'the result');
      const during = overlay.messages.filter((m) => m.type === 'prediction_game' && m.data?.id === started.data!.id && m.data?.state === 'collecting');
      for (const d of during) expect(d.data).toMatchObject({ position: { move_count: frozen.move_count, game_id: 'fast1' } });
      expect(done.data).toMatchObject({ total_votes: 3, votes: { '7g7f': 2, '2g2f': 1 }, position: { move_count: 0, game_id: 'fast1' } });
      expect((done.data!.closed_at as number) - t0).toBeGreaterThanOrEqual(5_000);
      expect(done.data!.result).toMatchObject({ played_move: '7g7f', winners_total: 2 });
      await irc.waitForPrivmsg(/^Voting closed: \d+ votes?/);
    } finally {
      if (trainer) clearInterval(trainer);
      overlay.close();
      await producer.close(1_000);
    }
  }, 30_000);
});
