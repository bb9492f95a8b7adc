/** The tmi.js transport against the local Twitch IRC peer, and where credentials come from. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { resolveCredentials } from '../src/actors/chat/credentials.js';
import { TmiTransport } from '../src/actors/chat/tmi-transport.js';
import type { IncomingChatMessage, TransportStateChange } from '../src/actors/chat/transport.js';
import { escapeTagValue, TwitchIrcServer } from './helpers/twitch-irc-server.js';

const TOKEN = 'transport-secret-token-123';

function captureLog() {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk, _e, done) { lines.push(String(chunk)); done(); } });
  return { log: pino({ level: 'trace' }, sink), lines };
}

let irc: TwitchIrcServer;
const open: TmiTransport[] = [];
beforeAll(async () => { irc = await TwitchIrcServer.start({ acceptPass: (p) => p === `oauth:${TOKEN}` }); });
afterEach(async () => { for (const t of open.splice(0)) await t.disconnect(); });
afterAll(async () => { await irc.close(); });

function transport(credentials?: { username: string; token: string }) {
  const { log, lines } = captureLog();
  const t = new TmiTransport({ channel: 'TestChan', server: `127.0.0.1:${irc.port}`, credentials, log });
  open.push(t);
  const messages: IncomingChatMessage[] = [];
  const states: TransportStateChange[] = [];
  t.onMessage((m) => messages.push(m));
  t.onState((s) => states.push(s));
  return { t, lines, messages, states };
}

describe('TmiTransport', () => {
  it('logs in, reads tagged lines, sends, answers PING, and never logs the token', async () => {
    const { t, lines, messages } = transport({ username: 'mybot', token: TOKEN });
    await t.connect();
    expect(t.canSend).toBe(true);
    expect(t.username).toBe('mybot');
    const sent = irc.received.map((r) => r.line);
    expect(sent).toEqual(expect.arrayContaining(['CAP REQ :twitch.tv/tags twitch.tv/commands twitch.tv/membership', `PASS oauth:${TOKEN}`, 'NICK mybot', 'JOIN #testchan']));

    // User id "1": tmi.js turns tag values "1"/"0" into booleans; the transport must undo that.
    irc.say({ login: 'streamer', displayName: 'The Streamer', broadcaster: true, userId: '1' }, '!startpredict');
    irc.say({ login: 'moddy', mod: true, userId: '2' }, 'a; b\\c');
    irc.say({ login: 'viewer', userId: '3' }, '\u0001ACTION waves\u0001');
    await irc.waitFor(() => messages.length === 3, 3_000, 'three messages');
    expect(messages[0]).toMatchObject({ user: 'streamer', displayName: 'The Streamer', userId: '1', isBroadcaster: true, isMod: false, text: '!startpredict' });
    expect(messages[0].id).toMatch(/^[0-9a-f-]{36}$/);
    expect(messages[1]).toMatchObject({ user: 'moddy', displayName: 'moddy', isMod: true, isBroadcaster: false, text: 'a; b\\c' });
    expect(messages[2]).toMatchObject({ user: 'viewer', isMod: false, text: 'waves' });

    await t.say('@moddy: hello there');
    await irc.waitForPrivmsg(/^@moddy: hello there$/);
    expect(irc.privmsgs.at(-1)).toMatchObject({ nick: 'mybot', channel: '#testchan' });

    const before = irc.received.length;
    irc.ping();
    await irc.waitFor(() => irc.received.slice(before).some((r) => r.line === 'PONG'), 3_000, 'PONG');
    expect(lines.join('')).not.toContain(TOKEN);
  });

  it('reconnects and rejoins after RECONNECT', async () => {
    const { t, states } = transport({ username: 'mybot', token: TOKEN });
    await t.connect();
    const joins = irc.joins.length;
    irc.reconnectAll();
    await irc.waitFor(() => irc.joins.length > joins && t.connected, 8_000, 'the rejoin');
    expect(states.map((s) => s.state)).toEqual(expect.arrayContaining(['reconnecting', 'connected']));
    await t.say('back again');
    await irc.waitForPrivmsg(/^back again$/);
  });

  it('joins anonymously (read-only) without credentials', async () => {
    const { t, messages } = transport();
    await t.connect();
    expect(t.canSend).toBe(false);
    expect(t.username).toMatch(/^justinfan\d+$/);
    expect(irc.received.map((r) => r.line)).toContain('PASS SCHMOOPIIE');
    await expect(t.say('hi')).rejects.toThrow(/read-only/);
    irc.say({ login: 'viewer' }, '!stats');
    await irc.waitFor(() => messages.length === 1, 3_000, 'a message');
  });

  it('reports a refused login as disconnected for good', async () => {
    const { t, states } = transport({ username: 'mybot', token: 'wrong' });
    await expect(t.connect()).rejects.toBeDefined();
    await irc.waitFor(() => states.find((s) => s.state === 'disconnected'), 3_000, 'the disconnect');
    expect(states.find((s) => s.state === 'disconnected')?.reason).toMatch(/Twitch refused the login \(Login authentication failed\); check the token/);
  });
});

describe('IRC tag escaping (peer)', () => {
  it('escapes the way Twitch does', () => {
    expect(escapeTagValue('a b;c\\d\r\n')).toBe('a\\sb\\:c\\\\d\\r\\n');
  });
});

describe('resolveCredentials', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ringcast-creds-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, content: string) => { const p = path.join(dir, name); writeFileSync(p, content, { mode: 0o600 }); return p; };

  it('prefers the configured token, then the file, else anonymous', () => {
    expect(resolveCredentials({ username: 'Bot_1', token: 'oauth:abc' })).toEqual({ kind: 'token', credentials: { username: 'bot_1', token: 'oauth:abc' }, source: 'options' });
    const good = file('good.json', JSON.stringify({ username: 'filebot', token: 'xyz' }));
    expect(resolveCredentials({ username: 'bot', credentialsFile: good })).toEqual({ kind: 'token', credentials: { username: 'filebot', token: 'xyz' }, source: 'file' });
    expect(resolveCredentials({ username: 'bot' })).toEqual({ kind: 'anonymous' });
  });

  it('names the problem with a file, never its contents', () => {
    const secret = 'do-not-print-me';
    const cases: [string, RegExp][] = [
      [file('bad.json', `{"token": "${secret}"`), /is not valid JSON/],
      [file('notoken.json', JSON.stringify({ username: 'bot', password: secret })), /needs a non-empty "token"/],
      [file('baduser.json', JSON.stringify({ username: 'no spaces allowed', token: secret })), /"username" must be/],
      [file('array.json', 'null'), /must hold a JSON object/],
      [path.join(dir, 'missing.json'), /cannot be read \(ENOENT\)/],
    ];
    for (const [p, why] of cases) {
      const r = resolveCredentials({ username: 'bot', credentialsFile: p });
      expect(r.kind).toBe('anonymous');
      const error = (r as { error: string }).error;
      expect(error).toMatch(why);
      expect(error).not.toContain(secret);
    }
  });
});
