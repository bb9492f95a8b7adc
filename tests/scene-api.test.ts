/**
 * Scene control API: REST on the main-thread router, the `/scene` WebSocket on a gateway,
 * persistence in the state store, and the whole thing through the real service.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHash, timingSafeEqual } from 'node:crypto';
import { Registry } from 'prom-client';
import WebSocket from 'ws';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HttpError, loadUws } from '../src/shared/http-server.js';
import { UwsRoutes } from '../src/shared/uws-routes.js';
import { HttpRouter, bearerToken, type ForwardedReply } from '../src/shared/http-router.js';
import { RecordRing } from '../src/shared/record-ring.js';
import { SqliteStateStore, type StateStore } from '../src/shared/state-store.js';
import { encodeFanoutRecord, readFanoutRecord, FanoutType, FanoutFlag } from '../src/shared/telemetry/ring-records.js';
import { ControlRings } from '../src/services/control-rings.js';
import { CHANNELS } from '../src/shared/telemetry/channels.js';
import { loadConfig } from '../src/shared/config.js';
import { startService } from '../src/service.js';
import { registerSceneService, type SceneService, type SceneSupervisor } from '../src/services/scene/service.js';
import { registerSceneEndpoint, type SceneEndpoint } from '../src/actors/gateway/scene-endpoint.js';
import { UwsHandles } from '../src/actors/gateway/uws-lifecycle.js';
import type { Scene } from '../src/shared/scene/model.js';
import { capturingLogger } from './helpers/supervisor-harness.js';
import { ADMIN_TOKEN, startHarness, type Harness } from './helpers/service-harness.js';

const W = 640;
const H = 360;
const FPS = 30;
const TEXT_LAYER = { id: 'caption', type: 'text', width: 400, height: 60, transform: { x: 20, y: 280 }, props: { text: 'hello' } };

function requireAdminFor(token: string) {
  const expected = createHash('sha256').update(token).digest();
  return (headers: Record<string, string>, query: URLSearchParams) => {
    const candidate = bearerToken(headers, query);
    if (!candidate || !timingSafeEqual(createHash('sha256').update(candidate).digest(), expected)) throw new HttpError(401, 'admin token required');
  };
}

/** An announcement as it left through a control ring (decoded from its fan-out record). */
interface Announced { type: string; channel: string; key: string; retain: boolean; data: unknown }

/** Stands in for the Supervisor: records upcall services, compositor pushes and a control ring. */
class FakeSupervisor implements SceneSupervisor {
  readonly services = new Map<string, (...args: never[]) => unknown>();
  readonly pushed: Scene[] = [];
  readonly registry = new Registry();
  readonly controlRing = RecordRing.create({ capacityBytes: 1 << 20 });
  readonly controls = new ControlRings({ 'control.test': this.controlRing }, this.registry);
  failPush = false;
  provide(method: string, handler: (...args: never[]) => unknown) { this.services.set(method, handler); return this; }
  actorNames() { return ['aggregator', 'compositor']; }
  async call(actor: string, method: string, args: unknown[] = []) {
    if (actor !== 'compositor' || method !== 'setScene') throw new Error(`unexpected call ${actor}.${method}`);
    if (this.failPush) throw new Error('compositor is restarting');
    this.pushed.push(args[0] as Scene);
    return true;
  }
  /** Fan-out records written into the control ring since the last call. */
  records(): Uint8Array[] {
    const out: Uint8Array[] = [];
    this.controlRing.poll((data, offset, length) => { out.push(data.slice(offset, offset + length)); });
    return out;
  }
  /** Announcements written since the last call. */
  relays(): Announced[] {
    return this.records().map((record) => {
      const rec = readFanoutRecord(record, 0, record.byteLength);
      const message = JSON.parse(new TextDecoder().decode(record.subarray(rec.bodyOffset, rec.bodyOffset + rec.bodyLength))) as { type: string; data: unknown };
      return { type: message.type, channel: CHANNELS[rec.channel], key: rec.key, retain: (rec.flags & FanoutFlag.Retain) !== 0, data: message.data };
    });
  }
}

interface Rig { router: HttpRouter; supervisor: FakeSupervisor; service: SceneService; store: StateStore }

function rig(store: StateStore): Rig {
  const { logger } = capturingLogger();
  const router = new HttpRouter(logger);
  const supervisor = new FakeSupervisor();
  const service = registerSceneService({ router, supervisor, store, requireAdmin: requireAdminFor(ADMIN_TOKEN), publish: (m) => supervisor.controls.publish(m), width: W, height: H, fps: FPS, log: logger });
  return { router, supervisor, service, store };
}

async function call(router: HttpRouter, method: string, url: string, opts: { body?: unknown; raw?: string; token?: string | null } = {}): Promise<{ status: number; json: any; reply: ForwardedReply }> {
  const [p, q = ''] = url.split('?');
  const headers: Record<string, string> = {};
  const token = opts.token === undefined ? ADMIN_TOKEN : opts.token;
  if (token) headers.authorization = `Bearer ${token}`;
  const text = opts.raw ?? (opts.body === undefined ? '' : JSON.stringify(opts.body));
  const reply = await router.dispatch({ method, path: p, query: q, headers, body: new TextEncoder().encode(text) });
  const isJson = (reply.headers['content-type'] ?? '').startsWith('application/json');
  return { status: reply.status, json: isJson ? JSON.parse(String(reply.body)) : undefined, reply };
}

function pngSize(bytes: Uint8Array): { width: number; height: number } {
  expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  expect(String.fromCharCode(...bytes.subarray(12, 16))).toBe('IHDR');
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

describe('scene service (main-thread router)', () => {
  let dir: string;
  let store: SqliteStateStore;
  let r: Rig;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ringcast-scene-'));
    store = new SqliteStateStore(path.join(dir, 'state.db'));
    r = rig(store);
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts from the training preset at the configured size (no placeholder layers); reads need no token', async () => {
    const res = await call(r.router, 'GET', '/api/scene', { token: null });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ width: W, height: H, fps: FPS, version: 0 });
    expect(res.json.layers.map((l: { id: string }) => l.id)).toEqual(['board', 'game', 'metrics', 'prediction', 'title', 'live', 'milestone']);
    expect((await call(r.router, 'GET', '/api/scene/layers/board', { token: null })).json).toMatchObject({ id: 'board', type: 'board' });
    expect(r.supervisor.services.has('scene.get') && r.supervisor.services.has('scene.command')).toBe(true);
  });

  it('adds, reads, updates, reorders and removes a layer; each change is saved, pushed and relayed', async () => {
    const added = await call(r.router, 'POST', '/api/scene/layers', { body: TEXT_LAYER });
    expect(added.status).toBe(201);
    expect(added.json.version).toBe(1);
    // Defaults filled by the model; a layer added without z goes on top.
    const layer = (await call(r.router, 'GET', '/api/scene/layers/caption')).json;
    expect(layer).toMatchObject({ id: 'caption', type: 'text', opacity: 1, visible: true, blend: 'normal', z: 71, transform: { x: 20, y: 280, scale: 1, rotation: 0, anchor: [0, 0] } });

    const patched = await call(r.router, 'PATCH', '/api/scene/layers/caption', { body: { opacity: 0.5, transform: { x: 40 }, props: { text: 'bye' } } });
    expect(patched.status).toBe(200);
    const after = patched.json.layers.find((l: { id: string }) => l.id === 'caption');
    expect(after).toMatchObject({ opacity: 0.5, transform: { x: 40, y: 280 }, props: { text: 'bye', align: 'left' } });
    expect(patched.json.version).toBe(2);

    const ids = ['caption', 'board', 'game', 'metrics', 'prediction', 'title', 'live', 'milestone'];
    const reordered = await call(r.router, 'POST', '/api/scene/reorder', { body: { ids } });
    expect(reordered.status).toBe(200);
    expect(reordered.json.layers.map((l: { id: string }) => l.id)).toEqual(ids);

    const removed = await call(r.router, 'DELETE', '/api/scene/layers/caption');
    expect(removed.status).toBe(200);
    expect(removed.json.version).toBe(4);
    expect((await call(r.router, 'GET', '/api/scene/layers/caption')).status).toBe(404);

    expect(store.get<Scene>('scene', 'current')).toEqual(removed.json);
    expect(r.supervisor.pushed.map((s) => s.version)).toEqual([1, 2, 3, 4]);
    const relays = r.supervisor.relays();
    expect(relays.map((e) => [e.type, e.channel, e.key, e.retain, (e.data as Scene).version])).toEqual([1, 2, 3, 4].map((v) => ['scene', 'control', 'scene', true, v]));
  });

  it('a compositor that cannot take the scene does not fail the edit', async () => {
    r.supervisor.failPush = true;
    const res = await call(r.router, 'POST', '/api/scene/layers', { body: TEXT_LAYER });
    expect(res.status).toBe(201);
    expect(r.service.current().version).toBe(1);
    expect(await r.supervisor.registry.getSingleMetricAsString('ringcast_scene_push_failures_total')).toMatch(/ringcast_scene_push_failures_total 1/);
  });

  it('a scene too big to announce is still saved and pushed; the missed announcement is counted', async () => {
    const big = { ...TEXT_LAYER, props: { text: 'x'.repeat(10_000) } };
    for (let i = 0; i < 7; i++) expect((await call(r.router, 'POST', '/api/scene/layers', { body: { ...big, id: `big${i}` } })).status).toBe(201);
    expect(store.get<Scene>('scene', 'current')?.version).toBe(7);
    expect(r.supervisor.pushed).toHaveLength(7);
    const announced = r.supervisor.relays().length;
    expect(announced).toBeLessThan(7); // an overlay message is capped at 64 KiB
    expect(await r.supervisor.registry.getSingleMetricAsString('ringcast_scene_relay_drops_total')).toContain(`ringcast_scene_relay_drops_total ${7 - announced}`);
  });

  it.each([
    ['missing type', 'POST', '/api/scene/layers', { id: 'x', width: 10, height: 10 }, 'layer.type'],
    ['unknown type', 'POST', '/api/scene/layers', { ...TEXT_LAYER, type: 'hologram' }, 'layer.type'],
    ['opacity above 1', 'POST', '/api/scene/layers', { ...TEXT_LAYER, opacity: 1.5 }, 'layer.opacity'],
    ['negative scale', 'POST', '/api/scene/layers', { ...TEXT_LAYER, transform: { scale: -1 } }, 'layer.transform.scale'],
    ['anchor outside the box', 'POST', '/api/scene/layers', { ...TEXT_LAYER, transform: { anchor: [0.5, 2] } }, 'layer.transform.anchor[1]'],
    ['text layer without text', 'POST', '/api/scene/layers', { ...TEXT_LAYER, props: {} }, 'layer.props.text'],
    ['duplicate id', 'POST', '/api/scene/layers', { ...TEXT_LAYER, id: 'board' }, 'layer.id'],
    ['bad opacity in a patch', 'PATCH', '/api/scene/layers/board', { opacity: 'half' }, 'patch.opacity'],
    ['renaming in a patch', 'PATCH', '/api/scene/layers/board', { id: 'other' }, 'patch.id'],
    ['reorder with an unknown id', 'POST', '/api/scene/reorder', { ids: ['nope', 'board', 'game', 'metrics', 'prediction', 'title', 'live', 'milestone'] }, 'ids[0]'],
    ['reorder missing ids', 'POST', '/api/scene/reorder', { ids: ['board', 'metrics'] }, 'ids'],
    ['reorder without ids', 'POST', '/api/scene/reorder', {}, 'ids'],
    ['scene with a bad layer', 'PUT', '/api/scene', { layers: [TEXT_LAYER, { id: 'b', width: 1, height: 1 }] }, 'layers[1].type'],
    ['scene at another size', 'PUT', '/api/scene', { width: 1920, layers: [] }, 'width'],
  ])('%s → 400 (%s %s)', async (_name, method, url, body, field) => {
    const before = r.service.current();
    const res = await call(r.router, method, url, { body });
    expect(res.status).toBe(400);
    expect(res.json.details.path).toBe(field);
    expect(res.json.error).toContain(field);
    expect(r.service.current()).toBe(before);
    expect(r.supervisor.pushed).toHaveLength(0);
  });

  it('a body that is not JSON is a 400, an unknown layer a 404', async () => {
    expect((await call(r.router, 'POST', '/api/scene/layers', { raw: '{"id":' })).status).toBe(400);
    expect((await call(r.router, 'PATCH', '/api/scene/layers/ghost', { body: { opacity: 0.1 } })).status).toBe(404);
    expect((await call(r.router, 'DELETE', '/api/scene/layers/ghost')).status).toBe(404);
    expect((await call(r.router, 'GET', '/api/scene/layers/ghost')).status).toBe(404);
  });

  it.each([
    ['POST', '/api/scene/layers', TEXT_LAYER],
    ['PATCH', '/api/scene/layers/board', { opacity: 0.2 }],
    ['DELETE', '/api/scene/layers/board', undefined],
    ['POST', '/api/scene/reorder', { ids: [] }],
    ['PUT', '/api/scene', { layers: [] }],
  ])('%s %s needs the admin token (401 without, 401 wrong)', async (method, url, body) => {
    expect((await call(r.router, method, url, { body, token: null })).status).toBe(401);
    expect((await call(r.router, method, url, { body, token: 'wrong-token' })).status).toBe(401);
    expect(r.service.current().version).toBe(0);
  });

  it('PUT replaces the whole scene; a new service on the same store restores it', async () => {
    const res = await call(r.router, 'PUT', '/api/scene', { body: { background: '#222222', layers: [TEXT_LAYER, { id: 'img', type: 'host', width: 100, height: 100, z: -1 }] } });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ width: W, height: H, fps: FPS, background: '#222222', version: 1 });
    expect(res.json.layers.map((l: { id: string }) => l.id)).toEqual(['img', 'caption']); // sorted by z
    const again = rig(store);
    expect((await call(again.router, 'GET', '/api/scene')).json).toEqual(res.json);
  });

  it('renders a preview PNG of the current scene, scaled by ?width=', async () => {
    const full = await call(r.router, 'GET', '/api/scene/preview.png?frame=30');
    expect(full.status).toBe(200);
    expect(full.reply.headers['content-type']).toBe('image/png');
    expect(pngSize(full.reply.body as Uint8Array)).toEqual({ width: W, height: H });
    const small = await call(r.router, 'GET', '/api/scene/preview.png?width=160', { token: null });
    expect(pngSize(small.reply.body as Uint8Array)).toEqual({ width: 160, height: 90 });
    expect((await call(r.router, 'GET', '/api/scene/preview.png?width=5000')).status).toBe(400);
    expect((await call(r.router, 'GET', '/api/scene/preview.png?frame=-1')).status).toBe(400);
  });

  it('answers WebSocket commands through the scene.command upcall', async () => {
    const command = r.supervisor.services.get('scene.command') as unknown as (cmd: unknown, token?: string) => Promise<Record<string, unknown>>;
    expect(await command({ id: 1, op: 'add', layer: TEXT_LAYER }, ADMIN_TOKEN)).toEqual({ type: 'scene_ack', id: 1, ok: true, scene_version: 1 });
    expect(await command({ id: 2, op: 'update', layer_id: 'caption', patch: { visible: false } }, ADMIN_TOKEN)).toEqual({ type: 'scene_ack', id: 2, ok: true, scene_version: 2 });
    expect(r.service.current().layers.find((l) => l.id === 'caption')?.visible).toBe(false);
    expect(await command({ id: 3, op: 'remove', layer_id: 'caption' })).toMatchObject({ id: 3, ok: false, status: 401 });
    expect(await command({ id: 4, op: 'explode' }, ADMIN_TOKEN)).toMatchObject({ id: 4, ok: false, path: 'op' });
    expect(await command({ id: 5, op: 'update', layer_id: 'ghost', patch: {} }, ADMIN_TOKEN)).toMatchObject({ id: 5, ok: false, status: 404 });
    const got = await command({ id: 6, op: 'get' });
    expect(got).toMatchObject({ id: 6, ok: true, scene_version: 2 });
    expect((got.scene as Scene).layers).toHaveLength(8);
  });
});

// ------------------------------------------------------------------ /scene on a uWS app

class WsClient {
  readonly messages: Array<Record<string, any>> = [];
  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => this.messages.push(JSON.parse(String(data))));
  }
  static open(url: string, headers: Record<string, string> = {}): Promise<WsClient> {
    const ws = new WebSocket(url, { headers });
    const client = new WsClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
      ws.once('error', reject);
    });
  }
  async next(match: (m: Record<string, any>) => boolean, timeoutMs = 3_000): Promise<Record<string, any>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.messages.findIndex(match);
      if (i >= 0) return this.messages.splice(i, 1)[0];
      if (Date.now() > deadline) throw new Error(`timed out; got ${JSON.stringify(this.messages).slice(0, 400)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  send(value: unknown): void { this.ws.send(typeof value === 'string' ? value : JSON.stringify(value)); }
  close(): void { this.ws.terminate(); }
}

const ack = (id: unknown) => (m: Record<string, any>) => m.type === 'scene_ack' && m.id === id;

describe('/scene WebSocket endpoint (uWS in process)', () => {
  let dir: string;
  let store: SqliteStateStore;
  let r: Rig;
  let handles: UwsHandles;
  let endpoint: SceneEndpoint;
  let url: string;
  const clients: WsClient[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ringcast-scene-ws-'));
    store = new SqliteStateStore(path.join(dir, 'state.db'));
    r = rig(store);
    const { uws } = loadUws();
    const app = uws.App();
    handles = new UwsHandles(uws, app);
    const services = r.supervisor.services;
    const callMain = async <T,>(method: string, ...args: unknown[]): Promise<T> => (services.get(method) as unknown as (...a: unknown[]) => unknown)(...args) as T;
    const { logger } = capturingLogger();
    endpoint = registerSceneEndpoint({ app, routes: new UwsRoutes(app), handles, callMain, adminToken: ADMIN_TOKEN, registry: new Registry(), log: logger });
    const socket = await new Promise<unknown>((resolve) => app.listen('127.0.0.1', 0, resolve));
    handles.setListenSocket(socket as never);
    url = `ws://127.0.0.1:${uws.us_socket_local_port(socket as never)}/scene`;
  });
  afterEach(() => { while (clients.length) clients.pop()!.close(); });
  afterAll(async () => {
    handles.closeAll();
    await new Promise((res) => setTimeout(res, 20));
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const connect = async (auth: 'header' | 'query' = 'header') => {
    const c = await WsClient.open(auth === 'query' ? `${url}?token=${ADMIN_TOKEN}` : url, auth === 'header' ? { authorization: `Bearer ${ADMIN_TOKEN}` } : {});
    clients.push(c);
    return c;
  };

  /** What the gateway's record loop does with the control ring's records. */
  const fanOutRelays = () => {
    for (const record of r.supervisor.records()) expect(endpoint.onRecord(record, 0, record.byteLength)).toBe(true);
  };

  it('refuses an upgrade without the admin token, or with a wrong one', async () => {
    await expect(WsClient.open(url)).rejects.toMatchObject({ status: 401 });
    await expect(WsClient.open(`${url}?token=nope`)).rejects.toMatchObject({ status: 401 });
  });

  it('sends the current scene on connect, acks commands, and survives bad ones', async () => {
    const c = await connect('query');
    const first = await c.next((m) => m.type === 'scene');
    expect(first.data.version).toBe(r.service.current().version);
    c.send({ id: 'a1', op: 'add', layer: TEXT_LAYER });
    expect(await c.next(ack('a1'))).toEqual({ type: 'scene_ack', id: 'a1', ok: true, scene_version: 1 });
    c.send('{not json');
    expect(await c.next(ack(null))).toMatchObject({ ok: false, error: expect.stringContaining('not valid JSON') });
    c.send({ id: 'x', op: 'teleport' });
    expect(await c.next(ack('x'))).toMatchObject({ ok: false, path: 'op', error: expect.stringContaining('unknown op') });
    c.send({ id: 'bad', op: 'add', layer: { ...TEXT_LAYER, id: 'c2', opacity: 3 } });
    expect(await c.next(ack('bad'))).toMatchObject({ ok: false, path: 'layer.opacity' });
    c.send({ id: 'u1', op: 'update', layer_id: 'caption', patch: { opacity: 0.25 } });
    expect(await c.next(ack('u1'))).toEqual({ type: 'scene_ack', id: 'u1', ok: true, scene_version: 2 });
    expect(r.service.current().layers.find((l) => l.id === 'caption')?.opacity).toBe(0.25);
  });

  it('publishes scene changes to every /scene client, and ignores other fan-out records', async () => {
    const a = await connect();
    const b = await connect();
    await a.next((m) => m.type === 'scene');
    await b.next((m) => m.type === 'scene');
    r.supervisor.relays(); // drop what earlier tests left
    a.send({ id: 'r1', op: 'remove', layer_id: 'caption' });
    const version = (await a.next(ack('r1'))).scene_version;
    fanOutRelays();
    const seen = await b.next((m) => m.type === 'scene');
    expect(seen.data.version).toBe(version);
    expect(seen.data.layers.some((l: { id: string }) => l.id === 'caption')).toBe(false);
    expect((await a.next((m) => m.type === 'scene')).data.version).toBe(version);
    const other = encodeFanoutRecord({ type: FanoutType.Update, channel: CHANNELS.indexOf('control'), levelMask: 7, flags: 0, key: 'control', stamp: 0, body: new TextEncoder().encode('{}') });
    expect(endpoint.onRecord(other, 0, other.byteLength)).toBe(false);
  });
});

// ------------------------------------------------------------------ the real service

describe('through the service (gateway thread → main thread)', () => {
  let h: Harness;
  let base: string;
  beforeAll(async () => {
    h = await startHarness(['--fanout-threads', '1', '--compose-width', String(W), '--compose-height', String(H)]);
    base = `http://127.0.0.1:${h.service.port}`;
  });
  afterAll(async () => { await h?.close(); });

  const http = (method: string, p: string, body?: unknown, token: string | null = ADMIN_TOKEN) =>
    fetch(base + p, { method, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });

  it('CRUD over HTTP with the admin token; 401 without; 400 names the field', async () => {
    expect((await http('POST', '/api/scene/layers', TEXT_LAYER, null)).status).toBe(401);
    const added = await http('POST', '/api/scene/layers', TEXT_LAYER);
    expect(added.status).toBe(201);
    const bad = await http('PATCH', '/api/scene/layers/caption', { transform: { rotation: 'left' } });
    expect(bad.status).toBe(400);
    expect((await bad.json()).details.path).toBe('patch.transform.rotation');
    expect((await http('PATCH', '/api/scene/layers/caption', { z: 5 })).status).toBe(200);
    const layer = await (await http('GET', '/api/scene/layers/caption', undefined, null)).json();
    expect(layer.z).toBe(5);
    const png = new Uint8Array(await (await http('GET', '/api/scene/preview.png?width=320', undefined, null)).arrayBuffer());
    expect(pngSize(png)).toEqual({ width: 320, height: 180 });
  });

  it('/scene over the gateway: token required, commands acked, changes reach the other clients', async () => {
    const wsUrl = `ws://127.0.0.1:${h.service.port}/scene`;
    await expect(WsClient.open(wsUrl)).rejects.toMatchObject({ status: 401 });
    const a = await WsClient.open(wsUrl, { authorization: `Bearer ${ADMIN_TOKEN}` });
    const b = await WsClient.open(`${wsUrl}?token=${ADMIN_TOKEN}`);
    try {
      await a.next((m) => m.type === 'scene');
      await b.next((m) => m.type === 'scene');
      a.send({ id: 1, op: 'add', layer: { ...TEXT_LAYER, id: 'ws-layer' } });
      const v = (await a.next(ack(1))).scene_version;
      const seen = await b.next((m) => m.type === 'scene' && m.data.version === v, 5_000);
      expect(seen.data.layers.some((l: { id: string }) => l.id === 'ws-layer')).toBe(true);
      // A REST change reaches WebSocket clients the same way.
      const patched = await (await http('PATCH', '/api/scene/layers/ws-layer', { opacity: 0.5 })).json();
      expect((await b.next((m) => m.type === 'scene' && m.data.version === patched.version, 5_000)).data.layers.find((l: { id: string }) => l.id === 'ws-layer').opacity).toBe(0.5);
    } finally {
      a.close();
      b.close();
    }
  });
});

describe('persistence across a restart', () => {
  it('GET /api/scene returns the same scene after stop and start on the same data dir', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'ringcast-scene-restart-'));
    const start = async () => {
      const config = loadConfig(['--no-demo', '--port', '0', '--data-dir', dataDir, '--ingest-tcp-port', '0', '--fanout-threads', '1', '--log-level', 'warn',
        '--ingest-token', 'restart-ingest-token', '--admin-token', ADMIN_TOKEN, '--compose-width', String(W), '--compose-height', String(H)], {});
      return startService(config, capturingLogger().logger);
    };
    try {
      let service = await start();
      const base = () => `http://127.0.0.1:${service.port}`;
      const auth = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
      expect((await fetch(`${base()}/api/scene/layers`, { method: 'POST', headers: auth, body: JSON.stringify(TEXT_LAYER) })).status).toBe(201);
      expect((await fetch(`${base()}/api/scene/layers/board`, { method: 'DELETE', headers: auth })).status).toBe(200);
      const before = await (await fetch(`${base()}/api/scene`)).json();
      await service.stop('restart test');
      service = await start();
      try {
        const after = await (await fetch(`${base()}/api/scene`)).json();
        expect(after).toEqual(before);
        expect(after.version).toBe(2);
      } finally {
        await service.stop('test done');
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('scene presets and capture bindings (main-thread router)', () => {
  let dir: string;
  let store: SqliteStateStore;
  let streams: string[];
  const presetRig = (preset?: 'training' | 'multistream' | 'intermission'): Rig => {
    const { logger } = capturingLogger();
    const router = new HttpRouter(logger);
    const supervisor = new FakeSupervisor();
    const service = registerSceneService({
      router, supervisor, store, requireAdmin: requireAdminFor(ADMIN_TOKEN), publish: (m) => supervisor.controls.publish(m), width: 1920, height: 1080, fps: FPS, log: logger,
      streams: () => streams, ...(preset ? { preset } : {}),
    });
    return { router, supervisor, service, store };
  };
  const bound = (scene: Scene) => scene.layers.filter((l) => l.type === 'video').map((l) => (l.props.source as { capture: string }).capture);
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ringcast-scene-'));
    store = new SqliteStateStore(path.join(dir, 'state.db'));
    streams = [];
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('PUT /api/scene/preset installs a preset for the registered streams (admin); an unknown name is a 400 naming the presets', async () => {
    streams = ['alpha', 'beta', 'gamma'];
    const r = presetRig();
    expect(bound(r.service.current())).toEqual(['alpha']); // the training tile
    expect((await call(r.router, 'PUT', '/api/scene/preset', { body: { name: 'multistream' }, token: null })).status).toBe(401);
    const bad = await call(r.router, 'PUT', '/api/scene/preset', { body: { name: 'party' } });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/unknown scene preset "party"; presets: training, multistream, intermission/);
    const ok = await call(r.router, 'PUT', '/api/scene/preset', { body: { name: 'multistream' } });
    expect(ok.status).toBe(200);
    expect(bound(ok.json)).toEqual(['alpha', 'beta', 'gamma']);
    expect(r.supervisor.pushed.at(-1)?.version).toBe(ok.json.version);
    expect((await call(r.router, 'GET', '/api/scene/presets', { token: null })).json).toEqual({ presets: ['training', 'multistream', 'intermission'], current: 'multistream' });
  });

  it('a video layer binds only to a registered stream: an unknown name is a 400 that names it', async () => {
    streams = ['alpha'];
    const r = presetRig();
    const tile = (name: string) => ({ id: 'extra', type: 'video', width: 320, height: 180, props: { source: { capture: name } } });
    const unknown = await call(r.router, 'POST', '/api/scene/layers', { body: tile('nobody') });
    expect(unknown.status).toBe(400);
    expect(unknown.json.error).toMatch(/no capture stream "nobody" is registered \(registered: "alpha"\)/);
    expect((await call(r.router, 'POST', '/api/scene/layers', { body: tile('alpha') })).status).toBe(201);
    const patch = await call(r.router, 'PATCH', '/api/scene/layers/extra', { body: { props: { source: { capture: 'ghost' } } } });
    expect(patch.status).toBe(400);
    const put = await call(r.router, 'PUT', '/api/scene', { body: { layers: [tile('ghost')] } });
    expect(put.status).toBe(400);
    expect(put.json.error).toMatch(/^layers\[0\]\.props\.source\.capture: no capture stream "ghost"/);
    // A malformed binding is the model's 400.
    expect((await call(r.router, 'POST', '/api/scene/layers', { body: { ...tile('x'), id: 'odd', props: { source: { capture: 5 } } } })).status).toBe(400);
  });

  it('an unedited preset follows the registered streams; an edited scene is left alone; --scene installs over a saved scene', async () => {
    const r = presetRig();
    expect(bound(r.service.current())).toEqual([]); // no stream yet: no tile at all (never an unbound one)
    streams = ['demo1'];
    r.service.streamsChanged();
    await Promise.resolve();
    expect(bound(r.service.current())).toEqual(['demo1']);
    expect(r.supervisor.pushed.length).toBe(1);
    expect((await call(r.router, 'PATCH', '/api/scene/layers/title', { body: { props: { text: 'my show' } } })).status).toBe(200);
    streams = ['demo1', 'demo2'];
    r.service.streamsChanged();
    expect(r.service.current().layers.find((l) => l.id === 'title')?.props.text).toBe('my show');
    // Restart with --scene intermission: the preset replaces what was saved.
    const again = presetRig('intermission');
    expect(again.service.current().layers.some((l) => l.id === 'headline')).toBe(true);
    expect(again.service.current().version).toBeGreaterThan(r.service.current().version);
  });
});
