/**
 * In-process producer: a trainer running inside ringcast (the demo trainer, or a custom
 * actor) writes telemetry straight into an ingest RecordRing, in the same ingest-record
 * layout the network transports use, so the aggregator cannot tell the two apart.
 *
 * Never blocks and never throws into the caller: the ring's overflow policy decides what
 * a full ring does (ingest rings are drop-newest), and a refused event is counted per kind;
 * input that cannot be encoded is counted as `invalid_<kind>` with the reason kept in
 * `lastError()`. Events are encoded into one reused scratch buffer and copied once, into
 * the ring: no per-event allocation beyond the JSON meta string.
 */
import { Counter, type Registry } from 'prom-client';
import type { RecordRing } from '../shared/record-ring.js';
import { INGEST_HEADER_BYTES, writeIngestRecord } from '../shared/telemetry/ring-records.js';
import { runNameProblem } from '../shared/telemetry/run-name.js';
import type { EncodeOptions } from './encode.js';
import { EventProducer } from './event-producer.js';
import { EVENT_PRIORITY, type EventKindName, type ProducerStats, type TelemetryProducer } from './types.js';

export interface RingProducerOptions {
  ring: RecordRing;
  /** Run every event belongs to (carried in the ingest record). */
  run: string;
  /** Ingest-record producer id; in-process producers use small fixed ids (default 1). */
  producerId?: number;
  /** Registry for `ringcast_ring_producer_*` counters (an actor passes ctx.metrics). */
  metrics?: Registry;
  /** Clock for the ingest record's receivedAt and the event timestamp (ms since epoch). */
  now?: () => number;
}

/** One counter per registry: a second producer in the same actor shares (and adds to) the first one's series. */
function counter(registry: Registry | undefined, name: string, help: string, labelNames: string[]): Counter<string> {
  const existing = registry?.getSingleMetric(name);
  if (existing) return existing as Counter<string>;
  return new Counter({ name, help, labelNames, registers: registry ? [registry] : [] });
}

const KINDS = Object.keys(EVENT_PRIORITY) as EventKindName[];
type DropReason = 'ring_full' | 'too_large' | 'invalid' | 'closed';

export class RingProducer extends EventProducer implements TelemetryProducer {
  private readonly ring: RecordRing;
  private readonly run: string;
  private readonly producerId: number;
  /** UTF-8 length of the run name as the ingest record stores it (at most 255). */
  private readonly runBytes: number;
  private readonly now: () => number;
  private readonly stamped = { timestamp: 0 };
  private sent = 0;
  private readonly dropped: Record<string, number> = {};
  private error: string | undefined;
  private closed = false;
  private readonly sentBy: Record<string, { inc(): void }> = {};
  private readonly droppedBy: Record<string, { inc(): void }> = {};

  constructor(options: RingProducerOptions) {
    super();
    if (!options?.ring) throw new TypeError('RingProducer: options.ring (a RecordRing) is required');
    const runProblem = runNameProblem(options.run);
    if (runProblem !== undefined) throw new TypeError(`RingProducer: options.run: ${runProblem}`);
    this.ring = options.ring;
    this.run = options.run;
    this.producerId = options.producerId ?? 1;
    this.runBytes = Math.min(255, new TextEncoder().encode(options.run).byteLength);
    this.now = options.now ?? Date.now;
    const sent = counter(options.metrics, 'ringcast_ring_producer_events_total', 'Events the in-process producer wrote into its ring, by kind', ['kind']);
    const dropped = counter(options.metrics, 'ringcast_ring_producer_dropped_total', 'Events the in-process producer dropped, by kind and reason (ring_full, too_large, invalid, invalid_value, closed)', ['kind', 'reason']);
    // Label children are resolved once so the emit path does no label lookup.
    for (const kind of KINDS) {
      this.sentBy[kind] = sent.labels(kind);
      for (const reason of ['ring_full', 'too_large', 'invalid', 'closed'] as DropReason[]) this.droppedBy[`${kind}/${reason}`] = dropped.labels(kind, reason);
    }
    this.droppedBy['metrics/invalid_value'] = dropped.labels('metrics', 'invalid_value');
  }

  /**
   * `dropped` keys: `<kind>` (ring full), `too_large_<kind>` (bigger than the ring's largest
   * record), `invalid_<kind>`, `closed_<kind>` (emitted after
   * close), `metrics_invalid_value` (single non-finite metric values skipped). `queued` is
   * always 0: nothing waits in this producer; the ring's own depth is in its stats. There is
   * no server in-process, so `lastServerError` carries the last local refusal (= lastError()).
   */
  stats(): ProducerStats {
    return { sent: this.sent, dropped: { ...this.dropped }, queued: 0, errorsFromServer: 0, lastServerError: this.error, state: this.closed ? 'closed' : 'open' };
  }

  /** Why the last event was refused as invalid, if one was. */
  lastError(): string | undefined {
    return this.error;
  }

  /** Publishes anything committed but unpublished; later emits are dropped as `closed_<kind>`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ring.flush();
  }

  /** Every event carries the producer clock at emit time; the ingest record's receivedAt is the same instant. */
  protected encodeOptions(): EncodeOptions {
    this.stamped.timestamp = this.now();
    return this.stamped;
  }

  protected accepting(kind: EventKindName): boolean {
    if (!this.closed) return true;
    this.count(`closed_${kind}`, `${kind}/closed`);
    return false;
  }

  /** Nothing waits in this producer, so `critical` changes nothing: every event is in the ring (or counted) on return. */
  protected deliver(kind: EventKindName, bytes: Uint8Array): void {
    if (INGEST_HEADER_BYTES + this.runBytes + bytes.byteLength > this.ring.maxRecordBytes) {
      // Would never fit, however empty the ring: say so rather than blame a full ring.
      this.error = `${kind}: event of ${bytes.byteLength} bytes exceeds the ring's largest record (${this.ring.maxRecordBytes} bytes)`;
      this.count(`too_large_${kind}`, `${kind}/too_large`);
      return;
    }
    if (writeIngestRecord(this.ring, this.stamped.timestamp, this.producerId, this.run, bytes, 0, bytes.byteLength)) {
      this.sent++;
      this.sentBy[kind].inc();
    } else {
      this.count(kind, `${kind}/ring_full`);
    }
  }

  protected invalid(kind: EventKindName, error: unknown): void {
    this.error = error instanceof Error ? error.message : String(error);
    this.count(`invalid_${kind}`, `${kind}/invalid`);
  }

  protected skippedMetricValues(count: number, lastSkip: string | undefined): void {
    for (let i = 0; i < count; i++) this.count('metrics_invalid_value', 'metrics/invalid_value');
    this.error = lastSkip;
  }

  private count(key: string, metric: string): void {
    this.dropped[key] = (this.dropped[key] ?? 0) + 1;
    this.droppedBy[metric].inc();
  }
}
