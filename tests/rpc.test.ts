/**
 * The control plane between the supervisor and its actors: every call resolves, rejects or
 * times out, and its bookkeeping is gone when it does, in both directions.
 */
import { MessageChannel } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { ActorCallTimeoutError, ActorDiedError } from '../src/supervisor/actor-handle.js';
import { dispatchTo, RpcClient, serveRpc } from '../src/supervisor/rpc.js';
import { Supervisor } from '../src/supervisor/supervisor.js';
import { capturingLogger, until } from './helpers/supervisor-harness.js';

const actorModule = new URL('./fixtures/rpc-actor.ts', import.meta.url);

let running: Supervisor | undefined;
afterEach(async () => {
  await running?.stop(3_000);
  running = undefined;
});

async function start(extra: { upcallTimeoutMs?: number } = {}): Promise<Supervisor> {
  const supervisor = new Supervisor({ heartbeatIntervalMs: 50, intensity: 10, backoff: { initialMs: 0, maxMs: 0 }, logLevel: 'silent', ...extra, actors: [{ name: 'rpc', module: actorModule }] }, capturingLogger().logger);
  running = supervisor;
  await supervisor.start();
  return supervisor;
}

function metricValue(exposition: string, name: string, actor: string, extra = ''): number {
  const line = exposition.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(`actor="${actor}"`) && l.includes(extra));
  if (!line) throw new Error(`no ${name} for ${actor}`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('supervisor → actor calls', () => {
  it('a call to an actor that dies mid-call rejects with ActorDiedError; nothing stays pending', async () => {
    const supervisor = await start();
    const calls = [supervisor.call('rpc', 'never', [], 10_000), supervisor.call('rpc', 'dieDuring', [50], 10_000)];
    expect(supervisor.pendingCalls('rpc')).toBe(2);
    for (const call of calls) await expect(call).rejects.toBeInstanceOf(ActorDiedError);
    await expect(calls[1]).rejects.toThrow(/actor "rpc" died \(exit code 3\)/);
    await until(() => supervisor.incarnation('rpc') === 1 && supervisor.health().ok, 10_000, 'restart');
    expect(supervisor.pendingCalls('rpc')).toBe(0);
    expect(await supervisor.call('rpc', 'echo', ['after'])).toBe('after');
  });

  it('a timed-out call rejects with ActorCallTimeoutError, leaves nothing pending, and its late answer is dropped', async () => {
    const supervisor = await start();
    const started = performance.now();
    await expect(supervisor.call('rpc', 'never', [], 100)).rejects.toBeInstanceOf(ActorCallTimeoutError);
    expect(performance.now() - started).toBeGreaterThanOrEqual(95);
    await expect(supervisor.call('rpc', 'answerAfter', [300, 'late'], 100)).rejects.toThrow(/answerAfter timed out after 100 ms/);
    expect(supervisor.pendingCalls('rpc')).toBe(0);
    // The late answer arrives and finds no call waiting; the next call gets its own answer.
    await new Promise((r) => setTimeout(r, 300));
    expect(await supervisor.call('rpc', 'echo', [{ n: 1 }])).toEqual({ n: 1 });
    expect(supervisor.pendingCalls('rpc')).toBe(0);
    expect(metricValue(await supervisor.metrics(), 'ringcast_actor_calls_pending', 'supervisor', 'target="rpc"')).toBe(0);
  });

  it('the pending table returns to 0 after many concurrent calls of every outcome', async () => {
    const supervisor = await start();
    const outcomes = await Promise.allSettled(Array.from({ length: 300 }, (_, i) =>
      i % 3 === 0 ? supervisor.call('rpc', 'echo', [i]) : i % 3 === 1 ? supervisor.call('rpc', 'never', [], 50) : supervisor.call('rpc', 'nope')));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(100);
    expect(outcomes.filter((o) => o.status === 'rejected' && o.reason instanceof ActorCallTimeoutError)).toHaveLength(100);
    expect(outcomes.filter((o) => o.status === 'rejected' && /has no method "nope"/.test(String(o.reason)))).toHaveLength(100);
    expect(supervisor.pendingCalls('rpc')).toBe(0);
  });
});

describe('actor → main-thread upcalls', () => {
  it('a main-thread service that never answers makes ctx.callMain reject after upcallTimeoutMs; nothing stays pending', async () => {
    const supervisor = await start({ upcallTimeoutMs: 200 });
    supervisor.provide('never', () => new Promise(() => undefined));
    supervisor.provide('twice', (x: number) => x * 2);
    await expect(supervisor.call('rpc', 'askMain', ['never'], 5_000)).rejects.toThrow(/main-thread service "never" did not answer within 200 ms/);
    expect(await supervisor.call('rpc', 'askMain', ['twice', 21])).toBe(42);
    expect(metricValue(await supervisor.metrics(), 'ringcast_upcalls_pending', 'rpc')).toBe(0);
  });
});

describe('RpcClient', () => {
  it('close() rejects every pending call with the closed error and refuses new ones', async () => {
    const { port1, port2 } = new MessageChannel();
    serveRpc(port2, dispatchTo(() => ({ never: () => new Promise(() => undefined) }), 'test peer'));
    const client = new RpcClient(port1, { closed: (m) => new Error(`closed during ${m}`), timedOut: (m) => new Error(`timeout ${m}`) });
    const pending = [client.call('never', [], 10_000), client.call('never', [], 10_000)];
    await new Promise((r) => setTimeout(r, 20));
    expect(client.pendingCount).toBe(2);
    client.close();
    for (const call of pending) await expect(call).rejects.toThrow('closed during never');
    expect(client.pendingCount).toBe(0);
    await expect(client.call('never', [], 10)).rejects.toThrow('closed during never');
    port2.close();
  });

  it('inherited names are unknown methods, and an uncloneable result is an error, not a hang', async () => {
    const { port1, port2 } = new MessageChannel();
    serveRpc(port2, dispatchTo(() => ({ fn: () => () => 1 }), 'test peer'));
    const client = new RpcClient(port1, { closed: () => new Error('closed'), timedOut: () => new Error('timeout') });
    await expect(client.call('constructor', [], 1_000)).rejects.toThrow('test peer has no method "constructor"');
    await expect(client.call('fn', [], 1_000)).rejects.toThrow(/result of "fn" could not be sent/);
    expect(client.pendingCount).toBe(0);
    client.close();
    port2.close();
  });
});

describe('durable words', () => {
  it('start at zero, survive every restart of the actor, and are the same buffer for each incarnation', async () => {
    const supervisor = await start();
    const first = (await supervisor.call('rpc', 'durable')) as number[];
    expect(first).toHaveLength(32);
    expect(first[0]).toBe(1);
    expect(first.slice(1).every((w) => w === 0)).toBe(true);
    for (let i = 1; i <= 2; i++) {
      await supervisor.crash('rpc');
      await until(() => supervisor.incarnation('rpc') === i && supervisor.health().ok, 10_000, `restart ${i}`);
    }
    expect(((await supervisor.call('rpc', 'durable')) as number[])[0]).toBe(3);
  });
});
