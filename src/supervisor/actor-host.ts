/**
 * Worker-thread entry point for every actor.
 *
 * Life of a host:
 *   1. import the actor module and do every part of start-up that does not need shared
 *      memory: the thread's logger, its metrics registry, both RPC ports (they come with the
 *      thread, see HostBootData). A standby host stops here, ready, and waits;
 *   2. receive `activate` with the rings' SharedArrayBuffers, the control block and the
 *      durable words;
 *   3. attach the rings, start the actor, beat the heartbeat from a timer, serve RPC.
 *
 * An exception anywhere propagates as an uncaught error so the supervisor sees a crash
 * (exit/error event); nothing here swallows failures.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Counter, Gauge } from 'prom-client';
import type { ActorContext, ActorDefinition, ActorInstance, AnyRing } from '../shared/actor.js';
import { attachRing } from '../shared/rings.js';
import { childLoggerFor } from '../shared/logger.js';
import { createActorRegistry } from '../shared/metrics.js';
import { ActorState, ControlBlock } from './control-block.js';
import type { ActivateMessage, HostBootData, HostToSupervisor, SupervisorToHost } from './host-protocol.js';
import { dispatchTo, RpcClient, serveRpc } from './rpc.js';

if (!parentPort) throw new Error('actor-host must run inside a worker thread');
const port = parentPort;
const data = workerData as HostBootData;

function send(message: HostToSupervisor): void {
  port.postMessage(message);
}

const loaded = await import(data.moduleUrl);
const definition = loaded.default as ActorDefinition | undefined;
if (!definition || typeof definition.start !== 'function') {
  throw new Error(`actor module ${data.moduleUrl} must default-export defineActor({ start(ctx) { … } })`);
}

// Everything below up to `loaded` needs no shared memory, so a standby does it in advance.
const rootLog = childLoggerFor(data.name, data.logLevel);
const metrics = createActorRegistry(data.name);
const stopController = new AbortController();

const upcall = new RpcClient(data.upcallPort, {
  closed: (method) => new Error(`actor "${data.name}": main-thread service "${method}" unreachable (the channel is closed)`),
  timedOut: (method, ms) => new Error(`actor "${data.name}": main-thread service "${method}" did not answer within ${ms} ms`),
});
// An idle upcall port must not keep a stopping actor alive.
data.upcallPort.unref();
new Gauge({
  name: 'ringcast_upcalls_pending', help: 'ctx.callMain calls still waiting for the main thread', registers: [metrics],
  collect() { this.set(upcall.pendingCount); },
});
new Counter({
  name: 'ringcast_upcall_late_replies_total', help: 'Main-thread answers that came after their ctx.callMain had timed out (dropped)', registers: [metrics],
  collect() { this.reset(); this.inc(upcall.lateReplies); },
});

// Until activation only `ping` answers; afterwards the full host API (hostApi below).
let served: Record<string, unknown> = { ping: () => 'pong' };
serveRpc(data.rpcPort, dispatchTo(() => served, `actor "${data.name}" host`));

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

function attachAll(sabs: Record<string, SharedArrayBuffer>): Record<string, AnyRing> {
  const rings: Record<string, AnyRing> = {};
  for (const [ringName, sab] of Object.entries(sabs)) rings[ringName] = attachRing(sab);
  return rings;
}

// Beat from a timer: an actor whose event loop is blocked stops beating, which is how
// the supervisor tells "hung" from "busy but alive".
const beatTimer = setInterval(() => control.beat(), data.heartbeatIntervalMs);
control.beat();

const ctx: ActorContext = {
  name: data.name,
  incarnation: activation.incarnation,
  options: data.options,
  in: attachAll(activation.rings.in),
  out: attachAll(activation.rings.out),
  durable: new Float64Array(activation.durable),
  log: rootLog.child({ incarnation: activation.incarnation }),
  metrics,
  signal: stopController.signal,
  heartbeat: () => control.beat(),
  callMain: <T>(method: string, ...args: unknown[]) => upcall.call(method, args, data.upcallTimeoutMs) as Promise<T>,
};

const instance: ActorInstance = await definition.start(ctx);
let stopping: Promise<unknown> | undefined;

const hostApi = {
  ping: () => 'pong',
  metricsJson: () => metrics.getMetricsAsJSON(),
  call: async (method: string, args: unknown[]) => {
    const api = instance.api ?? {};
    const fn = Object.hasOwn(api, method) ? api[method] : undefined;
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

served = hostApi;
control.setState(ActorState.Running);
send({ type: 'started' });
