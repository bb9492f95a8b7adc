/**
 * The chat actor under the real service: tmi.js against a local Twitch IRC peer, a producer
 * sending game states and predictions over TCP, overlays on /ws, the state store.
 * Needs `npx tsc -p .` first (actors load from dist/).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProducer, type NetworkProducer } from '../src/sdk/index.js';
import { STANDARD_SFEN } from '../src/shared/shogi/tsshogi.js';
import { INGEST_TOKEN, OverlayClient, startHarness, type Harness, type WsMessage } from './helpers/service-harness.js';
import { TwitchIrcServer, type ScriptedUser } from './helpers/twitch-irc-server.js';

const TOKEN = 'e2e-secret-twitch-token';
const AFTER_76 = 'lnsgkgsnl/1r5b1/ppppppppp/9/9/2P6/PP1PPPPPP/1B5R1/LNSGKGSNL w - 2';
const MOD: ScriptedUser = { login: 'modguy', displayName: 'ModGuy', mod: true };
const ALICE: ScriptedUser = { login: 'alice', displayName: 'Alice' };
const BOB: ScriptedUser = { login: 'bob', displayName: 'Bob' };
const CAROL: ScriptedUser = { login: 'carol', displayName: '将棋 Fan' }; // non-ASCII, and a space (escaped as \s in the tag)
const DAVE: ScriptedUser = { login: 'dave', displayName: 'Dave' };

let irc: TwitchIrcServer;
let h: Harness;
let producer: NetworkProducer;
let overlay: OverlayClient;

const games = (state?: string) => overlay.messages.filter((m) => m.type === 'prediction_game' && (!state || m.data?.state === state));

beforeAll(async () => {
  irc = await TwitchIrcServer.start({ botIsMod: true }); // the bot runs with --twitch-moderator
  h = await startHarness([
    '--twitch-channel', 'TestChan', '--twitch-server', `127.0.0.1:${irc.port}`, '--prediction-seconds', '5',
    '--twitch-token', TOKEN, '--twitch-user-cooldown-ms', '0', '--twitch-moderator',
  ]);
  producer = createProducer(`tcp://127.0.0.1:${h.tcpPort}`, { token: INGEST_TOKEN, run: 'chat-e2e' }) as NetworkProducer;
  overlay = await OverlayClient.connect(h.service.port, { channels: ['game', 'chat'], level: 'beginner', max_fps: 30 });
}, 60_000);
afterAll(async () => {
  overlay?.close();
  await producer?.close(1_000);
  await h?.close();
  await irc?.close();
}, 30_000);

describe('chat actor end to end', () => {
  it('logs in with the token, joins the channel and never logs the token', async () => {
    const login = await irc.waitFor(() => irc.logins[0], 10_000, 'a login');
    expect(login).toMatchObject({ nick: 'ringcast_bot', pass: `oauth:${TOKEN}` });
    await irc.waitFor(() => irc.joins.find((j) => j.channel === '#testchan'), 10_000, 'the join');
    expect(irc.received.map((r) => r.line)).toContain('CAP REQ :twitch.tv/tags twitch.tv/commands twitch.tv/membership');
    const status = await h.service.supervisor.call('chat', 'status') as { connected: boolean; channel: string; readOnly: boolean };
    expect(status).toMatchObject({ connected: true, channel: 'testchan', readOnly: false });
    expect(JSON.stringify(h.lines)).not.toContain(TOKEN);
  });

  it('runs a prediction game: votes in every notation, errors, the result on /ws and in chat, stored', async () => {
    // Before any position: a clear refusal.
    irc.say(MOD, '!startpredict');
    await irc.waitForPrivmsg(/@ModGuy: cannot start: no game position/);

    producer.emitGameState({ gameId: 'g1', sfen: STANDARD_SFEN, moves: [], moveCount: 0 });
    producer.emitPredictions([{ move: '2g2f', prob: 0.3 }, { move: '7g7f', prob: 0.62 }], STANDARD_SFEN, 0.1, 10);
    await overlay.waitFor((m) => m.type === 'game_state' && m.data?.game_id === 'g1', 5_000, 'the game state');
    await new Promise((r) => setTimeout(r, 300)); // the prediction goes out at the next aggregation window

    irc.say(ALICE, '!startpredict'); // not a moderator
    await irc.waitForPrivmsg(/@Alice: only moderators/);
    irc.say(MOD, '!startpredict');
    const started = await overlay.waitFor((m) => m.type === 'prediction_game' && m.data?.state === 'collecting', 5_000, 'a collecting game');
    expect(started.data).toMatchObject({ position: { game_id: 'g1', run: 'chat-e2e', move_count: 0 }, ai: { move: '7g7f', prob: 0.62, label: 'P-7f' }, started_by: 'ModGuy' });
    await irc.waitForPrivmsg(/^Prediction game! What will the AI play in game g1/);

    irc.say(ALICE, '!predict P-2f');
    irc.say(ALICE, '!predict 7g7f'); // last vote wins
    irc.say(BOB, '!predict P-2f');
    irc.say(CAROL, '!predict ７六歩');
    irc.say(DAVE, '!predict 5e5d'); // illegal
    irc.say(DAVE, '!predict'); // malformed
    irc.say(DAVE, '!predikt 7g7f'); // unknown command
    irc.say(DAVE, 'just chatting'); // not a command: no reply, not relayed
    const votes = await overlay.waitFor((m) => m.type === 'prediction_game' && m.data?.total_votes === 3, 5_000, 'three votes');
    expect(votes.data).toMatchObject({ votes: { '7g7f': 2, '2g2f': 1 }, vote_labels: { '7g7f': 'P-7f', '2g2f': 'P-2f' } });

    await irc.waitForPrivmsg(/@Dave: no legal move matches "5e5d" \(there is no piece on 5e\)/);
    await irc.waitForPrivmsg(/@Dave: usage: !predict <move>/);
    await irc.waitForPrivmsg(/@Dave: unknown command !predikt; try !help/);
    await irc.waitForPrivmsg(/@将棋 Fan: vote counted: P-7f \(7g7f\)/);
    await irc.waitForPrivmsg(/@Alice: vote changed to P-7f \(7g7f\)/);

    const chatLines = overlay.messages.filter((m) => m.type === 'chat_message');
    expect(chatLines.map((m) => m.data?.text)).not.toContain('just chatting');
    expect(chatLines.find((m) => m.data?.text === '!predikt 7g7f')?.data).toMatchObject({ user: 'dave', command: null });
    expect(chatLines.find((m) => m.data?.text === '!startpredict' && m.data?.user === 'modguy')?.data).toMatchObject({ is_mod: true, command: 'startpredict' });

    await overlay.waitFor((m) => m.type === 'prediction_game' && m.data?.state === 'waiting', 7_000, 'voting to close');
    await irc.waitForPrivmsg(/^Voting closed: 3 votes, favourite P-7f\. Waiting for the AI's move/);
    irc.say(BOB, '!predict 2g2f');
    await irc.waitForPrivmsg(/@Bob: voting has closed/);

    producer.emitGameState({ gameId: 'g1', sfen: AFTER_76, moves: ['7g7f'], lastMove: '7g7f', moveCount: 1 });
    const done = await overlay.waitFor((m) => m.type === 'prediction_game' && m.data?.state === 'finished', 5_000, 'the result');
    const id = done.data!.id as string;
    expect(done.data!.result).toEqual({
      played_move: '7g7f', played_label: 'P-7f', ai_move: '7g7f', ai_confidence: 0.62, ai_correct: true, ai_justified: true,
      community_move: '7g7f', community_label: 'P-7f', community_accuracy: 2 / 3, winners: ['Alice', '将棋 Fan'], winners_total: 2, closed_early: false,
    });
    await irc.waitForPrivmsg(/^The AI played P-7f\. The AI predicted P-7f at 62% — right, and confidently so\. Chat's pick: P-7f; 67% of 3 voters got it right\. Winners: Alice, 将棋 Fan\./);

    const stored = await irc.waitFor(() => h.service.store.get<{ state: string; result: { played_move: string } }>('prediction_games', id), 5_000, 'the stored game');
    expect(stored).toMatchObject({ state: 'finished', result: { played_move: '7g7f' } });

    // Every reply is one line within Twitch's 500-character limit.
    for (const p of irc.privmsgs) expect(p.text.length).toBeLessThan(500);
  }, 25_000);

  it('answers !help, !level, !explain and !stats, with clear errors for bad arguments', async () => {
    irc.say(BOB, '!help');
    await irc.waitForPrivmsg(/@Bob: !predict <move>.*!explain topics: kl, entropy/);
    irc.say(BOB, '!level expert');
    await irc.waitForPrivmsg(/@Bob: unknown level "expert"; use beginner, intermediate or advanced/);
    irc.say(BOB, '!level advanced');
    await irc.waitForPrivmsg(/@Bob: explanation level set to advanced/);
    irc.say(BOB, '!explain kl');
    await irc.waitForPrivmsg(/@Bob: Approximate KL, mean\(old_logp - new_logp\).*(not sent|Now:)/);
    irc.say(BOB, '!explain quarks');
    await irc.waitForPrivmsg(/@Bob: unknown topic "quarks"; topics: kl/);
    irc.say(BOB, '!stats');
    await irc.waitForPrivmsg(/@Bob: .*game g1 at move 1/);
  });

  it('reconnects after RECONNECT and keeps working; the control-page RPC starts a game that a new game cancels', async () => {
    const logins = irc.logins.length;
    irc.reconnectAll();
    await irc.waitFor(() => irc.logins.length > logins && irc.joins.filter((j) => j.channel === '#testchan').length >= 2, 10_000, 'the reconnection');
    irc.ping();
    await irc.waitFor(() => irc.received.some((r) => r.line === 'PONG'), 5_000, 'a PONG');

    const rpc = await h.service.supervisor.call('chat', 'startPrediction', [{ by: 'control page' }]) as { ok: boolean; game?: { id: string } };
    expect(rpc).toMatchObject({ ok: true });
    await irc.waitForPrivmsg(/^Prediction game! What will the AI play in game g1 \(move 2, white\/gote to move\)/, 8_000);
    irc.say(ALICE, '!predict 同歩'); // 同 after 7g7f: nothing of white's can go to 7f
    await irc.waitForPrivmsg(/@Alice: no legal move matches "同歩" \(none of your pawns can move to 7f\)/);
    irc.say(ALICE, '!predict ３四歩');
    await overlay.waitFor((m) => m.type === 'prediction_game' && m.data?.id === rpc.game!.id && m.data?.total_votes === 1, 5_000, 'the vote after reconnecting');

    producer.emitGameState({ gameId: 'g2', sfen: STANDARD_SFEN, moves: [], moveCount: 0 });
    const cancelled = await overlay.waitFor((m: WsMessage) => m.type === 'prediction_game' && m.data?.id === rpc.game!.id && m.data?.state === 'cancelled', 5_000, 'the cancellation');
    expect(cancelled.data?.reason).toMatch(/game g1 was replaced by game g2/);
    await irc.waitForPrivmsg(/^Prediction game cancelled: game g1 was replaced by game g2/);
    await irc.waitFor(() => h.service.store.get('prediction_games', rpc.game!.id), 5_000, 'the stored cancelled game');

    const status = await h.service.supervisor.call('chat', 'status') as { connected: boolean; games: Record<string, number>; queue: { sent: number } };
    expect(status).toMatchObject({ connected: true, games: { started: 2, finished: 1, cancelled: 1 } });
    expect(status.queue.sent).toBeGreaterThan(10);
    expect(games('finished')).toHaveLength(1);
    const metrics = await (await fetch(`http://127.0.0.1:${h.service.port}/metrics`)).text();
    expect(metrics).toMatch(/ringcast_chat_commands_total\{[^}]*command="predict"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/ringcast_chat_commands_total\{[^}]*command="unknown"[^}]*\} 1/);
    expect(metrics).toMatch(/ringcast_chat_votes_total\{[^}]*outcome="rejected"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/ringcast_chat_errors_total\{[^}]*reason="bad_move"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/ringcast_chat_replies_sent_total\{[^}]*\} [1-9]/);
    expect(metrics).toMatch(/ringcast_chat_prediction_games_total\{[^}]*state="finished"[^}]*\} 1/);
    expect(metrics).toMatch(/ringcast_chat_connected\{[^}]*\} 1/);
    expect(JSON.stringify(h.lines)).not.toContain(TOKEN);
  }, 25_000);

  it('after a crash, the restarted actor cancels the game it left running, rejoins chat, and a milestone starts a game', async () => {
    const rpc = await h.service.supervisor.call('chat', 'startPrediction', [{ by: 'control page' }]) as { ok: boolean; game?: { id: string } };
    expect(rpc).toMatchObject({ ok: true });
    await overlay.waitFor((m) => m.type === 'prediction_game' && m.data?.id === rpc.game!.id, 5_000, 'the new game');
    const logins = irc.logins.length;
    await h.service.supervisor.crash('chat', 'test crash');
    const cancelled = await overlay.waitFor((m) => m.type === 'prediction_game' && m.data?.id === rpc.game!.id && m.data?.state === 'cancelled', 10_000, 'the orphan cancelled');
    expect(cancelled.data?.reason).toBe('the chat service restarted during the game');
    await irc.waitFor(() => h.service.store.get('prediction_games', rpc.game!.id), 5_000, 'the stored orphan');
    await irc.waitFor(() => irc.logins.length > logins, 10_000, 'a new login');
    // A milestone starts a game (milestonePredictions defaults to on), and the restarted actor
    // knows the latest position from the retained messages.
    producer.emitMilestone({ name: 'e2e_mark', message: 'a milestone' });
    const started = await overlay.waitFor((m) => m.type === 'prediction_game' && m.data?.started_by === 'milestone e2e_mark', 8_000, 'a milestone game');
    expect(started.data).toMatchObject({ state: 'collecting', position: { game_id: 'g2', move_count: 0 } });
    await irc.waitForPrivmsg(/^Prediction game! What will the AI play in game g2 \(move 1, black\/sente to move\)/, 8_000);
  }, 25_000);
});
