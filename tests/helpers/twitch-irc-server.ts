/**
 * A local Twitch chat server (IRC over WebSocket, subprotocol `irc`) that speaks Twitch's
 * message format the way tmi.js expects it:
 * CAP ACK, the 001…376 welcome, GLOBALUSERSTATE, JOIN → JOIN echo + NAMES + USERSTATE +
 * ROOMSTATE, tagged PRIVMSG lines from scripted users (badges, mod, ids, escaped tag values),
 * PING/PONG both ways, RECONNECT. It records every line clients send, with timestamps.
 */
import { randomUUID } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';

export interface ScriptedUser {
  login: string;
  displayName?: string;
  userId?: string;
  mod?: boolean;
  broadcaster?: boolean;
}

export interface ReceivedLine { at: number; conn: number; line: string }
export interface SentPrivmsg { at: number; conn: number; nick: string; channel: string; text: string }

interface Conn { id: number; ws: WebSocket; nick?: string; pass?: string; caps: string[]; channels: Set<string>; loggedIn: boolean }

/** IRCv3 tag value escaping, as Twitch does it. */
export function escapeTagValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/;/g, '\\:').replace(/ /g, '\\s').replace(/\r/g, '\\r').replace(/\n/g, '\\n');
}

function tags(t: Record<string, string>): string {
  return `@${Object.entries(t).map(([k, v]) => `${k}=${escapeTagValue(v)}`).join(';')}`;
}

export interface TwitchIrcServerOptions {
  /** Which PASS values log in (default: any `oauth:` token). */
  acceptPass?: (pass: string) => boolean;
  roomId?: string;
  /**
   * The bot's standing in the channel. Twitch's rules for a plain user (the default here): a
   * line less than 1 s after the user's previous one in that channel is dropped (NOTICE
   * msg_ratelimit); for everyone, a line identical to one the user sent there in the last 30 s
   * is dropped (NOTICE msg_duplicate). Dropped lines are in `refused`, never in `privmsgs`.
   */
  botIsMod?: boolean;
}

export interface RefusedPrivmsg extends SentPrivmsg { msgId: 'msg_ratelimit' | 'msg_duplicate' | 'test_refusal' }

export class TwitchIrcServer {
  readonly received: ReceivedLine[] = [];
  readonly privmsgs: SentPrivmsg[] = [];
  readonly refused: RefusedPrivmsg[] = [];
  /** Test hook: refuse the next N lines with msg_ratelimit whatever their timing (a server hiccup). */
  refuseNext = 0;
  /** One entry per connection that completed NICK: its nick and PASS. */
  readonly logins: { conn: number; nick: string; pass?: string; at: number }[] = [];
  readonly joins: { conn: number; nick: string; channel: string; at: number }[] = [];
  private readonly conns = new Set<Conn>();
  private nextId = 1;

  private constructor(private readonly wss: WebSocketServer, readonly port: number, private readonly opts: TwitchIrcServerOptions) {
    wss.on('connection', (ws) => this.accept(ws));
  }

  static async start(opts: TwitchIrcServerOptions = {}): Promise<TwitchIrcServer> {
    const wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      handleProtocols: (protocols) => (protocols.has('irc') ? 'irc' : false),
    });
    await new Promise<void>((resolve, reject) => { wss.once('listening', resolve); wss.once('error', reject); });
    const address = wss.address();
    if (typeof address === 'string' || address === null) throw new Error('no port');
    return new TwitchIrcServer(wss, address.port, opts);
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  private accept(ws: WebSocket): void {
    const conn: Conn = { id: this.nextId++, ws, caps: [], channels: new Set(), loggedIn: false };
    this.conns.add(conn);
    ws.on('message', (data) => {
      for (const line of String(data).split('\r\n')) if (line.length > 0) this.handle(conn, line);
    });
    ws.on('close', () => this.conns.delete(conn));
    ws.on('error', () => this.conns.delete(conn));
  }

  private send(conn: Conn, ...lines: string[]): void {
    if (conn.ws.readyState === conn.ws.OPEN) conn.ws.send(lines.join('\r\n'));
  }

  private handle(conn: Conn, line: string): void {
    this.received.push({ at: Date.now(), conn: conn.id, line });
    const [command, ...rest] = line.split(' ');
    const arg = rest.join(' ');
    switch (command) {
      case 'CAP': {
        const caps = arg.replace(/^REQ :/, '');
        conn.caps = caps.split(' ');
        this.send(conn, `:tmi.twitch.tv CAP * ACK :${caps}`);
        break;
      }
      case 'PASS':
        conn.pass = arg;
        break;
      case 'NICK': {
        const nick = arg.trim().toLowerCase();
        conn.nick = nick;
        const anonymous = /^justinfan\d+$/.test(nick);
        const accepted = anonymous || (conn.pass !== undefined && (this.opts.acceptPass ?? ((p) => p.startsWith('oauth:') && p.length > 6))(conn.pass));
        if (!accepted) {
          this.send(conn, ':tmi.twitch.tv NOTICE * :Login authentication failed');
          setTimeout(() => conn.ws.close(), 50);
          return;
        }
        conn.loggedIn = !anonymous;
        this.logins.push({ conn: conn.id, nick, pass: conn.pass, at: Date.now() });
        this.send(conn,
          `:tmi.twitch.tv 001 ${nick} :Welcome, GLHF!`,
          `:tmi.twitch.tv 002 ${nick} :Your host is tmi.twitch.tv`,
          `:tmi.twitch.tv 003 ${nick} :This server is rather new`,
          `:tmi.twitch.tv 004 ${nick} :-`,
          `:tmi.twitch.tv 375 ${nick} :-`,
          `:tmi.twitch.tv 372 ${nick} :You are in a maze of twisty passages, all alike.`,
          `:tmi.twitch.tv 376 ${nick} :>`,
        );
        if (conn.loggedIn) {
          this.send(conn, `${tags({ 'badge-info': '', badges: '', color: '', 'display-name': nick, 'emote-sets': '0', 'user-id': '9000', 'user-type': '' })} :tmi.twitch.tv GLOBALUSERSTATE`);
        }
        break;
      }
      case 'JOIN': {
        for (const channel of arg.split(',').map((c) => c.trim().toLowerCase())) {
          if (!conn.nick) return;
          conn.channels.add(channel);
          this.joins.push({ conn: conn.id, nick: conn.nick, channel, at: Date.now() });
          const n = conn.nick;
          const lines = [
            `:${n}!${n}@${n}.tmi.twitch.tv JOIN ${channel}`,
            `:${n}.tmi.twitch.tv 353 ${n} = ${channel} :${n}`,
            `:${n}.tmi.twitch.tv 366 ${n} ${channel} :End of /NAMES list`,
          ];
          if (conn.loggedIn) lines.push(this.userstate(conn, channel));
          lines.push(`${tags({ 'emote-only': '0', 'followers-only': '-1', r9k: '0', 'room-id': this.opts.roomId ?? '1', slow: '0', 'subs-only': '0' })} :tmi.twitch.tv ROOMSTATE ${channel}`);
          this.send(conn, ...lines);
        }
        break;
      }
      case 'PART': {
        const channel = arg.trim().toLowerCase();
        conn.channels.delete(channel);
        if (conn.nick) this.send(conn, `:${conn.nick}!${conn.nick}@${conn.nick}.tmi.twitch.tv PART ${channel}`);
        break;
      }
      case 'PRIVMSG': {
        const m = /^(#\S+) :([\s\S]*)$/.exec(arg);
        if (!m || !conn.nick) return;
        const sent: SentPrivmsg = { at: Date.now(), conn: conn.id, nick: conn.nick, channel: m[1], text: m[2] };
        const msgId = this.refusal(sent);
        if (msgId !== undefined) {
          this.refused.push({ ...sent, msgId });
          const text = msgId === 'msg_duplicate'
            ? 'Your message was not sent because it is identical to the previous one you sent, less than 30 seconds ago.'
            : 'Your message was not sent because you are sending messages too quickly.';
          this.send(conn, `@msg-id=${msgId === 'test_refusal' ? 'msg_ratelimit' : msgId} :tmi.twitch.tv NOTICE ${m[1]} :${text}`);
          break;
        }
        this.privmsgs.push(sent);
        // Twitch answers every message the client sends with a USERSTATE.
        this.send(conn, this.userstate(conn, m[1]));
        break;
      }
      case 'PING':
        // tmi.js sends a bare PING and only understands an unprefixed PONG back.
        this.send(conn, arg ? `:tmi.twitch.tv PONG tmi.twitch.tv :${arg.replace(/^:/, '')}` : 'PONG :tmi.twitch.tv');
        break;
      default:
        break; // PONG and anything else: recorded only
    }
  }

  /** Twitch's chat rules, judged on the accepted lines of the same user in the same channel. */
  private refusal(line: SentPrivmsg): RefusedPrivmsg['msgId'] | undefined {
    if (this.refuseNext > 0) {
      this.refuseNext--;
      return 'test_refusal';
    }
    const mine = this.privmsgs.filter((p) => p.nick === line.nick && p.channel === line.channel);
    const last = mine.at(-1);
    if (!this.opts.botIsMod && last !== undefined && line.at - last.at < 1_000) return 'msg_ratelimit';
    if (mine.some((p) => line.at - p.at < 30_000 && p.text === line.text)) return 'msg_duplicate';
    return undefined;
  }

  private userstate(conn: Conn, channel: string): string {
    const mod = this.opts.botIsMod === true;
    return `${tags({ 'badge-info': '', badges: mod ? 'moderator/1' : '', color: '', 'display-name': conn.nick ?? '', 'emote-sets': '0', mod: mod ? '1' : '0', subscriber: '0', 'user-type': mod ? 'mod' : '' })} :tmi.twitch.tv USERSTATE ${channel}`;
  }

  /** A chat line from a scripted user to every client joined to `channel`. */
  say(user: ScriptedUser, text: string, channel = '#testchan'): void {
    const login = user.login.toLowerCase();
    const badges = [user.broadcaster ? 'broadcaster/1' : '', user.mod ? 'moderator/1' : ''].filter(Boolean).join(',');
    const line = `${tags({
      'badge-info': '', badges, color: '#1E90FF', 'display-name': user.displayName ?? user.login, emotes: '', 'first-msg': '0', flags: '',
      id: randomUUID(), mod: user.mod ? '1' : '0', 'returning-chatter': '0', 'room-id': this.opts.roomId ?? '1', subscriber: '0',
      'tmi-sent-ts': String(Date.now()), turbo: '0', 'user-id': user.userId ?? String(1000 + [...login].reduce((s, c) => s + c.charCodeAt(0), 0)),
      'user-type': user.mod ? 'mod' : '',
    })} :${login}!${login}@${login}.tmi.twitch.tv PRIVMSG ${channel} :${text}`;
    for (const conn of this.conns) if (conn.channels.has(channel)) this.send(conn, line);
  }

  /** Server keepalive: clients must answer PONG. */
  ping(): void {
    for (const conn of this.conns) this.send(conn, 'PING :tmi.twitch.tv');
  }

  /** Ask every client to reconnect (as Twitch does before a restart), then drop them after `closeAfterMs`. */
  reconnectAll(closeAfterMs = 200): void {
    for (const conn of this.conns) {
      this.send(conn, ':tmi.twitch.tv RECONNECT');
      setTimeout(() => conn.ws.close(), closeAfterMs);
    }
  }

  sendRaw(line: string): void {
    for (const conn of this.conns) this.send(conn, line);
  }

  async waitFor<T>(probe: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = probe();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`twitch peer: timed out after ${timeoutMs} ms waiting for ${what}; sent so far: ${JSON.stringify(this.privmsgs.map((p) => p.text))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Waits for a PRIVMSG from clients whose text matches. */
  waitForPrivmsg(match: RegExp, timeoutMs = 5_000): Promise<SentPrivmsg> {
    return this.waitFor(() => this.privmsgs.find((p) => match.test(p.text)), timeoutMs, `a reply matching ${match}`);
  }

  async close(): Promise<void> {
    for (const conn of this.conns) conn.ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
