/**
 * Gateway actor options. The service's topology fills them from config (`fanout`, `auth`,
 * `ingest.maxFrameBytes`, `aggregate.windowMs`, `experience`); tests build them directly.
 * Validated once at start so a bad value fails the actor's start with a message naming
 * the field, instead of surfacing later as a confusing uWS behaviour.
 */
export interface ExperienceOptions {
  /** Records per batch sent to an RL consumer unless it asks for another `batch_size`. */
  batchSize: number;
  /** A partial batch is sent this long after its first record. */
  timeoutMs: number;
  /** Batches queued per consumer (while it is over the soft limit) before the oldest are dropped. */
  queueBatches: number;
  /** Retained window per gateway thread (start=earliest / resume): bytes and age bounds. */
  retainBytes?: number;
  retainMs?: number;
  /** Ceiling on a consumer's records per second (0 = none). */
  maxRate?: number;
}

export interface GatewayOptions {
  /** Instant-replay clips folder served at /api/clips/<id>.mp4 (absent: not served here). */
  clipsDir?: string;
  /** Gateway number i: names the rings (`fanout.gw<i>`, `ingest.gw<i>`) and the producer id range. */
  index: number;
  host: string;
  /** Shared by every gateway thread (SO_REUSEPORT); must be a fixed port when there is more than one thread. */
  port: number;
  /** Fan-out ring this gateway consumes (`fanout.gw<i>`). */
  inRing: string;
  /**
   * Control ring the main thread writes for this gateway (`control.gw<i>`: control state, scene
   * changes, capture results, chat), read merged with `inRing`. Absent: fan-out only.
   */
  controlRing?: string;
  /**
   * Clustered: the ring the cluster relay writes (`cluster.gw<i>`): other nodes' messages, and
   * this node's critical messages stamped with their history offset. With it, critical records
   * on `inRing` are skipped (they arrive here, stamped, instead).
   */
  clusterRing?: string;
  /** Ingest ring this gateway produces into (`ingest.gw<i>`). */
  outRing: string;
  ingestToken: string;
  adminToken: string;
  /** Buffered bytes past which an overlay client stops getting conflatable updates. */
  softLimitBytes: number;
  /** Buffered bytes past which a client is disconnected (4008). */
  hardLimitBytes: number;
  /** Ceiling on a client's max_fps; also the default max_fps. */
  maxFps: number;
  /** Overlay clients per gateway thread; more are refused with close code 1013. */
  maxClients: number;
  /** Largest producer WebSocket message / POST body on the ingest paths. */
  maxFrameBytes: number;
  /** Budget of a producer WebSocket that has not authenticated yet (defaults in ingest-endpoints.ts). */
  preAuth?: PreAuthOptions;
  /** Aggregation window (ms): fps tiers at or above 1000/tickMs get every update live. */
  tickMs: number;
  experience: ExperienceOptions;
  /** `<dataDir>/recordings`: the recordings the events and CSV routes stream from. Absent: those routes are not served here. */
  recordingsDir?: string;
  /** Enables the `crash()`, `exit()` and `block(ms)` RPCs (tests only; the service never sets it). */
  testHooks?: boolean;
  /** How often buffered amounts are checked (default 100 ms). */
  slowCheckMs?: number;
  /** Criticals held per slow client before it is disconnected (default 64). */
  criticalQueueLimit?: number;
  /** Period of the experience status message (default 1000 ms). */
  experienceStatusMs?: number;
  /** Least time between two snapshots to one overlay client (default 1000 ms). */
  snapshotIntervalMs?: number;
  /** permessage-deflate on /ws (default off): `shared` = uWS's shared compressor, for clients that offer the extension. */
  compression?: 'off' | 'shared';
}

export interface PreAuthOptions {
  /** A connection without a valid hello by then is closed. */
  helloTimeoutMs: number;
  /** Largest message accepted before authentication. */
  maxBytes: number;
  /** Unauthenticated connections one remote address may hold on this thread. */
  maxPerAddress: number;
}

export const DEFAULT_SLOW_CHECK_MS = 100;
export const DEFAULT_CRITICAL_QUEUE = 64;
export const DEFAULT_EXPERIENCE_STATUS_MS = 1000;

function int(o: Record<string, unknown>, key: string, min: number, max: number): void {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`gateway options: ${key} must be an integer in ${min} .. ${max} (got ${JSON.stringify(v)})`);
  }
}

function str(o: Record<string, unknown>, key: string, minLength = 1): void {
  const v = o[key];
  if (typeof v !== 'string' || v.length < minLength) {
    throw new TypeError(`gateway options: ${key} must be a string of at least ${minLength} characters`);
  }
}

export function validateGatewayOptions(options: GatewayOptions): GatewayOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('gateway options: an object is required');
  const o = options as unknown as Record<string, unknown>;
  int(o, 'index', 0, 126);
  str(o, 'host');
  int(o, 'port', 0, 65535);
  str(o, 'inRing');
  str(o, 'outRing');
  if (o.controlRing !== undefined) str(o, 'controlRing');
  str(o, 'ingestToken', 8);
  str(o, 'adminToken', 8);
  int(o, 'softLimitBytes', 1024, 2 ** 30);
  int(o, 'hardLimitBytes', 4096, 2 ** 30);
  if (options.softLimitBytes >= options.hardLimitBytes) {
    throw new RangeError(`gateway options: softLimitBytes (${options.softLimitBytes}) must be less than hardLimitBytes (${options.hardLimitBytes})`);
  }
  int(o, 'maxFps', 1, 240);
  int(o, 'maxClients', 1, 1_000_000);
  int(o, 'maxFrameBytes', 1024, 256 * 1024 * 1024);
  int(o, 'tickMs', 1, 60_000);
  const e = options.experience as unknown as Record<string, unknown>;
  if (e === null || typeof e !== 'object') throw new TypeError('gateway options: experience must be an object {batchSize, timeoutMs, queueBatches}');
  int(e, 'batchSize', 1, 65_536);
  int(e, 'timeoutMs', 1, 60_000);
  int(e, 'queueBatches', 1, 65_536);
  if (e.retainBytes !== undefined) int(e, 'retainBytes', 0, 2 ** 40);
  if (e.retainMs !== undefined) int(e, 'retainMs', 0, 86_400_000);
  if (e.maxRate !== undefined) int(e, 'maxRate', 0, 10_000_000);
  if (options.slowCheckMs !== undefined) int(o, 'slowCheckMs', 5, 10_000);
  if (options.criticalQueueLimit !== undefined) int(o, 'criticalQueueLimit', 1, 65_536);
  if (options.experienceStatusMs !== undefined) int(o, 'experienceStatusMs', 10, 600_000);
  if (options.preAuth !== undefined) {
    const p = options.preAuth as unknown as Record<string, unknown>;
    if (p === null || typeof p !== 'object') throw new TypeError('gateway options: preAuth must be an object {helloTimeoutMs, maxBytes, maxPerAddress}');
    int(p, 'helloTimeoutMs', 1, 600_000);
    int(p, 'maxBytes', 64, 256 * 1024 * 1024);
    int(p, 'maxPerAddress', 1, 1_000_000);
  }
  if (options.snapshotIntervalMs !== undefined) int(o, 'snapshotIntervalMs', 0, 60_000);
  if (options.compression !== undefined && options.compression !== 'off' && options.compression !== 'shared') {
    throw new Error(`gateway options: compression must be "off" or "shared", got ${JSON.stringify(options.compression)}`);
  }
  return options;
}
