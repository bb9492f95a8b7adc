/**
 * The one place producer input is judged, whatever transport it came over (WebSocket,
 * TCP, Unix socket, HTTP POST). A frame is decoded event by event; accepted events go
 * into the thread's ingest ring byte-for-byte (no re-encoding), rejected ones become an
 * Error event for the producer naming the problem. A bad event never costs the good
 * events next to it, and never closes the connection — only a failed authentication does.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { RecordRing } from '../../shared/record-ring.js';
import {
  decodeFrame,
  encodeEvent,
  EventKind,
  EVENT_KIND_NAMES,
  kindFromName,
  encodeMetricsPayload,
  float32Bytes,
  type DecodeLimits,
  type EventError,
  type TelemetryEvent,
} from '../../shared/telemetry/event-codec.js';
import { writeIngestRecord } from '../../shared/telemetry/ring-records.js';
import { tokenMatcher } from '../../shared/tokens.js';
import { isValidRunName, runNameProblem } from '../../shared/telemetry/run-name.js';

export type IngestTransport = 'ws' | 'tcp' | 'unix' | 'http' | 'local';

export interface ProducerSession {
  readonly producerId: number;
  readonly transport: IngestTransport;
  run: string;
  authenticated: boolean;
  accepted: number;
  rejected: number;
  /** Frames handled since a hello asked for per-frame acks (undefined: no acks wanted). */
  framesAcked?: number;
}

export interface AcceptResult {
  accepted: number;
  errors: EventError[];
  /** Set when the connection must be closed (authentication failed); send `replies` first. */
  fatal?: string;
  /** Events to send back to the producer (Error per rejected event, Ack after a hello). */
  replies: Uint8Array[];
}

export interface IngestAcceptorOptions {
  ring: RecordRing;
  /** The ingest token producers must present. */
  token: string;
  transport: IngestTransport;
  /** Producer ids of this acceptor start here (keeps ids unique across threads). */
  producerIdBase: number;
  metrics: Registry;
  limits?: DecodeLimits;
  /** Run name for sessions that never name one. */
  defaultRun?: string;
  /** Accept internal relay events (only for in-process, trusted producers). */
  allowRelay?: boolean;
}

/** At most this many Error replies per frame; the rest are summarised in the last one. */
const MAX_ERROR_REPLIES = 16;

export class IngestAcceptor {
  private readonly ring: RecordRing;
  private readonly matchesToken: (candidate: string | undefined) => boolean;
  private readonly limits: DecodeLimits;
  private readonly transport: IngestTransport;
  private readonly defaultRun: string;
  private readonly allowRelay: boolean;
  private nextProducer = 0;
  private readonly producerIdBase: number;
  private readonly metrics: IngestMetrics;

  constructor(options: IngestAcceptorOptions) {
    if (!options.token || options.token.length < 8) throw new TypeError('IngestAcceptor: token must be at least 8 characters');
    this.ring = options.ring;
    this.matchesToken = tokenMatcher(options.token);
    this.limits = options.limits ?? {};
    this.transport = options.transport;
    this.producerIdBase = options.producerIdBase >>> 0;
    this.defaultRun = options.defaultRun ?? 'default';
    this.allowRelay = options.allowRelay === true;
    this.metrics = ingestMetrics(options.metrics);
    this.bytesCounter = this.metrics.bytes.labels({ transport: this.transport });
  }

  private readonly bytesCounter: { inc(n?: number): void };

  /** Compares digests so the comparison takes the same time whatever the candidate. */
  tokenMatches(candidate: string | undefined): boolean {
    return this.matchesToken(candidate);
  }

  openSession(options: { run?: string; token?: string } = {}): ProducerSession {
    const run = isValidRunName(options.run) ? options.run : this.defaultRun;
    this.nextProducer = (this.nextProducer + 1) & 0xffffff;
    this.metrics.sessions.inc({ transport: this.transport });
    return {
      producerId: (this.producerIdBase + this.nextProducer) >>> 0,
      transport: this.transport,
      run,
      authenticated: this.tokenMatches(options.token),
      accepted: 0,
      rejected: 0,
    };
  }

  closeSession(_session: ProducerSession): void {
    this.metrics.sessions.dec({ transport: this.transport });
  }

  /**
   * Counts a refusal the transport made before any frame reached the acceptor (hello
   * deadline, oversized pre-auth frame, per-address limit), next to the acceptor's own.
   */
  countRefusal(reason: string): void {
    this.metrics.rejected.inc({ transport: this.transport, reason });
  }

  acceptFrame(session: ProducerSession, bytes: Uint8Array): AcceptResult {
    const receivedAt = Date.now();
    const result: AcceptResult = { accepted: 0, errors: [], replies: [] };
    this.bytesCounter.inc(bytes.byteLength);
    let published = false;
    let ackedHello = false;
    decodeFrame(
      bytes,
      (event) => {
        if (result.fatal) return;
        if (event.kind === EventKind.Hello) {
          this.hello(session, event.token, event.run, result, event.acks === true);
          ackedHello = true;
          return;
        }
        if (!session.authenticated) {
          this.reject(session, result, { index: -1, kind: EVENT_KIND_NAMES[event.kind], error: 'not authenticated: send a hello event with the ingest token first (or connect with Authorization: Bearer <token>)' }, 'unauthenticated');
          result.fatal = 'not authenticated';
          return;
        }
        if (event.kind === EventKind.Relay && !this.allowRelay) {
          this.reject(session, result, { index: -1, kind: 'relay', error: 'relay events are internal to ringcast; producers cannot send them' }, 'direction');
          return;
        }
        if (event.kind === EventKind.Error || event.kind === EventKind.Ack) {
          this.reject(session, result, { index: -1, kind: EVENT_KIND_NAMES[event.kind], error: `${EVENT_KIND_NAMES[event.kind]} events flow from the server to producers, not the other way` }, 'direction');
          return;
        }
        this.publish(session, event, bytes, receivedAt, result);
        published = true;
      },
      (error) => this.reject(session, result, error, 'malformed'),
      this.limits,
    );
    if (published) this.ring.flush();
    this.finishReplies(result);
    // After the flush: an acknowledged frame's events are in the ring, which outlives this thread.
    if (session.framesAcked !== undefined && !result.fatal && !ackedHello) {
      session.framesAcked++;
      result.replies.push(encodeEvent(EventKind.Ack, { frames: session.framesAcked }));
    }
    return result;
  }

  /**
   * The HTTP JSON form: `{"run"?: "...", "events": [{"kind": "metrics", "step": 1, "metrics": {...}}, ...]}`.
   * Tensors may be JSON arrays here (convenience, not the hot path); each event is encoded to
   * the binary format and then goes through exactly the same checks as binary input.
   */
  acceptJson(session: ProducerSession, body: unknown): AcceptResult {
    const result: AcceptResult = { accepted: 0, errors: [], replies: [] };
    if (body === null || typeof body !== 'object' || !Array.isArray((body as { events?: unknown }).events)) {
      this.reject(session, result, { index: -1, error: 'body must be a JSON object with an "events" array' }, 'malformed');
      this.finishReplies(result);
      return result;
    }
    const { events, run } = body as { events: unknown[]; run?: unknown };
    if (typeof run === 'string') {
      const problem = runNameProblem(run);
      if (problem !== undefined) {
        this.reject(session, result, { index: -1, error: `"run": ${problem}` }, 'malformed');
        this.finishReplies(result);
        return result;
      }
      session.run = run;
    }
    if (events.length > 10_000) {
      this.reject(session, result, { index: -1, error: `too many events in one request (${events.length}; the limit is 10000)` }, 'malformed');
      this.finishReplies(result);
      return result;
    }
    events.forEach((raw, index) => {
      let encoded: Uint8Array;
      try {
        encoded = encodeJsonEvent(raw);
      } catch (error) {
        this.reject(session, result, { index, kind: typeof (raw as { kind?: unknown })?.kind === 'string' ? (raw as { kind: string }).kind : undefined, error: (error as Error).message }, 'malformed');
        return;
      }
      const sub = this.acceptFrame(session, encoded);
      result.accepted += sub.accepted;
      for (const e of sub.errors) result.errors.push({ ...e, index });
      if (sub.fatal) result.fatal = sub.fatal;
    });
    this.finishReplies(result);
    return result;
  }

  private hello(session: ProducerSession, token: string | undefined, run: string | undefined, result: AcceptResult, acks = false): void {
    if (token !== undefined || !session.authenticated) {
      if (!this.tokenMatches(token)) {
        this.reject(session, result, { index: -1, kind: 'hello', error: token === undefined ? 'hello without a token' : 'invalid ingest token' }, 'auth');
        result.fatal = 'authentication failed';
        return;
      }
      session.authenticated = true;
    }
    if (run !== undefined) {
      const problem = runNameProblem(run);
      if (problem !== undefined) {
        this.reject(session, result, { index: -1, kind: 'hello', error: problem }, 'malformed');
        return;
      }
      session.run = run;
    }
    // Frames are counted from the one after this hello; `acks: true` tells the producer they will be.
    if (acks) session.framesAcked = 0;
    result.replies.push(encodeEvent(EventKind.Ack, { ok: true, run: session.run, producer_id: session.producerId, ...(acks ? { acks: true } : {}) }));
  }

  private publish(session: ProducerSession, event: TelemetryEvent, bytes: Uint8Array, receivedAt: number, result: AcceptResult): void {
    if (event.run !== undefined && !isValidRunName(event.run)) {
      this.reject(session, result, { index: -1, kind: EVENT_KIND_NAMES[event.kind], error: runNameProblem(event.run)! }, 'malformed');
      return;
    }
    const kind = EVENT_KIND_NAMES[event.kind];
    // Batch publication: one release store per frame instead of per event.
    if (!writeIngestRecord(this.ring, receivedAt, session.producerId, event.run ?? session.run, bytes, event.offset, event.length, false)) {
      // The ring counts the drop itself; the producer hears about it so it can slow down.
      this.metrics.ringFull.inc({ transport: this.transport, kind });
      this.reject(session, result, { index: -1, kind, error: 'server busy: the ingest ring is full, event dropped' }, 'ring_full');
      return;
    }
    session.accepted++;
    result.accepted++;
    this.eventCounter(event.kind).inc();
  }

  // Labelled inc() resolves its label set on every call (~12 % of ingest time per event);
  // the bound child per kind is resolved once.
  private readonly eventCounters = new Map<number, { inc(n?: number): void }>();
  private eventCounter(kind: number): { inc(n?: number): void } {
    let counter = this.eventCounters.get(kind);
    if (!counter) {
      counter = this.metrics.events.labels({ transport: this.transport, kind: EVENT_KIND_NAMES[kind] });
      this.eventCounters.set(kind, counter);
    }
    return counter;
  }

  private reject(session: ProducerSession, result: AcceptResult, error: EventError, reason: string): void {
    session.rejected++;
    result.errors.push(error);
    this.metrics.rejected.inc({ transport: this.transport, reason });
  }

  private finishReplies(result: AcceptResult): void {
    const shown = result.errors.slice(0, MAX_ERROR_REPLIES);
    for (const error of shown) {
      result.replies.push(encodeEvent(EventKind.Error, { error: error.error, kind: error.kind, index: error.index >= 0 ? error.index : undefined }));
    }
    if (result.errors.length > shown.length) {
      result.replies.push(encodeEvent(EventKind.Error, { error: `${result.errors.length - shown.length} more events rejected in this frame` }));
    }
  }
}

interface IngestMetrics {
  events: Counter<'transport' | 'kind'>;
  rejected: Counter<'transport' | 'reason'>;
  ringFull: Counter<'transport' | 'kind'>;
  bytes: Counter<'transport'>;
  sessions: Gauge<'transport'>;
}

function ingestMetrics(registry: Registry): IngestMetrics {
  const get = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
  return {
    events: get('ringcast_ingest_events_total', () => new Counter({ name: 'ringcast_ingest_events_total', help: 'Telemetry events accepted into an ingest ring', labelNames: ['transport', 'kind'], registers: [registry] })),
    rejected: get('ringcast_ingest_rejected_total', () => new Counter({ name: 'ringcast_ingest_rejected_total', help: 'Producer input refused, by reason (malformed, auth, unauthenticated, ring_full, direction; before authentication: hello_timeout, preauth_too_large, address_limit)', labelNames: ['transport', 'reason'], registers: [registry] })),
    ringFull: get('ringcast_ingest_ring_full_total', () => new Counter({ name: 'ringcast_ingest_ring_full_total', help: 'Valid events dropped because the ingest ring was full', labelNames: ['transport', 'kind'], registers: [registry] })),
    bytes: get('ringcast_ingest_bytes_total', () => new Counter({ name: 'ringcast_ingest_bytes_total', help: 'Producer bytes received', labelNames: ['transport'], registers: [registry] })),
    sessions: get('ringcast_ingest_sessions', () => new Gauge({ name: 'ringcast_ingest_sessions', help: 'Open producer sessions', labelNames: ['transport'], registers: [registry] })),
  };
}

/** JSON event → binary event, for the HTTP JSON form. Throws with a message naming the problem. */
export function encodeJsonEvent(raw: unknown): Uint8Array {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('each event must be a JSON object with a "kind"');
  const { kind: kindName, timestamp, ...rest } = raw as Record<string, unknown>;
  if (typeof kindName !== 'string') throw new Error('event needs "kind" (metrics, se_attention, board_heatmap, policy, game_state, milestone, experience)');
  const kind = kindFromName(kindName);
  if (kind === undefined || kind === EventKind.Error || kind === EventKind.Ack) throw new Error(`unknown event kind "${kindName}"`);
  const options = { timestamp: typeof timestamp === 'number' ? timestamp : Date.now() };
  switch (kind) {
    case EventKind.Metrics: {
      const { step, metrics, run } = rest;
      if (typeof step !== 'number') throw new Error('metrics: "step" must be a number');
      if (metrics === null || typeof metrics !== 'object' || Array.isArray(metrics)) throw new Error('metrics: "metrics" must be an object of name → number');
      const entries = Object.entries(metrics as Record<string, unknown>);
      for (const [name, value] of entries) if (typeof value !== 'number') throw new Error(`metrics: "${name}" must be a number`);
      if (entries.length > 0xffff) throw new Error('metrics: too many metrics in one event');
      return encodeEvent(kind, typeof run === 'string' ? { run } : undefined, encodeMetricsPayload(step, metrics as Record<string, number>), options);
    }
    case EventKind.SeAttention: {
      const { weights, ...meta } = rest;
      const rows = toRows(weights, 'se_attention: "weights"');
      return encodeEvent(kind, { ...meta, blocks: rows.length, channels: rows[0]?.length ?? 0 }, float32Bytes(rows.flat()), options);
    }
    case EventKind.BoardHeatmap: {
      const { grid, ...meta } = rest;
      const rows = toRows(grid, 'board_heatmap: "grid"');
      return encodeEvent(kind, meta, float32Bytes(rows.flat()), options);
    }
    case EventKind.Policy: {
      const { distribution, ...meta } = rest;
      const payload = distribution === undefined ? undefined : float32Bytes(toRows([distribution], 'policy: "distribution"')[0]);
      return encodeEvent(kind, meta, payload, options);
    }
    case EventKind.Experience: {
      const { state, legal_mask: mask, ...meta } = rest;
      const flat = flattenNumbers(state, 'experience: "state"');
      const maskBits = mask === undefined ? [] : flattenNumbers(mask, 'experience: "legal_mask"');
      const bitset = new Uint8Array(Math.ceil(maskBits.length / 8));
      maskBits.forEach((bit, i) => { if (bit) bitset[i >> 3] |= 1 << (i & 7); });
      const stateBytes = float32Bytes(flat);
      const payload = new Uint8Array(stateBytes.byteLength + bitset.byteLength);
      payload.set(stateBytes, 0);
      payload.set(bitset, stateBytes.byteLength);
      return encodeEvent(kind, { ...meta, state_shape: meta.state_shape ?? [flat.length], mask_len: maskBits.length }, payload, options);
    }
    default:
      return encodeEvent(kind, rest, undefined, options);
  }
}

function toRows(value: unknown, what: string): number[][] {
  if (!Array.isArray(value) || value.length === 0) throw new Error(`${what} must be a non-empty array`);
  const rows = Array.isArray(value[0]) ? (value as unknown[]) : [value];
  return rows.map((row, i) => {
    if (!Array.isArray(row)) throw new Error(`${what}[${i}] must be an array of numbers`);
    return row.map((v, j) => {
      if (typeof v !== 'number') throw new Error(`${what}[${i}][${j}] must be a number`);
      return v;
    });
  });
}

function flattenNumbers(value: unknown, what: string): number[] {
  if (!Array.isArray(value)) throw new Error(`${what} must be an array`);
  const out: number[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (typeof v === 'number' || typeof v === 'boolean') out.push(Number(v));
    else throw new Error(`${what} must contain only numbers`);
  };
  walk(value);
  return out;
}
