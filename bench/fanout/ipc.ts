/**
 * Messages between the orchestrator (bench/fanout.ts), the server child process
 * (server-child.ts) and the load-generator worker threads (loadgen-worker.ts).
 *
 * The measured window is given as two wall-clock instants [t0, t1] (ms since epoch)
 * that every party snapshots on its own timer, so no message latency enters the
 * figures. t0 and t1 sit half a tick period after a tick, where nothing is in flight.
 */

/**
 * ours; baseline = `ws`, stringify per client (the naive design); ws-once = `ws`, serialise
 * once and send the same Buffer to all; uws-raw = bare uWS publish of the same bytes (ceiling).
 */
export type ServerKind = 'ours' | 'baseline' | 'ws-once' | 'uws-raw';
export const SERVER_KINDS: readonly ServerKind[] = ['ours', 'baseline', 'ws-once', 'uws-raw'];
/** What actually served: the real service, the uWS stand-in, or one of the baselines. */
export type ServerImpl = 'service' | 'uws-standin' | 'ws-baseline' | 'ws-serialize-once' | 'uws-raw';

export interface ServerReady {
  type: 'ready';
  impl: ServerImpl;
  port: number;
  /** Why the real service was not used, when it was not. */
  note?: string;
}

/**
 * Start ticking. Sent once the clients are connected: connecting thousands of clients to
 * a server that is already saturated by its fan-out measures the connection storm, not
 * the steady state this benchmark is about.
 */
export interface StartRequest {
  type: 'start';
}

export interface ServerStarted {
  type: 'started';
  /** Ticks fire at tickOrigin + k × TICK_MS (wall ms). */
  tickOrigin: number;
}

export interface ServerFailed {
  type: 'failed';
  error: string;
}

export interface WindowRequest {
  type: 'window';
  /** Receipt window (wall ms): CPU, RSS, event-loop use and latency samples. */
  t0: number;
  t1: number;
  /**
   * Stamp window: a delivery counts when its server stamp lies in [s0, s1) and it
   * arrives before collectAt. s0/s1 sit half a tick between the server's stamps, so
   * exactly (s1 − s0) / TICK_MS ticks fall inside, whatever the receive delays.
   */
  s0: number;
  s1: number;
  collectAt: number;
}

export interface ServerWindowResult {
  type: 'window-result';
  /** process.cpuUsage() delta over the window: every thread of the server process. */
  cpuUserUs: number;
  cpuSystemUs: number;
  /** Wall time between the two snapshots as actually taken. */
  wallMs: number;
  rssStartBytes: number;
  rssEndBytes: number;
  rssMaxBytes: number;
  /** Ticks emitted inside the window, and slots skipped because the loop was late. */
  ticks: number;
  ticksMissed: number;
  /** Subscribed clients the server counts at t1 (-1: not known to this process). */
  clients: number;
  /** Anything the server noticed that bears on the figures (e.g. ingest records refused). */
  note?: string;
}

export interface StopRequest {
  type: 'stop';
}

export type ToServer = StartRequest | WindowRequest | StopRequest;
export type FromServer = ServerReady | ServerStarted | ServerFailed | ServerWindowResult;

export interface LoadgenJob {
  host: string;
  port: number;
  clients: number;
  /** First message each client sends. */
  subscription: string;
  /** Read the timestamp of one data message in this many per client. */
  sampleEvery: number;
  /** Handshakes in flight at once. */
  connectConcurrency: number;
  /** Latency samples kept per worker; more are counted as dropped. */
  latencyCap: number;
  /** Give up connecting after this long. */
  connectTimeoutMs: number;
  /** Message `type`s that count as deliveries; anything else is counted apart. */
  types: string[];
  /** Offer permessage-deflate; compressed messages are inflated to be read, and counted by their bytes on the wire. */
  deflate?: boolean;
}

export interface LoadgenConnected {
  type: 'connected';
  ok: number;
  failed: number;
  /** Clients that received their first message (connection_established). */
  subscribed: number;
  errors: string[];
}

export interface LoadgenResult {
  type: 'result';
  /** Data messages of the expected types stamped inside the stamp window, and their payload bytes. */
  messages: number;
  bytes: number;
  /** Of those, counted by receipt time because their stamp was cut off by a read boundary. */
  unstamped: number;
  /** Messages of the expected types received inside the receipt window (throughput as seen). */
  received: number;
  /** Per expected type (same order as LoadgenJob.types). */
  byType: number[];
  /** Data messages of other types inside the window (all clients), and their names as seen by this thread's first client. */
  otherMessages: number;
  otherTypes: Record<string, number>;
  /** Receipt − server stamp, ms, for sampled messages received inside the window. */
  latencies: Float64Array;
  latenciesDropped: number;
  /** Connections closed by the server or by errors inside the window. */
  closes: number;
  protocolErrors: number;
  /** Event-loop utilisation of this worker over the window (1 = never idle). */
  elu: number;
  /**
   * How late this thread took its t0 / t1 snapshots (ms, the larger). Up to half a tick
   * (50 ms) cannot move a message across the window's edge; more may.
   */
  snapshotLateMs: number;
}

export type ToLoadgen = WindowRequest | { type: 'close' };
export type FromLoadgen = LoadgenConnected | LoadgenResult | { type: 'closed' } | { type: 'fatal'; error: string };
