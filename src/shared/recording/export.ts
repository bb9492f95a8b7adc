/**
 * Recorded events in the shapes the recording routes serve: one NDJSON line per event,
 * the length-prefixed binary framing producers use on TCP, and CSV rows of metrics.
 */
import { EVENT_KIND_NAMES, EventKind, decodeEvent, type TelemetryEvent } from '../telemetry/event-codec.js';
import type { RecordView } from './format.js';

const finiteOrNull = (x: number) => (Number.isFinite(x) ? x : null);

/** The fields of a decoded event worth showing, typed arrays as plain arrays. */
function eventFields(event: TelemetryEvent): Record<string, unknown> {
  if (event.kind === EventKind.Metrics) {
    const metrics: Record<string, number | null> = {};
    event.names.forEach((name, i) => { metrics[name] = finiteOrNull(event.values[i]); });
    return { metrics };
  }
  if (event.kind === EventKind.Experience) {
    const { gameId, playerId, turn, action, reward, done, stateShape, maskLen } = event;
    return { game_id: gameId, player_id: playerId, turn, action, reward, done, state_shape: stateShape, mask_len: maskLen };
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(event)) {
    if (key === 'kind' || key === 'offset' || key === 'length' || key === 'timestamp' || key === 'run' || key === 'step') continue;
    out[key] = ArrayBuffer.isView(value) ? Array.from(value as unknown as ArrayLike<number>) : value;
  }
  return out;
}

/** One NDJSON line (with its newline) for a recorded event of `run`. */
export function ndjsonLine(run: string, r: RecordView): string {
  let fields: Record<string, unknown>;
  let kind = EVENT_KIND_NAMES[r.event[1]] ?? 'unknown';
  try {
    const event = decodeEvent(r.event);
    kind = EVENT_KIND_NAMES[event.kind] ?? kind;
    fields = eventFields(event);
  } catch (error) {
    fields = { error: `undecodable: ${(error as Error).message}` };
  }
  return `${JSON.stringify({ run, kind, step: finiteOrNull(r.step), time: r.time, received_at: r.receivedAt, ...fields })}\n`;
}

/** The event as the TCP ingest framing carries it: u32 little-endian length, then the bytes. */
export function binaryFrame(r: RecordView): Buffer {
  const b = Buffer.allocUnsafe(4 + r.event.byteLength);
  b.writeUInt32LE(r.event.byteLength, 0);
  b.set(r.event, 4);
  return b;
}

/** The metrics of a metrics event (names and values), else undefined; undecodable events are skipped. */
export function metricsOf(r: RecordView): { names: string[]; values: number[] } | undefined {
  if (r.event[1] !== EventKind.Metrics) return undefined;
  try {
    const e = decodeEvent(r.event);
    return e.kind === EventKind.Metrics ? { names: e.names, values: e.values } : undefined;
  } catch {
    return undefined;
  }
}

/** One CSV field, quoted per RFC 4180 when it holds a comma, quote, CR or LF. */
export function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** A CSV record (CRLF-terminated, as RFC 4180 has it). */
export function csvRow(fields: readonly string[]): string {
  return `${fields.map(csvField).join(',')}\r\n`;
}
