/**
 * The one interface the chat actor uses to talk to Twitch chat.
 *
 * Why an interface: the implementation today is tmi.js (tmi-transport.ts), which is unmaintained
 * (last release 2021); @twurple/chat is the maintained alternative. Everything else in the actor
 * talks to this, so swapping libraries touches one file.
 */

export interface IncomingChatMessage {
  /** Login name (lower case). */
  user: string;
  displayName: string;
  userId: string;
  isMod: boolean;
  isBroadcaster: boolean;
  text: string;
  /** Twitch's message id (empty when the server sent none). */
  id: string;
}

export type TransportState = 'connecting' | 'connected' | 'disconnected' | 'reconnecting';

export interface TransportStateChange {
  state: TransportState;
  /** Human-readable cause (never contains credentials). */
  reason?: string;
}

export interface ChatTransport {
  /** Connect and join the channel; resolves once joined. Keeps reconnecting on its own afterwards. */
  connect(): Promise<void>;
  /** Send one line to the channel (the caller rate-limits). Rejects when not connected or read-only. */
  say(text: string): Promise<void>;
  onMessage(cb: (msg: IncomingChatMessage) => void): void;
  onState(cb: (change: TransportStateChange) => void): void;
  /** Server notices about our own lines (Twitch msg-id, e.g. msg_ratelimit, msg_duplicate). */
  onNotice?(cb: (msgId: string) => void): void;
  /** False for an anonymous (read-only) connection. */
  readonly canSend: boolean;
  /** The login actually used (justinfanNNNN when anonymous). */
  readonly username: string;
  disconnect(): Promise<void>;
}
