/**
 * Types, header constants and the option and overflow plumbing shared by the two
 * SharedArrayBuffer rings.
 *
 * Both ring kinds start with the same three words (magic, kind, layout version) so
 * that `attachRing` (./rings.ts) can tell, from the buffer alone, which class to
 * re-attach with. Everything after those words is private to each class and
 * documented at the top of record-ring.ts and slot-ring.ts.
 *
 * This module imports nothing from the ring classes, so they can both import it
 * without an import cycle.
 */
import { spinThenWait } from './wait.js';

export type OverflowPolicy = 'block' | 'drop-newest' | 'overwrite-oldest';
export type DropReason = 'drop-newest' | 'overwrite-oldest' | 'block-timeout' | 'too-large';

export interface RingStats {
  kind: 'record' | 'slot';
  name: string;
  /** Bytes (record ring) or slots (slot ring). */
  capacity: number;
  /** Bytes (record ring) or slots (slot ring) queued right now. */
  depth: number;
  /** Records or frames published by the producer. */
  recordsIn: number;
  /** Records or frames delivered to consumers. */
  recordsOut: number;
  drops: Record<DropReason, number>;
  /** Total milliseconds spent waiting (consumer for data plus producer for space). */
  waitMs: number;
}

/** Options both ring kinds take. */
export interface RingOptionsBase {
  /** What a producer does when the ring is full. Default 'drop-newest'. (A latest-mode SlotRing never refuses a frame.) */
  policy?: OverflowPolicy;
  /** How long 'block' waits for space before dropping. Default 100 ms. */
  blockTimeoutMs?: number;
  name?: string;
}

/** 'RCST' in ASCII: every ring header starts with it. */
export const RING_MAGIC = 0x52435354;
export const RING_LAYOUT_VERSION = 1;
export const KIND_RECORD = 1;
export const KIND_SLOT = 2;

/** i32 word indexes common to both headers. */
export const H_MAGIC = 0;
export const H_KIND = 1;
export const H_VERSION = 2;

/** The header is cut in 64-byte lines so counters written by different threads never share one. */
export const CACHE_LINE = 64;
/** Longest ring name, in UTF-8 bytes (it lives in one header line). */
export const MAX_NAME_BYTES = CACHE_LINE;

/**
 * Header words both ring kinds keep at the same place (each group on its own cache line):
 * line 4 published count (producer), line 5 delivered count + consumer wait ms (consumer),
 * line 6 drop counters + producer wait ms (producer), line 7 readable waiters/futex,
 * line 8 space waiters/futex. I_* index an Int32Array, F_* a Float64Array over the header.
 */
export const I_R_WAITERS = (7 * CACHE_LINE) >> 2;
export const I_R_FUTEX = I_R_WAITERS + 1;
export const I_S_WAITERS = (8 * CACHE_LINE) >> 2;
export const I_S_FUTEX = I_S_WAITERS + 1;
export const F_WRITTEN = (4 * CACHE_LINE) >> 3;
export const F_READ = (5 * CACHE_LINE) >> 3;
export const F_CONSUMER_WAIT = F_READ + 1;
export const F_DROP_NEWEST = (6 * CACHE_LINE) >> 3;
export const F_OVERWRITTEN = F_DROP_NEWEST + 1;
export const F_BLOCK_TIMEOUT = F_DROP_NEWEST + 2;
export const F_TOO_LARGE = F_DROP_NEWEST + 3;
export const F_PRODUCER_WAIT = F_DROP_NEWEST + 4;

const POLICIES: readonly OverflowPolicy[] = ['block', 'drop-newest', 'overwrite-oldest'];

export function policyCode(policy: OverflowPolicy): number {
  return POLICIES.indexOf(policy);
}

export function policyFromCode(code: number): OverflowPolicy {
  const p = POLICIES[code];
  if (p === undefined) throw new Error(`ring header holds an unknown overflow policy code ${code}`);
  return p;
}

export function checkPolicy(policy: unknown, who: string): OverflowPolicy {
  if (typeof policy !== 'string' || !POLICIES.includes(policy as OverflowPolicy)) {
    throw new TypeError(`${who}: policy must be one of ${POLICIES.join(', ')} (got ${String(policy)})`);
  }
  return policy as OverflowPolicy;
}

/** Validates the options common to both ring kinds and fills in their defaults. Runs once per ring, in create(). */
export function checkRingOptions(opts: RingOptionsBase, who: string, defaultName: string): Required<RingOptionsBase> {
  const policy = checkPolicy(opts.policy ?? 'drop-newest', who);
  const blockTimeoutMs = checkTimeout(opts.blockTimeoutMs ?? 100, `${who} blockTimeoutMs`);
  const name = opts.name ?? defaultName;
  if (typeof name !== 'string') throw new TypeError(`${who}: name must be a string`);
  return { policy, blockTimeoutMs, name };
}

export function checkTimeout(ms: unknown, who: string): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0 || ms > 0x7fffffff) {
    throw new RangeError(`${who}: timeout must be a finite number of milliseconds in [0, 2^31) (got ${String(ms)}); waits are never unbounded`);
  }
  return ms;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Writes the name into header line 1 (bytes 64..127) and returns its byte length. */
export function writeName(sab: SharedArrayBuffer, name: string, who: string): number {
  const bytes = encoder.encode(name);
  if (bytes.length > MAX_NAME_BYTES) {
    throw new RangeError(`${who}: name "${name}" is ${bytes.length} UTF-8 bytes; at most ${MAX_NAME_BYTES} fit in the ring header`);
  }
  new Uint8Array(sab, CACHE_LINE, bytes.length).set(bytes);
  return bytes.length;
}

export function readName(sab: SharedArrayBuffer, length: number): string {
  // TextDecoder refuses views on shared memory, so copy the (at most 64) bytes out first.
  return decoder.decode(new Uint8Array(sab, CACHE_LINE, Math.min(length, MAX_NAME_BYTES)).slice());
}

/**
 * Checks that `sab` is a SharedArrayBuffer holding a ring header of `kind` and returns
 * the header's i32 view. Throws a clear error for anything else so that a wrongly wired
 * buffer fails at attach time instead of producing garbage later.
 */
export function checkHeader(sab: unknown, kind: number, who: string, minBytes: number): Int32Array {
  if (!(sab instanceof SharedArrayBuffer)) {
    throw new TypeError(`${who}: expected a SharedArrayBuffer, got ${sab === null ? 'null' : typeof sab === 'object' ? (sab as object).constructor?.name ?? 'object' : typeof sab}`);
  }
  if (sab.byteLength < minBytes) {
    throw new Error(`${who}: buffer of ${sab.byteLength} bytes is too small to hold a ring header (${minBytes} bytes)`);
  }
  const hdr = new Int32Array(sab, 0, minBytes >> 2);
  if (Atomics.load(hdr, H_MAGIC) !== RING_MAGIC) {
    throw new Error(`${who}: buffer is not a ringcast ring (bad magic 0x${(Atomics.load(hdr, H_MAGIC) >>> 0).toString(16)})`);
  }
  const version = Atomics.load(hdr, H_VERSION);
  if (version !== RING_LAYOUT_VERSION) {
    throw new Error(`${who}: ring layout version ${version} is not supported (expected ${RING_LAYOUT_VERSION})`);
  }
  const found = Atomics.load(hdr, H_KIND);
  if (found !== kind) {
    const names: Record<number, string> = { [KIND_RECORD]: 'RecordRing', [KIND_SLOT]: 'SlotRing' };
    throw new Error(`${who}: buffer holds a ${names[found] ?? `ring of unknown kind ${found}`}, not a ${names[kind]}`);
  }
  return hdr;
}

/** Reads only the kind word, after checking the magic; used by attachRing. */
export function peekKind(sab: unknown): number {
  if (!(sab instanceof SharedArrayBuffer)) throw new TypeError('attachRing: expected a SharedArrayBuffer');
  if (sab.byteLength < 16) throw new Error(`attachRing: buffer of ${sab.byteLength} bytes is too small to be a ring`);
  const hdr = new Int32Array(sab, 0, 4);
  if (Atomics.load(hdr, H_MAGIC) !== RING_MAGIC) throw new Error('attachRing: buffer is not a ringcast ring (bad magic)');
  return Atomics.load(hdr, H_KIND);
}

export function emptyDrops(): Record<DropReason, number> {
  return { 'drop-newest': 0, 'overwrite-oldest': 0, 'block-timeout': 0, 'too-large': 0 };
}

/**
 * The 'block' policy's slow path, the same for both ring kinds: wait up to blockTimeoutMs
 * (spin, then sleep on the space futex) for `hasRoom()`, adding the wait to the producer
 * wait-time counter; on timeout count a 'block-timeout' drop. `hasRoom` is created once
 * per ring, so this allocates nothing.
 */
export function blockForSpace(hdr: Int32Array, hdrF64: Float64Array, hasRoom: () => boolean, blockTimeoutMs: number, spinUs: number): boolean {
  if (blockTimeoutMs > 0) {
    const t0 = performance.now();
    const ok = spinThenWait(hdr, I_S_WAITERS, I_S_FUTEX, hasRoom, blockTimeoutMs, spinUs);
    hdrF64[F_PRODUCER_WAIT] += performance.now() - t0;
    if (ok) return true;
  }
  hdrF64[F_BLOCK_TIMEOUT] += 1;
  return false;
}

/** Drop counters as both ring kinds keep them in header line 6. */
export function dropsFromHeader(f: Float64Array): RingStats['drops'] {
  return {
    'drop-newest': f[F_DROP_NEWEST],
    'overwrite-oldest': f[F_OVERWRITTEN],
    'block-timeout': f[F_BLOCK_TIMEOUT],
    'too-large': f[F_TOO_LARGE],
  };
}
