import { createRequire } from 'node:module';
import { createServer, type Server } from 'node:net';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { HttpError, METRICS_CONTENT_TYPE, loadUws, type UwsModule } from '../src/shared/http-server.js';
import { startHttpServer, type HealthReport, type HttpServer, type HttpServerOptions } from './helpers/http-server.js';

const servers: HttpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(overrides: Partial<HttpServerOptions> = {}): Promise<{ server: HttpServer; base: string }> {
  const server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    health: () => ({ ok: true, actors: { trainer: 'running' } }),
    metrics: async () => '# TYPE up gauge\nup 1\n',
    maxBodyBytes: 1024,
    ...overrides,
  });
  servers.push(server);
  return { server, base: `http://127.0.0.1:${server.port}` };
}

function listenWithNet(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const blocker = createServer();
    blocker.once('error', reject);
    blocker.listen(port, '127.0.0.1', () => resolve(blocker));
  });
}

describe('startHttpServer', () => {
  it('listens on the port the OS picked for port 0', async () => {
    const { server } = await start();
    expect(server.port).toBeGreaterThan(0);
    expect(server.native).toBe(true);
  });

  it('answers /healthz with 200 when healthy and 503 when not', async () => {
    let report: HealthReport = { ok: true, actors: { trainer: 'running' } };
    const { base } = await start({ health: () => report });

    const healthy = await fetch(`${base}/healthz`);
    expect(healthy.status).toBe(200);
    expect(await healthy.json()).toEqual(report);

    report = { ok: false, actors: { trainer: 'restarting' } };
    const unhealthy = await fetch(`${base}/healthz`);
    expect(unhealthy.status).toBe(503);
    expect(await unhealthy.json()).toEqual({ ok: false, actors: { trainer: 'restarting' } });
  });

  it('serves /metrics as Prometheus text', async () => {
    const { base } = await start();
    const response = await fetch(`${base}/metrics`);
    expect(response.headers.get('content-type')).toBe(METRICS_CONTENT_TYPE);
    expect(await response.text()).toBe('# TYPE up gauge\nup 1\n');
  });

  it('parses JSON bodies, with 400 for invalid JSON and 413 past the limit', async () => {
    const { base } = await start({
      routes: [
        {
          method: 'post',
          path: '/echo/:id',
          handler: async (req) => ({ status: 201, json: { id: req.params.id, got: req.json() } }),
        },
      ],
    });
    const post = (body: string) => fetch(`${base}/echo/s%201`, { method: 'POST', body });

    const ok = await post(JSON.stringify({ speed: 42 }));
    expect(ok.status).toBe(201);
    expect(await ok.json()).toEqual({ id: 's 1', got: { speed: 42 } });

    const invalid = await post('{"speed":');
    expect(invalid.status).toBe(400);
    expect((await invalid.json()).error).toBe('request body is not valid JSON');

    const tooLarge = await post(JSON.stringify({ pad: 'x'.repeat(2000) }));
    expect(tooLarge.status).toBe(413);
  });

  it('answers unknown routes with JSON 404, including routes added after listening', async () => {
    const { server, base } = await start();
    const missing = await fetch(`${base}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: 'not found', path: '/nope' });

    server.get('/late', () => ({ json: { late: true } }));
    expect(await (await fetch(`${base}/late`)).json()).toEqual({ late: true });
  });

  it('turns handler failures into 500 / HttpError status and keeps serving', async () => {
    const { base } = await start({
      routes: [
        { method: 'get', path: '/boom', handler: async () => Promise.reject(new Error('kaboom')) },
        { method: 'get', path: '/sync-boom', handler: () => { throw new Error('kaboom'); } },
        { method: 'get', path: '/teapot', handler: () => { throw new HttpError(418, 'short and stout'); } },
      ],
    });
    const boom = await fetch(`${base}/boom`);
    expect(boom.status).toBe(500);
    expect(await boom.json()).toEqual({ error: 'internal server error' });
    expect((await fetch(`${base}/sync-boom`)).status).toBe(500);
    const teapot = await fetch(`${base}/teapot`);
    expect(teapot.status).toBe(418);
    expect(await teapot.json()).toEqual({ error: 'short and stout' });
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('rejects with a clear error when the port is taken', async () => {
    const blocker = await listenWithNet(0);
    const port = (blocker.address() as { port: number }).port;
    try {
      await expect(start({ port })).rejects.toThrow(`cannot listen on 127.0.0.1:${port}: the port is already in use`);
    } finally {
      blocker.close();
    }
    // A second ringcast must not silently share the port via SO_REUSEPORT either.
    const { server } = await start();
    await expect(start({ port: server.port })).rejects.toThrow('already in use');
  });

  it('close() frees the port and ends open websockets', async () => {
    const { server } = await start();
    server.ws('/live', { open: (ws) => void ws.send('hello') });
    const client = new WebSocket(`ws://127.0.0.1:${server.port}/live`);
    await new Promise((resolve) => client.once('message', resolve));
    const closed = new Promise<number>((resolve) => client.once('close', (code) => resolve(code)));

    await server.close();
    expect(await closed).toBe(1001);
    const reuse = await listenWithNet(server.port);
    reuse.close();
  });
});

describe('loadUws', () => {
  const requireHere = createRequire(import.meta.url);
  // The package's own pure-JS fallback, i.e. what it silently loads when the addon fails.
  const fallback = () => requireHere('uWebSockets.js/dist/index.js') as UwsModule;

  it('refuses the JS fallback unless RINGCAST_ALLOW_UWS_FALLBACK=1', () => {
    expect(() => loadUws({ env: {}, load: fallback })).toThrow(/fell back to its JavaScript implementation/);
  });

  it('allows the fallback when told to and reports it in ringcast_uws_native', async () => {
    const registry = new Registry();
    const loaded = loadUws({ env: { RINGCAST_ALLOW_UWS_FALLBACK: '1' }, load: fallback, registry });
    expect(loaded.native).toBe(false);
    expect(await registry.metrics()).toContain('ringcast_uws_native 0');
  });

  it('reports the native addon as native', async () => {
    const registry = new Registry();
    expect(loadUws({ env: {}, registry }).native).toBe(true);
    expect(await registry.metrics()).toContain('ringcast_uws_native 1');
  });
});
