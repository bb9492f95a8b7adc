/**
 * One actor thread as the supervisor sees it: spawn → loaded → activated → running → exited.
 *
 * The control plane is a small id-based RPC over two MessagePorts made at spawn (rpc.ts):
 * supervisor → actor calls, and actor → main-thread upcalls. Every call resolves, rejects
 * or times out, and its bookkeeping is gone the moment it does: the thread's exit rejects
 * whatever is still pending with ActorDiedError instead of leaving it to hang.
 */
import { MessageChannel, Worker } from 'node:worker_threads';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { HostApi } from './actor-host.js';
import type { ActivateMessage, HostBootData, HostToSupervisor, HostWorkerData, SupervisorToHost } from './host-protocol.js';
import type { ControlBlock } from './control-block.js';
import { RpcClient, serveRpc, type RpcDispatch } from './rpc.js';
import { runtimeModuleUrl } from '../shared/runtime-path.js';

/** How long a thread asked to exit gets before it is terminated outright. */
const KILL_GRACE_MS = 250;

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

const noServices: RpcDispatch = (method) => { throw new Error(`no main-thread service "${method}"`); };

export class ActorHandle {
  readonly worker: Worker;
  readonly loaded: Promise<void>;
  /** Settles once, when the thread is gone; never rejects. */
  readonly exited: Promise<ExitInfo>;
  private readonly rpcClient: RpcClient;
  /** Waits on the thread's own progress (load, start): each is rejected if the thread exits first. */
  private readonly waiters = new Set<() => void>();
  private exitInfo?: ExitInfo;
  private firstError?: Error;
  private killReason?: string;
  private isAlive = true;
  private isLoaded = false;
  private activated = false;
  private startedResolve?: () => void;

  /**
   * `upcalls` answers the actor's `ctx.callMain(method, ...args)`. `nativeHandles`: the
   * thread holds handles only its own JavaScript can close (uWS sockets), so it is never
   * terminated (see kill).
   */
  constructor(readonly name: string, workerData: HostWorkerData, upcalls: RpcDispatch = noServices, readonly nativeHandles = false) {
    const rpc = new MessageChannel();
    const upcall = new MessageChannel();
    const boot: HostBootData = { ...workerData, rpcPort: rpc.port2, upcallPort: upcall.port2 };
    this.worker = new Worker(hostUrl, { workerData: boot, transferList: [rpc.port2, upcall.port2], stdout: false, stderr: false });
    this.rpcClient = new RpcClient(rpc.port1, {
      closed: (method) => this.diedError(method),
      timedOut: (method, ms) => new ActorCallTimeoutError(`actor "${name}": ${method} timed out after ${ms} ms`),
    });
    serveRpc(upcall.port1, upcalls);
    // Serving upcalls must not keep the main thread alive; the worker itself does while it runs.
    upcall.port1.unref();

    let loadedResolve!: () => void;
    this.loaded = new Promise<void>((resolve) => { loadedResolve = resolve; });
    this.worker.on('message', (message: HostToSupervisor) => {
      if (message?.type === 'loaded') { this.isLoaded = true; loadedResolve(); }
      else if (message?.type === 'started') this.startedResolve?.();
    });
    this.worker.on('error', (error) => { this.firstError ??= error; });
    this.exited = new Promise<ExitInfo>((resolve) => {
      this.worker.once('exit', (code) => {
        this.isAlive = false;
        this.exitInfo = { code, error: this.firstError, killedFor: this.killReason };
        this.rpcClient.close();
        upcall.port1.close();
        for (const onExit of [...this.waiters]) onExit();
        resolve(this.exitInfo);
      });
    });
  }

  get alive(): boolean {
    return this.isAlive;
  }

  /** True once the thread imported its module and set up everything that needs no shared memory. */
  get ready(): boolean {
    return this.isLoaded && this.isAlive && !this.activated;
  }

  /** Calls in flight to this actor (0 when none is waiting for a reply). */
  get pendingCalls(): number {
    return this.rpcClient.pendingCount;
  }

  /** Hands the shared memory over and waits until the actor's start() returned. */
  async activate(control: ControlBlock, incarnation: number, durable: SharedArrayBuffer, rings: ActivateMessage['rings'], timeoutMs: number): Promise<void> {
    await this.untilExit(this.loaded, timeoutMs, 'load');
    control.setIncarnation(incarnation);
    const started = new Promise<void>((resolve) => { this.startedResolve = resolve; });
    const message: ActivateMessage = { type: 'activate', incarnation, control: control.sab, durable, rings };
    this.activated = true;
    this.worker.postMessage(message);
    await this.untilExit(started, timeoutMs, 'start');
  }

  /** Calls into the actor host; rejects with ActorDiedError if the thread dies first, ActorCallTimeoutError after `timeoutMs`. */
  rpc<K extends keyof HostApi>(method: K, args: Parameters<HostApi[K]>, timeoutMs: number, label: string = method): Promise<Awaited<ReturnType<HostApi[K]>>> {
    if (!this.activated || !this.isAlive) return Promise.reject(new ActorDiedError(`actor "${this.name}" is not running`));
    return this.rpcClient.call(method, args, timeoutMs, label) as Promise<Awaited<ReturnType<HostApi[K]>>>;
  }

  /** Calls a method of the actor's own `api`. */
  call(method: string, args: unknown[] = [], timeoutMs = 5_000): Promise<unknown> {
    return this.rpc('call', [method, args], timeoutMs, method);
  }

  metricsJson(timeoutMs: number): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    return this.rpc('metricsJson', [], timeoutMs) as Promise<MetricObjectWithValues<MetricValue<string>>[]>;
  }

  /**
   * Ends the thread. It is first asked to exit by itself (`process.exit` inside the worker
   * runs its 'exit' handlers), because `terminate()` runs no JavaScript at all: a thread
   * holding native handles (uWS sockets) that is terminated aborts the whole process.
   * Only a thread that does not exit within `graceMs` (a blocked event loop) is terminated,
   * and never one with `nativeHandles`: for it no way of ending the thread from outside is
   * safe (terminate() and even the main thread's process.exit() tear the blocked thread
   * down with its uWS poll handles open, and Node aborts in uv_loop_close). Such a thread
   * keeps its exit request and leaves by itself once its loop runs again; until then kill
   * resolves `undefined` and the caller decides (the supervisor escalates).
   */
  async kill(reason: string, graceMs = KILL_GRACE_MS): Promise<ExitInfo | undefined> {
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
      if (outcome === 'timeout' && this.isAlive) {
        if (this.nativeHandles) return undefined;
        await this.worker.terminate();
      }
    }
    return this.exited;
  }

  private diedError(what: string): ActorDiedError {
    const why = this.exitInfo ? `died (${describeExit(this.exitInfo)})` : 'is not running';
    return new ActorDiedError(`actor "${this.name}" ${why} before ${what} completed`);
  }

  /**
   * `promise`, unless the thread exits or `timeoutMs` passes first. The waiter is removed
   * however it ends, so nothing here outlives the wait.
   */
  private untilExit<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
    if (!this.isAlive) return Promise.reject(this.diedError(what));
    return new Promise<T>((resolve, reject) => {
      const finish = (settle: () => void) => {
        if (!this.waiters.delete(onExit)) return;
        clearTimeout(timer);
        settle();
      };
      const onExit = () => finish(() => reject(this.diedError(what)));
      const timer = setTimeout(() => finish(() => reject(new ActorCallTimeoutError(`actor "${this.name}": ${what} timed out after ${timeoutMs} ms`))), timeoutMs);
      this.waiters.add(onExit);
      promise.then((value) => finish(() => resolve(value)), (error: Error) => finish(() => reject(error)));
    });
  }
}

export function describeExit(info: ExitInfo): string {
  if (info.killedFor) return `killed: ${info.killedFor}`;
  if (info.error) return `error: ${info.error.message}`;
  return `exit code ${info.code}`;
}
