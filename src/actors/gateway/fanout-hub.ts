/**
 * Overlay fan-out over uWS pub/sub.
 *
 * Topics: `u/<channel>/<level>/<tier>` carries conflatable updates, `c/<channel>/<level>`
 * carries criticals. A healthy client subscribes to one update topic and the critical
 * topic per channel it wants. Each fan-out record is published once per topic: uWS then
 * copies the same bytes into every subscriber's buffer natively and batches a client's
 * messages into one write per loop iteration, so JavaScript does no per-client work.
 *
 * Slow clients (checked every slowCheckMs and on every drain):
 *   buffered > soft limit        → unsubscribed from every topic; criticals are queued for
 *                                  it (bounded) and sent as it drains; updates are skipped
 *                                  (counted per publish from a per-topic slow count).
 *   buffered < soft / 2, queue empty → resubscribed, and sent the latest value of every key
 *                                  of its channels, so it catches up with current state.
 *   buffered > hard limit, or critical queue full → closed with 4008 and a reason.
 * uWS's own maxBackpressure is set above the hard limit, so uWS never silently drops a
 * message before we decide; the hard limit plus maxBackpressure bound memory per client.
 *
 * Delta subscribers (`"delta": true`) are on a parallel set of topics, `d/<channel>/<level>/<tier>`
 * and `e/<channel>/<level>`, that carry each state change as a delta from the version the
 * topic carried before, or a full message keyed and versioned (delta-fanout.ts); every
 * state they are sent (snapshot, catch-up, resync) is full and versioned.
 */
import type { TemplatedApp, WebSocket } from 'uWebSockets.js';
import { AVAILABLE_CHANNELS, CHANNELS, LEVELS, levelId } from '../../shared/telemetry/channels.js';
import { FanoutFlag, FanoutType, readFanoutRecord } from '../../shared/telemetry/ring-records.js';
import type { GatewayMetrics, DisconnectReason } from './gateway-metrics.js';
import type { FpsTier, TierPlan } from './fps-tiers.js';
import { DeltaFanout, type Version } from './delta-fanout.js';
import { LatestMessages, type LatestEntry } from './latest-messages.js';
import { parseSubscription, type Subscription } from './subscription.js';
import type { HistoryReply, HistoryRequest } from '../../shared/cluster-history.js';
import { LEVEL_BIT } from '../../shared/telemetry/channels.js';

export const CLOSE_TOO_SLOW = 4008;
export const CLOSE_TRY_AGAIN_LATER = 1013;
/** Close code for a client that floods the server with messages (policy violation). */
export const CLOSE_FLOOD = 1008;
export const DEFAULT_SNAPSHOT_INTERVAL_MS = 1000;
/**
 * Messages (subscriptions, or anything malformed) a client may send in a burst, and how
 * many more per second after that; past it the client is closed. An overlay page sends
 * one subscription, and a few more when the streamer changes its level.
 */
export const MESSAGE_BURST = 30;
export const MESSAGES_PER_SECOND = 2;
/** How long a client we closed may take to answer the close frame before it is cut off. */
const END_GRACE_MS = 1000;
const MAX_STATE_KEYS = 4096;

export interface OverlayClient {
  readonly endpoint: 'overlay';
  readonly id: string;
  sub?: Subscription;
  tier?: FpsTier;
  /** Topics currently subscribed (empty while slow). */
  topics: string[];
  slow: boolean;
  criticalQueue: Uint8Array[];
  /** Set once we decided to close it, with why; the close handler counts it. */
  closeReason?: DisconnectReason;
  /** When this client last got a snapshot (ms); snapshots are at least snapshotIntervalMs apart. */
  lastSnapshotAt: number;
  /** A snapshot owed for a re-subscription that came too soon after the last one. */
  snapshotTimer?: NodeJS.Timeout;
  /** Token bucket against message floods: tokens left, and when it was last refilled. */
  messageTokens: number;
  tokensAt: number;
  endedAt?: number;
  closed: boolean;
}

export interface FanoutHubOptions {
  app: TemplatedApp;
  index: number;
  plan: TierPlan;
  maxFps: number;
  softLimitBytes: number;
  hardLimitBytes: number;
  maxClients: number;
  criticalQueueLimit: number;
  metrics: GatewayMetrics;
  /** Least time between two snapshots to one client (default 1000 ms; 0 = every subscription gets one at once). */
  snapshotIntervalMs?: number;
  /** Missed critical messages for a subscription with `since` (the cluster's history); absent: answered as unavailable. */
  recover?: (request: HistoryRequest) => Promise<HistoryReply>;
}

export class FanoutHub {
  private readonly app: TemplatedApp;
  private readonly o: FanoutHubOptions;
  private readonly latest = new LatestMessages(MAX_STATE_KEYS);
  private readonly clients = new Set<WebSocket<OverlayClient>>();
  private readonly slowClients = new Set<WebSocket<OverlayClient>>();
  private readonly ending = new Set<WebSocket<OverlayClient>>();
  /** Subscribers a topic would have if its slow clients were healthy. */
  private readonly slowPerTopic = new Map<string, number>();
  /** Store sequence each conflated tier flushed up to. */
  private readonly tierFlushedSeq = new Map<FpsTier, number>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly updateTopics: string[][][]; // [channel][level][tierIndex]
  private readonly criticalTopics: string[][]; // [channel][level]
  private readonly deltaTopics: string[][][]; // [channel][level][tierIndex]
  private readonly deltaCriticalTopics: string[][]; // [channel][level]
  private readonly deltas: DeltaFanout;
  private readonly channelCounters;
  private nextClient = 0;
  private stopping = false;
  private readonly snapshotIntervalMs: number;
  private counts = {
    published: 0, deliveries: 0, skippedSlow: 0, disconnectsTooSlow: 0, protocolErrors: 0, refused: 0, criticalQueued: 0, resubscribed: 0, maxBufferedSeen: 0,
    snapshotsSent: 0, snapshotsDeferred: 0, snapshotsCoalesced: 0, disconnectsFlood: 0, resyncs: 0, recoveries: 0,
  };

  constructor(options: FanoutHubOptions) {
    this.o = options;
    this.app = options.app;
    this.snapshotIntervalMs = options.snapshotIntervalMs ?? DEFAULT_SNAPSHOT_INTERVAL_MS;
    this.updateTopics = CHANNELS.map((_, ch) => LEVELS.map((_, lv) => options.plan.tiers.map((t) => `u/${ch}/${lv}/${t.name}`)));
    this.criticalTopics = CHANNELS.map((_, ch) => LEVELS.map((_, lv) => `c/${ch}/${lv}`));
    this.deltaTopics = CHANNELS.map((_, ch) => LEVELS.map((_, lv) => options.plan.tiers.map((t) => `d/${ch}/${lv}/${t.name}`)));
    this.deltaCriticalTopics = CHANNELS.map((_, ch) => LEVELS.map((_, lv) => `e/${ch}/${lv}`));
    this.deltas = new DeltaFanout((kind) => options.metrics.deltaUpdates.inc({ kind }));
    this.channelCounters = CHANNELS.map((name) => ({
      published: options.metrics.published.labels(name),
      deliveries: options.metrics.deliveries.labels(name),
      bytes: options.metrics.bytesDelivered.labels(name),
      subscriptions: options.metrics.subscriptions.labels(name),
    }));
    for (const tier of options.plan.tiers) {
      if (tier.live) continue;
      this.tierFlushedSeq.set(tier, 0);
      const timer = setInterval(() => this.flushTier(tier), tier.intervalMs);
      this.timers.push(timer);
    }
  }

  stats() {
    return { clients: this.clients.size, slowClients: this.slowClients.size, stateKeys: this.latest.size, ...this.counts, deltasPublished: this.deltas.counts.deltas, deltaFullsPublished: this.deltas.counts.fulls };
  }

  stop(): void {
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    this.timers.length = 0;
    for (const ws of this.clients) this.cancelSnapshot(ws.getUserData());
  }

  // ------------------------------------------------------------ connections

  newClientData(): OverlayClient {
    return {
      endpoint: 'overlay', id: `gw${this.o.index}-${++this.nextClient}`, topics: [], slow: false, criticalQueue: [], closed: false,
      lastSnapshotAt: -Infinity, messageTokens: MESSAGE_BURST, tokensAt: Date.now(),
    };
  }

  open(ws: WebSocket<OverlayClient>): void {
    if (this.clients.size >= this.o.maxClients) {
      this.counts.refused++;
      this.closeWith(ws, 'server_full', CLOSE_TRY_AGAIN_LATER, `server full: ${this.o.maxClients} overlay clients on this gateway thread; retry later`);
      return;
    }
    this.clients.add(ws);
    this.o.metrics.clients.inc({ endpoint: 'overlay' });
    // Nothing is sent until the client subscribes: it may only want some channels.
  }

  message(ws: WebSocket<OverlayClient>, message: ArrayBuffer, isBinary: boolean, now = Date.now()): void {
    const client = ws.getUserData();
    if (client.closed || client.closeReason) return;
    if (!this.takeMessageToken(client, now)) {
      this.counts.disconnectsFlood++;
      this.closeWith(ws, 'flood', CLOSE_FLOOD, `too many messages: more than ${MESSAGE_BURST} at once or ${MESSAGES_PER_SECOND}/s; subscribe once`);
      return;
    }
    if (isBinary) {
      this.protocolError(ws, 'binary messages are not accepted on /ws: send the subscription as a JSON text message');
      return;
    }
    const text = Buffer.from(message).toString('utf8');
    if (text.includes('"resync"') && this.resync(ws, client, text)) return;
    const parsed = parseSubscription(text, this.o.maxFps);
    if (!parsed.ok) {
      this.protocolError(ws, parsed.error);
      return;
    }
    const first = client.sub === undefined;
    this.unsubscribeAll(ws, client);
    if (client.sub) for (const ch of client.sub.channels) this.channelCounters[ch].subscriptions.dec();
    client.sub = parsed.sub;
    client.tier = this.o.plan.tierFor(parsed.sub.maxFps);
    for (const ch of parsed.sub.channels) this.channelCounters[ch].subscriptions.inc();
    const channels = parsed.sub.channels.map((c) => CHANNELS[c]);
    // Snapshots cost a send of every retained key: at most one per snapshotIntervalMs per
    // client. A re-subscription sooner than that gets one snapshot when the interval is
    // up, of whatever it is subscribed to by then (later ones only change the subscription).
    const snapshotNow = now - client.lastSnapshotAt >= this.snapshotIntervalMs;
    ws.cork(() => {
      if (first) {
        ws.send(JSON.stringify({ type: 'connection_established', client_id: client.id, server_time: now, available_channels: AVAILABLE_CHANNELS }), false);
      } else {
        ws.send(JSON.stringify({ type: 'subscribed', channels, level: parsed.sub.level, max_fps: parsed.sub.maxFps, tier: client.tier!.name }), false);
      }
      if (snapshotNow) this.sendSnapshot(ws, client, now);
    });
    if (!snapshotNow) this.deferSnapshot(ws, client, now);
    if (client.slow) this.registerSlowTopics(client);
    else this.subscribeAll(ws, client);
    // A slow client stays slow until it drains; it got its snapshot queued like any send.
    if (parsed.sub.since) void this.recoverHistory(ws, client, parsed.sub);
  }

  /**
   * Sends the critical messages a reconnecting client missed (`since`), then
   * `{"type":"history_recovered"}`; or `{"type":"history_gone"}` when they are no longer kept
   * (the snapshot it got is then its state), or `{"type":"history_unavailable"}` (retry later).
   * Live critical messages may arrive while this runs: a client skips offsets it already has.
   */
  private async recoverHistory(ws: WebSocket<OverlayClient>, client: OverlayClient, sub: Subscription): Promise<void> {
    const since = sub.since!;
    let reply: HistoryReply;
    try {
      if (!this.o.recover) throw new Error('history is not available on this server');
      reply = await this.o.recover({ run: since.run, since: since.offset, epoch: since.epoch, levelBit: LEVEL_BIT[sub.level] });
    } catch (error) {
      reply = { ok: false, gone: false, reason: (error as Error).message };
    }
    // The socket may have closed while we waited: never touch it then.
    if (client.closed || client.closeReason || client.sub !== sub) return;
    this.counts.recoveries++;
    ws.cork(() => {
      if (!reply.ok) {
        ws.send(JSON.stringify({ type: reply.gone ? 'history_gone' : 'history_unavailable', run: since.run, reason: reply.reason, epoch: reply.epoch ?? null, offset: reply.offset ?? null }), false);
        return;
      }
      let sent = 0;
      for (const m of reply.messages) {
        if (!sub.channels.includes(m.channel)) continue;
        ws.send(m.body, false);
        sent++;
      }
      ws.send(JSON.stringify({ type: 'history_recovered', run: since.run, epoch: reply.epoch, offset: reply.offset, count: sent }), false);
    });
  }

  /** `{"type":"resync"}`: the full state of every key (a delta client that lost track). False when the text is something else. */
  private resync(ws: WebSocket<OverlayClient>, client: OverlayClient, text: string): boolean {
    let msg: unknown;
    try { msg = JSON.parse(text); } catch { return false; }
    if (msg === null || typeof msg !== 'object' || (msg as { type?: unknown }).type !== 'resync') return false;
    if (!client.sub) {
      this.protocolError(ws, 'resync before any subscription: subscribe first');
      return true;
    }
    this.counts.resyncs++;
    this.o.metrics.resyncs.inc();
    // A slow client gets every key's latest value as it drains; nothing to add now.
    if (!client.slow) ws.cork(() => this.sendState(ws, client, false));
    return true;
  }

  drain(ws: WebSocket<OverlayClient>): void {
    const client = ws.getUserData();
    if (client.slow && !client.closed) this.serviceSlow(ws, client, ws.getBufferedAmount());
  }

  close(ws: WebSocket<OverlayClient>): void {
    const client = ws.getUserData();
    client.closed = true;
    this.cancelSnapshot(client);
    this.ending.delete(ws);
    if (this.clients.delete(ws)) {
      this.o.metrics.clients.dec({ endpoint: 'overlay' });
      if (client.sub) for (const ch of client.sub.channels) this.channelCounters[ch].subscriptions.dec();
    }
    if (client.slow) this.setHealthyCounts(client);
    this.slowClients.delete(ws);
    client.criticalQueue.length = 0;
    this.o.metrics.disconnects.inc({ endpoint: 'overlay', reason: client.closeReason ?? (this.stopping ? 'shutdown' : 'client') });
  }

  // ------------------------------------------------------------ fan-out records

  /** Handles one fan-out ring record of type Update or Reset (the caller routes Experience). */
  onRecord(data: Uint8Array, offset: number, length: number): void {
    const rec = readFanoutRecord(data, offset, length);
    if (rec.channel >= CHANNELS.length || rec.bodyLength < 0) return;
    // One copy out of the ring (the ring reuses these bytes); every publish shares it.
    const body = data.slice(rec.bodyOffset, rec.bodyOffset + rec.bodyLength);
    if (rec.type === FanoutType.Reset) {
      this.latest.reset(rec.channel, rec.key);
      this.deltas.forget(rec.channel, rec.key);
      this.o.metrics.stateKeys.set(this.latest.size);
      if (body.byteLength > 0) this.publishCritical(rec.channel, rec.levelMask, body);
      return;
    }
    if (rec.type !== FanoutType.Update) return;
    const critical = (rec.flags & FanoutFlag.Critical) !== 0;
    const retain = (rec.flags & FanoutFlag.Retain) !== 0;
    // A live-only delta is meaningless as state; a no-live record is state that full-rate
    // clients already follow through the deltas.
    let before: Array<Version | undefined> | undefined;
    let entry: LatestEntry | undefined;
    if ((rec.flags & FanoutFlag.LiveOnly) === 0) {
      const previous = this.latest.get(rec.channel, rec.key);
      before = LEVELS.map((_, lv) => this.versionOf(previous, lv));
      if (!this.latest.put(rec.channel, rec.key, rec.levelMask, body, retain, critical)) this.o.metrics.stateKeysRefused.inc();
      else entry = this.latest.get(rec.channel, rec.key);
      this.o.metrics.stateKeys.set(this.latest.size);
    }
    const published = this.counts.published;
    if (critical) {
      this.publishCritical(rec.channel, rec.levelMask, body, entry);
    } else {
      // Delta subscribers follow state (not the live-only tails), at the live tier as it changes.
      const live = this.o.plan.live;
      if (before && live) this.publishDeltas(rec.channel, rec.key, rec.levelMask, live, before, entry, body);
      if (rec.flags & FanoutFlag.NoLive) return;
      if (!live) return; // every tier is conflated: the tier timers publish it
      const tierIndex = this.o.plan.tiers.indexOf(live);
      for (let level = 0; level < LEVELS.length; level++) {
        if (rec.levelMask & (1 << level)) this.publish(this.updateTopics[rec.channel][level][tierIndex], body, rec.channel);
      }
    }
    // One observation per message that reached someone, from the stamp the aggregator carried through.
    if (this.counts.published !== published && rec.stamp > 0) {
      this.o.metrics.e2eLatency.observe({ channel: CHANNELS[rec.channel] }, Math.max(0, Date.now() - rec.stamp) / 1000);
    }
  }

  /** Retained messages at one level, as a JSON object text keyed by message key (for GET /api/snapshot). */
  stateJson(level: (typeof LEVELS)[number]): string {
    const lv = levelId(level);
    const parts: string[] = [];
    const decoder = new TextDecoder();
    for (const entry of this.latest.values()) {
      const bytes = entry.bytes[lv];
      if (!entry.retain || !bytes) continue;
      parts.push(`${JSON.stringify(entry.key)}:${decoder.decode(bytes)}`);
    }
    return `{${parts.join(',')}}`;
  }

  // ------------------------------------------------------------ slow clients

  /** Periodic check of every client's buffered amount. */
  checkBackpressure(now = Date.now()): void {
    for (const ws of this.ending) {
      const client = ws.getUserData();
      if (!client.closed && client.endedAt !== undefined && now - client.endedAt > END_GRACE_MS) {
        try { ws.close(); } catch { /* already gone */ }
      }
    }
    const soft = this.o.softLimitBytes;
    for (const ws of this.clients) {
      const client = ws.getUserData();
      if (client.closeReason || !client.sub) continue;
      const buffered = ws.getBufferedAmount();
      if (buffered > this.counts.maxBufferedSeen) this.counts.maxBufferedSeen = buffered;
      if (buffered > this.o.hardLimitBytes) {
        this.counts.disconnectsTooSlow++;
        this.closeWith(ws, 'too_slow', CLOSE_TOO_SLOW, `too slow: ${buffered} bytes waiting to be sent, limit ${this.o.hardLimitBytes}`);
      } else if (client.slow) {
        this.serviceSlow(ws, client, buffered);
      } else if (buffered > soft) {
        this.makeSlow(ws, client);
      }
    }
  }

  private makeSlow(ws: WebSocket<OverlayClient>, client: OverlayClient): void {
    const topics = client.topics;
    this.unsubscribeAll(ws, client);
    client.slow = true;
    this.slowClients.add(ws);
    this.o.metrics.slowClients.set(this.slowClients.size);
    // Topics keep the list so skipped publishes can be counted and resubscription restores them.
    client.topics = topics;
    for (const t of topics) this.slowPerTopic.set(t, (this.slowPerTopic.get(t) ?? 0) + 1);
  }

  private setHealthyCounts(client: OverlayClient): void {
    for (const t of client.topics) {
      const n = (this.slowPerTopic.get(t) ?? 1) - 1;
      if (n <= 0) this.slowPerTopic.delete(t);
      else this.slowPerTopic.set(t, n);
    }
    client.topics = [];
  }

  /** Sends queued criticals while under the soft limit; back to healthy once drained to half of it. */
  private serviceSlow(ws: WebSocket<OverlayClient>, client: OverlayClient, buffered: number): void {
    const soft = this.o.softLimitBytes;
    if (client.criticalQueue.length > 0 && buffered < soft) {
      ws.cork(() => {
        while (client.criticalQueue.length > 0 && ws.getBufferedAmount() < soft) ws.send(client.criticalQueue.shift()!, false);
      });
    }
    if (client.criticalQueue.length === 0 && ws.getBufferedAmount() < soft / 2) {
      this.setHealthyCounts(client);
      client.slow = false;
      this.slowClients.delete(ws);
      this.o.metrics.slowClients.set(this.slowClients.size);
      this.subscribeAll(ws, client);
      this.counts.resubscribed++;
      // Catch up: the latest value of every key replaces everything it skipped.
      ws.cork(() => this.sendState(ws, client, false));
    }
  }

  // ------------------------------------------------------------ internals

  private closeWith(ws: WebSocket<OverlayClient>, reason: DisconnectReason, code: number, text: string): void {
    const client = ws.getUserData();
    if (client.closeReason || client.closed) return;
    client.closeReason = reason;
    client.endedAt = Date.now();
    client.criticalQueue.length = 0;
    this.cancelSnapshot(client);
    if (client.slow) {
      this.setHealthyCounts(client);
      this.slowClients.delete(ws);
      this.o.metrics.slowClients.set(this.slowClients.size);
      client.slow = false;
    } else {
      this.unsubscribeAll(ws, client);
    }
    this.ending.add(ws);
    // The close reason is limited to 123 bytes by the protocol.
    ws.end(code, text.length > 120 ? text.slice(0, 120) : text);
  }

  private protocolError(ws: WebSocket<OverlayClient>, error: string): void {
    this.counts.protocolErrors++;
    this.o.metrics.protocolErrors.inc({ endpoint: 'overlay' });
    ws.send(JSON.stringify({ type: 'error', error }), false);
  }

  /** The uWS topics of a client's subscription: per channel, its level's tier topic and critical topic. */
  private topicsOf(client: OverlayClient): string[] | undefined {
    const sub = client.sub;
    if (!sub || !client.tier) return undefined;
    const lv = levelId(sub.level);
    const tierIndex = this.o.plan.tiers.indexOf(client.tier);
    const topics: string[] = [];
    for (const ch of sub.channels) {
      if (sub.delta) topics.push(this.deltaTopics[ch][lv][tierIndex], this.deltaCriticalTopics[ch][lv]);
      else topics.push(this.updateTopics[ch][lv][tierIndex], this.criticalTopics[ch][lv]);
    }
    return topics;
  }

  private subscribeAll(ws: WebSocket<OverlayClient>, client: OverlayClient): void {
    const topics = this.topicsOf(client);
    if (!topics) return;
    for (const t of topics) ws.subscribe(t);
    client.topics = topics;
  }

  private unsubscribeAll(ws: WebSocket<OverlayClient>, client: OverlayClient): void {
    if (client.slow) {
      this.setHealthyCounts(client);
      // Re-subscription while slow: the new topics are registered as slow ones below.
      return;
    }
    for (const t of client.topics) ws.unsubscribe(t);
    client.topics = [];
  }

  /**
   * Sends the client's state: retained messages (a new subscription) or the latest value
   * of every key (a slow client catching up). Criticals are only part of it when retained.
   */
  private sendState(ws: WebSocket<OverlayClient>, client: OverlayClient, retainedOnly: boolean): void {
    const sub = client.sub;
    if (!sub) return;
    const lv = levelId(sub.level);
    const wanted = new Set(sub.channels);
    for (const entry of this.latest.values()) {
      const bytes = entry.bytes[lv];
      if (!bytes || !wanted.has(entry.channel)) continue;
      if (!(entry.retain || (!retainedOnly && !entry.critical))) continue;
      if (!sub.delta) { ws.send(bytes, false); continue; }
      // A conflated tier's delta client gets the version its tier last published, which the tier's next delta follows.
      const tier = client.tier;
      const version = (tier && !tier.live ? this.deltas.tierVersion(tier, entry.channel, entry.key, lv) : undefined) ?? { seq: entry.seq[lv], bytes };
      ws.send(this.deltas.full(entry.key, version), false);
    }
  }

  /** A slow client re-subscribing: its new topic set is registered as slow (see unsubscribeAll). */
  private registerSlowTopics(client: OverlayClient): void {
    const topics = this.topicsOf(client);
    if (!topics) return;
    client.topics = topics;
    for (const t of topics) this.slowPerTopic.set(t, (this.slowPerTopic.get(t) ?? 0) + 1);
  }

  private sendSnapshot(ws: WebSocket<OverlayClient>, client: OverlayClient, now: number): void {
    client.lastSnapshotAt = now;
    this.counts.snapshotsSent++;
    this.o.metrics.snapshots.inc({ outcome: 'sent' });
    this.sendState(ws, client, true);
  }

  /** One snapshot owed once the interval is up; a re-subscription while one is owed just joins it. */
  private deferSnapshot(ws: WebSocket<OverlayClient>, client: OverlayClient, now: number): void {
    if (client.snapshotTimer) {
      this.counts.snapshotsCoalesced++;
      this.o.metrics.snapshots.inc({ outcome: 'coalesced' });
      return;
    }
    this.counts.snapshotsDeferred++;
    this.o.metrics.snapshots.inc({ outcome: 'deferred' });
    client.snapshotTimer = setTimeout(() => {
      client.snapshotTimer = undefined;
      if (client.closed || client.closeReason || this.stopping) return;
      ws.cork(() => this.sendSnapshot(ws, client, Date.now()));
    }, Math.max(0, client.lastSnapshotAt + this.snapshotIntervalMs - now));
  }

  private cancelSnapshot(client: OverlayClient): void {
    if (client.snapshotTimer) clearTimeout(client.snapshotTimer);
    client.snapshotTimer = undefined;
  }

  private takeMessageToken(client: OverlayClient, now: number): boolean {
    const refill = ((now - client.tokensAt) / 1000) * MESSAGES_PER_SECOND;
    client.messageTokens = Math.min(MESSAGE_BURST, client.messageTokens + Math.max(0, refill));
    client.tokensAt = now;
    if (client.messageTokens < 1) return false;
    client.messageTokens -= 1;
    return true;
  }

  private countSkipped(topic: string): void {
    const skipped = this.slowPerTopic.get(topic);
    if (skipped) {
      this.counts.skippedSlow += skipped;
      this.o.metrics.skippedSlow.inc(skipped);
    }
  }

  private publish(topic: string, body: Uint8Array, channel: number): void {
    this.countSkipped(topic);
    const subscribers = this.app.numSubscribers(topic);
    if (subscribers === 0) return;
    this.app.publish(topic, body, false);
    this.counts.published++;
    this.counts.deliveries += subscribers;
    const c = this.channelCounters[channel];
    c.published.inc();
    c.deliveries.inc(subscribers);
    c.bytes.inc(body.byteLength * subscribers);
  }

  /** An entry's version at one level (undefined when never sent at that level). */
  private versionOf(entry: LatestEntry | undefined, level: number): Version | undefined {
    const bytes = entry?.bytes[level];
    return entry && bytes ? { seq: entry.seq[level], bytes } : undefined;
  }

  /** One state change on the delta topics of one tier: a delta from what the topic carried before, made only when someone listens. */
  private publishDeltas(channel: number, key: string, levelMask: number, tier: FpsTier, before: Array<Version | undefined>, entry: LatestEntry | undefined, body: Uint8Array): void {
    const tierIndex = this.o.plan.tiers.indexOf(tier);
    for (let level = 0; level < LEVELS.length; level++) {
      if (!(levelMask & (1 << level))) continue;
      const topic = this.deltaTopics[channel][level][tierIndex];
      const to = this.versionOf(entry, level);
      if (!tier.live && to) this.deltas.setTierVersion(tier, channel, key, level, to);
      if (this.app.numSubscribers(topic) === 0) { this.countSkipped(topic); continue; }
      // A key the store refused has no version: its clients get it as a plain message.
      this.publish(topic, to ? this.deltas.update(key, before[level], to) : body, channel);
    }
  }

  private publishCritical(channel: number, levelMask: number, body: Uint8Array, entry?: LatestEntry): void {
    for (let level = 0; level < LEVELS.length; level++) {
      if (!(levelMask & (1 << level))) continue;
      this.publish(this.criticalTopics[channel][level], body, channel);
      const version = this.versionOf(entry, level);
      if (entry && version) {
        this.publish(this.deltaCriticalTopics[channel][level], this.deltas.full(entry.key, version), channel);
        // Conflated tiers' next delta of this key follows the version their clients just got.
        for (const tier of this.o.plan.tiers) if (!tier.live) this.deltas.setTierVersion(tier, channel, entry.key, level, version);
      } else {
        this.publish(this.deltaCriticalTopics[channel][level], body, channel);
      }
    }
    // Slow clients are off the topics: criticals go to them through their bounded queue.
    for (const ws of this.slowClients) {
      const client = ws.getUserData();
      const sub = client.sub;
      if (!sub || !(levelMask & (1 << levelId(sub.level))) || !sub.channels.includes(channel)) continue;
      if (client.criticalQueue.length >= this.o.criticalQueueLimit) {
        this.o.metrics.criticalDropped.inc();
        this.counts.disconnectsTooSlow++;
        this.closeWith(ws, 'critical_queue_full', CLOSE_TOO_SLOW, `too slow: ${this.o.criticalQueueLimit} critical messages waiting`);
        continue;
      }
      const version = this.versionOf(entry, levelId(sub.level));
      client.criticalQueue.push(sub.delta && entry && version ? this.deltas.full(entry.key, version) : body);
      this.counts.criticalQueued++;
      this.o.metrics.criticalQueued.inc();
      this.serviceSlow(ws, client, ws.getBufferedAmount());
    }
  }

  /** A conflated tier's tick: the latest value of every key changed since its last flush. */
  private flushTier(tier: FpsTier): void {
    const since = this.tierFlushedSeq.get(tier) ?? 0;
    const now = this.latest.seq;
    if (now === since) return;
    this.tierFlushedSeq.set(tier, now);
    const tierIndex = this.o.plan.tiers.indexOf(tier);
    for (const entry of this.latest.values()) {
      if (entry.critical) continue;
      for (let level = 0; level < LEVELS.length; level++) {
        const bytes = entry.bytes[level];
        if (!bytes || entry.seq[level] <= since) continue;
        this.publish(this.updateTopics[entry.channel][level][tierIndex], bytes, entry.channel);
        const before = LEVELS.map((_, lv) => (lv === level ? this.deltas.tierVersion(tier, entry.channel, entry.key, lv) : undefined));
        this.publishDeltas(entry.channel, entry.key, 1 << level, tier, before, entry, bytes);
      }
    }
  }
}

