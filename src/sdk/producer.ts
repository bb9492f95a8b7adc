/**
 * Network producer: a trainer process streams telemetry to ringcast over
 * `tcp://host:port`, `unix:///path/to/ingest.sock` (the ingest actor) or
 * `ws://host:port/ingest` (a gateway). Same contract as the Python client:
 *
 *   - every emit* encodes and enqueues in microseconds, never throws, never blocks;
 *   - the queue is bounded (events and bytes); when full it drops the lowest-priority,
 *     oldest event first (`EVENT_PRIORITY`: experience first, milestones last), counted
 *     per kind in stats().dropped;
 *   - events go out batched into frames (batchMaxEvents / batchMaxBytes, or every
 *     flushIntervalMs), the first frame on each connection being the hello;
 *   - a lost connection reconnects with exponential backoff and jitter; after
 *     `failureThreshold` consecutive failures the circuit breaker opens (no attempts for
 *     `openMs`, doubling per failed trial), then half-opens (one trial connection) and
 *     closes on the server's Ack (or a connection that stays up `healthyAfterMs`);
 *   - Error events from the server are read and counted (stats().errorsFromServer);
 *   - delivery: the hello asks the server to acknowledge every frame once its events are in
 *     the server's ring; frames a lost connection never acknowledged go out again on the
 *     next one (at-least-once: one whose ack was lost may arrive twice), a connection whose
 *     acks stop for `ackTimeoutMs` is abandoned, and what close() cannot confirm is counted
 *     as `unconfirmed_<kind>`. (A server without acks: written frames count as delivered.)
 *   - milestones and finished games (a game state with a result) go out at once, not at
 *     the next flush tick.
 *   - `spoolDir`: while the server is unreachable, queued events go to a bounded on-disk
 *     spool (./spool.ts) instead of waiting in memory (or being dropped); once connected they
 *     are sent marked late (`meta.late`, `meta.backlog`), rate-limited, in the gaps between
 *     live frames, and what a restarted producer finds there is sent too.
 *
 * Example, hooking a PPO learn() call:
 *
 *   import { createProducer } from 'ringcast/dist/src/sdk/index.js'; // this module, compiled
 *   const telemetry = createProducer('tcp://127.0.0.1:8081', { token: process.env.RINGCAST_INGEST_TOKEN!, run: 'ppo-42' });
 *   const learn = agent.learn.bind(agent);
 *   agent.learn = (batch, globalStep) => {
 *     const out = learn(batch, globalStep);          // { policyLoss, valueLoss, entropy, klDivergence, ... }
 *     telemetry.emitPpoMetrics({ 'ppo/policy_loss': out.policyLoss, 'ppo/value_loss': out.valueLoss,
 *       'ppo/entropy': out.entropy, 'ppo/kl_divergence_approx': out.klDivergence }, globalStep);
 *     return out;
 *   };
 *   process.once('beforeExit', () => void telemetry.close(2000)); // flush what is queued
 *
 * Timers and sockets are unref'd: the producer never keeps a finished trainer alive, so
 * call close() at the end to flush what is still queued. stats().state: 'connected',
 * 'disconnected' (reconnecting), 'open' / 'half-open' (breaker), 'closed' (after close()).
 */
import net from 'node:net';
import { Counter, type Registry } from 'prom-client';
import { decodeFrame, encodeEvent, EventKind, type ControlEvent } from '../shared/telemetry/event-codec.js';
import { StreamFramer } from '../actors/ingest/stream-framer.js';
import type { EncodeOptions } from './encode.js';
import { EventProducer } from './event-producer.js';
import { PriorityDropQueue, type QueueEntry } from './priority-queue.js';
import { EVENT_PRIORITY, type EventKindName, type ProducerStats, type TelemetryProducer } from './types.js';
import { WsClient } from './ws-client.js';
import { markLate, Spool } from './spool.js';

export interface ProducerOptions {
  /** Ingest token (auth.ingestToken on the server). */
  token: string;
  /** Run the events belong to; the server's default run when omitted. */
  run?: string;
  /** Free-form client name sent in the hello (shows in server logs). */
  client?: string;
  // Defaults match the Python client (clients/python/ringcast_client.py).
  /** Most events queued while disconnected or slow. Default 4096. */
  queueSize?: number;
  /** Most bytes queued. Default 64 MiB. */
  queueMaxBytes?: number;
  /** Events per frame; a full batch goes out at once. Default 256. */
  batchMaxEvents?: number;
  /** Bytes per frame; keep it under the server's maxFrameBytes (one larger event still goes alone). Default 1 MiB. */
  batchMaxBytes?: number;
  /** A partial batch waits at most this long. Default 50 ms. */
  flushIntervalMs?: number;
  /** Stop handing frames to the socket while it holds this many unsent bytes. Default 4 MiB. */
  writeBufferBytes?: number;
  /** Connect (and WebSocket upgrade) timeout. Default 2000 ms. */
  connectTimeoutMs?: number;
  /** Reconnect backoff: initialMs × 2^(failures-1), capped at maxMs, times a jitter in [0.5, 1). Default 100 / 10000 ms. */
  reconnect?: { initialMs?: number; maxMs?: number };
  /**
   * Consecutive failures that open the breaker (default 3), and its first open period
   * (default 1000 ms; doubles on every failed half-open trial up to reconnect.maxMs,
   * jittered ±20%, reset by a success).
   */
  breaker?: { failureThreshold?: number; openMs?: number };
  /** A connection that lived this long counts as a success even without an Ack. Default 2000 ms. */
  healthyAfterMs?: number;
  /** Frames written and unacknowledged this long mean the server is gone: reconnect and resend. Default 5000 ms. */
  ackTimeoutMs?: number;
  /** Directory of the offline spool (see the top of this file); none by default. */
  spoolDir?: string;
  /** Bound of the spool on disk; past it the oldest events go, counted. Default 256 MiB. */
  spoolMaxBytes?: number;
  /** Events per second sent from the spool once connected. Default 1000. */
  spoolRate?: number;
  /** Optional prom-client registry for `ringcast_producer_*` series. */
  metrics?: Registry;
  /** Hears state changes (for logging and tests). */
  onStateChange?: (state: ProducerStats['state']) => void;
  /** Hears server Error events and transport errors (for logging). Never called synchronously from emit*. */
  onError?: (message: string) => void;
}

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface NetworkProducerStats extends ProducerStats {
  breaker: BreakerState;
  queuedBytes: number;
  /** Successful connections (hello acknowledged). */
  connections: number;
  /** Connect attempts that failed or connections lost before the server's Ack. */
  connectFailures: number;
  /** Events the server confirmed (per-frame acks). */
  delivered: number;
  /** Events written and not yet confirmed. */
  unacked: number;
  /** Events sent again because their connection died unconfirmed. */
  resent: number;
  lastTransportError?: string;
  /** Offline spool (zeros without spoolDir): events written to it, sent from it and acknowledged, */
  spooled: number;
  sentFromSpool: number;
  /** deleted unsent past spoolMaxBytes (oldest first), bytes on disk, events still to send, */
  droppedOldest: number;
  spoolBytes: number;
  spoolBacklog: number;
  /** torn records skipped when it was read back, and failed spool writes or reads (the last in spoolError). */
  spoolTorn: number;
  spoolErrors: number;
  spoolError?: string;
}

type Target = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string } | { kind: 'ws'; url: URL };

/** A connected transport. */
interface Link {
  readonly ready: boolean;
  readonly buffered: number;
  /**
   * One frame of `events` (`bytes` in all), written straight into the transport's own framing
   * (a length prefix, a masked WebSocket frame): no joined copy of the batch first.
   */
  send(events: readonly Uint8Array[], bytes: number): void;
  end(): void;
  destroy(): void;
}

interface LinkHandlers {
  onOpen(): void;
  onFrame(frame: Uint8Array): void;
  onDrain(): void;
  onClose(reason: string): void;
}

const PRIORITY_LEVELS = Math.max(...Object.values(EVENT_PRIORITY)) + 1;
/** Frames written and unacknowledged before flushing waits for acks: bounds what a dead connection takes (and what is resent). */
const MAX_UNACKED_FRAMES = 64;

/** One written frame awaiting the server's ack; `spool` for a frame read from the spool (its events stay on disk until acked). */
interface UnackedFrame {
  frame: number;
  entries: QueueEntry<EventKindName>[];
  spool?: { segment: number; end: number; count: number };
}
const MAX_REPLY_FRAME = 1 << 20;

export function parseProducerUrl(url: string): Target {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`createProducer: "${url}" is not a URL (expected tcp://host:port, unix:///path or ws://host:port/ingest)`);
  }
  switch (u.protocol) {
    case 'tcp:': {
      const port = Number(u.port);
      if (!u.hostname || !Number.isInteger(port) || port < 1 || port > 65535) throw new TypeError(`createProducer: ${url} needs a host and a port (tcp://host:port)`);
      return { kind: 'tcp', host: u.hostname.replace(/^\[|\]$/g, ''), port };
    }
    case 'unix:':
      if (!u.pathname || u.pathname === '/') throw new TypeError(`createProducer: ${url} needs a socket path (unix:///path/to/ingest.sock)`);
      return { kind: 'unix', path: decodeURIComponent(u.pathname) };
    case 'ws:':
    case 'wss:':
      return { kind: 'ws', url: u };
    default:
      throw new TypeError(`createProducer: unsupported scheme "${u.protocol}" in ${url} (tcp:, unix:, ws:, wss:)`);
  }
}

function streamLink(target: Extract<Target, { kind: 'tcp' | 'unix' }>, h: LinkHandlers, timeoutMs: number): Link {
  const socket = target.kind === 'tcp' ? net.connect({ host: target.host, port: target.port }) : net.connect({ path: target.path });
  socket.unref();
  let ready = false;
  let reason = 'connection closed by the server';
  const timer = setTimeout(() => { reason = `connect timed out after ${timeoutMs} ms`; socket.destroy(); }, timeoutMs);
  timer.unref();
  const framer = new StreamFramer(MAX_REPLY_FRAME);
  socket.once('connect', () => {
    clearTimeout(timer);
    socket.setNoDelay(true);
    ready = true;
    h.onOpen();
  });
  socket.on('data', (chunk: Buffer) => {
    const error = framer.push(chunk, h.onFrame);
    if (error !== undefined) { reason = `server reply stream out of step: ${error}`; socket.destroy(); }
  });
  socket.on('drain', () => h.onDrain());
  socket.on('error', (error) => { reason = error.message; });
  socket.on('close', () => { clearTimeout(timer); ready = false; h.onClose(reason); });
  return {
    get ready() { return ready && socket.writable; },
    get buffered() { return socket.writableLength; },
    send(events, bytes) {
      const framed = new Uint8Array(4 + bytes);
      new DataView(framed.buffer).setUint32(0, bytes, true);
      let p = 4;
      for (const e of events) { framed.set(e, p); p += e.byteLength; }
      socket.write(framed);
    },
    end: () => socket.end(),
    destroy: () => socket.destroy(),
  };
}

function wsLink(url: URL, token: string, h: LinkHandlers, timeoutMs: number): Link {
  // The hello authenticates too; the header lets a gateway refuse at the upgrade already.
  const ws = new WsClient(url, { headers: { Authorization: `Bearer ${token}` }, handshakeTimeoutMs: timeoutMs });
  ws.unref();
  let reason = 'connection closed by the server';
  ws.on('open', () => h.onOpen());
  ws.on('message', (data: Uint8Array, binary: boolean) => { if (binary) h.onFrame(data); });
  ws.on('drain', () => h.onDrain());
  ws.on('error', (error: Error) => { reason = error.message; });
  ws.on('close', (code: number, why: string) => h.onClose(why ? `${reason} (close ${code}: ${why})` : reason));
  return {
    get ready() { return ws.isOpen; },
    get buffered() { return ws.bufferedAmount; },
    send: (events) => { ws.sendParts(events); },
    end: () => ws.close(1000, 'producer closing'),
    destroy: () => ws.terminate(),
  };
}

export class NetworkProducer extends EventProducer implements TelemetryProducer {
  private readonly target: Target;
  private readonly o: Required<Omit<ProducerOptions, 'run' | 'client' | 'metrics' | 'onStateChange' | 'onError' | 'reconnect' | 'breaker' | 'healthyAfterMs' | 'ackTimeoutMs' | 'spoolDir' | 'spoolMaxBytes' | 'spoolRate'>> & {
    reconnectInitialMs: number; reconnectMaxMs: number; failureThreshold: number; openMs: number; healthyAfterMs: number; ackTimeoutMs: number;
  };
  private readonly options: ProducerOptions;
  private readonly queue: PriorityDropQueue<EventKindName>;
  /** Queued events outlive the scratch buffer, so every encode returns its own copy. */
  private readonly copyOptions: EncodeOptions = { copy: true };
  private readonly hello: Uint8Array;
  private readonly batch: QueueEntry<EventKindName>[] = [];
  private readonly onDropTag = (kind: EventKindName) => this.count(kind, 'queue_full');

  private link: Link | undefined;
  private acked = false;
  /** Per connection: undefined until the hello's Ack says whether the server acks frames. */
  private frameAcks: boolean | undefined;
  private framesSent = 0;
  private readonly unacked: UnackedFrame[] = [];
  private unackedEvents = 0;
  private ackProgressAt = 0;
  /** Why we dropped the connection ourselves, for lastTransportError. */
  private abandoned: string | undefined;
  private delivered = 0;
  private resent = 0;
  private breaker: BreakerState = 'closed';
  private failures = 0;
  /** The next open period; doubles per failed trial, back to openMs on success. */
  private cooldownMs = 0;
  private openedAt = 0;
  private lastState: ProducerStats['state'] = 'disconnected';
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly flushTimer: NodeJS.Timeout;
  private closing = false;
  private stopped = false;
  private closePromise: Promise<void> | undefined;

  private sent = 0;
  private readonly dropped: Record<string, number> = {};
  private errorsFromServer = 0;
  private lastServerError: string | undefined;
  private lastTransportError: string | undefined;
  private inputError: string | undefined;
  private connections = 0;
  private connectFailures = 0;
  private readonly m: ProducerMetrics | undefined;
  private readonly spool: Spool | undefined;
  private readonly spoolRate: number;
  private spoolTokens = 0;
  private spoolRefillAt = Date.now();
  private spoolErrors = 0;
  private spoolError: string | undefined;
  /** Set when a connection is lost or an attempt fails, cleared on connect: queued events then go to the spool. */
  private offline = false;

  constructor(url: string, options: ProducerOptions) {
    super();
    this.target = parseProducerUrl(url);
    if (!options || typeof options.token !== 'string' || options.token.length === 0) throw new TypeError('createProducer: options.token (the ingest token) is required');
    this.options = options;
    const positive = (v: number | undefined, fallback: number, what: string) => {
      const n = v ?? fallback;
      if (!Number.isFinite(n) || n <= 0) throw new RangeError(`createProducer: ${what} must be a positive number (got ${String(v)})`);
      return n;
    };
    this.o = {
      token: options.token,
      queueSize: Math.floor(positive(options.queueSize, 4096, 'queueSize')),
      queueMaxBytes: Math.floor(positive(options.queueMaxBytes, 64 << 20, 'queueMaxBytes')),
      batchMaxEvents: Math.floor(positive(options.batchMaxEvents, 256, 'batchMaxEvents')),
      batchMaxBytes: Math.floor(positive(options.batchMaxBytes, 1 << 20, 'batchMaxBytes')),
      flushIntervalMs: positive(options.flushIntervalMs, 50, 'flushIntervalMs'),
      writeBufferBytes: positive(options.writeBufferBytes, 4 << 20, 'writeBufferBytes'),
      connectTimeoutMs: positive(options.connectTimeoutMs, 2000, 'connectTimeoutMs'),
      reconnectInitialMs: positive(options.reconnect?.initialMs, 100, 'reconnect.initialMs'),
      reconnectMaxMs: positive(options.reconnect?.maxMs, 10_000, 'reconnect.maxMs'),
      failureThreshold: Math.floor(positive(options.breaker?.failureThreshold, 3, 'breaker.failureThreshold')),
      openMs: positive(options.breaker?.openMs, 1000, 'breaker.openMs'),
      healthyAfterMs: positive(options.healthyAfterMs, 2000, 'healthyAfterMs'),
      ackTimeoutMs: positive(options.ackTimeoutMs, 5000, 'ackTimeoutMs'),
    };
    this.cooldownMs = this.o.openMs;
    this.queue = new PriorityDropQueue(this.o.queueSize, this.o.queueMaxBytes, PRIORITY_LEVELS);
    const helloMeta: Record<string, unknown> = { token: options.token };
    if (options.run !== undefined) helloMeta.run = options.run;
    helloMeta.client = options.client ?? `ringcast-sdk-node/${process.version}`;
    helloMeta.acks = true;
    this.hello = encodeEvent(EventKind.Hello, helloMeta);
    this.m = options.metrics ? producerMetrics(options.metrics) : undefined;
    this.spoolRate = positive(options.spoolRate, 1000, 'spoolRate');
    // A spool that cannot be opened is a configuration error the caller should hear about at once.
    this.spool = options.spoolDir === undefined ? undefined : new Spool(options.spoolDir, positive(options.spoolMaxBytes, 256 << 20, 'spoolMaxBytes'));
    this.flushTimer = setInterval(() => { this.checkAcks(); this.toSpool(); this.flush(); this.spool?.maybeSync(); }, this.o.flushIntervalMs);
    this.flushTimer.unref();
    this.connect();
  }

  /**
   * `dropped` keys: `<kind>` (queue overflow), `invalid_<kind>` (input that could not be
   * encoded; the reason is lastInputError()), `metrics_invalid_value` (single non-finite
   * metric values skipped), `closed_<kind>` (emitted after close()), `unsent_<kind>`
   * (still queued when close() gave up), `unconfirmed_<kind>` (written, but the server had
   * not acknowledged it when close() gave up).
   */
  stats(): NetworkProducerStats {
    return {
      sent: this.sent,
      dropped: { ...this.dropped },
      queued: this.queue.length,
      queuedBytes: this.queue.bytes,
      errorsFromServer: this.errorsFromServer,
      lastServerError: this.lastServerError,
      state: this.state(),
      breaker: this.breaker,
      connections: this.connections,
      connectFailures: this.connectFailures,
      lastTransportError: this.lastTransportError,
      delivered: this.delivered,
      unacked: this.unackedEvents,
      resent: this.resent,
      spooled: this.spool?.spooled ?? 0,
      sentFromSpool: this.spool?.sent ?? 0,
      droppedOldest: this.spool?.droppedOldest ?? 0,
      spoolBytes: this.spool?.bytes ?? 0,
      spoolBacklog: this.spool?.pending ?? 0,
      spoolTorn: this.spool?.torn ?? 0,
      spoolErrors: this.spoolErrors,
      spoolError: this.spoolError,
    };
  }

  /** Why the last emit was refused as invalid (or a metric value skipped), if one was. */
  lastInputError(): string | undefined {
    return this.inputError;
  }

  /**
   * Stops taking events, sends what is queued (waiting for a connection if need be) for at
   * most `timeoutMs`, then closes the connection. What could not be sent is counted as
   * `unsent_<kind>`.
   */
  close(timeoutMs = 5000): Promise<void> {
    this.closePromise ??= this.shutdown(timeoutMs);
    return this.closePromise;
  }

  // ───────────────────────────── internals ─────────────────────────────

  protected encodeOptions(): EncodeOptions {
    return this.copyOptions;
  }

  protected accepting(kind: EventKindName): boolean {
    if (!this.closing) return true;
    this.count(kind, 'closed');
    return false;
  }

  protected deliver(kind: EventKindName, bytes: Uint8Array, critical: boolean): void {
    this.queue.push(bytes, EVENT_PRIORITY[kind], kind, this.onDropTag);
    // A full batch goes out now rather than at the next tick: a trainer loop that does
    // not yield for a while still gets its events into the kernel's socket buffer. So does
    // a critical event, which viewers should see at once.
    if (critical || this.queue.length >= this.o.batchMaxEvents) this.flush();
  }

  protected invalid(kind: EventKindName, error: unknown): void {
    this.inputError = error instanceof Error ? error.message : String(error);
    this.count(kind, 'invalid');
  }

  protected skippedMetricValues(count: number, lastSkip: string | undefined): void {
    for (let i = 0; i < count; i++) this.count('metrics', 'invalid_value');
    this.inputError = lastSkip;
  }

  /** reason: queue_full → `<kind>`, otherwise `<reason>_<kind>` (see stats()). */
  private count(kind: EventKindName, reason: 'queue_full' | 'invalid' | 'invalid_value' | 'closed' | 'unsent' | 'unconfirmed'): void {
    const key = reason === 'queue_full' ? kind : reason === 'invalid_value' ? 'metrics_invalid_value' : `${reason}_${kind}`;
    this.dropped[key] = (this.dropped[key] ?? 0) + 1;
    this.m?.dropped.inc({ kind, reason });
  }

  private state(): ProducerStats['state'] {
    if (this.stopped) return 'closed';
    if (this.breaker !== 'closed') return this.breaker;
    return this.link?.ready ? 'connected' : 'disconnected';
  }

  private noteState(): void {
    const s = this.state();
    if (s === this.lastState) return;
    this.lastState = s;
    this.options.onStateChange?.(s);
  }

  /** Hands queued events to the socket in frames until the queue is empty or the socket is full. */
  private flush(): void {
    const link = this.link;
    if (!link?.ready) return;
    const { batchMaxEvents, batchMaxBytes, writeBufferBytes } = this.o;
    // Until the hello's Ack says otherwise, frames are tracked as if the server acks them.
    const tracking = this.frameAcks !== false;
    while (this.queue.length > 0 && link.buffered < writeBufferBytes && !(tracking && this.unacked.length >= MAX_UNACKED_FRAMES)) {
      const batch = this.batch;
      let bytes = 0;
      // Always take at least one event, so an event larger than batchMaxBytes still goes.
      while (batch.length < batchMaxEvents && this.queue.length > 0 && (batch.length === 0 || bytes + this.queue.peekBytes() <= batchMaxBytes)) {
        const entry = this.queue.shift()!;
        batch.push(entry);
        bytes += entry.bytes.byteLength;
        this.m?.sent.inc({ kind: entry.tag });
      }
      const events = batch.map((e) => e.bytes);
      this.sent += batch.length;
      if (tracking) {
        if (this.unacked.length === 0) this.ackProgressAt = Date.now();
        this.unacked.push({ frame: ++this.framesSent, entries: batch.slice() });
        this.unackedEvents += batch.length;
      }
      batch.length = 0;
      link.send(events, bytes);
    }
    // The gaps between live frames: spooled events, rate-limited, once the hello is answered.
    while (this.spool && this.queue.length === 0 && this.frameAcks !== undefined && link.buffered < writeBufferBytes
      && !(tracking && this.unacked.length >= MAX_UNACKED_FRAMES) && this.spoolTake()) {
      if (!this.sendSpooled(link, tracking)) break;
    }
  }

  /** Token bucket of the spool drain: true when a spooled frame may go now. */
  private spoolTake(): boolean {
    if (this.closing || !this.spool!.hasUnsent()) return false;
    const now = Date.now();
    // At most a tenth of a second's worth at once: a drain is spread out, not one big burst.
    const burst = Math.max(1, Math.min(this.o.batchMaxEvents, this.spoolRate / 10));
    this.spoolTokens = Math.min(burst, this.spoolTokens + ((now - this.spoolRefillAt) / 1000) * this.spoolRate);
    this.spoolRefillAt = now;
    // A frame of a tenth of a second's worth (or all that is left), not a frame per token.
    const spool = this.spool!;
    return this.spoolTokens >= Math.min(burst, Math.max(1, spool.pending - spool.inflight));
  }

  private sendSpooled(link: Link, tracking: boolean): boolean {
    const spool = this.spool!;
    let batch;
    try {
      batch = spool.readBatch(Math.max(1, Math.min(this.o.batchMaxEvents, Math.floor(this.spoolTokens))), this.o.batchMaxBytes);
    } catch (error) {
      this.noteSpoolError(error);
      return false;
    }
    if (!batch) return false;
    const n = batch.events.length;
    this.spoolTokens -= n;
    const behind = spool.pending - spool.inflight;
    const events = batch.events.map((e, i) => markLate(e, behind + n - i - 1));
    if (tracking) {
      if (this.unacked.length === 0) this.ackProgressAt = Date.now();
      this.unacked.push({ frame: ++this.framesSent, entries: [], spool: { segment: batch.segment, end: batch.end, count: n } });
    } else {
      this.commitSpooled(batch.segment, batch.end, n); // a server without acks: written is all we can know
    }
    link.send(events, events.reduce((a, e) => a + e.byteLength, 0));
    return true;
  }

  private commitSpooled(segment: number, end: number, count: number): void {
    try {
      this.spool!.commit(segment, end, count);
    } catch (error) {
      this.noteSpoolError(error);
    }
  }

  private noteSpoolError(error: unknown): void {
    this.spoolErrors++;
    this.spoolError = error instanceof Error ? error.message : String(error);
    this.options.onError?.(`spool: ${this.spoolError}`);
  }

  /** While the server is away, what waits for it goes to disk instead (in emit order). */
  private toSpool(): void {
    if (!this.spool || !this.offline || this.link?.ready || this.queue.length === 0) return;
    this.spoolEntries(this.takeQueued());
  }

  /** Everything queued, oldest first (emit order across priorities). */
  private takeQueued(): QueueEntry<EventKindName>[] {
    const out: QueueEntry<EventKindName>[] = [];
    for (let e = this.queue.shift(); e; e = this.queue.shift()) out.push(e);
    return out;
  }

  private spoolEntries(entries: QueueEntry<EventKindName>[]): void {
    for (const e of entries) {
      try {
        this.spool!.append([e.bytes]);
      } catch (error) {
        this.count(e.tag, 'unsent');
        this.noteSpoolError(error);
      }
    }
  }

  /** The server has every event of frames 1..frames of this connection in its ring. */
  private framesAcked(frames: number): void {
    while (this.unacked.length > 0 && this.unacked[0].frame <= frames) {
      const done = this.unacked.shift()!;
      this.unackedEvents -= done.entries.length;
      this.delivered += done.entries.length;
      if (done.spool) {
        this.commitSpooled(done.spool.segment, done.spool.end, done.spool.count);
        this.delivered += done.spool.count;
      }
    }
    this.ackProgressAt = Date.now();
    this.flush(); // room under MAX_UNACKED_FRAMES again
  }

  /** Written frames and no ack for ackTimeoutMs: the server is gone without closing; leave it. */
  private checkAcks(): void {
    if (this.unacked.length > 0 && this.link && Date.now() - this.ackProgressAt > this.o.ackTimeoutMs) {
      this.abandoned = `server stopped acknowledging frames for ${this.o.ackTimeoutMs} ms`;
      this.link.destroy();
    }
  }

  /** A connection ended: what it never confirmed goes back in front of the queue, in order. */
  private requeueUnacked(): void {
    this.spool?.rewind(); // unacknowledged spooled frames are still on disk: sent again
    if (this.unacked.length === 0) return;
    const entries = this.unacked.flatMap((f) => f.entries);
    this.unacked.length = 0;
    this.unackedEvents = 0;
    this.resent += entries.length;
    this.queue.requeueFront(entries, this.onDropTag);
  }

  private connect(): void {
    if (this.stopped || this.link) return;
    this.reconnectTimer = undefined;
    this.acked = false;
    this.openedAt = 0;
    this.frameAcks = undefined;
    this.framesSent = 0;
    let link: Link | undefined;
    const handlers: LinkHandlers = {
      onOpen: () => {
        if (this.link !== link) return;
        this.openedAt = Date.now();
        this.offline = false;
        // The hello is always the first frame on a connection.
        link!.send([this.hello], this.hello.byteLength);
        this.flush();
        this.noteState();
      },
      onFrame: (frame) => this.onServerFrame(frame),
      onDrain: () => this.flush(),
      onClose: (reason) => {
        if (this.link !== link) return;
        this.link = undefined;
        this.offline = true;
        this.requeueUnacked();
        this.lastTransportError = this.abandoned ?? reason;
        this.abandoned = undefined;
        const healthy = this.acked || (this.openedAt > 0 && Date.now() - this.openedAt >= this.o.healthyAfterMs);
        if (healthy) {
          this.succeeded();
          this.scheduleReconnect(this.o.reconnectInitialMs * (0.5 + Math.random() * 0.5));
        } else {
          this.failed(reason);
        }
        this.noteState();
      },
    };
    const t = this.target;
    link = t.kind === 'ws' ? wsLink(t.url, this.o.token, handlers, this.o.connectTimeoutMs) : streamLink(t, handlers, this.o.connectTimeoutMs);
    this.link = link;
  }

  private onServerFrame(frame: Uint8Array): void {
    decodeFrame(frame, (event) => {
      if (event.kind === EventKind.Ack) {
        const meta = (event as ControlEvent).meta as { frames?: unknown; acks?: unknown };
        if (typeof meta.frames === 'number') {
          this.framesAcked(meta.frames);
          return;
        }
        if (this.frameAcks === undefined) {
          this.frameAcks = meta.acks === true;
          if (!this.frameAcks) {
            // A server without acks: what was written counts as delivered, as it always did.
            this.unacked.length = 0;
            this.unackedEvents = 0;
          }
        }
        if (!this.acked) {
          this.acked = true;
          this.connections++;
          this.m?.connections.inc();
          this.succeeded();
          this.noteState();
        }
      } else if (event.kind === EventKind.Error) {
        const meta = (event as ControlEvent).meta;
        const message = `${typeof meta.error === 'string' ? meta.error : JSON.stringify(meta)}${typeof meta.kind === 'string' ? ` (${meta.kind}${typeof meta.index === 'number' ? ` #${meta.index}` : ''})` : ''}`;
        this.errorsFromServer++;
        this.lastServerError = message;
        this.m?.serverErrors.inc();
        this.options.onError?.(`server: ${message}`);
      }
    }, () => { /* a reply we cannot read is the server's problem; nothing to act on */ });
  }

  private succeeded(): void {
    this.failures = 0;
    this.cooldownMs = this.o.openMs;
    this.breaker = 'closed';
  }

  /** A connect attempt failed, or a connection died before the server acknowledged it (or lived healthyAfterMs). */
  private failed(reason: string): void {
    this.failures++;
    this.connectFailures++;
    this.options.onError?.(`connection: ${reason}`);
    if (this.stopped) return;
    if (this.breaker === 'half-open' || this.failures >= this.o.failureThreshold) {
      this.breaker = 'open';
      this.scheduleReconnect(this.cooldownMs * (0.8 + Math.random() * 0.4), true);
      this.cooldownMs = Math.min(Math.max(this.o.reconnectMaxMs, this.o.openMs), this.cooldownMs * 2);
      return;
    }
    const backoff = Math.min(this.o.reconnectMaxMs, this.o.reconnectInitialMs * 2 ** (this.failures - 1));
    this.scheduleReconnect(backoff * (0.5 + Math.random() * 0.5));
  }

  private scheduleReconnect(delayMs: number, halfOpenAfter = false): void {
    if (this.stopped) return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      if (halfOpenAfter) this.breaker = 'half-open';
      this.connect();
      this.noteState();
    }, delayMs);
    this.reconnectTimer.unref();
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    this.closing = true;
    const deadline = Date.now() + timeoutMs;
    // Keep (re)connecting and flushing until everything went out or time is up.
    while (Date.now() < deadline) {
      if (this.spool && this.offline) break; // the server is away: the spool keeps the rest for the next start
      const link = this.link;
      if (this.queue.length === 0 && this.unacked.length === 0 && (!link?.ready || link.buffered === 0)) break;
      this.flush();
      await new Promise((r) => setTimeout(r, 5));
    }
    this.stopped = true;
    clearInterval(this.flushTimer);
    clearTimeout(this.reconnectTimer);
    // Written but never confirmed: it may or may not have arrived. With a spool it is kept
    // for the next start (at-least-once), like what is still queued; else both are counted.
    const unconfirmed = this.unacked.splice(0).flatMap((f) => f.entries);
    this.unackedEvents = 0;
    if (this.spool) {
      this.spoolEntries([...unconfirmed, ...this.takeQueued()]);
      try { this.spool.close(); } catch (error) { this.noteSpoolError(error); }
    } else {
      for (const e of unconfirmed) this.count(e.tag, 'unconfirmed');
      for (let e = this.queue.shift(); e; e = this.queue.shift()) this.count(e.tag, 'unsent');
    }
    const link = this.link;
    if (link) {
      const gone = new Promise<void>((resolve) => {
        const poll = setInterval(() => { if (this.link !== link || Date.now() >= deadline + 200) { clearInterval(poll); resolve(); } }, 5);
      });
      link.end();
      await gone;
      link.destroy();
      this.link = undefined;
    }
    this.noteState();
  }
}

export function createProducer(url: string, options: ProducerOptions): NetworkProducer {
  return new NetworkProducer(url, options);
}

interface ProducerMetrics {
  sent: Counter<'kind'>;
  dropped: Counter<'kind' | 'reason'>;
  serverErrors: Counter<string>;
  connections: Counter<string>;
}

function producerMetrics(registry: Registry): ProducerMetrics {
  const get = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
  return {
    sent: get('ringcast_producer_events_sent_total', () => new Counter({ name: 'ringcast_producer_events_sent_total', help: 'Events the network producer handed to its connection, by kind', labelNames: ['kind'], registers: [registry] })),
    dropped: get('ringcast_producer_dropped_total', () => new Counter({ name: 'ringcast_producer_dropped_total', help: 'Events the network producer dropped, by kind and reason (queue_full, invalid, invalid_value, closed, unsent, unconfirmed)', labelNames: ['kind', 'reason'], registers: [registry] })),
    serverErrors: get('ringcast_producer_server_errors_total', () => new Counter({ name: 'ringcast_producer_server_errors_total', help: 'Error events the server sent back', registers: [registry] })),
    connections: get('ringcast_producer_connections_total', () => new Counter({ name: 'ringcast_producer_connections_total', help: 'Connections the server acknowledged', registers: [registry] })),
  };
}
