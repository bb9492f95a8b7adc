/**
 * attachRing: re-attach to any ring from its SharedArrayBuffer alone, picking the
 * class from the kind word in the header. Used by the actor host, which receives
 * buffers from the supervisor without knowing what kind of ring each one is.
 * (Kept apart from ring-stats.ts so that module never imports the ring classes.)
 */
import { KIND_RECORD, KIND_SLOT, peekKind } from './ring-stats.js';
import { RecordRing } from './record-ring.js';
import { SlotRing } from './slot-ring.js';

export function attachRing(sab: SharedArrayBuffer): RecordRing | SlotRing {
  const kind = peekKind(sab);
  if (kind === KIND_RECORD) return RecordRing.attach(sab);
  if (kind === KIND_SLOT) return SlotRing.attach(sab);
  throw new Error(`attachRing: ring header has unknown kind ${kind}`);
}

export { RecordRing, SlotRing };
export type { DropReason, OverflowPolicy, RingStats } from './ring-stats.js';
