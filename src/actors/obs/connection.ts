/**
 * One resilient link to obs-websocket v5 (obs-websocket-js, MessagePack — the library's
 * Node default, which OBS speaks natively).
 *
 * - Connects in the background: `start()` returns at once; an unreachable OBS only shows
 *   in `status()` and metrics.
 * - Reconnects with exponential backoff + jitter; a circuit breaker (breaker.ts) spaces
 *   attempts out further and fails requests fast while OBS keeps failing.
 * - Requests go through one bounded FIFO, sent one at a time, so their order is the
 *   order OBS sees (text before scene switch). When the queue is full the oldest
 *   non-essential request (performance text) is dropped, counted.
 * - Every request has its own timeout: obs-websocket-js never settles a call whose
 *   connection closed, so without one a caller could wait forever.
 * Nothing here throws out of a timer or an event handler.
 */
import OBSWebSocket, { EventSubscription, OBSWebSocketError } from 'obs-websocket-js';
import type { Logger } from 'pino';
import { backoffDelay } from './backoff.js';
import { BREAKER_STATE_VALUE, CircuitBreaker, type BreakerState } from './breaker.js';
import type { ConnectOutcome, ObsMetrics, RequestOutcome } from './metrics.js';

export interface ConnectionTuning {
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  queueLimit: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  breakerFailures: number;
  breakerOpenMs: number;
}

export const DEFAULT_TUNING: ConnectionTuning = {
  connectTimeoutMs: 5_000,
  requestTimeoutMs: 3_000,
  queueLimit: 32,
  backoffInitialMs: 200,
  backoffMaxMs: 5_000,
  breakerFailures: 3,
  breakerOpenMs: 3_000,
};

export interface ConnectionOptions {
  url: string;
  password?: string;
  log: Logger;
  metrics: ObsMetrics;
  tuning?: Partial<ConnectionTuning>;
  /** Called after each successful Identify (first connect and every reconnect). */
  onIdentified?: () => Promise<void> | void;
  onDisconnected?: () => void;
  /** OBS's CurrentProgramSceneChanged event. */
  onProgramScene?: (sceneName: string) => void;
}

export interface RequestOptions {
  /** Non-essential requests (periodic text) are the first dropped when the queue is full. */
  essential?: boolean;
}

export interface ConnectionStatus {
  connected: boolean;
  breaker: BreakerState;
  url: string;
  lastError: string | null;
  queued: number;
  consecutiveFailures: number;
  /** Milliseconds until the next connection attempt, null when connected or connecting. */
  reconnectInMs: number | null;
}

interface Queued {
  type: string;
  data: Record<string, unknown> | undefined;
  essential: boolean;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

type Phase = 'idle' | 'connecting' | 'connected' | 'stopped';

/** Thrown for requests that could not be sent (not an answer from OBS). */
export class ObsUnavailableError extends Error {}

/** Drops user:password from a URL before it is shown or logged. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (!u.username && !u.password) return url;
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '(invalid url)';
  }
}

function describe(error: unknown): string {
  if (error instanceof OBSWebSocketError && error.code === 4009) return 'authentication failed (4009): check the OBS websocket password';
  if (error instanceof OBSWebSocketError && error.code > 1000) return `connection closed by OBS (${error.code}${error.message ? `: ${error.message}` : ''})`;
  const message = error instanceof Error ? error.message : String(error);
  return message || 'connection failed';
}

function classify(error: unknown): ConnectOutcome {
  if (error instanceof OBSWebSocketError && error.code === 4009) return 'auth_failed';
  const message = error instanceof Error ? error.message : '';
  if (message.includes('ECONNREFUSED')) return 'refused';
  if (message.includes('timed out')) return 'timeout';
  return 'error';
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new ObsUnavailableError(message)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class ObsConnection {
  readonly breaker: CircuitBreaker;
  private readonly tuning: ConnectionTuning;
  private readonly displayUrl: string;
  private phase: Phase = 'idle';
  private obs: OBSWebSocket | undefined;
  private attempts = 0;
  private timer: NodeJS.Timeout | undefined;
  private nextAttemptAt: number | null = null;
  private lastError: string | null = null;
  private lastLoggedError: string | null = null;
  private readonly queue: Queued[] = [];
  private pumping = false;
  private breakerTripped = false;
  /** Rejects when the current link drops, so in-flight calls end at once. */
  private linkLost: { promise: Promise<never>; reject: (e: Error) => void } | undefined;

  constructor(private readonly o: ConnectionOptions) {
    this.tuning = { ...DEFAULT_TUNING, ...o.tuning };
    this.displayUrl = redactUrl(o.url);
    this.breaker = new CircuitBreaker({
      failureThreshold: this.tuning.breakerFailures,
      openMs: this.tuning.breakerOpenMs,
      onChange: (state) => {
        o.metrics.breakerState.set(BREAKER_STATE_VALUE[state]);
        if (state === 'open') o.metrics.breakerOpens.inc();
        // Logged on the way in and out only: a long outage flips open ⇄ half-open every few seconds.
        if (state === 'open' && !this.breakerTripped) {
          this.breakerTripped = true;
          o.log.warn({ url: this.displayUrl, lastError: this.lastError }, 'OBS circuit breaker open: failing OBS requests fast until it recovers');
        } else if (state === 'closed' && this.breakerTripped) {
          this.breakerTripped = false;
          o.log.info({ url: this.displayUrl }, 'OBS circuit breaker closed again');
        }
      },
    });
    o.metrics.breakerState.set(0);
    o.metrics.connected.set(0);
  }

  /** A getter, so TypeScript does not narrow `phase` across an await (stop() may run meanwhile). */
  private get stopped(): boolean {
    return this.phase === 'stopped';
  }

  get connected(): boolean {
    return this.phase === 'connected';
  }

  /** Begins connecting in the background; never throws, never waits. */
  start(): void {
    if (this.phase === 'idle' && this.timer === undefined) this.schedule(0);
  }

  async stop(): Promise<void> {
    if (this.phase === 'stopped') return;
    this.phase = 'stopped';
    clearTimeout(this.timer);
    this.timer = undefined;
    this.failQueue('OBS actor stopping', 'not_connected');
    this.linkLost?.reject(new ObsUnavailableError('OBS actor stopping'));
    const obs = this.obs;
    this.obs = undefined;
    this.o.metrics.connected.set(0);
    if (obs) await withTimeout(obs.disconnect(), 1_000, 'disconnect timed out').catch(() => undefined);
  }

  status(): ConnectionStatus {
    return {
      connected: this.connected,
      breaker: this.breaker.state,
      url: this.displayUrl,
      lastError: this.lastError,
      queued: this.queue.length,
      consecutiveFailures: this.breaker.consecutiveFailures,
      reconnectInMs: this.nextAttemptAt === null ? null : Math.max(0, this.nextAttemptAt - Date.now()),
    };
  }

  /**
   * Queues one obs-websocket request. Rejects with ObsUnavailableError ("OBS not
   * connected", circuit open, queue full, timeout) or with OBS's own refusal.
   */
  request(type: string, data?: Record<string, unknown>, options: RequestOptions = {}): Promise<unknown> {
    const essential = options.essential ?? true;
    if (this.phase !== 'connected') {
      this.count(type, 'not_connected');
      return Promise.reject(new ObsUnavailableError(this.phase === 'stopped' ? 'OBS actor stopping' : 'OBS not connected'));
    }
    if (this.breaker.state === 'open') {
      this.count(type, 'circuit_open');
      return Promise.reject(new ObsUnavailableError(`OBS circuit open after repeated failures; retrying in ${Math.ceil(this.breaker.remainingOpenMs() / 1000)} s`));
    }
    if (this.queue.length >= this.tuning.queueLimit) {
      const victim = this.queue.findIndex((q) => !q.essential);
      if (victim < 0 || !essential) {
        this.count(type, 'queue_full');
        this.o.metrics.droppedRequests.inc({ reason: 'queue_full' });
        return Promise.reject(new ObsUnavailableError(`OBS request queue full (${this.tuning.queueLimit} waiting)`));
      }
      const [dropped] = this.queue.splice(victim, 1);
      this.count(dropped!.type, 'dropped');
      this.o.metrics.droppedRequests.inc({ reason: 'queue_full' });
      dropped!.reject(new ObsUnavailableError('dropped: OBS request queue full'));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ type, data, essential, resolve, reject });
      this.o.metrics.queueDepth.set(this.queue.length);
      void this.pump();
    });
  }

  private count(type: string, outcome: RequestOutcome): void {
    this.o.metrics.requests.inc({ type, outcome });
  }

  private schedule(delayMs: number): void {
    if (this.phase === 'stopped') return;
    clearTimeout(this.timer);
    this.nextAttemptAt = Date.now() + delayMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.nextAttemptAt = null;
      this.connect().catch((error: unknown) => {
        // connect() handles its own failures; this only guards against a bug escaping a timer.
        this.o.log.error({ err: error }, 'OBS connect attempt failed unexpectedly');
        this.phase = this.phase === 'stopped' ? 'stopped' : 'idle';
        this.schedule(this.tuning.backoffMaxMs);
      });
    }, delayMs);
  }

  private retryLater(): void {
    const backoff = backoffDelay(this.attempts++, { initialMs: this.tuning.backoffInitialMs, maxMs: this.tuning.backoffMaxMs });
    this.schedule(Math.max(backoff, this.breaker.remainingOpenMs()));
  }

  private async connect(): Promise<void> {
    if (this.phase !== 'idle') return;
    if (!this.breaker.tryAcquire()) {
      this.schedule(Math.max(50, this.breaker.remainingOpenMs()));
      return;
    }
    this.phase = 'connecting';
    const obs = new OBSWebSocket();
    this.obs = obs;
    obs.on('ConnectionClosed', (error) => this.onClosed(obs, error));
    obs.on('CurrentProgramSceneChanged', (event) => {
      if (this.obs !== obs) return;
      try {
        this.o.onProgramScene?.(event.sceneName);
      } catch (error) {
        this.o.log.warn({ err: error }, 'OBS scene event handler failed');
      }
    });
    try {
      await withTimeout(
        obs.connect(this.o.url, this.o.password, { rpcVersion: 1, eventSubscriptions: EventSubscription.Scenes }),
        this.tuning.connectTimeoutMs,
        `connect timed out after ${this.tuning.connectTimeoutMs} ms`,
      );
    } catch (error) {
      if (this.obs === obs) this.obs = undefined;
      obs.removeAllListeners();
      void obs.disconnect().catch(() => undefined);
      if (this.stopped) return;
      this.phase = 'idle';
      this.o.metrics.connects.inc({ outcome: classify(error) });
      this.noteError(describe(error));
      this.breaker.failure();
      this.retryLater();
      return;
    }
    if (this.stopped) {
      void obs.disconnect().catch(() => undefined);
      return;
    }
    this.phase = 'connected';
    this.attempts = 0;
    this.lastError = null;
    this.lastLoggedError = null;
    this.breaker.success();
    let reject!: (e: Error) => void;
    const promise = new Promise<never>((_, r) => { reject = r; });
    promise.catch(() => undefined); // observed by in-flight calls; never an unhandled rejection
    this.linkLost = { promise, reject };
    this.o.metrics.connects.inc({ outcome: 'ok' });
    this.o.metrics.connected.set(1);
    this.o.log.info({ url: this.displayUrl }, 'connected to OBS');
    try {
      await this.o.onIdentified?.();
    } catch (error) {
      this.o.log.warn({ err: error }, 'restoring OBS state after connect failed');
    }
  }

  private onClosed(obs: OBSWebSocket, error: OBSWebSocketError): void {
    if (this.obs !== obs || this.phase !== 'connected') return; // failures while connecting are handled by connect()
    this.obs = undefined;
    this.phase = 'idle';
    this.o.metrics.disconnects.inc();
    this.o.metrics.connected.set(0);
    this.noteError(`connection lost (${error.code}${error.message ? `: ${error.message}` : ''})`);
    this.linkLost?.reject(new ObsUnavailableError('OBS connection lost'));
    this.linkLost = undefined;
    this.failQueue('OBS not connected', 'connection_lost');
    this.breaker.failure();
    try {
      this.o.onDisconnected?.();
    } catch (e) {
      this.o.log.warn({ err: e }, 'OBS disconnect handler failed');
    }
    this.retryLater();
  }

  /** Logs an error only when it changes, so a long OBS outage is one line, not thousands. */
  private noteError(message: string): void {
    this.lastError = message;
    if (message !== this.lastLoggedError) {
      this.lastLoggedError = message;
      this.o.log.warn({ url: this.displayUrl, error: message }, 'OBS unavailable; retrying in the background');
    }
  }

  private failQueue(message: string, outcome: RequestOutcome): void {
    const pending = this.queue.splice(0);
    this.o.metrics.queueDepth.set(0);
    for (const q of pending) {
      this.count(q.type, outcome);
      this.o.metrics.droppedRequests.inc({ reason: 'disconnected' });
      q.reject(new ObsUnavailableError(message));
    }
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0 && this.phase === 'connected') {
        const item = this.queue.shift()!;
        this.o.metrics.queueDepth.set(this.queue.length);
        await this.send(item);
      }
    } finally {
      this.pumping = false;
    }
  }

  private async send(item: Queued): Promise<void> {
    const obs = this.obs;
    const lost = this.linkLost;
    if (!obs || !lost || this.phase !== 'connected') {
      this.count(item.type, 'not_connected');
      item.reject(new ObsUnavailableError('OBS not connected'));
      return;
    }
    if (!this.breaker.tryAcquire()) {
      this.count(item.type, 'circuit_open');
      item.reject(new ObsUnavailableError('OBS circuit open after repeated failures'));
      return;
    }
    const call = obs.call as unknown as (type: string, data?: Record<string, unknown>) => Promise<unknown>;
    try {
      const result = await withTimeout(
        Promise.race([call.call(obs, item.type, item.data), lost.promise]),
        this.tuning.requestTimeoutMs,
        `OBS did not answer ${item.type} within ${this.tuning.requestTimeoutMs} ms`,
      );
      this.breaker.success();
      this.count(item.type, 'ok');
      item.resolve(result);
    } catch (error) {
      if (error instanceof OBSWebSocketError && error.code >= 100) {
        // OBS answered (e.g. 600 unknown scene): OBS is healthy, the request was wrong.
        this.breaker.success();
        this.count(item.type, 'obs_error');
        item.reject(new Error(`OBS refused ${item.type}: ${error.message || 'no reason given'} (code ${error.code})`));
        return;
      }
      const timedOut = error instanceof ObsUnavailableError && error.message.startsWith('OBS did not answer');
      if (timedOut) this.breaker.failure();
      this.count(item.type, timedOut ? 'timeout' : 'connection_lost');
      item.reject(error instanceof ObsUnavailableError ? error : new ObsUnavailableError(`OBS not connected (${(error as Error).message})`));
    }
  }
}
