import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { message, overlay, INGEST_TOKEN, startGateways, TestClient, until, type GatewayCluster } from './fixtures/gateway-harness.js';
import { reservePort } from '../src/shared/reserve-port.js';

let gw: GatewayCluster | undefined;
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
});

async function clientsOn(cluster: GatewayCluster, i: number): Promise<number> {
  return ((await cluster.supervisor.call(`gateway-${i}`, 'stats')) as any).overlay.clients;
}

describe('gateway lifecycle', () => {
  it('a gateway that crashes (uncaught exception) closes its sockets, is restarted, and the process lives on', async () => {
    gw = await startGateways();
    const cluster = gw;
    const clients: TestClient[] = [];
    // Connect until gateway-0 holds open sockets, so the crash happens with live uWS handles.
    await until(async () => { clients.push(await overlay(cluster.port, { channels: ['chat'] })); return (await clientsOn(cluster, 0)) > 0; }, 5_000, 'a client on gateway-0');
    const died = new Promise<string>((resolve) => cluster.supervisor.once('actor-failed', (name: string, reason: string) => resolve(`${name}: ${reason}`)));
    expect(await cluster.supervisor.call('gateway-0', 'crash')).toBe('crashing');
    expect(await died).toMatch(/^gateway-0: exit code 1/);
    await until(() => cluster.supervisor.incarnation('gateway-0') === 1 && cluster.supervisor.health().ok, 10_000, 'gateway-0 restarted');
    // Its clients were disconnected; the others stay.
    await until(() => clients.some((c) => c.closeCode !== undefined), 3_000, 'clients of the crashed gateway closed');
    const survivors = clients.filter((c) => c.closeCode === undefined);
    // The restarted gateway listens on the shared port again and serves from its ring.
    const fresh: TestClient[] = [];
    await until(async () => { fresh.push(await overlay(cluster.port, { channels: ['chat'] })); return (await clientsOn(cluster, 0)) > 0; }, 5_000, 'a client on the restarted gateway-0');
    cluster.publish({ channel: 'chat', key: 'chat_message', body: message('chat_message', { after: 'restart' }), flags: 0 });
    for (const c of [...survivors, ...fresh]) await c.next((r) => r.json?.data?.after === 'restart', 3_000, 'an update after the restart');
    for (const c of [...clients, ...fresh]) c.close();
  });

  it('a graceful stop closes every connection (1001) and leaves the process alive', async () => {
    gw = await startGateways();
    const cluster = gw;
    const overlays = await Promise.all(Array.from({ length: 6 }, () => overlay(cluster.port, {})));
    const producer = await TestClient.connect(`ws://127.0.0.1:${cluster.port}/ingest?token=${INGEST_TOKEN}`);
    const consumer = await TestClient.connect(`ws://127.0.0.1:${cluster.port}/experience?token=${INGEST_TOKEN}`);
    // A keep-alive HTTP connection left open by fetch (undici pools it).
    cluster.supervisor.provide('http', () => ({ status: 200, headers: {}, body: 'ok' }));
    expect((await fetch(`http://127.0.0.1:${cluster.port}/something`)).status).toBe(200);
    const result = await cluster.supervisor.stop(5_000);
    gw = undefined;
    expect(result.forced).toEqual([]);
    expect(result.clean).toBe(true);
    for (const c of [...overlays, producer, consumer]) expect((await c.closed).code).toBe(1001);
    const finals = result.finals as Record<string, any>;
    expect(finals['gateway-0'].openSockets + finals['gateway-1'].openSockets).toBe(0);
    // Nothing listens any more.
    await expect(new Promise((resolve, reject) => {
      const s = net.connect(cluster.port, '127.0.0.1', () => { s.destroy(); resolve('connected'); });
      s.on('error', reject);
    })).rejects.toThrow(/ECONNREFUSED/);
  });

  it('fails to start with a clear error when the port is taken by a non-shared socket', async () => {
    const port = await reservePort('127.0.0.1', 0);
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      await expect(startGateways({ count: 1, port, intensity: 0 })).rejects.toThrow(/cannot listen on 127\.0\.0\.1:\d+/);
    } finally {
      blocker.close();
    }
  });

  it('rejects calls to the test hooks when they are not enabled', async () => {
    gw = await startGateways({ count: 1, options: { testHooks: false } });
    await expect(gw.supervisor.call('gateway-0', 'crash')).rejects.toThrow(/has no method "crash"/);
    await expect(gw.supervisor.call('gateway-0', 'exit')).rejects.toThrow(/has no method "exit"/);
  });

  it('a process.exit() inside a gateway with open sockets is survivable too (its exit hook closes them)', async () => {
    gw = await startGateways({ count: 1 });
    const cluster = gw;
    const c = await overlay(cluster.port, { channels: ['chat'] });
    expect(await clientsOn(cluster, 0)).toBe(1);
    expect(await cluster.supervisor.call('gateway-0', 'exit')).toBe('exiting');
    await c.closed;
    await until(() => cluster.supervisor.incarnation('gateway-0') === 1 && cluster.supervisor.health().ok, 10_000, 'gateway-0 restarted');
    const again = await overlay(cluster.port, { channels: ['chat'] });
    again.close();
  });

  it('refuses clients past maxClients with close code 1013 and a reason', async () => {
    gw = await startGateways({ count: 1, options: { maxClients: 2 } });
    const cluster = gw;
    const a = await overlay(cluster.port, {});
    const b = await overlay(cluster.port, {});
    const refused = await TestClient.connect(`ws://127.0.0.1:${cluster.port}/ws`);
    const closed = await refused.closed;
    expect(closed.code).toBe(1013);
    expect(closed.reason).toMatch(/server full: 2 overlay clients/);
    expect(a.closeCode).toBeUndefined();
    a.close();
    await a.closed;
    await until(async () => (await clientsOn(cluster, 0)) === 1, 3_000, 'a slot freed');
    const c = await overlay(cluster.port, {});
    expect(await cluster.supervisor.metrics()).toMatch(/ringcast_gateway_disconnects_total\{[^}]*reason="server_full"[^}]*\} 1/);
    b.close();
    c.close();
  });

  // worker.terminate() runs no JavaScript, so a gateway terminated with open uWS handles
  // aborts the whole process. ActorHandle.kill therefore asks the thread to exit by itself
  // first (the gateway's exit hook closes every handle) and terminates only as a fallback.
  it('Supervisor.crash (the hang-kill path) of a gateway with open sockets leaves the process alive', () => {
    const script = fileURLToPath(new URL('../dist/tests/fixtures/gateway-terminate.js', import.meta.url));
    const child = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 20_000 });
    expect(child.stderr).not.toMatch(/uv_loop_close\(\) while having open handles/);
    expect(child.stdout).toContain('SURVIVED');
    expect(child.status).toBe(0);
  });
});
