import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { concatFrame, decodeEvent, encodeEvent, encodeMetrics, EventKind, type ControlEvent } from '../src/shared/telemetry/event-codec.js';
import { readIngestRecord } from '../src/shared/telemetry/ring-records.js';
import type { ForwardedRequest } from '../src/shared/http-router.js';
import { INGEST_TOKEN, startGateways, TestClient, until, type GatewayCluster } from './fixtures/gateway-harness.js';

let gw: GatewayCluster;
beforeAll(async () => { gw = await startGateways(); });
afterAll(async () => { await gw?.stop(); });

interface Landed { run: string; producerId: number; bytes: Buffer; gateway: number }
const landed: Landed[] = [];
function drainIngest(): void {
  for (let i = 0; i < gw.count; i++) {
    gw.ingest(i).poll((data, offset, length) => {
      const rec = readIngestRecord(data, offset, length);
      landed.push({ run: rec.run, producerId: rec.producerId, bytes: Buffer.from(data.subarray(rec.eventOffset, rec.eventOffset + rec.eventLength)), gateway: i });
    });
  }
}
async function landedCount(n: number): Promise<Landed[]> {
  await until(() => { drainIngest(); return landed.length >= n; }, 3_000, `${n} events in the ingest rings`);
  return landed.splice(0);
}
const control = (r: { binary?: Buffer }) => decodeEvent(new Uint8Array(r.binary!)) as ControlEvent;

function rejectedStatus(url: string, headers?: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); res.resume(); ws.terminate(); });
    ws.on('open', () => { ws.close(); reject(new Error('upgrade unexpectedly accepted')); });
    ws.on('error', () => { /* reported through unexpected-response */ });
  });
}

describe('gateway /ingest WebSocket', () => {
  it('refuses a wrong token with 401 before upgrading', async () => {
    expect(await rejectedStatus(`ws://127.0.0.1:${gw.port}/ingest?token=wrong-token-1`)).toBe(401);
    expect(await rejectedStatus(`ws://127.0.0.1:${gw.port}/ingest`, { authorization: 'Bearer nope-nope-nope' })).toBe(401);
    expect(await rejectedStatus(`ws://127.0.0.1:${gw.port}/ingest?run=${encodeURIComponent('bad run!')}`, { authorization: `Bearer ${INGEST_TOKEN}` })).toBe(400);
  });

  it('lands good frames byte-for-byte in its ingest ring; bad events get Error replies and the connection stays up', async () => {
    const c = await TestClient.connect(`ws://127.0.0.1:${gw.port}/ingest?run=run-7`, { headers: { authorization: `Bearer ${INGEST_TOKEN}` } });
    const a = encodeMetrics(1, { loss: 0.5 });
    const b = encodeMetrics(2, { loss: 0.25, kl: 0.01 });
    c.ws.send(concatFrame([a, b]));
    const got = await landedCount(2);
    expect(got.map((l) => l.bytes)).toEqual([Buffer.from(a), Buffer.from(b)]);
    expect(got.every((l) => l.run === 'run-7')).toBe(true);
    expect(got[0].producerId >>> 24).toBe(got[0].gateway + 1); // producer ids carry the gateway number

    // A bad event next to a good one: the good one still lands, the producer hears why.
    const bad = encodeEvent(EventKind.Metrics, undefined, new Uint8Array(3));
    const good = encodeMetrics(3, { loss: 0.2 });
    c.ws.send(concatFrame([bad, good]));
    const err = control(await c.next((r) => r.binary !== undefined, 3_000, 'an Error reply'));
    expect(err.kind).toBe(EventKind.Error);
    expect(String(err.meta.error)).toMatch(/metrics/);
    expect((await landedCount(1))[0].bytes).toEqual(Buffer.from(good));

    c.ws.send('hello as text');
    const textErr = control(await c.next((r) => r.binary !== undefined, 3_000, 'an Error reply to text'));
    expect(String(textErr.meta.error)).toMatch(/text messages are not accepted/);

    c.ws.send(Buffer.from('garbage, not an event'));
    expect(String(control(await c.next((r) => r.binary !== undefined)).meta.error)).toMatch(/bad magic/);

    // Still up and accepting.
    const last = encodeMetrics(4, { loss: 0.1 });
    c.ws.send(last);
    expect((await landedCount(1))[0].bytes).toEqual(Buffer.from(last));
    expect(c.closeCode).toBeUndefined();
    c.close();
  });

  it('authenticates with a hello event when no token came with the upgrade; without one it closes with 1008', async () => {
    const c = await TestClient.connect(`ws://127.0.0.1:${gw.port}/ingest`);
    const ev = encodeMetrics(10, { loss: 1 });
    c.ws.send(concatFrame([encodeEvent(EventKind.Hello, { token: INGEST_TOKEN, run: 'hello-run' }), ev]));
    const ack = control(await c.next((r) => r.binary !== undefined));
    expect(ack.kind).toBe(EventKind.Ack);
    const got = await landedCount(1);
    expect(got[0].run).toBe('hello-run');
    expect(got[0].bytes).toEqual(Buffer.from(ev));
    c.close();

    const anon = await TestClient.connect(`ws://127.0.0.1:${gw.port}/ingest`);
    anon.ws.send(encodeMetrics(11, { loss: 1 }));
    const closed = await anon.closed;
    expect(closed.code).toBe(1008);
    drainIngest();
    expect(landed.splice(0)).toEqual([]);
  });
});

describe('gateway POST /api/ingest', () => {
  const url = () => `http://127.0.0.1:${gw.port}/api/ingest`;
  const auth = { authorization: `Bearer ${INGEST_TOKEN}` };

  it('accepts a binary frame and a JSON batch', async () => {
    const frame = concatFrame([encodeMetrics(1, { a: 1 }), encodeMetrics(2, { a: 2 })]);
    const res = await fetch(`${url()}?run=http-run`, { method: 'POST', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: frame });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ accepted: 2, rejected: 0, errors: [] });
    const got = await landedCount(2);
    expect(Buffer.concat(got.map((l) => l.bytes))).toEqual(Buffer.from(frame));
    expect(got[0].run).toBe('http-run');

    const json = await fetch(url(), { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ events: [{ kind: 'metrics', step: 5, metrics: { loss: 0.3 } }, { kind: 'bogus' }] }) });
    expect(json.status).toBe(200);
    const body = (await json.json()) as any;
    expect(body.accepted).toBe(1);
    expect(body.rejected).toBe(1);
    expect(body.errors[0].error).toMatch(/unknown event kind "bogus"/);
    await landedCount(1);
  });

  it('answers 401 for a bad token, 400 when nothing was accepted, 413 when too large', async () => {
    const frame = encodeMetrics(1, { a: 1 });
    expect((await fetch(url(), { method: 'POST', headers: { authorization: 'Bearer wrong-wrong' }, body: frame })).status).toBe(401);
    expect((await fetch(url(), { method: 'POST', body: frame })).status).toBe(401);
    const bad = await fetch(url(), { method: 'POST', headers: auth, body: Buffer.from('not an event at all') });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).errors[0].error).toMatch(/bad magic/);
    const badJson = await fetch(url(), { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{oops' });
    expect(badJson.status).toBe(400);
    const big = await fetch(url(), { method: 'POST', headers: auth, body: new Uint8Array(128 * 1024) });
    expect(big.status).toBe(413);
    drainIngest();
    expect(landed.splice(0)).toEqual([]);
  });
});

describe('gateway HTTP forwarding', () => {
  it('forwards any other request to the main thread and relays its reply', async () => {
    const seen: ForwardedRequest[] = [];
    gw.supervisor.provide('http', (req: ForwardedRequest) => {
      seen.push(req);
      return { status: 201, headers: { 'x-handled-by': 'main', 'content-type': 'application/json' }, body: JSON.stringify({ path: req.path, bodyLength: req.body.byteLength }) };
    });
    const res = await fetch(`http://127.0.0.1:${gw.port}/api/things/42?x=1&y=two`, { method: 'PUT', headers: { 'x-custom': 'yes', 'content-type': 'text/plain' }, body: 'hello body' });
    expect(res.status).toBe(201);
    expect(res.headers.get('x-handled-by')).toBe('main');
    expect(await res.json()).toEqual({ path: '/api/things/42', bodyLength: 10 });
    expect(seen[0]).toMatchObject({ method: 'PUT', path: '/api/things/42', query: 'x=1&y=two' });
    expect(seen[0].headers['x-custom']).toBe('yes');
    expect(Buffer.from(seen[0].body).toString()).toBe('hello body');

    const get = await fetch(`http://127.0.0.1:${gw.port}/healthz`);
    expect(get.status).toBe(201);
    expect(seen[1].method).toBe('GET');
  });

  it('answers 502 when the main thread fails, and 413 past 1 MiB', async () => {
    gw.supervisor.provide('http', () => { throw new Error('router exploded'); });
    const res = await fetch(`http://127.0.0.1:${gw.port}/anything`);
    expect(res.status).toBe(502);
    expect(((await res.json()) as any).details).toMatch(/router exploded/);
    const big = await fetch(`http://127.0.0.1:${gw.port}/upload`, { method: 'POST', body: new Uint8Array(1024 * 1024 + 1) });
    expect(big.status).toBe(413);
  });
});
