/**
 * RL experience stream (`/experience`): experience events from the fan-out ring, kept in a
 * retained window (experience-window.ts) and batched per consumer after its filters
 * (experience-filter.ts).
 *
 * A consumer starts `live`, at the `earliest` retained record, or at a sequence number (resume):
 * until it has caught up it is fed from the window as fast as its socket drains, then live.
 * A batch goes out when it holds batch_size records, or timeout_ms after its first record.
 * Formats in shared/telemetry/experience-batch.ts (v1 default, v2 with sequence numbers and
 * metadata). Text messages on the same socket: `{"type":"stats"}` and
 * `{"type":"configure", ...filters}` (answered `stats` / `configured` / `error`).
 *
 * Each consumer has a bounded queue of finished batches: while its socket is over the soft
 * limit nothing is sent and, when the queue is full, the oldest batch is dropped and
 * counted; `max_rate` drops live records over the consumer's rate (counted too). A text
 * `experience_status` goes out periodically so a consumer can see what it lost.
 */
import type { WebSocket } from 'uWebSockets.js';
import { decodeEvent, EventKind } from '../../shared/telemetry/event-codec.js';
import { BatchWriter, BlockArena, decodeBatchV1, encodeBatchV1, RECORD_PREFIX_BYTES, recordBlock } from '../../shared/telemetry/experience-batch.js';
import type { GatewayMetrics, DisconnectReason } from './gateway-metrics.js';
import { describeFilter, FilterError, matchesFilter, parseFilter, PerGameCounts, unknownFields, type ExperienceFilter } from './experience-filter.js';
import type { ConsumerSetup } from './experience-query.js';
import { RetainedWindow, type RetainedRecord } from './experience-window.js';
import { ConsumerLabels } from './experience-metrics.js';
import { SharedBatches, batchSignature } from './experience-shared.js';

export type { ExperienceFilter } from './experience-filter.js';
export { defaultFilter, parseExperienceQuery, type ConsumerSetup, type ParsedFilter, type StartAt } from './experience-query.js';

/** Largest text message a consumer may send (a configure with long id lists); uWS closes on more. */
export const EXPERIENCE_MAX_MESSAGE = 256 * 1024;

interface QueuedBatch {
  records: RetainedRecord[];
}

export interface ExperienceConsumer {
  readonly endpoint: 'experience';
  id: string;
  label: string;
  version: 1 | 2;
  deflate: boolean;
  filter: ExperienceFilter;
  /** Next sequence number this consumer wants (NaN: whatever comes next). */
  cursor: number;
  /** Fed from the retained window until it reaches the head. */
  catchingUp: boolean;
  batch: RetainedRecord[];
  batchTimer?: NodeJS.Timeout;
  /** When the batch being filled goes out at the latest (ms since epoch; set with its first record). */
  batchDueAt: number;
  /** Set when joining consumers with the same filter: this first batch ends where theirs does. */
  align?: { records: number; dueAt: number };
  /** Consumers with equal signatures get byte-identical batches once aligned (see SharedBatches). */
  signature?: string;
  retryTimer?: NodeJS.Timeout;
  /** Finished batches waiting for the socket, oldest first. */
  queue: QueuedBatch[];
  perGame: PerGameCounts;
  tokens: number;
  tokensAt: number;
  sent: number;
  sentRecords: number;
  dropped: number;
  droppedRecords: number;
  filtered: number;
  missed: number;
  bytes: number;
  /** Lost since the previous batch went out (reported in its head). */
  pendingDropped: number;
  pendingMissed: number;
  /** Counter values already added to the metrics (they are added in deltas on the status tick). */
  reported: { delivered: number; filtered: number; dropped: number; missed: number; bytes: number };
  closeReason?: DisconnectReason;
  closed: boolean;
}

/** Version-1 batch (kept for callers of the original helpers). */
export function encodeExperienceBatch(records: readonly Uint8Array[], _bytes?: number): Uint8Array {
  return encodeBatchV1(records);
}
export const decodeExperienceBatch = decodeBatchV1;

export interface ExperienceHubOptions {
  queueBatches: number;
  softLimitBytes: number;
  hardLimitBytes: number;
  statusEveryMs: number;
  metrics: GatewayMetrics;
  /** Retained window and rate ceiling (config `experience.*`); defaults when absent. */
  limits?: { retainBytes?: number; retainMs?: number; maxRate?: number };
  /** Gateway index: part of consumer ids. */
  index?: number;
}

export const DEFAULT_RETAIN_BYTES = 64 * 1024 * 1024;
export const DEFAULT_RETAIN_MS = 60_000;

export class ExperienceHub {
  private readonly consumers = new Set<WebSocket<ExperienceConsumer>>();
  private readonly statusTimer: NodeJS.Timeout;
  readonly window: RetainedWindow;
  private readonly labels = new ConsumerLabels();
  private readonly writer = new BatchWriter();
  /** Record blocks, their chunks written over once no retained or queued record is in them. */
  private readonly arena = new BlockArena(undefined, (newestMark) => newestMark < this.oldestHeldMark());
  private readonly shared = new SharedBatches();
  private arrivals = 0;
  private readonly maxRate: number;
  private undecodable = 0;
  private localSeq = 0;
  private nextId = 1;
  private stopping = false;

  constructor(private readonly o: ExperienceHubOptions) {
    this.window = new RetainedWindow({ maxBytes: o.limits?.retainBytes ?? DEFAULT_RETAIN_BYTES, maxAgeMs: o.limits?.retainMs ?? DEFAULT_RETAIN_MS });
    this.maxRate = o.limits?.maxRate ?? 0;
    this.statusTimer = setInterval(() => this.tick(), o.statusEveryMs);
  }

  newConsumerData(setup: ConsumerSetup): ExperienceConsumer {
    const filter = { ...setup.filter };
    if (this.maxRate > 0) filter.maxRate = Math.min(filter.maxRate ?? this.maxRate, this.maxRate);
    const c: ExperienceConsumer = {
      endpoint: 'experience', id: `gw${this.o.index ?? 0}-${this.nextId++}`, label: this.labels.take(setup.name),
      version: setup.version, deflate: setup.deflate, filter, cursor: NaN, catchingUp: false,
      batch: [], batchDueAt: 0, queue: [], perGame: new PerGameCounts(), tokens: 0, tokensAt: Date.now(),
      sent: 0, sentRecords: 0, dropped: 0, droppedRecords: 0, filtered: 0, missed: 0, bytes: 0, pendingDropped: 0, pendingMissed: 0,
      reported: { delivered: 0, filtered: 0, dropped: 0, missed: 0, bytes: 0 }, closed: false,
    };
    c.tokens = this.burst(c);
    if (setup.start === 'earliest') {
      c.catchingUp = true;
      c.cursor = this.window.first()?.seq ?? NaN;
    } else if (typeof setup.start === 'number') {
      c.catchingUp = true;
      c.cursor = setup.start;
    }
    return c;
  }

  open(ws: WebSocket<ExperienceConsumer>): void {
    this.consumers.add(ws);
    this.join(ws.getUserData());
    this.o.metrics.clients.inc({ endpoint: 'experience' });
    this.pump(ws, ws.getUserData());
  }

  close(ws: WebSocket<ExperienceConsumer>): void {
    const c = ws.getUserData();
    c.closed = true;
    this.shared.leave(c.signature);
    c.signature = undefined;
    if (c.batchTimer) clearTimeout(c.batchTimer);
    if (c.retryTimer) clearTimeout(c.retryTimer);
    this.report(c);
    c.batch = [];
    c.queue = [];
    if (this.consumers.delete(ws)) this.o.metrics.clients.dec({ endpoint: 'experience' });
    this.o.metrics.disconnects.inc({ endpoint: 'experience', reason: c.closeReason ?? (this.stopping ? 'shutdown' : 'client') });
  }

  drain(ws: WebSocket<ExperienceConsumer>): void {
    const c = ws.getUserData();
    this.flushQueue(ws, c);
    this.pump(ws, c);
  }

  /** A text message from a consumer: `stats` or `configure`. */
  message(ws: WebSocket<ExperienceConsumer>, message: ArrayBuffer, isBinary: boolean): void {
    const c = ws.getUserData();
    const fail = (error: string, field?: string) => {
      this.o.metrics.protocolErrors.inc({ endpoint: 'experience' });
      // The message starts with the field's name, as the upgrade's 400s do.
      const text = field && !error.startsWith(`${field}: `) ? `${field}: ${error}` : error;
      ws.send(JSON.stringify({ type: 'error', ...(field ? { field } : {}), error: text }), false);
    };
    if (isBinary) return fail('/experience takes text JSON messages: {"type":"stats"} or {"type":"configure", ...filters}');
    let msg: unknown;
    try {
      msg = JSON.parse(Buffer.from(message).toString('utf8'));
    } catch {
      return fail('message is not JSON');
    }
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) return fail('message must be a JSON object with a "type"');
    const m = msg as Record<string, unknown>;
    if (m.type === 'stats') {
      ws.send(JSON.stringify(this.consumerStats(c)), false);
      return;
    }
    if (m.type === 'configure') {
      const raw = (m.filters !== undefined ? m.filters : Object.fromEntries(Object.entries(m).filter(([k]) => k !== 'type' && k !== 'id'))) as Record<string, unknown>;
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return fail('must be an object of filter fields', 'filters');
      const unknown = unknownFields(raw, []);
      if (unknown.length > 0) return fail(`unknown filter field (known: games, players, min_turn, max_turn, reward_min, reward_max, terminal_only, sample_rate, per_game_cap, batch_size, timeout_ms, max_rate)`, unknown[0]);
      try {
        const next = parseFilter(raw, c.filter);
        if (this.maxRate > 0) next.maxRate = Math.min(next.maxRate ?? this.maxRate, this.maxRate);
        c.filter = next;
      } catch (error) {
        if (error instanceof FilterError) return fail(error.message, error.field);
        throw error;
      }
      c.perGame.clear();
      c.tokens = Math.min(c.tokens, this.burst(c));
      this.shared.leave(c.signature);
      c.signature = undefined;
      c.align = undefined;
      this.join(c);
      // Records already batched passed the old filter; the new one applies from the next record on.
      if (c.batch.length >= c.filter.batchSize) this.finishBatch(ws, c);
      ws.send(JSON.stringify({ type: 'configured', ...(m.id !== undefined ? { id: m.id } : {}), filters: describeFilter(c.filter), cursor: Number.isNaN(c.cursor) ? null : c.cursor }), false);
      return;
    }
    fail(`unknown message type ${JSON.stringify(m.type)} (stats, configure)`, 'type');
  }

  stats() {
    let sent = 0;
    let dropped = 0;
    for (const ws of this.consumers) {
      const c = ws.getUserData();
      sent += c.sent;
      dropped += c.dropped;
    }
    const first = this.window.first();
    const last = this.window.last();
    return {
      consumers: this.consumers.size, batchesSent: sent, batchesDropped: dropped, undecodable: this.undecodable, arenaChunks: this.arena.chunks,
      sharedBatches: this.shared.hits,
      window: { records: this.window.size, bytes: this.window.bytes, firstSeq: first?.seq ?? null, lastSeq: last?.seq ?? null },
    };
  }

  /**
   * One experience event from the fan-out ring (a view into the ring). `seqKey` is the sequence
   * number the aggregator gave it (decimal, in the record key); records published without one
   * (tests writing the ring directly) are numbered here.
   */
  onExperience(data: Uint8Array, offset: number, length: number, seqKey = '', stamp = Date.now()): void {
    const view = data.subarray(offset, offset + length);
    let facts;
    try {
      const decoded = decodeEvent(view);
      if (decoded.kind !== EventKind.Experience) throw new Error('not an experience event');
      facts = decoded;
    } catch {
      this.undecodable++;
      return;
    }
    const seq = seqKey === '' ? this.localSeq + 1 : Number(seqKey);
    if (!Number.isSafeInteger(seq) || seq < 0) {
      this.undecodable++;
      return;
    }
    this.localSeq = seq;
    const now = Date.now();
    // The one copy out of the ring, already in wire form: batches are then plain concatenations.
    const mark = ++this.arrivals;
    const block = recordBlock(seq, data, offset, length, this.arena, mark);
    const rec: RetainedRecord = { seq, mark, block, bytes: block.subarray(RECORD_PREFIX_BYTES), stamp, at: now, gameId: facts.gameId, playerId: facts.playerId, turn: facts.turn, reward: facts.reward, done: facts.done };
    this.window.push(rec);
    for (const ws of this.consumers) {
      const c = ws.getUserData();
      if (c.closed) continue;
      if (c.catchingUp) this.pump(ws, c);
      else this.offer(ws, c, rec, true);
    }
  }

  stop(): void {
    this.stopping = true;
    clearInterval(this.statusTimer);
    for (const ws of this.consumers) {
      const c = ws.getUserData();
      if (c.batchTimer) clearTimeout(c.batchTimer);
      if (c.retryTimer) clearTimeout(c.retryTimer);
    }
  }

  /** The oldest record anything still refers to: the retained window's first, or one batched or queued for a consumer. */
  private oldestHeldMark(): number {
    let oldest = this.window.first()?.mark ?? Infinity;
    for (const ws of this.consumers) {
      const c = ws.getUserData();
      // Batches are queued in arrival order, and records in each: the queue's first is its oldest.
      const m = c.queue[0]?.records[0]?.mark ?? c.batch[0]?.mark;
      if (m !== undefined && m < oldest) oldest = m;
    }
    return oldest;
  }

  private burst(c: ExperienceConsumer): number {
    return c.filter.maxRate === undefined ? Infinity : Math.max(c.filter.maxRate, c.filter.batchSize);
  }

  /** Token bucket for max_rate: true when one more record may go out now. */
  private takeToken(c: ExperienceConsumer): boolean {
    if (c.filter.maxRate === undefined) return true;
    const now = Date.now();
    c.tokens = Math.min(this.burst(c), c.tokens + ((now - c.tokensAt) / 1000) * c.filter.maxRate);
    c.tokensAt = now;
    if (c.tokens < 1) return false;
    c.tokens -= 1;
    return true;
  }

  /**
   * Consider one record for one consumer. Returns false when it could not be taken now (catch-up
   * held back by the rate limit): the cursor stays on it.
   */
  private offer(ws: WebSocket<ExperienceConsumer>, c: ExperienceConsumer, rec: RetainedRecord, live: boolean): boolean {
    if (!Number.isNaN(c.cursor)) {
      if (rec.seq < c.cursor) return true; // already seen (resume overlap)
      if (rec.seq > c.cursor) {
        c.missed += rec.seq - c.cursor;
        c.pendingMissed += rec.seq - c.cursor;
      }
    }
    const f = c.filter;
    if (!matchesFilter(f, rec) || (f.sampleRate < 1 && Math.random() >= f.sampleRate) || (f.perGameCap !== undefined && !c.perGame.take(rec.gameId, f.perGameCap))) {
      c.cursor = rec.seq + 1;
      c.filtered++;
      return true;
    }
    if (!this.takeToken(c)) {
      if (!live) return false;
      c.cursor = rec.seq + 1;
      c.dropped++;
      c.droppedRecords++;
      c.pendingDropped++;
      return true;
    }
    c.cursor = rec.seq + 1;
    c.batch.push(rec);
    if (c.batch.length >= (c.align?.records ?? f.batchSize)) this.finishBatch(ws, c);
    else if (c.batch.length === 1) {
      const now = Date.now();
      c.batchDueAt = c.align?.dueAt ?? now + f.timeoutMs;
      c.batchTimer = setTimeout(() => this.finishBatch(ws, c), Math.max(0, c.batchDueAt - now));
    }
    return true;
  }

  /** Feed a catching-up consumer from the retained window while its queue and socket have room. */
  private pump(ws: WebSocket<ExperienceConsumer>, c: ExperienceConsumer): void {
    if (!c.catchingUp || c.closed) return;
    const w = this.window;
    if (Number.isNaN(c.cursor)) c.cursor = w.first()?.seq ?? NaN;
    if (Number.isNaN(c.cursor)) {
      c.catchingUp = false; // nothing retained yet: live from the next record
      return;
    }
    let i = w.indexOf(c.cursor);
    while (i < w.size) {
      if (c.queue.length >= this.o.queueBatches || ws.getBufferedAmount() >= this.o.softLimitBytes) return; // drain() resumes
      if (!this.offer(ws, c, w.at(i)!, false)) {
        if (!c.retryTimer) c.retryTimer = setTimeout(() => { c.retryTimer = undefined; this.pump(ws, c); }, 50);
        return;
      }
      i++;
    }
    c.catchingUp = false;
  }

  private finishBatch(ws: WebSocket<ExperienceConsumer>, c: ExperienceConsumer): void {
    if (c.batchTimer) clearTimeout(c.batchTimer);
    c.batchTimer = undefined;
    c.align = undefined;
    if (c.closed || c.batch.length === 0) return;
    c.queue.push({ records: c.batch });
    c.batch = [];
    while (c.queue.length > this.o.queueBatches) {
      const lost = c.queue.shift()!;
      c.dropped++;
      c.droppedRecords += lost.records.length;
      c.pendingDropped += lost.records.length;
      this.o.metrics.experienceBatches.inc({ outcome: 'dropped' });
      this.o.metrics.experienceRecords.inc({ outcome: 'dropped' }, lost.records.length);
    }
    this.flushQueue(ws, c);
  }

  /** The batch's bytes in the shared writer: valid until the next encode, so send at once. */
  private encode(c: ExperienceConsumer, records: RetainedRecord[]): Uint8Array {
    const { pendingDropped: dropped, pendingMissed: missed } = c;
    c.pendingDropped = 0;
    c.pendingMissed = 0;
    // Another consumer with the same filters and format may just have had this very batch.
    const sharing = this.shared.sharing(c.signature);
    if (sharing) {
      const hit = this.shared.find(c.signature!, records, dropped, missed);
      if (hit) return hit;
    }
    const blocks = records.map((r) => r.block);
    const bytes = c.version === 1 ? this.writer.v1(blocks) : this.writer.v2({
      seq_first: records[0].seq, seq_last: records[records.length - 1].seq, count: records.length,
      dropped, missed, server_time: Date.now(),
    }, blocks, c.deflate);
    if (sharing) this.shared.keep(c.signature!, records, dropped, missed, bytes);
    return bytes;
  }

  /**
   * Join the consumers with equal filters and format (when its filters hold no per-consumer state).
   * A live consumer whose batch is empty ends its first batch where another member's batch
   * ends (by count and by time): from then on their batches are the same records.
   */
  private join(c: ExperienceConsumer): void {
    c.signature = batchSignature(c.version, c.deflate, c.filter);
    if (c.signature === undefined) return;
    this.shared.join(c.signature);
    if (c.catchingUp || c.batch.length > 0) return;
    for (const ws of this.consumers) {
      const other = ws.getUserData();
      if (other === c || other.closed || other.catchingUp || other.signature !== c.signature) continue;
      if (other.batch.length > 0) c.align = { records: (other.align?.records ?? other.filter.batchSize) - other.batch.length, dueAt: other.batchDueAt };
      return;
    }
  }

  private flushQueue(ws: WebSocket<ExperienceConsumer>, c: ExperienceConsumer): void {
    if (c.closed || c.queue.length === 0) return;
    ws.cork(() => {
      while (c.queue.length > 0 && ws.getBufferedAmount() < this.o.softLimitBytes) {
        const batch = c.queue.shift()!;
        const bytes = this.encode(c, batch.records);
        ws.send(bytes, true);
        c.sent++;
        c.sentRecords += batch.records.length;
        c.bytes += bytes.byteLength;
        this.o.metrics.experienceBatches.inc({ outcome: 'sent' });
        this.o.metrics.experienceRecords.inc({ outcome: 'sent' }, batch.records.length);
      }
    });
  }

  /** Sequence numbers between this consumer's position and the newest retained record. */
  private lag(c: ExperienceConsumer): number {
    const head = this.window.last()?.seq;
    if (head === undefined) return 0;
    const oldest = c.queue[0]?.records[0]?.seq ?? c.batch[0]?.seq;
    const position = oldest !== undefined ? oldest - 1 : Number.isNaN(c.cursor) ? head : c.cursor - 1;
    return Math.max(0, head - position);
  }

  private consumerStats(c: ExperienceConsumer): Record<string, unknown> {
    const first = this.window.first();
    const last = this.window.last();
    return {
      type: 'stats', consumer_id: c.id, gateway: this.o.index ?? 0, server_time: Date.now(),
      delivered: c.sentRecords, batches: c.sent, filtered: c.filtered, dropped: c.droppedRecords, missed: c.missed, bytes: c.bytes,
      queued_batches: c.queue.length, pending_records: c.batch.length, lag: this.lag(c), catching_up: c.catchingUp,
      next_seq: Number.isNaN(c.cursor) ? null : c.cursor,
      window: { first_seq: first?.seq ?? null, last_seq: last?.seq ?? null, records: this.window.size, bytes: this.window.bytes },
      format: c.version, compress: c.deflate ? 'deflate' : 'none', filters: describeFilter(c.filter),
    };
  }

  /** Counters go to the metrics in deltas, once a tick: a label lookup per record would cost more than the filter. */
  private report(c: ExperienceConsumer): void {
    const r = c.reported;
    const add = (outcome: 'delivered' | 'filtered' | 'dropped' | 'missed', now: number, key: keyof typeof r) => {
      if (now > r[key]) this.o.metrics.experienceConsumerRecords.inc({ consumer: c.label, outcome }, now - r[key]);
      r[key] = now;
    };
    add('delivered', c.sentRecords, 'delivered');
    add('filtered', c.filtered, 'filtered');
    add('dropped', c.droppedRecords, 'dropped');
    add('missed', c.missed, 'missed');
    if (c.bytes > r.bytes) this.o.metrics.experienceConsumerBytes.inc({ consumer: c.label }, c.bytes - r.bytes);
    r.bytes = c.bytes;
  }

  private tick(): void {
    this.window.evict(Date.now());
    this.o.metrics.experienceRetainedRecords.set(this.window.size);
    this.o.metrics.experienceRetainedBytes.set(this.window.bytes);
    const lags = new Map<string, number>();
    for (const ws of this.consumers) {
      const c = ws.getUserData();
      if (c.closed) continue;
      this.report(c);
      lags.set(c.label, Math.max(lags.get(c.label) ?? 0, this.lag(c)));
      if (ws.getBufferedAmount() >= this.o.hardLimitBytes) continue;
      ws.cork(() => {
        ws.send(JSON.stringify({ type: 'experience_status', sent: c.sent, sent_records: c.sentRecords, dropped: c.dropped, dropped_records: c.droppedRecords, queued: c.queue.length, filtered: c.filtered, missed: c.missed, lag: this.lag(c) }), false);
      });
    }
    this.o.metrics.experienceConsumerLag.reset();
    for (const [label, lag] of lags) this.o.metrics.experienceConsumerLag.set({ consumer: label }, lag);
  }
}
