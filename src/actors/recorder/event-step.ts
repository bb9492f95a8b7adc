/**
 * The training step an accepted event names, read without decoding the event: the recorder
 * indexes every event by step, and a full decode would copy tensors (policy distributions,
 * attention maps) only to throw them away. The bytes were validated at the ingest edge.
 */
import { EVENT_HEADER_BYTES, EventKind } from '../../shared/telemetry/event-codec.js';

const utf8 = new TextDecoder();

/** The metrics payload's step, else `meta.step` when it is a finite number, else NaN. */
export function eventStep(event: Uint8Array): number {
  if (event.byteLength < EVENT_HEADER_BYTES) return Number.NaN;
  const view = new DataView(event.buffer, event.byteOffset, event.byteLength);
  const kind = event[1];
  const metaLen = view.getUint16(2, true);
  if (kind === EventKind.Metrics) {
    const at = EVENT_HEADER_BYTES + metaLen;
    return at + 8 <= event.byteLength ? view.getFloat64(at, true) : Number.NaN;
  }
  if (kind === EventKind.Experience || metaLen === 0 || EVENT_HEADER_BYTES + metaLen > event.byteLength) return Number.NaN;
  try {
    const meta = JSON.parse(utf8.decode(event.subarray(EVENT_HEADER_BYTES, EVENT_HEADER_BYTES + metaLen))) as { step?: unknown };
    return typeof meta?.step === 'number' && Number.isFinite(meta.step) ? meta.step : Number.NaN;
  } catch {
    return Number.NaN;
  }
}
