/**
 * The contract between the supervisor and an actor module.
 *
 * An actor module is an ES module whose default export is made with `defineActor`.
 * The supervisor runs it inside `actor-host` on its own worker thread and hands it a
 * context: its rings (already attached to the supervisor-owned SharedArrayBuffers),
 * a child logger, a prom-client registry labelled with the actor's name, and an
 * AbortSignal that fires when the supervisor asks it to stop.
 *
 * Why rings come pre-attached: the supervisor owns every SharedArrayBuffer, so an
 * actor that crashes and is restarted gets the *same* buffers back and continues from
 * the last committed read position instead of losing what was queued.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { RecordRing } from './record-ring.js';
import type { SlotRing } from './slot-ring.js';

export type AnyRing = RecordRing | SlotRing;

export interface ActorContext<Options = unknown> {
  /** Spec name of this actor, also its `actor` metric label. */
  readonly name: string;
  /** How many times this actor has been (re)started; 0 for the first start. */
  readonly incarnation: number;
  readonly options: Options;
  /** Rings this actor consumes, by ring name. */
  readonly in: Readonly<Record<string, AnyRing>>;
  /** Rings this actor produces into, by ring name. */
  readonly out: Readonly<Record<string, AnyRing>>;
  /**
   * 32 words that survive this actor's restarts: all zero at the first start, and after a
   * restart whatever the previous incarnation last stored. The supervisor owns the buffer,
   * as it owns the rings. For what a viewer must never see go backwards (a step counter,
   * games played): store a value as soon as it is published, resume from it on restart.
   */
  readonly durable: Float64Array;
  readonly log: Logger;
  readonly metrics: Registry;
  /** Fires when the supervisor asks the actor to stop (drain, flush, return). */
  readonly signal: AbortSignal;
  /**
   * Marks the actor alive. The host already beats from a timer, so only actors that
   * run long synchronous loops need to call this; an actor whose event loop is stuck
   * stops beating and is treated as hung.
   */
  heartbeat(): void;
  /**
   * Call a service the main thread registered with `Supervisor.provide(method, fn)`.
   * Rejects when no such service exists, or when it has not answered within 30 s.
   * Arguments and result must be structured-cloneable.
   */
  callMain<T = unknown>(method: string, ...args: unknown[]): Promise<T>;
}

export interface ActorInstance {
  /** Methods callable from the supervisor over the RPC control plane. */
  readonly api?: Record<string, (...args: never[]) => unknown>;
  /**
   * Graceful stop: stop intake, drain input rings, flush state. Called once when the
   * supervisor stops the actor; the host terminates the thread if it overruns the deadline.
   * What it returns (structured-cloneable) reaches the supervisor as the actor's final
   * state, for the service to flush to the state store.
   */
  stop?(): Promise<unknown> | unknown;
}

export interface ActorDefinition<Options = unknown> {
  start(ctx: ActorContext<Options>): Promise<ActorInstance> | ActorInstance;
}

export function defineActor<Options = unknown>(definition: ActorDefinition<Options>): ActorDefinition<Options> {
  if (typeof definition?.start !== 'function') {
    throw new TypeError('defineActor: the definition needs a start(ctx) function');
  }
  return definition;
}
