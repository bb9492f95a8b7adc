/**
 * The main thread's way to the overlay consumers: one `control.<consumer>` ring per gateway
 * (and per other actor that follows control state), which main writes and that consumer
 * reads next to its fan-out ring from the aggregator (merged on the reading side).
 *
 * What goes here is what the main thread decides rather than what a trainer measured:
 * control state, scene changes, capture results, the chat actor's messages. Records have the
 * aggregator's fan-out layout (one serialisation for every level), so a /ws client cannot
 * tell which ring a message came through.
 *
 * Retained messages (the last one per key) are kept here: a new /ws client gets them from
 * its gateway's snapshot like any other, and a consumer that restarts gets them written
 * into its ring again (`replay`), so it never has to ask for them.
 */
import { Counter, type Registry } from 'prom-client';
import type { RecordRing } from '../shared/record-ring.js';
import { CHANNELS } from '../shared/telemetry/channels.js';
import { FanoutFlag, FanoutType, encodeFanoutRecord } from '../shared/telemetry/ring-records.js';

/** An overlay message the main thread (or an actor through it) publishes. */
export interface OverlayMessage {
  type: string;
  channel: string;
  /** Snapshot key: a later retained message with the same key replaces this one. Default: `type`. */
  key?: string;
  retain?: boolean;
  critical?: boolean;
  data: unknown;
}

/** What a service needs to publish: true when every consumer's ring took the message. */
export type PublishOverlay = (message: OverlayMessage) => boolean;

/** One message's JSON at most: a control message is small; a bigger one is a bug upstream. */
export const MAX_MESSAGE_BYTES = 65_535;
/** Retained keys kept (capture results are retained per stream: a few hundred). */
const MAX_RETAINED = 4096;
const TYPE_RE = /^[a-z][a-z0-9_]{0,63}$/;
const encoder = new TextEncoder();

export class OverlayMessageError extends Error {}

export class ControlRings {
  private readonly rings = new Map<string, RecordRing>();
  private readonly retainedRecords = new Map<string, Uint8Array>();
  private readonly refused: Counter<'reason'>;

  constructor(rings: Record<string, RecordRing>, registry?: Registry) {
    for (const [name, ring] of Object.entries(rings)) this.rings.set(name, ring);
    this.refused = new Counter({
      name: 'ringcast_control_messages_refused_total',
      help: 'Overlay messages from the main thread not written to a control ring, by reason (invalid, too_big, ring_full)',
      labelNames: ['reason'], registers: registry ? [registry] : [],
    });
  }

  get ringNames(): string[] {
    return [...this.rings.keys()];
  }

  /**
   * Encodes once, keeps it if retained, writes it into every control ring. Throws
   * OverlayMessageError for a malformed or oversized message; false when a ring was full
   * (the ring counts its drop as well).
   */
  publish(message: OverlayMessage): boolean {
    let record: Uint8Array;
    let key: string;
    try {
      ({ record, key } = this.encode(message));
    } catch (error) {
      this.refused.inc({ reason: error instanceof OverlayMessageError && /bytes/.test(error.message) ? 'too_big' : 'invalid' });
      throw error;
    }
    if (message.retain === true) {
      this.retainedRecords.delete(key);
      this.retainedRecords.set(key, record);
      if (this.retainedRecords.size > MAX_RETAINED) this.retainedRecords.delete(this.retainedRecords.keys().next().value as string);
    }
    let all = true;
    for (const ring of this.rings.values()) {
      if (!ring.tryWrite(record)) {
        all = false;
        this.refused.inc({ reason: 'ring_full' });
      }
    }
    return all;
  }

  /** The retained records, oldest first (standalone fan-out records). */
  retained(): Uint8Array[] {
    return [...this.retainedRecords.values()];
  }

  /** Writes every retained record into one ring again: its consumer restarted with an empty snapshot. */
  replay(ringName: string): number {
    const ring = this.rings.get(ringName);
    if (!ring) return 0;
    let written = 0;
    for (const record of this.retainedRecords.values()) {
      if (ring.tryWrite(record)) written++;
      else this.refused.inc({ reason: 'ring_full' });
    }
    return written;
  }

  private encode(m: OverlayMessage): { record: Uint8Array; key: string } {
    if (m === null || typeof m !== 'object') throw new OverlayMessageError('overlay message: an object {type, channel, data} is required');
    if (typeof m.type !== 'string' || !TYPE_RE.test(m.type)) throw new OverlayMessageError('overlay message: "type" must be a lower_snake_case message type');
    const channel = (CHANNELS as readonly string[]).indexOf(m.channel);
    if (channel < 0) throw new OverlayMessageError(`overlay message: unknown channel ${JSON.stringify(m.channel)}; channels: ${CHANNELS.join(', ')}`);
    const key = m.key ?? m.type;
    if (typeof key !== 'string' || key.length === 0 || key.length > 256) throw new OverlayMessageError('overlay message: "key" must be a string of 1–256 characters');
    const now = Date.now();
    const body = encoder.encode(JSON.stringify({ type: m.type, timestamp: now, data: m.data ?? null }));
    if (body.byteLength > MAX_MESSAGE_BYTES) throw new OverlayMessageError(`overlay message "${m.type}" is ${body.byteLength} bytes; at most ${MAX_MESSAGE_BYTES}`);
    const flags = (m.critical === true ? FanoutFlag.Critical : 0) | (m.retain === true ? FanoutFlag.Retain : 0);
    return { key, record: encodeFanoutRecord({ type: FanoutType.Update, channel, levelMask: 7, flags, key, stamp: now, body }) };
  }
}
