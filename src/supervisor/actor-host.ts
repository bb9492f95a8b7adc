/**
 * Worker-thread entry point for every actor.
 *
 * Life of a host:
 *   1. import the actor module (this can happen long before it is needed: a standby host
 *      stops here, loaded and waiting);
 *   2. receive `activate` with the rings' SharedArrayBuffers, the control block and a
 *      MessagePort for the comlink control plane;
 *   3. attach the rings, start the actor, beat the heartbeat from a timer, serve RPC.
 *
 * An exception anywhere propagates as an uncaught error so the supervisor sees a crash
 * (exit/error event); nothing here swallows failures.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import type { ActorContext, ActorDefinition, ActorInstance, AnyRing } from '../shared/actor.js';
import { attachRing } from '../shared/rings.js';
import { childLoggerFor } from '../shared/logger.js';
import { createActorRegistry } from '../shared/metrics.js';
import { ActorState, ControlBlock } from './control-block.js';
import type { ActivateMessage, HostToSupervisor, HostWorkerData, SupervisorToHost, UpcallApi } from './host-protocol.js';

if (!parentPort) throw new Error('actor-host must run inside a worker thread');
const port = parentPort;
const data = workerData as HostWorkerData;

function send(message: HostToSupervisor): void {
  port.postMessage(message);
}

const loaded = await import(data.moduleUrl);
const definition = loaded.default as ActorDefinition | undefined;
if (!definition || typeof definition.start !== 'function') {
  throw new Error(`actor module ${data.moduleUrl} must default-export defineActor({ start(ctx) { … } })`);
}
send({ type: 'loaded' });

// `exit-now` may come at any time (a kill, even before activation): exiting from inside
// the thread runs the actor's 'exit' handlers, which a bare terminate() would skip.
const activation = await new Promise<ActivateMessage>((resolve) => {
  port.on('message', (message: ActivateMessage | SupervisorToHost) => {
    if (message?.type === 'exit-now') process.exit(1);
    else if (message?.type === 'activate') resolve(message);
  });
});
// Waiting for activation had to keep the thread alive; the exit-now listener must not.
port.unref();

const control = new ControlBlock(activation.control);
control.setState(ActorState.Starting);
const log = childLoggerFor(data.name, data.logLevel).child({ incarnation: activation.incarnation });
const metrics = createActorRegistry(data.name);
const stopController = new AbortController();

function attachAll(sabs: Record<string, SharedArrayBuffer>): Record<string, AnyRing> {
  const rings: Record<string, AnyRing> = {};
  for (const [ringName, sab] of Object.entries(sabs)) rings[ringName] = attachRing(sab);
  return rings;
}

// Beat from a timer: an actor whose event loop is blocked stops beating, which is how
// the supervisor tells "hung" from "busy but alive".
const beatTimer = setInterval(() => control.beat(), data.heartbeatIntervalMs);
control.beat();

const upcallPort = activation.upcallPort as MessagePort;
const upcall = Comlink.wrap<UpcallApi>(upcallPort as unknown as Comlink.Endpoint);
// Idle upcall port must not keep a stopping actor alive.
upcallPort.unref();

const ctx: ActorContext = {
  name: data.name,
  incarnation: activation.incarnation,
  options: data.options,
  in: attachAll(activation.rings.in),
  out: attachAll(activation.rings.out),
  log,
  metrics,
  signal: stopController.signal,
  heartbeat: () => control.beat(),
  callMain: <T>(method: string, ...args: unknown[]) => upcall.call(method, args) as Promise<T>,
};

const instance: ActorInstance = await definition.start(ctx);
let stopping: Promise<unknown> | undefined;

const hostApi = {
  ping: () => 'pong',
  metricsJson: () => metrics.getMetricsAsJSON(),
  call: async (method: string, args: unknown[]) => {
    const fn = instance.api?.[method];
    if (typeof fn !== 'function') throw new Error(`actor "${data.name}" has no method "${method}"`);
    return (fn as (...a: unknown[]) => unknown)(...args);
  },
  stop: () => {
    stopping ??= (async () => {
      control.setState(ActorState.Stopping);
      stopController.abort();
      const final = await instance.stop?.();
      control.setState(ActorState.Stopped);
      clearInterval(beatTimer);
      return final;
    })();
    return stopping;
  },
};
export type HostApi = typeof hostApi;

// Node's MessagePort is an EventTarget with start(), which is what comlink's Endpoint needs.
Comlink.expose(hostApi, activation.rpcPort as unknown as Comlink.Endpoint);
(activation.rpcPort as MessagePort).start();
control.setState(ActorState.Running);
send({ type: 'started' });
