/**
 * The chat actor as a plain (non-moderator) Twitch user against a local IRC peer that enforces
 * Twitch's rules as Twitch does: a line under 1 s after the previous one is dropped
 * (msg_ratelimit), a line identical to one sent in the last 30 s is dropped (msg_duplicate).
 * No line may be lost: none refused, or a refused one sent again.
 * Needs `npx tsc -p .` first (actors load from dist/).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './helpers/service-harness.js';
import { TwitchIrcServer, type ScriptedUser } from './helpers/twitch-irc-server.js';

let irc: TwitchIrcServer;
let h: Harness;

beforeAll(async () => {
  irc = await TwitchIrcServer.start(); // the bot is a plain user
  h = await startHarness([
    '--twitch-channel', 'TestChan', '--twitch-server', `127.0.0.1:${irc.port}`,
    '--twitch-token', 'rules-secret-token', '--twitch-user-cooldown-ms', '0',
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
