/**
 * Node consumer of the `/experience` stream (same shape as the Python ExperienceConsumer):
 *
 *   const consumer = await ExperienceConsumer.connect('ws://127.0.0.1:8080/experience', { token, minTurn: 10 });
 *   for await (const batch of consumer) { ... batch.records[i].state (Float32Array) ... }
 *   await consumer.stats(); await consumer.configure({ terminal_only: true }); consumer.close();
 *
 * Filters run on the server. Batches are read into a bounded local queue; when the caller falls
 * behind, the socket is paused (TCP backpressure, then the server's per-consumer queue bound).
 * A lost connection is retried with exponential backoff and jitter and resumes after the last
 * batch received (`start=<seq_last + 1>`), so nothing is skipped or repeated beyond what a
 * batch's `dropped` / `missed` report.
 */
import { decodeEvent, EventKind, type ExperienceEvent } from '../shared/telemetry/event-codec.js';
import { decodeBatchV2 } from '../shared/telemetry/experience-batch.js';
import { WsClient } from './ws-client.js';

export interface ExperienceFilters {
  games?: string[] | null;
  players?: string[] | null;
  min_turn?: number | null;
  max_turn?: number | null;
  reward_min?: number | null;
  reward_max?: number | null;
  terminal_only?: boolean;
  sample_rate?: number;
  per_game_cap?: number | null;
  batch_size?: number;
  timeout_ms?: number;
  max_rate?: number | null;
}

export interface ExperienceConsumerOptions {
  token?: string;
  games?: string[];
  players?: string[];
  minTurn?: number;
  maxTurn?: number;
  rewardMin?: number;
  rewardMax?: number;
  terminalOnly?: boolean;
  sampleRate?: number;
  batchSize?: number;
  start?: 'live' | 'earliest' | number;
  /** Batches held locally before the socket is paused (default 64). */
  queueBatches?: number;
  /** Metrics label on the server (`ringcast_gateway_experience_consumer_*{consumer}`). */
  name?: string;
  /** `deflate`: the server deflates each batch (pays off over a network with plane-like states; costs server CPU). */
  compress?: 'none' | 'deflate';
}

export interface ExperienceRecord {
  seq: number;
  gameId: string;
  playerId: string;
  turn: number;
  action: number;
  reward: number;
  done: boolean;
  /** prod(stateShape) float32 values (an own copy). */
  state: Float32Array;
  stateShape: number[];
  /** Legal-action bitset: action i = bit `i & 7` of byte `i >> 3`. */
  legalMask: Uint8Array;
  maskLen: number;
  timestamp: number;
}

export interface ExperienceBatch {
  records: ExperienceRecord[];
  seqFirst: number;
  seqLast: number;
  /** Records lost for this consumer since its previous batch (server queue full, over max_rate). */
  dropped: number;
  /** Sequence numbers skipped because the server no longer had them when this consumer resumed. */
  missed: number;
  serverTime: number;
}

export class ExperienceRefusedError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

function filtersFromOptions(o: ExperienceConsumerOptions): ExperienceFilters {
  return {
    games: o.games, players: o.players, min_turn: o.minTurn, max_turn: o.maxTurn, reward_min: o.rewardMin, reward_max: o.rewardMax,
    terminal_only: o.terminalOnly, sample_rate: o.sampleRate, batch_size: o.batchSize,
  };
}

function decodeRecord(seq: number, bytes: Uint8Array): ExperienceRecord {
  const e = decodeEvent(bytes) as ExperienceEvent;
  if (e.kind !== EventKind.Experience) throw new Error('experience batch holds a non-experience event');
  // slice(): an own, 4-byte-aligned copy (the record may sit at any offset of the message).
  const state = new Float32Array(bytes.slice(e.stateOffset, e.stateOffset + e.stateBytes).buffer);
  return {
    seq, gameId: e.gameId, playerId: e.playerId, turn: e.turn, action: e.action, reward: e.reward, done: e.done,
    state, stateShape: e.stateShape, legalMask: bytes.slice(e.maskOffset, e.maskOffset + Math.ceil(e.maskLen / 8)), maskLen: e.maskLen,
    timestamp: e.timestamp,
  };
}

export function decodeExperienceBatch(data: Uint8Array): ExperienceBatch {
  const { head, records } = decodeBatchV2(data);
  return {
    records: records.map((r) => decodeRecord(r.seq, r.bytes)), seqFirst: head.seq_first, seqLast: head.seq_last,
    dropped: head.dropped, missed: head.missed, serverTime: head.server_time,
  };
}

export class ExperienceConsumer implements AsyncIterable<ExperienceBatch> {
  private readonly base: URL;
  private filters: ExperienceFilters;
  private readonly start: 'live' | 'earliest' | number;
  private nextSeq: number | undefined;
  private ws: WsClient | undefined;
  private readonly queue: ExperienceBatch[] = [];
  private readonly queueBatches: number;
  private waiter: (() => void) | undefined;
  private reply: { resolve: (m: Record<string, unknown>) => void; reject: (e: Error) => void } | undefined;
  private requestChain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private error: Error | undefined;
  private backoffMs = 100;
  private reconnectTimer: NodeJS.Timeout | undefined;
  readonly counts = { batches: 0, records: 0, dropped: 0, missed: 0, reconnects: 0, duplicatesSkipped: 0 };
  lastStatus: Record<string, unknown> | undefined;

  private constructor(url: string, private readonly options: ExperienceConsumerOptions) {
    this.base = new URL(url);
    if (this.base.protocol !== 'ws:' && this.base.protocol !== 'wss:') throw new TypeError(`url must be ws://host:port/experience (got ${url})`);
    this.filters = filtersFromOptions(options);
    this.start = options.start ?? 'live';
    this.queueBatches = options.queueBatches ?? 64;
  }

  /** Connects (a refused filter or token rejects with the server's message, naming the field). */
  static async connect(url: string, options: ExperienceConsumerOptions = {}): Promise<ExperienceConsumer> {
    const c = new ExperienceConsumer(url, options);
    await c.open();
    return c;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ExperienceBatch> {
    for (;;) {
      const batch = this.queue.shift();
      if (batch) {
        if (this.queue.length < this.queueBatches / 2) this.ws?.resume();
        yield batch;
        continue;
      }
      if (this.error) throw this.error;
      if (this.closed) return;
      await new Promise<void>((resolve) => { this.waiter = resolve; });
    }
  }

  /** The server's counters for this consumer, plus this client's (`client`). */
  async stats(timeoutMs = 5000): Promise<Record<string, unknown>> {
    const reply = await this.request({ type: 'stats' }, timeoutMs);
    return { ...reply, client: { ...this.counts } };
  }

  /**
   * Changes filters live on the same connection. Resolves to the server's answer: `filters` (all
   * of them, as now in force) and `cursor` (the first sequence number the new filters decide on;
   * batches already on their way may hold earlier records that passed the old ones).
   */
  async configure(filters: ExperienceFilters, timeoutMs = 5000): Promise<{ filters: Record<string, unknown>; cursor: number | null }> {
    const reply = await this.request({ type: 'configure', ...filters }, timeoutMs);
    this.filters = { ...this.filters, ...filters };
    return reply as unknown as { filters: Record<string, unknown>; cursor: number | null };
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.ws?.close();
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private url(): string {
    const u = new URL(this.base.href);
    const q = u.searchParams;
    q.set('v', '2');
    for (const [k, v] of Object.entries(this.filters)) {
      if (v === undefined || v === null) continue;
      q.set(k, Array.isArray(v) ? v.join(',') : String(v));
    }
    q.set('start', String(this.nextSeq ?? this.start));
    if (this.options.name) q.set('consumer', this.options.name);
    if (this.options.compress === 'deflate') q.set('compress', 'deflate');
    return u.href;
  }

  private open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = this.options.token ? { authorization: `Bearer ${this.options.token}` } : {};
      const ws = new WsClient(this.url(), { headers, maxMessageBytes: 256 << 20 });
      let opened = false;
      ws.on('open', () => {
        opened = true;
        this.ws = ws;
        this.backoffMs = 100;
        resolve();
      });
      ws.on('message', (data: Uint8Array, binary: boolean) => this.onMessage(data, binary));
      ws.on('error', (error: Error & { status?: number; body?: string }) => {
        if (opened) return;
        let message = error.message;
        try {
          if (error.body) message = (JSON.parse(error.body) as { error?: string }).error ?? message;
        } catch { /* keep the transport's message */ }
        reject(error.status ? new ExperienceRefusedError(message, error.status) : error);
      });
      ws.on('close', () => {
        if (!opened) return;
        this.ws = undefined;
        this.reply?.reject(new Error('connection lost before the server answered'));
        this.reply = undefined;
        if (!this.closed) this.scheduleReconnect();
      });
    });
  }

  private scheduleReconnect(): void {
    const delay = this.backoffMs * (0.5 + Math.random());
    this.backoffMs = Math.min(this.backoffMs * 2, 5000);
    this.reconnectTimer = setTimeout(() => {
      if (this.closed) return;
      this.open().then(() => { this.counts.reconnects++; }, (error: Error) => {
        if (error instanceof ExperienceRefusedError) {
          this.error = error;
          this.wake();
        } else this.scheduleReconnect();
      });
    }, delay);
  }

  private onMessage(data: Uint8Array, binary: boolean): void {
    if (!binary) {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(Buffer.from(data).toString('utf8')) as Record<string, unknown>;
      } catch {
        return;
      }
      if (msg.type === 'experience_status') this.lastStatus = msg;
      else if (this.reply && (msg.type === 'stats' || msg.type === 'configured' || msg.type === 'error')) {
        const r = this.reply;
        this.reply = undefined;
        if (this.queue.length >= this.queueBatches) this.ws?.pause();
        if (msg.type === 'error') r.reject(new Error(String(msg.error)));
        else r.resolve(msg);
      }
      return;
    }
    const batch = decodeExperienceBatch(data);
    if (this.nextSeq !== undefined && batch.records.length > 0 && batch.records[0].seq < this.nextSeq) {
      // The client's own guard against a repeat (the server already skips them).
      const kept = batch.records.filter((r) => r.seq >= this.nextSeq!);
      this.counts.duplicatesSkipped += batch.records.length - kept.length;
      if (kept.length === 0) return;
      batch.records = kept;
      batch.seqFirst = kept[0].seq;
    }
    this.nextSeq = batch.seqLast + 1;
    this.counts.batches++;
    this.counts.records += batch.records.length;
    this.counts.dropped += batch.dropped;
    this.counts.missed += batch.missed;
    this.queue.push(batch);
    // Paused, the socket would not bring a stats/configure answer either: keep reading while one is awaited.
    if (this.queue.length >= this.queueBatches && !this.reply) this.ws?.pause();
    this.wake();
  }

  private request(msg: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>> {
    // One request on the wire at a time: replies carry no id, they answer in order.
    const run = () => new Promise<Record<string, unknown>>((resolve, reject) => {
      const ws = this.ws;
      if (!ws || !ws.isOpen) return reject(new Error('experience consumer is not connected'));
      const timer = setTimeout(() => {
        this.reply = undefined;
        reject(new Error(`no answer to ${String(msg.type)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.reply = {
        resolve: (m) => { clearTimeout(timer); resolve(m); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      };
      ws.send(Buffer.from(JSON.stringify(msg)), false);
      ws.resume();
    });
    const p = this.requestChain.then(run, run);
    this.requestChain = p.catch(() => undefined);
    return p;
  }
}
