/**
 * The ingest wire format: binary telemetry events, shared by every producer transport
 * (WebSocket `/ingest`, TCP/Unix length-prefixed frames, HTTP POST) and by the rings
 * that carry accepted events to the aggregator.
 *
 * One event (all integers little-endian):
 *
 *   offset  size  field
 *   0       u8    magic 0x52 ('R')
 *   1       u8    kind (EventKind)
 *   2       u16   metaLen     bytes of UTF-8 JSON object that follow the header (0 = no meta)
 *   4       u32   payloadLen  bytes of binary payload after the meta
 *   8       f64   timestamp   producer clock, ms since the Unix epoch (0 = "stamp on receipt")
 *   16      ...   meta JSON (metaLen bytes), then payload (payloadLen bytes)
 *
 * A frame is one or more events back to back. Each event carries its own lengths, so a
 * bad event inside a frame is rejected alone and the rest of the frame still counts.
 *
 * Why a JSON meta plus a binary payload: descriptive fields (game ids, SFEN, top moves)
 * are small and change shape between trainer generations, while tensors are large and
 * must never become JSON number arrays on the hot path. Metric values are the hottest
 * path of all, so `metrics` carries them in the binary payload:
 *
 *   metrics payload: f64 step | u16 count | count × (u8 nameLen | name UTF-8 | f64 value)
 *
 * Metric names are data, not schema: any name is accepted (Keisei gen 1 `ppo/kl_divergence_approx`,
 * gen 2 `gradient_norm`, anything else).
 */

export const EVENT_MAGIC = 0x52;
export const EVENT_HEADER_BYTES = 16;
export const MAX_META_BYTES = 0xffff;

export enum EventKind {
  Metrics = 1,
  SeAttention = 2,
  BoardHeatmap = 3,
  Policy = 4,
  GameState = 5,
  Milestone = 6,
  Experience = 7,
  /**
   * A ready-made overlay message `{type, channel, key?, critical?, retain?, data}`. Reserved:
   * refused from producers, and ignored (counted) by the aggregator; overlay messages made
   * inside ringcast travel through the main thread's control rings instead.
   */
  Relay = 8,
  /** Producer → server, first event on a stream transport: `{token, run?, client?, acks?}`. */
  Hello = 16,
  /** Server → producer: `{error, kind?, index?}`. */
  Error = 17,
  /** Server → producer: `{ok: true, run, ...}` after a hello; `{frames: n}` per frame when the hello asked for acks. */
  Ack = 18,
}

export const EVENT_KIND_NAMES: Readonly<Record<number, string>> = {
  [EventKind.Metrics]: 'metrics',
  [EventKind.SeAttention]: 'se_attention',
  [EventKind.BoardHeatmap]: 'board_heatmap',
  [EventKind.Policy]: 'policy',
  [EventKind.GameState]: 'game_state',
  [EventKind.Milestone]: 'milestone',
  [EventKind.Experience]: 'experience',
  [EventKind.Relay]: 'relay',
  [EventKind.Hello]: 'hello',
  [EventKind.Error]: 'error',
  [EventKind.Ack]: 'ack',
};

export const TELEMETRY_KINDS: readonly EventKind[] = [
  EventKind.Metrics,
  EventKind.SeAttention,
  EventKind.BoardHeatmap,
  EventKind.Policy,
  EventKind.GameState,
  EventKind.Milestone,
  EventKind.Experience,
];

export function kindFromName(name: string): EventKind | undefined {
  for (const [k, v] of Object.entries(EVENT_KIND_NAMES)) if (v === name) return Number(k) as EventKind;
  return undefined;
}

/** Where a full policy distribution comes from (its length names the action space). */
export const ACTION_SPACES = { 'keisei-v1': 13527, 'keisei-v2': 11259 } as const;

export interface TopMove {
  move: string;
  prob: number;
}

interface EventBase {
  kind: EventKind;
  /** Producer timestamp in ms (0 when the producer left it to the server). */
  timestamp: number;
  /** Run this event belongs to when the event names one (`meta.run`); else the connection's run. */
  run?: string;
  /**
   * `meta.late: true`: the producer held this event back (its offline spool) and sends it now,
   * after newer ones; its step and timestamp are the original ones. Undefined for live events.
   */
  late?: boolean;
  /** With `late`: spooled events the producer still holds behind this one (`meta.backlog`). */
  backlog?: number;
  /** Byte range of the whole event inside the buffer it was decoded from. */
  offset: number;
  length: number;
}

export interface MetricsEvent extends EventBase {
  kind: EventKind.Metrics;
  step: number;
  names: string[];
  values: number[];
}

export interface SeAttentionEvent extends EventBase {
  kind: EventKind.SeAttention;
  step?: number;
  blocks: number;
  channels: number;
  /** When set, these rows are block `layerId` onward (one layer cached at a time). */
  layerId?: number;
  /** Copied into an aligned array (blocks × channels, row-major). */
  weights: Float32Array;
}

export interface BoardHeatmapEvent extends EventBase {
  kind: EventKind.BoardHeatmap;
  step?: number;
  source?: string;
  /** 81 values, rank-major from the top-left as seen by sente (index = row * 9 + col, row 0 = rank a, col 0 = file 9). */
  grid: Float32Array;
}

export interface PolicyEvent extends EventBase {
  kind: EventKind.Policy;
  step?: number;
  topMoves: TopMove[];
  value?: number;
  position?: string;
  actionSpace?: keyof typeof ACTION_SPACES;
  /** Full distribution when the producer sent one. */
  distribution?: Float32Array;
}

export interface GameStateEvent extends EventBase {
  kind: EventKind.GameState;
  gameId: string;
  sfen?: string;
  moves?: string[];
  lastMove?: string;
  result?: string;
  moveCount?: number;
  meta: Record<string, unknown>;
}

export interface MilestoneEvent extends EventBase {
  kind: EventKind.Milestone;
  name: string;
  message?: string;
  step?: number;
  value?: number;
  meta: Record<string, unknown>;
}

export interface ExperienceEvent extends EventBase {
  kind: EventKind.Experience;
  gameId: string;
  playerId: string;
  turn: number;
  action: number;
  reward: number;
  done: boolean;
  stateShape: number[];
  /** Byte range of the float32 state tensor in the source buffer (not copied). */
  stateOffset: number;
  stateBytes: number;
  /** Number of actions in the legal mask (bitset of ceil(maskLen / 8) bytes after the state). */
  maskLen: number;
  maskOffset: number;
}

export interface RelayEvent extends EventBase {
  kind: EventKind.Relay;
  type: string;
  channel: string;
  key: string;
  critical: boolean;
  retain: boolean;
  data: unknown;
}

export interface HelloEvent extends EventBase {
  kind: EventKind.Hello;
  token?: string;
  client?: string;
  /** The producer wants every later frame acknowledged (`{frames: n}`), so it can resend what a lost connection swallowed. */
  acks?: boolean;
}

export interface ControlEvent extends EventBase {
  kind: EventKind.Error | EventKind.Ack;
  meta: Record<string, unknown>;
}

export type TelemetryEvent =
  | MetricsEvent
  | SeAttentionEvent
  | BoardHeatmapEvent
  | PolicyEvent
  | GameStateEvent
  | MilestoneEvent
  | ExperienceEvent
  | RelayEvent
  | HelloEvent
  | ControlEvent;

/** Why one event was rejected: `index` is its position in the frame. */
export interface EventError {
  index: number;
  kind?: string;
  error: string;
  /** Byte range of the rejected event (when the header was readable). */
  offset?: number;
  length?: number;
}

export class EventFormatError extends Error {
  override readonly name = 'EventFormatError';
}

export interface DecodeLimits {
  /** Largest payload accepted per event (default 16 MiB). */
  maxPayloadBytes?: number;
  /** Largest tensor dimension product for se_attention (default 64 blocks × 4096 channels). */
  maxAttentionValues?: number;
}

const DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

/**
 * Decode every event of a frame. Accepted events go to `onEvent`, rejected ones to
 * `onError`; decoding continues past a bad event whenever its header lengths are sane.
 * A header that cannot be trusted (bad magic, lengths past the end) stops the frame,
 * because nothing after it can be located. Returns the number of accepted events.
 */
export function decodeFrame(
  bytes: Uint8Array,
  onEvent: (event: TelemetryEvent) => void,
  onError: (error: EventError) => void,
  limits: DecodeLimits = {},
): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  let index = 0;
  let accepted = 0;
  if (bytes.byteLength === 0) {
    onError({ index: 0, error: 'empty frame: expected at least one 16-byte event header' });
    return 0;
  }
  while (offset < bytes.byteLength) {
    const remaining = bytes.byteLength - offset;
    if (remaining < EVENT_HEADER_BYTES) {
      onError({ index, error: `truncated event header: ${remaining} bytes left, a header is ${EVENT_HEADER_BYTES}`, offset });
      return accepted;
    }
    const magic = view.getUint8(offset);
    if (magic !== EVENT_MAGIC) {
      onError({ index, error: `bad magic byte 0x${magic.toString(16).padStart(2, '0')} at offset ${offset} (expected 0x52): not a ringcast event`, offset });
      return accepted;
    }
    const kind = view.getUint8(offset + 1);
    const metaLen = view.getUint16(offset + 2, true);
    const payloadLen = view.getUint32(offset + 4, true);
    const total = EVENT_HEADER_BYTES + metaLen + payloadLen;
    if (total > remaining) {
      onError({
        index,
        kind: EVENT_KIND_NAMES[kind],
        error: `event declares ${metaLen} meta + ${payloadLen} payload bytes but only ${remaining - EVENT_HEADER_BYTES} follow its header`,
        offset,
      });
      return accepted;
    }
    try {
      const event = decodeEventBody(bytes, view, offset, kind, metaLen, payloadLen, limits);
      onEvent(event);
      accepted++;
    } catch (error) {
      onError({
        index,
        kind: EVENT_KIND_NAMES[kind],
        error: error instanceof EventFormatError ? error.message : `undecodable event: ${(error as Error).message}`,
        offset,
        length: total,
      });
    }
    offset += total;
    index++;
  }
  return accepted;
}

/** Decode exactly one event that must fill `bytes` (a ring record, for instance). */
export function decodeEvent(bytes: Uint8Array, limits: DecodeLimits = {}): TelemetryEvent {
  let result: TelemetryEvent | undefined;
  let failure: EventError | undefined;
  decodeFrame(bytes, (e) => { if (!result && !failure) result = e; else failure ??= { index: 1, error: 'more than one event' }; }, (e) => { failure ??= e; }, limits);
  if (failure) throw new EventFormatError(failure.error);
  if (!result) throw new EventFormatError('no event');
  return result;
}

function decodeEventBody(
  bytes: Uint8Array,
  view: DataView,
  offset: number,
  kind: number,
  metaLen: number,
  payloadLen: number,
  limits: DecodeLimits,
): TelemetryEvent {
  const name = EVENT_KIND_NAMES[kind];
  if (name === undefined) throw new EventFormatError(`unknown event kind ${kind} (known: ${Object.entries(EVENT_KIND_NAMES).map(([k, v]) => `${k}=${v}`).join(', ')})`);
  const maxPayload = limits.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD;
  if (payloadLen > maxPayload) throw new EventFormatError(`${name}: payload of ${payloadLen} bytes exceeds the limit of ${maxPayload}`);
  const timestamp = view.getFloat64(offset + 8, true);
  if (!Number.isFinite(timestamp) || timestamp < 0) throw new EventFormatError(`${name}: timestamp must be a finite, non-negative number of ms`);
  const meta = metaLen === 0 ? {} : parseMeta(bytes, offset + EVENT_HEADER_BYTES, metaLen, name);
  const payloadOffset = offset + EVENT_HEADER_BYTES + metaLen;
  const late = meta.late === undefined ? undefined : reqBool(meta, 'late', name) || undefined;
  const base = {
    timestamp, offset, length: EVENT_HEADER_BYTES + metaLen + payloadLen, run: optString(meta, 'run', name, 128),
    late, backlog: late && meta.backlog !== undefined ? reqInt(meta, 'backlog', name, 0, Number.MAX_SAFE_INTEGER) : undefined,
  };

  switch (kind as EventKind) {
    case EventKind.Metrics:
      return decodeMetrics(bytes, view, payloadOffset, payloadLen, base);
    case EventKind.SeAttention: {
      const blocks = reqInt(meta, 'blocks', name, 1, 4096);
      const channels = reqInt(meta, 'channels', name, 1, 65536);
      const maxValues = limits.maxAttentionValues ?? 64 * 4096;
      if (blocks * channels > maxValues) throw new EventFormatError(`se_attention: ${blocks}×${channels} values exceed the limit of ${maxValues}`);
      expectPayload(name, payloadLen, blocks * channels * 4, `${blocks} blocks × ${channels} channels × 4 bytes (float32)`);
      return {
        ...base,
        kind: EventKind.SeAttention,
        step: optNumber(meta, 'step', name),
        blocks,
        channels,
        layerId: meta.layer_id === undefined ? undefined : reqInt(meta, 'layer_id', name, 0, 4095),
        weights: readFloat32(bytes, payloadOffset, blocks * channels, name),
      };
    }
    case EventKind.BoardHeatmap:
      expectPayload(name, payloadLen, 81 * 4, '81 float32 values (9×9)');
      return { ...base, kind: EventKind.BoardHeatmap, step: optNumber(meta, 'step', name), source: optString(meta, 'source', name, 64), grid: readFloat32(bytes, payloadOffset, 81, name) };
    case EventKind.Policy:
      return decodePolicy(bytes, meta, payloadOffset, payloadLen, base);
    case EventKind.GameState: {
      if (payloadLen !== 0) throw new EventFormatError('game_state: takes no payload; put everything in meta');
      const moves = meta.moves;
      if (moves !== undefined && (!Array.isArray(moves) || moves.some((m) => typeof m !== 'string'))) throw new EventFormatError('game_state: "moves" must be an array of move strings');
      return {
        ...base,
        kind: EventKind.GameState,
        gameId: reqId(meta, 'game_id', name),
        sfen: optString(meta, 'sfen', name, 512),
        moves: moves as string[] | undefined,
        lastMove: optString(meta, 'last_move', name, 32),
        result: optString(meta, 'result', name, 64),
        moveCount: meta.move_count === undefined ? undefined : reqInt(meta, 'move_count', name, 0, 100_000),
        meta,
      };
    }
    case EventKind.Milestone: {
      if (payloadLen !== 0) throw new EventFormatError('milestone: takes no payload; put everything in meta');
      const label = meta.name ?? meta.kind ?? meta.type;
      if (typeof label !== 'string' || label.length === 0 || label.length > 128) throw new EventFormatError('milestone: needs "name" (a string of 1–128 characters)');
      return { ...base, kind: EventKind.Milestone, name: label, message: optString(meta, 'message', name, 1024), step: optNumber(meta, 'step', name), value: optNumber(meta, 'value', name), meta };
    }
    case EventKind.Experience:
      return decodeExperience(meta, payloadOffset, payloadLen, base);
    case EventKind.Relay: {
      if (payloadLen !== 0) throw new EventFormatError('relay: takes no payload');
      const type = meta.type;
      if (typeof type !== 'string' || !/^[a-z][a-z0-9_]{0,63}$/.test(type)) throw new EventFormatError('relay: "type" must be a lower_snake_case message type');
      const channel = meta.channel;
      if (typeof channel !== 'string' || channel.length === 0) throw new EventFormatError('relay: "channel" must name a channel');
      return {
        ...base,
        kind: EventKind.Relay,
        type,
        channel,
        key: optString(meta, 'key', name, 256) ?? type,
        critical: meta.critical === true,
        retain: meta.retain === true,
        data: meta.data ?? null,
      };
    }
    case EventKind.Hello:
      return { ...base, kind: EventKind.Hello, token: optString(meta, 'token', name, 4096), client: optString(meta, 'client', name, 128), acks: meta.acks === true };
    case EventKind.Error:
    case EventKind.Ack:
      return { ...base, kind: kind as EventKind.Error | EventKind.Ack, meta };
  }
}

type Base = Pick<EventBase, 'timestamp' | 'offset' | 'length' | 'run' | 'late' | 'backlog'>;

function decodeMetrics(bytes: Uint8Array, view: DataView, at: number, len: number, base: Base): MetricsEvent {
  if (len < 10) throw new EventFormatError(`metrics: payload of ${len} bytes is too short (needs f64 step + u16 count)`);
  const end = at + len;
  const step = view.getFloat64(at, true);
  if (!Number.isFinite(step) || step < 0) throw new EventFormatError('metrics: step must be a finite, non-negative number');
  const count = view.getUint16(at + 8, true);
  if (count === 0) throw new EventFormatError('metrics: no metric values (count is 0)');
  const names = new Array<string>(count);
  const values = new Array<number>(count);
  let p = at + 10;
  for (let i = 0; i < count; i++) {
    if (p >= end) throw new EventFormatError(`metrics: payload ends after ${i} of ${count} metrics`);
    const nameLen = bytes[p];
    if (nameLen === 0) throw new EventFormatError(`metrics: metric #${i} has an empty name`);
    if (p + 1 + nameLen + 8 > end) throw new EventFormatError(`metrics: payload ends inside metric #${i}`);
    const metricName = internName(bytes, p + 1, nameLen);
    const value = view.getFloat64(p + 1 + nameLen, true);
    if (!Number.isFinite(value)) throw new EventFormatError(`metrics: "${metricName}" is ${value}; values must be finite numbers`);
    names[i] = metricName;
    values[i] = value;
    p += 1 + nameLen + 8;
  }
  if (p !== end) throw new EventFormatError(`metrics: ${end - p} unexpected bytes after ${count} metrics`);
  // Fields spelled out, not `...base`: object spread here cost ~7x the whole metrics decode
  // (measured in bench/ingest: ~150k vs ~1M events/s on one thread).
  return { timestamp: base.timestamp, offset: base.offset, length: base.length, run: base.run, late: base.late, backlog: base.backlog, kind: EventKind.Metrics, step, names, values };
}

function decodePolicy(bytes: Uint8Array, meta: Record<string, unknown>, at: number, len: number, base: Base): PolicyEvent {
  const name = 'policy';
  const raw = meta.top_moves ?? meta.topMoves;
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > 64) throw new EventFormatError('policy: "top_moves" must be an array of 1–64 {move, prob} entries');
  const topMoves: TopMove[] = raw.map((entry, i) => {
    const pair = Array.isArray(entry) ? { move: entry[0], prob: entry[1] } : (entry as Record<string, unknown> | null);
    const move = pair?.move ?? (pair as Record<string, unknown> | null)?.usi;
    const prob = pair?.prob ?? (pair as Record<string, unknown> | null)?.probability;
    if (typeof move !== 'string' || move.length === 0 || move.length > 32) throw new EventFormatError(`policy: top_moves[${i}].move must be a move string`);
    if (typeof prob !== 'number' || !(prob >= 0 && prob <= 1)) throw new EventFormatError(`policy: top_moves[${i}].prob must be a number in [0, 1]`);
    return { move, prob };
  });
  let actionSpace: PolicyEvent['actionSpace'];
  let distribution: Float32Array | undefined;
  if (len > 0) {
    const n = len / 4;
    const declared = meta.action_space;
    const match = (Object.entries(ACTION_SPACES) as [keyof typeof ACTION_SPACES, number][]).find(([k, size]) => (declared === undefined || declared === k) && size === n);
    if (!match) throw new EventFormatError(`policy: a distribution payload must be float32 × ${Object.entries(ACTION_SPACES).map(([k, v]) => `${v} (${k})`).join(' or ')}; got ${len} bytes${declared ? ` for action_space ${String(declared)}` : ''}`);
    actionSpace = match[0];
    distribution = readFloat32(bytes, at, n, name);
  }
  return {
    ...base,
    kind: EventKind.Policy,
    step: optNumber(meta, 'step', name),
    topMoves,
    value: optNumber(meta, 'value', name),
    position: optString(meta, 'position', name, 512) ?? optString(meta, 'sfen', name, 512),
    actionSpace,
    distribution,
  };
}

function decodeExperience(meta: Record<string, unknown>, at: number, len: number, base: Base): ExperienceEvent {
  const name = 'experience';
  const shape = meta.state_shape ?? [46, 9, 9];
  if (!Array.isArray(shape) || shape.length === 0 || shape.length > 4 || shape.some((d) => !Number.isInteger(d) || d < 1 || d > 4096)) {
    throw new EventFormatError('experience: "state_shape" must be an array of 1–4 positive integers');
  }
  const stateBytes = (shape as number[]).reduce((a, b) => a * b, 1) * 4;
  const maskLen = meta.mask_len === undefined ? 0 : reqInt(meta, 'mask_len', name, 0, 1 << 20);
  const maskBytes = Math.ceil(maskLen / 8);
  if (len !== stateBytes + maskBytes) expectPayload(name, len, stateBytes + maskBytes, `state float32 ${JSON.stringify(shape)} (${stateBytes} bytes) + legal mask bitset (${maskBytes} bytes)`);
  const done = meta.done;
  if (typeof done !== 'boolean') throw new EventFormatError('experience: "done" must be true or false');
  const reward = meta.reward;
  if (typeof reward !== 'number' || !Number.isFinite(reward)) throw new EventFormatError('experience: "reward" must be a finite number');
  // Fields spelled out, not `...base` (see decodeMetrics): this runs for every experience record.
  return {
    timestamp: base.timestamp, offset: base.offset, length: base.length, run: base.run,
    kind: EventKind.Experience,
    gameId: reqId(meta, 'game_id', name),
    playerId: reqId(meta, 'player_id', name),
    turn: reqInt(meta, 'turn', name, 0, 1_000_000),
    action: reqInt(meta, 'action', name, 0, 1 << 24),
    reward,
    done,
    stateShape: shape as number[],
    stateOffset: at,
    stateBytes,
    maskLen,
    maskOffset: at + stateBytes,
  };
}

function parseMeta(bytes: Uint8Array, at: number, len: number, kindName: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(bytes.subarray(at, at + len)));
  } catch (error) {
    throw new EventFormatError(`${kindName}: meta is not valid UTF-8 JSON (${(error as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new EventFormatError(`${kindName}: meta must be a JSON object`);
  return parsed as Record<string, unknown>;
}

function expectPayload(kindName: string, got: number, want: number, what: string): void {
  if (got !== want) throw new EventFormatError(`${kindName}: payload is ${got} bytes, expected ${want} (${what})`);
}

function readFloat32(bytes: Uint8Array, at: number, count: number, kindName: string): Float32Array {
  const out = new Float32Array(count);
  // Payloads are rarely 4-byte aligned inside a frame, so copy bytes rather than alias.
  new Uint8Array(out.buffer).set(bytes.subarray(at, at + count * 4));
  for (let i = 0; i < count; i++) {
    if (!Number.isFinite(out[i])) throw new EventFormatError(`${kindName}: value #${i} is ${out[i]}; tensors must hold finite numbers`);
  }
  return out;
}

function optString(meta: Record<string, unknown>, key: string, kindName: string, max: number): string | undefined {
  const v = meta[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length > max) throw new EventFormatError(`${kindName}: "${key}" must be a string of at most ${max} characters`);
  return v;
}

function optNumber(meta: Record<string, unknown>, key: string, kindName: string): number | undefined {
  const v = meta[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new EventFormatError(`${kindName}: "${key}" must be a finite number`);
  return v;
}

function reqInt(meta: Record<string, unknown>, key: string, kindName: string, min: number, max: number): number {
  const v = meta[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new EventFormatError(`${kindName}: "${key}" must be an integer ${min}–${max}${v === undefined ? ' (missing)' : `, got ${JSON.stringify(v)}`}`);
  return v;
}

function reqBool(meta: Record<string, unknown>, key: string, kindName: string): boolean {
  const v = meta[key];
  if (typeof v !== 'boolean') throw new EventFormatError(`${kindName}: "${key}" must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function reqId(meta: Record<string, unknown>, key: string, kindName: string): string {
  const v = meta[key];
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v !== 'string' || v.length === 0 || v.length > 128) throw new EventFormatError(`${kindName}: "${key}" must be a non-empty string or number${v === undefined ? ' (missing)' : ''}`);
  return v;
}

// Metric names repeat every step; decoding them once keeps the hot path free of TextDecoder calls.
const nameCache = new Map<number, { bytes: Uint8Array; name: string }[]>();
let nameCacheSize = 0;
function internName(bytes: Uint8Array, at: number, len: number): string {
  let h = len;
  for (let i = 0; i < len; i++) h = (Math.imul(h, 31) + bytes[at + i]) | 0;
  const bucket = nameCache.get(h);
  if (bucket) {
    outer: for (const entry of bucket) {
      if (entry.bytes.length !== len) continue;
      for (let i = 0; i < len; i++) if (entry.bytes[i] !== bytes[at + i]) continue outer;
      return entry.name;
    }
  }
  let decoded: string;
  try {
    decoded = utf8.decode(bytes.subarray(at, at + len));
  } catch {
    throw new EventFormatError('metrics: a metric name is not valid UTF-8');
  }
  if (nameCacheSize < 4096) {
    const entry = { bytes: bytes.slice(at, at + len), name: decoded };
    if (bucket) bucket.push(entry);
    else nameCache.set(h, [entry]);
    nameCacheSize++;
  }
  return decoded;
}

// ───────────────────────────── encoding ─────────────────────────────

export interface EncodeOptions {
  timestamp?: number;
}

/** Encode one event. `meta` is JSON-serialised; `payload` is copied as is. */
export function encodeEvent(kind: EventKind, meta: Record<string, unknown> | undefined, payload?: Uint8Array, options: EncodeOptions = {}): Uint8Array {
  const metaBytes = meta && Object.keys(meta).length > 0 ? utf8Encoder.encode(JSON.stringify(meta)) : new Uint8Array(0);
  if (metaBytes.byteLength > MAX_META_BYTES) throw new RangeError(`event meta is ${metaBytes.byteLength} bytes; the limit is ${MAX_META_BYTES}`);
  const payloadLen = payload?.byteLength ?? 0;
  const out = new Uint8Array(EVENT_HEADER_BYTES + metaBytes.byteLength + payloadLen);
  const view = new DataView(out.buffer);
  view.setUint8(0, EVENT_MAGIC);
  view.setUint8(1, kind);
  view.setUint16(2, metaBytes.byteLength, true);
  view.setUint32(4, payloadLen, true);
  view.setFloat64(8, options.timestamp ?? Date.now(), true);
  out.set(metaBytes, EVENT_HEADER_BYTES);
  if (payload) out.set(payload, EVENT_HEADER_BYTES + metaBytes.byteLength);
  return out;
}

/** Binary metrics payload: f64 step | u16 count | (u8 nameLen | name | f64 value)*. */
export function encodeMetricsPayload(step: number, metrics: Record<string, number> | Map<string, number>): Uint8Array {
  const entries = metrics instanceof Map ? [...metrics] : Object.entries(metrics);
  const names = entries.map(([k]) => utf8Encoder.encode(k));
  for (const n of names) if (n.byteLength === 0 || n.byteLength > 255) throw new RangeError('metric names must be 1–255 UTF-8 bytes');
  const size = 10 + names.reduce((s, n) => s + 1 + n.byteLength + 8, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setFloat64(0, step, true);
  view.setUint16(8, entries.length, true);
  let p = 10;
  entries.forEach(([, value], i) => {
    out[p] = names[i].byteLength;
    out.set(names[i], p + 1);
    view.setFloat64(p + 1 + names[i].byteLength, value, true);
    p += 1 + names[i].byteLength + 8;
  });
  return out;
}

export function encodeMetrics(step: number, metrics: Record<string, number> | Map<string, number>, run?: string, options?: EncodeOptions): Uint8Array {
  return encodeEvent(EventKind.Metrics, run ? { run } : undefined, encodeMetricsPayload(step, metrics), options);
}

export function float32Bytes(values: ArrayLike<number>): Uint8Array {
  const f = values instanceof Float32Array ? values : Float32Array.from(values);
  return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
}

/** Concatenate events into one frame. */
export function concatFrame(events: readonly Uint8Array[]): Uint8Array {
  const total = events.reduce((s, e) => s + e.byteLength, 0);
  const out = new Uint8Array(total);
  let p = 0;
  for (const e of events) {
    out.set(e, p);
    p += e.byteLength;
  }
  return out;
}

/** u32 LE length prefix + frame, for TCP/Unix stream transports. */
export function lengthPrefixed(frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + frame.byteLength);
  new DataView(out.buffer).setUint32(0, frame.byteLength, true);
  out.set(frame, 4);
  return out;
}
