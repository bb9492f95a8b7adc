/** Messages between the supervisor and an actor host, outside the comlink control plane. */
import type { MessagePort } from 'node:worker_threads';

export interface HostWorkerData {
  name: string;
  moduleUrl: string;
  options: unknown;
  logLevel: string;
  heartbeatIntervalMs: number;
}

export interface ActivateMessage {
  type: 'activate';
  incarnation: number;
  control: SharedArrayBuffer;
  rings: { in: Record<string, SharedArrayBuffer>; out: Record<string, SharedArrayBuffer> };
  rpcPort: MessagePort;
  /** The reverse direction: the actor calls services the main thread provides (Supervisor.provide). */
  upcallPort: MessagePort;
}

/** What the supervisor exposes on the upcall port. */
export interface UpcallApi {
  call(method: string, args: unknown[]): Promise<unknown>;
}

export type HostToSupervisor = { type: 'loaded' } | { type: 'started' };

/** Outside activation: the supervisor asks the thread to end itself (see ActorHandle.kill). */
export type SupervisorToHost = { type: 'exit-now' };
