/**
 * `!clip` in chat: moderators only, one at a time and one per 30 s for the channel, answered
 * in chat when the clip is made; the clip is the same as POST /api/clips makes. The command's
 * rules alone, then through the real service with a local Twitch IRC peer and a file output.
 * Needs `npx tsc -p .` first.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { clipCommand } from '../src/actors/chat/clip-command.js';
import { startHarness, type Harness } from './helpers/service-harness.js';
import { TwitchIrcServer, type ScriptedUser } from './helpers/twitch-irc-server.js';

const out = mkdtempSync(path.join(tmpdir(), 'ringcast-chat-clip-'));
let irc: TwitchIrcServer | undefined;
let h: Harness | undefined;
afterAll(async () => {
  await h?.close();
  await irc?.close();
  rmSync(out, { recursive: true, force: true });
}, 30_000);

describe('!clip rules', () => {
  it('one at a time, one per 30 s, a title without control characters, the answer in chat', async () => {
    let t = 0;
    const asked: unknown[] = [];
    let answer!: (v: unknown) => void;
    const cmd = clipCommand(<T>(method: string, body: unknown) => {
      asked.push([method, body]);
      return new Promise<T>((r) => { answer = r as (v: unknown) => void; });
    }, () => t);
    const replies: string[] = [];
    const refusals: string[] = [];
    const reply = (s: string) => replies.push(s);
    const refused = (reason: string, s: string) => refusals.push(`${reason}: ${s}`);
    cmd.run('Mod', 'big\u0007 play', reply, refused);
    expect(asked).toEqual([['clips.create', { before_s: 20, after_s: 5, title: 'big  play' }]]);
    cmd.run('Mod', '', reply, refused);
    expect(refusals.at(-1)).toMatch(/^clip_busy:/);
    answer({ ok: true, clip: { title: 'big  play', duration_s: 24.6 } });
    await new Promise((r) => setTimeout(r, 0));
    expect(replies.at(-1)).toBe('clip saved: "big  play" (25 s)');
    t = 10_000;
    cmd.run('Mod', '', reply, refused);
    expect(refusals.at(-1)).toBe('clip_rate: one clip per 30 s; try again in 20 s');
    t = 31_000;
    cmd.run('Mod', '', reply, refused);
    expect(asked.at(-1)).toEqual(['clips.create', { before_s: 20, after_s: 5, title: 'Clip by Mod' }]);
    answer({ ok: false, status: 409, error: 'no output is running' });
    await new Promise((r) => setTimeout(r, 0));
    expect(replies.at(-1)).toBe('no clip: no output is running');
  });
});

describe('!clip through the service', () => {
  it('a viewer is refused; a moderator gets a clip, announced in chat and listed by GET /api/clips', async () => {
    irc = await TwitchIrcServer.start({ botIsMod: true });
    h = await startHarness([
      '--twitch-channel', 'ClipChan', '--twitch-server', `127.0.0.1:${irc.port}`, '--twitch-token', 'e2e-clip-twitch-token', '--twitch-user-cooldown-ms', '0', '--twitch-moderator',
      '--output', path.join(out, 'show.mp4'), '--clips-buffer-seconds', '6',
      '--compose-width', '640', '--compose-height', '360', '--x264-preset', 'ultrafast', '--no-capture',
    ]);
    const MOD: ScriptedUser = { login: 'modguy', displayName: 'ModGuy', mod: true };
    const ALICE: ScriptedUser = { login: 'alice', displayName: 'Alice' };
    await irc.waitFor(() => irc!.joins.find((j) => j.channel === '#clipchan'), 15_000, 'the join');
    const deadline = Date.now() + 15_000;
    while (!((await h.service.supervisor.call('chat', 'status')) as { connected: boolean }).connected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    irc.say(ALICE, '!clip', '#clipchan');
    await irc.waitForPrivmsg(/@Alice: only moderators and the broadcaster can make a clip/);
    await new Promise((r) => setTimeout(r, 9_000)); // the buffer fills its 6 s
    irc.say(MOD, '!clip what a move', '#clipchan');
    await irc.waitForPrivmsg(/@ModGuy: clipping the last 20 s and the next 5 s/);
    await irc.waitForPrivmsg(/@ModGuy: clip saved: "what a move" \((\d+) s\)/, 30_000);
    const list = (await (await fetch(`http://127.0.0.1:${h.service.port}/api/clips`)).json()) as { clips: Array<{ title: string; duration_s: number }> };
    expect(list.clips.map((c) => c.title)).toEqual(['what a move']);
    // 6 s (the whole buffer) before, 5 s after, within a keyframe interval (2 s).
    expect(Math.abs(list.clips[0].duration_s - 11)).toBeLessThanOrEqual(2);
    irc.say(MOD, '!clip again', '#clipchan');
    await irc.waitForPrivmsg(/@ModGuy: one clip per 30 s; try again in \d+ s/);
  }, 90_000);
});
