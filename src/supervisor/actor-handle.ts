/**
 * One actor thread as the supervisor sees it: spawn → loaded → activated → running → exited.
 *
 * The control plane is comlink over a dedicated MessagePort. comlink alone never settles
 * a call whose peer died, so every call here is raced against this thread's death and
 * against a timeout: callers get an ActorDiedError instead of hanging forever.
 */
import { MessageChannel, Worker } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { HostApi } from './actor-host.js';
import type { ActivateMessage, UpcallApi, HostToSupervisor, HostWorkerData, SupervisorToHost } from './host-protocol.js';

/** How long a thread asked to exit gets before it is terminated outright. */
const KILL_GRACE_MS = 250;
import type { ControlBlock } from './control-block.js';
import { runtimeModuleUrl } from '../shared/runtime-path.js';

export class ActorDiedError extends Error {
  override readonly name = 'ActorDiedError';
}
export class ActorCallTimeoutError extends Error {
  override readonly name = 'ActorCallTimeoutError';
}

export interface ExitInfo {
  code: number;
  error?: Error;
  /** Set when the supervisor killed the thread itself (hang, restart of a sibling, stop). */
  killedFor?: string;
}

// Under vitest this file is TypeScript source; workers need the compiled host.
const hostUrl = import.meta.url.endsWith('.ts')
  ? runtimeModuleUrl(new URL('./actor-host.ts', import.meta.url))
  : new URL('./actor-host.js', import.meta.url);

export class ActorHandle {
  readonly worker: Worker;
  readonly loaded: Promise<void>;
  /** Settles once, when the thread is gone; never rejects. */
  readonly exited: Promise<ExitInfo>;
  private readonly death: Promise<never>;
  private remote?: Comlink.Remote<HostApi>;
  private rpcPort?: MessagePort;
  private upcallPort?: MessagePort;
  private firstError?: Error;
  private killReason?: string;
  private isAlive = true;
  private startedResolve?: () => void;

  constructor(readonly name: string, workerData: HostWorkerData) {
    this.worker = new Worker(hostUrl, { workerData, stdout: false, stderr: false });
    let loadedResolve!: () => void;
    this.loaded = new Promise<void>((resolve) => { loadedResolve = resolve; });
    this.worker.on('message', (message: HostToSupervisor) => {
      if (message?.type === 'loaded') loadedResolve();
      else if (message?.type === 'started') this.startedResolve?.();
    });
    this.worker.on('error', (error) => { this.firstError ??= error; });
    this.exited = new Promise<ExitInfo>((resolve) => {
      this.worker.once('exit', (code) => {
        this.isAlive = false;
        this.rpcPort?.close();
        this.upcallPort?.close();
        resolve({ code, error: this.firstError, killedFor: this.killReason });
      });
    });
    this.death = this.exited.then((info) => {
      throw new ActorDiedError(`actor "${name}" died (${describeExit(info)})`);
    });
    // A rejection nobody awaits must not become an unhandled rejection.
    this.death.catch(() => undefined);
  }

  get alive(): boolean {
    return this.isAlive;
  }

  /** Hands the rings and control block over and waits until the actor's start() returned. */
  async activate(control: ControlBlock, incarnation: number, rings: ActivateMessage['rings'], timeoutMs: number, upcalls?: UpcallApi): Promise<void> {
    await this.raceDeath(this.loaded, timeoutMs, 'load');
    const channel = new MessageChannel();
    this.rpcPort = channel.port1;
    const upcall = new MessageChannel();
    this.upcallPort = upcall.port1;
    Comlink.expose(upcalls ?? { call: async (method: string) => { throw new Error(`no main-thread service "${method}"`); } }, upcall.port1 as unknown as Comlink.Endpoint);
    (upcall.port1 as MessagePort).unref();
    control.setIncarnation(incarnation);
    const started = new Promise<void>((resolve) => { this.startedResolve = resolve; });
    const message: ActivateMessage = { type: 'activate', incarnation, control: control.sab, rings, rpcPort: channel.port2, upcallPort: upcall.port2 };
    this.worker.postMessage(message, [channel.port2, upcall.port2]);
    this.remote = Comlink.wrap<HostApi>(channel.port1 as unknown as Comlink.Endpoint);
    await this.raceDeath(started, timeoutMs, 'start');
  }

  /** Calls into the actor host; rejects with ActorDiedError if the thread dies first. */
  async rpc<K extends keyof HostApi>(method: K, args: Parameters<HostApi[K]>, timeoutMs: number): Promise<Awaited<ReturnType<HostApi[K]>>> {
    if (!this.remote || !this.isAlive) throw new ActorDiedError(`actor "${this.name}" is not running`);
    const fn = this.remote[method] as unknown as (...a: unknown[]) => Promise<Awaited<ReturnType<HostApi[K]>>>;
    return this.raceDeath(fn(...args), timeoutMs, String(method));
  }

  /** Calls a method of the actor's own `api`. */
  call(method: string, args: unknown[] = [], timeoutMs = 5_000): Promise<unknown> {
    return this.rpc('call', [method, args], timeoutMs);
  }

  metricsJson(timeoutMs: number): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    return this.rpc('metricsJson', [], timeoutMs) as Promise<MetricObjectWithValues<MetricValue<string>>[]>;
  }

  /**
   * Ends the thread. It is first asked to exit by itself (`process.exit` inside the worker
   * runs its 'exit' handlers), because `terminate()` runs no JavaScript at all: a thread
   * holding native handles (uWS sockets) that is terminated aborts the whole process.
   * Only a thread that does not exit within `graceMs` (a blocked event loop) is terminated.
   */
  async kill(reason: string, graceMs = KILL_GRACE_MS): Promise<ExitInfo> {
    if (this.isAlive) {
      this.killReason ??= reason;
      try {
        this.worker.postMessage({ type: 'exit-now' } satisfies SupervisorToHost);
      } catch {
        // The thread is already going away.
      }
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), graceMs); });
      const outcome = await Promise.race([this.exited, graceOver]);
      clearTimeout(timer);
      if (outcome === 'timeout' && this.isAlive) await this.worker.terminate();
    }
    return this.exited;
  }

  private raceDeath<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ActorCallTimeoutError(`actor "${this.name}": ${what} timed out after ${timeoutMs} ms`)), timeoutMs);
    });
    return Promise.race([promise, this.death, timeout]).finally(() => clearTimeout(timer));
  }
}

export function describeExit(info: ExitInfo): string {
  if (info.killedFor) return `killed: ${info.killedFor}`;
  if (info.error) return `error: ${info.error.message}`;
  return `exit code ${info.code}`;
}
