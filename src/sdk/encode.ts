/**
 * SDK input types (types.ts) → ingest event bytes (event-codec.ts), shared by the ring
 * producer and the network producer so both put exactly the same bytes on the wire.
 *
 * Every `encode*Event` writes into an `EncodeScratch` (a growable buffer reused across
 * calls) and returns a view of it: valid until the next encode with the same scratch. A
 * caller that keeps the bytes (a network queue) passes `{ copy: true }` or slices. With no
 * scratch a module-wide one is used and the result is always a fresh copy.
 *
 * Bad input throws `ProducerInputError` naming the field; the producers catch it, count
 * the event as invalid and carry on, so one bad call never reaches the training loop.
 * Single bad metric values are different: a NaN loss from one diverging minibatch must not
 * cost the other metrics of that step, so non-finite values (and unusable names) are
 * skipped and reported through `scratch.skipped` / `scratch.lastSkip`; only a metrics call
 * with nothing left is an error.
 *
 * Wire conventions decided here (readers must follow them):
 *   - legal masks are bit-packed LSB first: action i is bit (i & 7) of byte (i >> 3);
 *   - tensors are flattened row-major from nested arrays, which must be rectangular;
 *   - probabilities a hair outside [0, 1] from float rounding (±1e-6) are clamped.
 */
import {
  EVENT_HEADER_BYTES, EVENT_MAGIC, EventKind, MAX_META_BYTES,
} from '../shared/telemetry/event-codec.js';
import type { EventKindName, ExperienceInput, GameStateInput, MilestoneInput, TensorInput, TopMoveInput } from './types.js';

export class ProducerInputError extends Error {
  override readonly name = 'ProducerInputError';
}

export interface EncodeOptions {
  /** Put `run` in the event meta (network producers whose connection serves several runs). */
  run?: string;
  /** Producer clock in ms since the epoch; default Date.now(). */
  timestamp?: number;
  /** Return an owned copy instead of a view of the scratch buffer. */
  copy?: boolean;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const utf8 = new TextEncoder();
const MAX_TOP_MOVES = 64;
const MAX_NAME_CACHE = 1024;

/** Reusable encode buffer plus what the last metrics calls skipped. */
export class EncodeScratch {
  buf: Uint8Array;
  view: DataView;
  /** Metric entries skipped so far (non-finite value, empty or over-long name). */
  skipped = 0;
  lastSkip: string | undefined;
  // Metric names repeat every step; encoding each once keeps the hot path free of TextEncoder calls.
  private readonly names = new Map<string, Uint8Array>();

  constructor(initialBytes = 4096) {
    this.buf = new Uint8Array(initialBytes);
    this.view = new DataView(this.buf.buffer);
  }

  ensure(bytes: number): void {
    if (bytes <= this.buf.byteLength) return;
    let size = this.buf.byteLength;
    while (size < bytes) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf);
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  nameBytes(name: string): Uint8Array {
    let b = this.names.get(name);
    if (!b) {
      b = utf8.encode(name);
      if (this.names.size < MAX_NAME_CACHE) this.names.set(name, b);
    }
    return b;
  }

  skip(reason: string): void {
    this.skipped++;
    this.lastSkip = reason;
  }
}

const sharedScratch = new EncodeScratch();

// ───────────────────────────── event framing ─────────────────────────────

/**
 * Write header + meta into the scratch and reserve `payloadLen` bytes after it.
 * Returns the payload's offset in `scratch.buf`.
 */
function begin(scratch: EncodeScratch, kind: EventKind, meta: Record<string, unknown> | undefined, payloadLen: number, options: EncodeOptions): number {
  const json = meta === undefined ? '' : JSON.stringify(meta);
  // A UTF-16 code unit becomes at most 3 UTF-8 bytes.
  scratch.ensure(EVENT_HEADER_BYTES + json.length * 3 + payloadLen);
  const buf = scratch.buf;
  const metaLen = json.length === 0 ? 0 : utf8.encodeInto(json, buf.subarray(EVENT_HEADER_BYTES)).written;
  if (metaLen > MAX_META_BYTES) throw new ProducerInputError(`${kindName(kind)}: meta is ${metaLen} bytes of JSON; the limit is ${MAX_META_BYTES}`);
  const timestamp = options.timestamp ?? Date.now();
  if (!Number.isFinite(timestamp) || timestamp < 0) throw new ProducerInputError('timestamp must be a finite, non-negative number of ms');
  const view = scratch.view;
  buf[0] = EVENT_MAGIC;
  buf[1] = kind;
  view.setUint16(2, metaLen, true);
  view.setUint32(4, payloadLen, true);
  view.setFloat64(8, timestamp, true);
  return EVENT_HEADER_BYTES + metaLen;
}

function finish(scratch: EncodeScratch, total: number, options: EncodeOptions): Uint8Array {
  return options.copy || scratch === sharedScratch ? scratch.buf.slice(0, total) : scratch.buf.subarray(0, total);
}

function withRun(meta: Record<string, unknown>, options: EncodeOptions): Record<string, unknown> {
  if (options.run !== undefined) meta.run = options.run;
  return meta;
}

function kindName(kind: EventKind): EventKindName | string {
  switch (kind) {
    case EventKind.Metrics: return 'metrics';
    case EventKind.SeAttention: return 'se_attention';
    case EventKind.BoardHeatmap: return 'board_heatmap';
    case EventKind.Policy: return 'policy';
    case EventKind.GameState: return 'game_state';
    case EventKind.Milestone: return 'milestone';
    case EventKind.Experience: return 'experience';
    default: return `kind ${kind}`;
  }
}

// ───────────────────────────── tensors ─────────────────────────────

export interface FlatTensor {
  values: ArrayLike<number>;
  shape: number[];
}

/**
 * Flatten a typed array or a (rectangular) nested number array, row-major, without copying
 * flat inputs. Throws ProducerInputError on ragged or non-numeric input.
 */
export function flattenTensor(input: TensorInput, what: string): FlatTensor {
  if (input === null || typeof input !== 'object' || typeof (input as ArrayLike<unknown>).length !== 'number') {
    throw new ProducerInputError(`${what}: expected a typed array or a (nested) array of numbers`);
  }
  const top = input as ArrayLike<unknown>;
  if (ArrayBuffer.isView(top) || top.length === 0 || typeof top[0] === 'number') {
    return { values: top as ArrayLike<number>, shape: [top.length] };
  }
  const shape: number[] = [];
  let probe: unknown = top;
  while (probe !== null && typeof probe === 'object' && typeof (probe as ArrayLike<unknown>).length === 'number') {
    const arr = probe as ArrayLike<unknown>;
    shape.push(arr.length);
    if (ArrayBuffer.isView(arr) || arr.length === 0) break;
    probe = arr[0];
  }
  if (shape.length > 4) throw new ProducerInputError(`${what}: at most 4 dimensions, got ${shape.length}`);
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  let n = 0;
  const walk = (node: unknown, depth: number, path: string): void => {
    const arr = node as ArrayLike<unknown> | null;
    if (arr === null || typeof arr !== 'object' || arr.length !== shape[depth]) {
      throw new ProducerInputError(`${what}: ragged nested array at ${path || 'top'} (every row at depth ${depth} must have ${shape[depth]} entries)`);
    }
    if (depth === shape.length - 1) {
      for (let i = 0; i < arr.length; i++) {
        const v = arr[i];
        if (typeof v !== 'number') throw new ProducerInputError(`${what}: ${path}[${i}] is not a number`);
        out[n++] = v;
      }
      return;
    }
    for (let i = 0; i < arr.length; i++) walk(arr[i], depth + 1, `${path}[${i}]`);
  };
  walk(top, 0, '');
  return { values: out, shape };
}

/** Write `values` as float32 LE at `at`, checking every value is finite. */
function writeFloat32(scratch: EncodeScratch, at: number, values: ArrayLike<number>, what: string): void {
  const n = values.length;
  if (values instanceof Float32Array && LITTLE_ENDIAN) {
    scratch.buf.set(new Uint8Array(values.buffer, values.byteOffset, n * 4), at);
    for (let i = 0; i < n; i++) if (!Number.isFinite(values[i])) throw new ProducerInputError(`${what}: value #${i} is ${values[i]}; tensors must hold finite numbers`);
    return;
  }
  const view = scratch.view;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ProducerInputError(`${what}: value #${i} is ${String(v)}; tensors must hold finite numbers`);
    view.setFloat32(at + i * 4, v, true);
  }
}

/** Pack a 0/1 (or boolean) mask LSB first into `out` (ceil(n/8) bytes). */
export function packLegalMask(mask: ArrayLike<number | boolean>, out?: Uint8Array, at = 0): Uint8Array {
  const bytes = Math.ceil(mask.length / 8);
  const target = out ?? new Uint8Array(bytes);
  target.fill(0, at, at + bytes);
  let from = 0;
  if (mask instanceof Uint8Array && LITTLE_ENDIAN && (mask.byteOffset & 3) === 0) from = packBytes01(mask, target, at);
  for (let i = from; i < mask.length; i++) if (mask[i]) target[at + (i >> 3)] |= 1 << (i & 7);
  return out ? target.subarray(at, at + bytes) : target;
}

/**
 * A 0/1 byte mask eight entries at a time: a word of four 0/1 bytes times 0x01020408 gathers
 * them into bits 24–27 (the partial products fall on distinct bits, so nothing carries). A word
 * holding any other value is packed byte by byte. Returns how many entries it packed. One action
 * mask of a Keisei position is 13,527 entries, packed for every experience record.
 */
function packBytes01(mask: Uint8Array, target: Uint8Array, at: number): number {
  const groups = mask.length >>> 3;
  const words = new Uint32Array(mask.buffer, mask.byteOffset, groups * 2);
  for (let j = 0; j < groups; j++) {
    const lo = words[2 * j];
    const hi = words[2 * j + 1];
    if (((lo | hi) & 0xfefefefe) === 0) {
      target[at + j] = (Math.imul(lo, 0x01020408) >>> 24) | ((Math.imul(hi, 0x01020408) >>> 24) << 4);
    } else {
      let b = 0;
      for (let k = 0; k < 8; k++) if (mask[8 * j + k]) b |= 1 << k;
      target[at + j] = b;
    }
  }
  return groups * 8;
}

/** Whether action `index` is set in a mask packed by packLegalMask. */
export function maskBit(packed: Uint8Array, offset: number, index: number): boolean {
  return (packed[offset + (index >> 3)] & (1 << (index & 7))) !== 0;
}

// ───────────────────────────── per kind ─────────────────────────────

/** `emitPpoMetrics`: binary metrics payload (f64 step | u16 count | (u8 len | name | f64)*). */
export function encodeMetricsEvent(metrics: Record<string, number>, step: number, scratch: EncodeScratch = sharedScratch, options: EncodeOptions = {}): Uint8Array {
  if (metrics === null || typeof metrics !== 'object') throw new ProducerInputError('metrics: expected an object of name → number');
  if (typeof step !== 'number' || !Number.isFinite(step) || step < 0) throw new ProducerInputError(`metrics: step must be a finite, non-negative number, got ${String(step)}`);
  // Size pass: which entries survive and how many bytes they take.
  let count = 0;
  let payloadLen = 10;
  for (const name in metrics) {
    const value = metrics[name];
    if (typeof value !== 'number' || !Number.isFinite(value)) { scratch.skip(`metrics: "${name}" is ${String(value)}; values must be finite numbers`); continue; }
    const nb = scratch.nameBytes(name);
    if (nb.byteLength === 0 || nb.byteLength > 255) { scratch.skip(`metrics: name "${name.slice(0, 40)}" must be 1–255 UTF-8 bytes`); continue; }
    count++;
    payloadLen += 1 + nb.byteLength + 8;
  }
  if (count === 0) throw new ProducerInputError(`metrics: no usable metric values at step ${step}${scratch.lastSkip ? ` (${scratch.lastSkip})` : ''}`);
  if (count > 0xffff) throw new ProducerInputError(`metrics: ${count} values in one call; the limit is 65535`);
  const at = begin(scratch, EventKind.Metrics, options.run === undefined ? undefined : { run: options.run }, payloadLen, options);
  const buf = scratch.buf;
  const view = scratch.view;
  view.setFloat64(at, step, true);
  view.setUint16(at + 8, count, true);
  let p = at + 10;
  for (const name in metrics) {
    const value = metrics[name];
    if (typeof value !== 'number' || !Number.isFinite(value)) continue;
    const nb = scratch.nameBytes(name);
    if (nb.byteLength === 0 || nb.byteLength > 255) continue;
    buf[p] = nb.byteLength;
    buf.set(nb, p + 1);
    view.setFloat64(p + 1 + nb.byteLength, value, true);
    p += 1 + nb.byteLength + 8;
  }
  return finish(scratch, p, options);
}

function optionalFinite(value: number | undefined, what: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new ProducerInputError(`${what} must be a finite number, got ${String(value)}`);
  return value;
}

/** `emitPredictions`: top moves (1–64) with probabilities, optional value and position. */
export function encodePredictionsEvent(topMoves: readonly TopMoveInput[], position?: string, value?: number, step?: number, scratch: EncodeScratch = sharedScratch, options: EncodeOptions = {}): Uint8Array {
  if (!Array.isArray(topMoves) || topMoves.length === 0 || topMoves.length > MAX_TOP_MOVES) {
    throw new ProducerInputError(`policy: topMoves must be an array of 1–${MAX_TOP_MOVES} {move, prob} entries`);
  }
  const top = new Array<{ move: string; prob: number }>(topMoves.length);
  for (let i = 0; i < topMoves.length; i++) {
    const entry = topMoves[i];
    const move = entry?.move;
    let prob = entry?.prob;
    if (typeof move !== 'string' || move.length === 0 || move.length > 32) throw new ProducerInputError(`policy: topMoves[${i}].move must be a move string of 1–32 characters`);
    if (typeof prob !== 'number' || !(prob >= -1e-6 && prob <= 1 + 1e-6)) throw new ProducerInputError(`policy: topMoves[${i}].prob must be a number in [0, 1], got ${String(prob)}`);
    prob = Math.min(1, Math.max(0, prob));
    top[i] = { move, prob };
  }
  if (position !== undefined && (typeof position !== 'string' || position.length > 512)) throw new ProducerInputError('policy: position must be a string (SFEN) of at most 512 characters');
  const meta: Record<string, unknown> = { top_moves: top };
  const v = optionalFinite(value, 'policy: value');
  if (v !== undefined) meta.value = v;
  if (position !== undefined) meta.position = position;
  const s = optionalFinite(step, 'policy: step');
  if (s !== undefined) meta.step = s;
  const at = begin(scratch, EventKind.Policy, withRun(meta, options), 0, options);
  return finish(scratch, at, options);
}

/**
 * `cacheAttentionWeights`: one block's channel weights (1-D, `layerId` = block index) or
 * every block at once ([blocks][channels]).
 */
export function encodeAttentionEvent(weights: TensorInput, layerId?: number, step?: number, scratch: EncodeScratch = sharedScratch, options: EncodeOptions = {}): Uint8Array {
  const { values, shape } = flattenTensor(weights, 'se_attention');
  if (shape.length > 2) throw new ProducerInputError(`se_attention: weights must be [channels] or [blocks][channels], got ${shape.length} dimensions`);
  const blocks = shape.length === 2 ? shape[0] : 1;
  const channels = shape.length === 2 ? shape[1] : shape[0];
  if (blocks < 1 || blocks > 4096 || channels < 1 || channels > 65536) throw new ProducerInputError(`se_attention: ${blocks} blocks × ${channels} channels is out of range (1–4096 × 1–65536)`);
  if (layerId !== undefined && (!Number.isInteger(layerId) || layerId < 0 || layerId > 4095)) throw new ProducerInputError(`se_attention: layerId must be an integer 0–4095, got ${String(layerId)}`);
  const meta: Record<string, unknown> = { blocks, channels };
  if (layerId !== undefined) meta.layer_id = layerId;
  const s = optionalFinite(step, 'se_attention: step');
  if (s !== undefined) meta.step = s;
  const payloadLen = blocks * channels * 4;
  const at = begin(scratch, EventKind.SeAttention, withRun(meta, options), payloadLen, options);
  writeFloat32(scratch, at, values, 'se_attention');
  return finish(scratch, at + payloadLen, options);
}

/** `emitBoardHeatmap`: 81 values, flat or 9×9 (row 0 = rank a, col 0 = file 9). */
export function encodeHeatmapEvent(grid: TensorInput, step?: number, scratch: EncodeScratch = sharedScratch, options: EncodeOptions & { source?: string } = {}): Uint8Array {
  const { values, shape } = flattenTensor(grid, 'board_heatmap');
  if (values.length !== 81) throw new ProducerInputError(`board_heatmap: expected 81 values (9×9), got ${values.length} (shape ${JSON.stringify(shape)})`);
  const meta: Record<string, unknown> = {};
  const s = optionalFinite(step, 'board_heatmap: step');
  if (s !== undefined) meta.step = s;
  if (options.source !== undefined) meta.source = options.source;
  withRun(meta, options);
  const at = begin(scratch, EventKind.BoardHeatmap, Object.keys(meta).length > 0 ? meta : undefined, 81 * 4, options);
  writeFloat32(scratch, at, values, 'board_heatmap');
  return finish(scratch, at + 81 * 4, options);
}

const GAME_STATE_KEYS: Readonly<Record<string, string>> = { gameId: 'game_id', lastMove: 'last_move', moveCount: 'move_count' };

/** `emitGameState`: camelCase SDK keys become the wire's snake_case; extra keys pass through. */
export function encodeGameStateEvent(state: GameStateInput, scratch: EncodeScratch = sharedScratch, options: EncodeOptions = {}): Uint8Array {
  if (state === null || typeof state !== 'object') throw new ProducerInputError('game_state: expected an object with at least gameId');
  const id = state.gameId;
  if (!((typeof id === 'string' && id.length > 0 && id.length <= 128) || (typeof id === 'number' && Number.isFinite(id)))) {
    throw new ProducerInputError('game_state: gameId must be a non-empty string (≤128 characters) or a number');
  }
  if (state.moves !== undefined && (!Array.isArray(state.moves) || state.moves.some((m) => typeof m !== 'string'))) {
    throw new ProducerInputError('game_state: moves must be an array of move strings');
  }
  if (state.sfen !== undefined && (typeof state.sfen !== 'string' || state.sfen.length > 512)) throw new ProducerInputError('game_state: sfen must be a string of at most 512 characters');
  if (state.moveCount !== undefined && (!Number.isInteger(state.moveCount) || state.moveCount < 0 || state.moveCount > 100_000)) {
    throw new ProducerInputError('game_state: moveCount must be an integer 0–100000');
  }
  const meta: Record<string, unknown> = {};
  for (const key in state) {
    const value = state[key];
    if (value !== undefined) meta[GAME_STATE_KEYS[key] ?? key] = value;
  }
  const at = begin(scratch, EventKind.GameState, withRun(meta, options), 0, options);
  return finish(scratch, at, options);
}

/** `emitMilestone`: name (1–128 characters), optional message, step, value and extra keys. */
export function encodeMilestoneEvent(milestone: MilestoneInput, scratch: EncodeScratch = sharedScratch, options: EncodeOptions = {}): Uint8Array {
  const name = milestone?.name;
  if (typeof name !== 'string' || name.length === 0 || name.length > 128) throw new ProducerInputError('milestone: name must be a string of 1–128 characters');
  if (milestone.message !== undefined && (typeof milestone.message !== 'string' || milestone.message.length > 1024)) throw new ProducerInputError('milestone: message must be a string of at most 1024 characters');
  optionalFinite(milestone.step, 'milestone: step');
  optionalFinite(milestone.value, 'milestone: value');
  const meta: Record<string, unknown> = {};
  for (const key in milestone) if (milestone[key] !== undefined) meta[key] = milestone[key];
  const at = begin(scratch, EventKind.Milestone, withRun(meta, options), 0, options);
  return finish(scratch, at, options);
}

/** `emitExperience`: float32 state (default shape 46×9×9) + LSB-first legal-mask bitset. */
export function encodeExperienceEvent(exp: ExperienceInput, scratch: EncodeScratch = sharedScratch, options: EncodeOptions = {}): Uint8Array {
  if (exp === null || typeof exp !== 'object') throw new ProducerInputError('experience: expected an object');
  const idOk = (v: unknown) => (typeof v === 'string' && v.length > 0 && v.length <= 128) || (typeof v === 'number' && Number.isFinite(v));
  if (!idOk(exp.gameId)) throw new ProducerInputError('experience: gameId must be a non-empty string or a number');
  if (!idOk(exp.playerId)) throw new ProducerInputError('experience: playerId must be a non-empty string or a number');
  if (!Number.isInteger(exp.turn) || exp.turn < 0 || exp.turn > 1_000_000) throw new ProducerInputError(`experience: turn must be an integer 0–1000000, got ${String(exp.turn)}`);
  if (!Number.isInteger(exp.action) || exp.action < 0 || exp.action > 1 << 24) throw new ProducerInputError(`experience: action must be an integer 0–16777216, got ${String(exp.action)}`);
  if (typeof exp.reward !== 'number' || !Number.isFinite(exp.reward)) throw new ProducerInputError(`experience: reward must be a finite number, got ${String(exp.reward)}`);
  if (typeof exp.done !== 'boolean') throw new ProducerInputError('experience: done must be true or false');
  const { values, shape: inferred } = flattenTensor(exp.state, 'experience state');
  const shape = exp.stateShape ?? (inferred.length > 1 ? inferred : [46, 9, 9]);
  if (!Array.isArray(shape) || shape.length === 0 || shape.length > 4 || shape.some((d) => !Number.isInteger(d) || d < 1 || d > 4096)) {
    throw new ProducerInputError('experience: stateShape must be an array of 1–4 integers 1–4096');
  }
  const size = shape.reduce((a, b) => a * b, 1);
  if (values.length !== size) throw new ProducerInputError(`experience: state holds ${values.length} values but stateShape ${JSON.stringify(shape)} needs ${size}`);
  const mask = exp.legalMask;
  if (mask !== undefined && (mask === null || typeof mask.length !== 'number' || mask.length > 1 << 20)) throw new ProducerInputError('experience: legalMask must be an array of at most 2^20 booleans/0-1 values');
  const maskLen = mask?.length ?? 0;
  const meta: Record<string, unknown> = {
    game_id: exp.gameId, player_id: exp.playerId, turn: exp.turn, action: exp.action, reward: exp.reward, done: exp.done, state_shape: shape,
  };
  if (maskLen > 0) meta.mask_len = maskLen;
  const maskBytes = Math.ceil(maskLen / 8);
  const payloadLen = size * 4 + maskBytes;
  const at = begin(scratch, EventKind.Experience, withRun(meta, options), payloadLen, options);
  writeFloat32(scratch, at, values, 'experience state');
  if (mask && maskLen > 0) packLegalMask(mask, scratch.buf, at + size * 4);
  return finish(scratch, at + payloadLen, options);
}
