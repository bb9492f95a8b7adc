/** Messages between the supervisor and an actor host, outside the RPC control plane (rpc.ts). */
import type { MessagePort } from 'node:worker_threads';

export interface HostWorkerData {
  name: string;
  moduleUrl: string;
  options: unknown;
  logLevel: string;
  heartbeatIntervalMs: number;
  /** Longest a `ctx.callMain` waits for the main thread. */
  upcallTimeoutMs: number;
}

/**
 * What a thread is spawned with: the spec part plus both RPC ports, so a standby thread
 * sets up its whole control plane before it is needed and activation only hands over
 * shared memory.
 */
export interface HostBootData extends HostWorkerData {
  /** Supervisor → actor calls (the host serves HostApi here). */
  rpcPort: MessagePort;
  /** The reverse direction: the actor calls services the main thread provides (Supervisor.provide). */
  upcallPort: MessagePort;
}

export interface ActivateMessage {
  type: 'activate';
  incarnation: number;
  control: SharedArrayBuffer;
  /** The actor's durable words (ActorContext.durable): the same buffer for every incarnation. */
  durable: SharedArrayBuffer;
  rings: { in: Record<string, SharedArrayBuffer>; out: Record<string, SharedArrayBuffer> };
}


export type HostToSupervisor = { type: 'loaded' } | { type: 'started' };

/** Outside activation: the supervisor asks the thread to end itself (see ActorHandle.kill). */
export type SupervisorToHost = { type: 'exit-now' };

/** Bytes of an actor's durable buffer: 32 float64 words. */
export const DURABLE_BYTES = 256;
