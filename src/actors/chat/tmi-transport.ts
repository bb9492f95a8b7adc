/**
 * ChatTransport over tmi.js 1.8 — the only module that imports tmi.js.
 *
 * Settings that matter:
 *  - `connection.server/port` with `secure: false` for a local plain-ws server (tests, proxies);
 *    unset means Twitch itself (wss, port 443).
 *  - `skipUpdatingEmotesets`: otherwise tmi.js calls Twitch's retired Kraken API with our
 *    OAuth token whenever USERSTATE carries emote sets.
 *  - tmi.js logs chat lines and connection chatter at info; it is routed into our logger at
 *    debug (warn/error stay warn) so a busy chat does not flood the service log. tmi.js itself
 *    never logs the PASS line, and the token is not put into any message here.
 */
import tmi from 'tmi.js';
import type { Logger } from 'pino';
import type { ChatTransport, IncomingChatMessage, TransportStateChange } from './transport.js';
import type { TwitchCredentials } from './credentials.js';

const JOIN_TIMEOUT_MS = 10_000;

export interface TmiTransportOptions {
  channel: string;
  /** 'host:port' of a plain-ws IRC server, or undefined for Twitch. */
  server?: string;
  credentials?: TwitchCredentials;
  log: Logger;
}

function tmiLogger(log: Logger) {
  const text = (m: unknown) => (typeof m === 'string' ? m : (m as Error)?.message ?? String(m));
  return {
    setLevel() {},
    getLevel: () => 'info',
    trace: (m: unknown) => log.trace({ tmi: text(m) }, 'tmi.js'),
    debug: (m: unknown) => log.trace({ tmi: text(m) }, 'tmi.js'),
    info: (m: unknown) => log.debug({ tmi: text(m) }, 'tmi.js'),
    warn: (m: unknown) => log.warn({ tmi: text(m) }, 'tmi.js'),
    error: (m: unknown) => log.warn({ tmi: text(m) }, 'tmi.js'),
    fatal: (m: unknown) => log.error({ tmi: text(m) }, 'tmi.js'),
  };
}

/** tmi.js turns every tag value "1"/"0" into true/false, user ids included: undo that. */
function tagString(v: unknown): string {
  if (v === true) return '1';
  if (v === false) return '0';
  return typeof v === 'string' ? v : '';
}

export class TmiTransport implements ChatTransport {
  private readonly client: tmi.Client;
  private readonly channel: string;
  private messageCbs: Array<(m: IncomingChatMessage) => void> = [];
  private stateCbs: Array<(s: TransportStateChange) => void> = [];
  readonly canSend: boolean;
  private joined = false;
  private closing = false;

  constructor(opts: TmiTransportOptions) {
    this.channel = `#${opts.channel.replace(/^#/, '').toLowerCase()}`;
    this.canSend = opts.credentials !== undefined;
    let connection: tmi.Options['connection'] = { reconnect: true, secure: true, maxReconnectInterval: 30_000 };
    if (opts.server) {
      const at = opts.server.lastIndexOf(':');
      connection = { server: opts.server.slice(0, at), port: Number(opts.server.slice(at + 1)), secure: false, reconnect: true, maxReconnectInterval: 30_000 };
    }
    this.client = new tmi.Client({
      options: { skipUpdatingEmotesets: true, skipMembership: false, joinInterval: 300 },
      connection,
      identity: opts.credentials ? { username: opts.credentials.username, password: opts.credentials.token } : undefined,
      channels: [this.channel],
      logger: tmiLogger(opts.log),
    } as tmi.Options);

    this.client.on('message', (_channel, tags, text, self) => {
      if (self) return;
      const badges = (tags.badges ?? {}) as Record<string, string | undefined>;
      const user = (tags.username ?? '').toLowerCase();
      const userId = tagString(tags['user-id']);
      const roomId = tagString(tags['room-id']);
      const msg: IncomingChatMessage = {
        user,
        displayName: tags['display-name'] || user,
        userId: userId || user,
        isMod: tags.mod === true || badges.moderator !== undefined,
        isBroadcaster: badges.broadcaster !== undefined || (roomId !== '' && roomId === userId),
        text,
        id: tags.id ?? '',
      };
      for (const cb of this.messageCbs) cb(msg);
    });
    this.client.on('connecting', () => this.emitState({ state: 'connecting' }));
    this.client.on('join', (_channel, _user, self) => {
      if (!self) return;
      this.joined = true;
      this.emitState({ state: 'connected' });
    });
    this.client.on('disconnected', (reason) => {
      this.joined = false;
      // tmi.js gives up for good after a refused login; say so instead of "reconnecting".
      const refused = /Login unsuccessful|Login authentication failed|Error logging in|Improperly formatted auth/.test(String(reason));
      this.emitState({ state: this.closing || refused ? 'disconnected' : 'reconnecting', reason: refused ? `Twitch refused the login (${String(reason)}); check the token` : String(reason) });
    });
    this.client.on('reconnect', () => this.emitState({ state: 'reconnecting' }));
  }

  get username(): string {
    return this.client.getUsername();
  }

  private emitState(change: TransportStateChange): void {
    for (const cb of this.stateCbs) cb(change);
  }

  async connect(): Promise<void> {
    this.closing = false;
    await this.client.connect();
    // connect() resolves on the welcome (376); the channel join follows a moment later.
    if (!this.joined) {
      await new Promise<void>((resolve, reject) => {
        const onJoin = (_c: string, _u: string, self: boolean) => {
          if (!self) return;
          clearTimeout(timer);
          this.client.removeListener('join', onJoin);
          resolve();
        };
        const timer = setTimeout(() => {
          this.client.removeListener('join', onJoin);
          reject(new Error(`connected, but joining ${this.channel} got no answer within ${JOIN_TIMEOUT_MS} ms`));
        }, JOIN_TIMEOUT_MS);
        this.client.on('join', onJoin);
      });
    }
  }

  async say(text: string): Promise<void> {
    if (!this.canSend) throw new Error('read-only (anonymous) connection');
    if (!this.joined) throw new Error('not connected to chat');
    await this.client.say(this.channel, text);
  }

  onMessage(cb: (msg: IncomingChatMessage) => void): void {
    this.messageCbs.push(cb);
  }

  onState(cb: (change: TransportStateChange) => void): void {
    this.stateCbs.push(cb);
  }

  onNotice(cb: (msgId: string) => void): void {
    this.client.on('notice', (_channel: string, msgId: string) => cb(String(msgId)));
  }

  get connected(): boolean {
    return this.joined;
  }

  async disconnect(): Promise<void> {
    this.closing = true;
    // No reconnect after an intentional close (tmi.js also schedules one after a RECONNECT).
    (this.client as unknown as { reconnect: boolean }).reconnect = false;
    this.client.removeAllListeners('message');
    if (this.client.readyState() === 'OPEN' || this.client.readyState() === 'CONNECTING') {
      await this.client.disconnect().catch(() => undefined);
    }
  }
}
