/**
 * RL experience stream (`/experience`): experience events from the fan-out ring, batched
 * per consumer after its filters.
 *
 * Query: `game`, `player` (exact match), `min_turn` (turn >= n), `batch_size`, `timeout_ms`.
 * A batch goes out when it holds batch_size records, or timeout_ms after its first record.
 * Binary message: u32 LE count, then per record u32 LE length + the experience event bytes
 * (event-codec format, exactly as the producer sent them).
 *
 * Each consumer has a bounded queue of finished batches: while its socket is over the soft
 * limit nothing is sent and, when the queue is full, the oldest batch is dropped and
 * counted. A text status message `{"type":"experience_status","sent","dropped",...}` goes
 * out periodically so a consumer can see what it lost.
 */
import type { WebSocket } from 'uWebSockets.js';
import { decodeEvent, EventKind, type ExperienceEvent } from '../../shared/telemetry/event-codec.js';
import type { GatewayMetrics, DisconnectReason } from './gateway-metrics.js';

export interface ExperienceFilter {
  game?: string;
  player?: string;
  minTurn?: number;
  batchSize: number;
  timeoutMs: number;
}

export interface ExperienceConsumer {
  readonly endpoint: 'experience';
  readonly filter: ExperienceFilter;
  batch: Uint8Array[];
  batchBytes: number;
  batchTimer?: NodeJS.Timeout;
  /** Finished batches waiting for the socket, oldest first. */
  queue: Array<{ bytes: Uint8Array; records: number }>;
  sent: number;
  sentRecords: number;
  dropped: number;
  droppedRecords: number;
  closeReason?: DisconnectReason;
  closed: boolean;
}

export type ParsedFilter = { ok: true; filter: ExperienceFilter } | { ok: false; error: string };

function positiveInt(value: string | null, name: string, max: number): number | string | undefined {
  if (value === null || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) return `${name} must be an integer in 1 .. ${max} (got ${JSON.stringify(value)})`;
  return n;
}

export function parseExperienceQuery(query: URLSearchParams, defaults: { batchSize: number; timeoutMs: number }): ParsedFilter {
  const batchSize = positiveInt(query.get('batch_size'), 'batch_size', 65_536);
  if (typeof batchSize === 'string') return { ok: false, error: batchSize };
  const timeoutMs = positiveInt(query.get('timeout_ms'), 'timeout_ms', 60_000);
  if (typeof timeoutMs === 'string') return { ok: false, error: timeoutMs };
  let minTurn: number | undefined;
  const rawTurn = query.get('min_turn');
  if (rawTurn !== null && rawTurn !== '') {
    minTurn = Number(rawTurn);
    if (!Number.isFinite(minTurn)) return { ok: false, error: `min_turn must be a number (got ${JSON.stringify(rawTurn)})` };
  }
  return {
    ok: true,
    filter: {
      game: query.get('game') || undefined,
      player: query.get('player') || undefined,
      minTurn,
      batchSize: batchSize ?? defaults.batchSize,
      timeoutMs: timeoutMs ?? defaults.timeoutMs,
    },
  };
}

export function encodeExperienceBatch(records: readonly Uint8Array[], bytes: number): Uint8Array {
  const out = new Uint8Array(4 + records.length * 4 + bytes);
  const view = new DataView(out.buffer);
  view.setUint32(0, records.length, true);
  let p = 4;
  for (const r of records) {
    view.setUint32(p, r.byteLength, true);
    out.set(r, p + 4);
    p += 4 + r.byteLength;
  }
  return out;
}

/** Inverse of encodeExperienceBatch (for consumers and tests). */
export function decodeExperienceBatch(bytes: Uint8Array): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(0, true);
  const out: Uint8Array[] = [];
  let p = 4;
  for (let i = 0; i < count; i++) {
    const len = view.getUint32(p, true);
    out.push(bytes.subarray(p + 4, p + 4 + len));
    p += 4 + len;
  }
  return out;
}

export interface ExperienceHubOptions {
  queueBatches: number;
  softLimitBytes: number;
  hardLimitBytes: number;
  statusEveryMs: number;
  metrics: GatewayMetrics;
}

export class ExperienceHub {
  private readonly consumers = new Set<WebSocket<ExperienceConsumer>>();
  private readonly statusTimer: NodeJS.Timeout;
  private undecodable = 0;
  private stopping = false;

  constructor(private readonly o: ExperienceHubOptions) {
    this.statusTimer = setInterval(() => this.sendStatus(), o.statusEveryMs);
  }

  newConsumerData(filter: ExperienceFilter): ExperienceConsumer {
    return { endpoint: 'experience', filter, batch: [], batchBytes: 0, queue: [], sent: 0, sentRecords: 0, dropped: 0, droppedRecords: 0, closed: false };
  }

  open(ws: WebSocket<ExperienceConsumer>): void {
    this.consumers.add(ws);
    this.o.metrics.clients.inc({ endpoint: 'experience' });
  }

  close(ws: WebSocket<ExperienceConsumer>): void {
    const c = ws.getUserData();
    c.closed = true;
    if (c.batchTimer) clearTimeout(c.batchTimer);
    c.batch = [];
    c.queue = [];
    if (this.consumers.delete(ws)) this.o.metrics.clients.dec({ endpoint: 'experience' });
    this.o.metrics.disconnects.inc({ endpoint: 'experience', reason: c.closeReason ?? (this.stopping ? 'shutdown' : 'client') });
  }

  drain(ws: WebSocket<ExperienceConsumer>): void {
    this.flushQueue(ws, ws.getUserData());
  }

  stats() {
    let sent = 0;
    let dropped = 0;
    for (const ws of this.consumers) {
      const c = ws.getUserData();
      sent += c.sent;
      dropped += c.dropped;
    }
    return { consumers: this.consumers.size, batchesSent: sent, batchesDropped: dropped, undecodable: this.undecodable };
  }

  /** One experience event from the fan-out ring (a view into the ring: copied only if someone wants it). */
  onExperience(data: Uint8Array, offset: number, length: number): void {
    if (this.consumers.size === 0) return;
    const view = data.subarray(offset, offset + length);
    let event: ExperienceEvent;
    try {
      const decoded = decodeEvent(view);
      if (decoded.kind !== EventKind.Experience) throw new Error('not an experience event');
      event = decoded;
    } catch {
      this.undecodable++;
      return;
    }
    let copy: Uint8Array | undefined;
    for (const ws of this.consumers) {
      const c = ws.getUserData();
      const f = c.filter;
      if (c.closed) continue;
      if (f.game !== undefined && event.gameId !== f.game) continue;
      if (f.player !== undefined && event.playerId !== f.player) continue;
      if (f.minTurn !== undefined && !(event.turn >= f.minTurn)) continue;
      copy ??= view.slice();
      c.batch.push(copy);
      c.batchBytes += copy.byteLength;
      if (c.batch.length >= f.batchSize) this.finishBatch(ws, c);
      else if (c.batch.length === 1) c.batchTimer = setTimeout(() => this.finishBatch(ws, c), f.timeoutMs);
    }
  }

  stop(): void {
    this.stopping = true;
    clearInterval(this.statusTimer);
    for (const ws of this.consumers) {
      const c = ws.getUserData();
      if (c.batchTimer) clearTimeout(c.batchTimer);
    }
  }

  private finishBatch(ws: WebSocket<ExperienceConsumer>, c: ExperienceConsumer): void {
    if (c.batchTimer) clearTimeout(c.batchTimer);
    c.batchTimer = undefined;
    if (c.closed || c.batch.length === 0) return;
    const records = c.batch.length;
    c.queue.push({ bytes: encodeExperienceBatch(c.batch, c.batchBytes), records });
    c.batch = [];
    c.batchBytes = 0;
    while (c.queue.length > this.o.queueBatches) {
      const lost = c.queue.shift()!;
      c.dropped++;
      c.droppedRecords += lost.records;
      this.o.metrics.experienceBatches.inc({ outcome: 'dropped' });
      this.o.metrics.experienceRecords.inc({ outcome: 'dropped' }, lost.records);
    }
    this.flushQueue(ws, c);
  }

  private flushQueue(ws: WebSocket<ExperienceConsumer>, c: ExperienceConsumer): void {
    if (c.closed || c.queue.length === 0) return;
    ws.cork(() => {
      while (c.queue.length > 0 && ws.getBufferedAmount() < this.o.softLimitBytes) {
        const batch = c.queue.shift()!;
        ws.send(batch.bytes, true);
        c.sent++;
        c.sentRecords += batch.records;
        this.o.metrics.experienceBatches.inc({ outcome: 'sent' });
        this.o.metrics.experienceRecords.inc({ outcome: 'sent' }, batch.records);
      }
    });
  }

  private sendStatus(): void {
    for (const ws of this.consumers) {
      const c = ws.getUserData();
      if (c.closed || ws.getBufferedAmount() >= this.o.hardLimitBytes) continue;
      ws.cork(() => {
        ws.send(JSON.stringify({ type: 'experience_status', sent: c.sent, sent_records: c.sentRecords, dropped: c.dropped, dropped_records: c.droppedRecords, queued: c.queue.length }), false);
      });
    }
  }
}
