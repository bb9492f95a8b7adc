/**
 * A standing fuzz test against the real service: seeded, bounded (about 30 s by default;
 * RINGCAST_FUZZ_SECONDS for longer, RINGCAST_FUZZ_SEED to replay a run). Each batch throws
 * hostile input at every door an unauthenticated (or wrongly authenticated) peer can reach:
 * mutated binary frames on TCP, Unix and WS ingest, random JSON and bytes to
 * POST /api/ingest and every REST route, random /ws subscriptions, partial and broken HTTP
 * requests, invalid UTF-8 and oversized bodies. After every batch:
 *   - no actor restarted (ringcast_actor_restarts_total unchanged),
 *   - no response was a 5xx,
 *   - /healthz answers 200,
 *   - a legitimate producer's step still reaches a /ws client.
 * Everything targets loopback; every loop is bounded in count and time.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { concatFrame, encodeEvent, encodeMetrics, EventKind, lengthPrefixed } from '../src/shared/telemetry/event-codec.js';
import { ADMIN_TOKEN, INGEST_TOKEN, OverlayClient, startHarness, type Harness } from './helpers/service-harness.js';
import { prng } from './fixtures/ring-common.js';

const SEED = Number(process.env.RINGCAST_FUZZ_SEED ?? 20261207);
const SECONDS = Number(process.env.RINGCAST_FUZZ_SECONDS ?? 30);
const RUN = 'fuzz-legit';

const rand = prng(SEED);
const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
const bytes = (n: number) => Uint8Array.from({ length: n }, () => int(256));

/** A valid event of some kind, to be mutated. */
function sampleEvent(): Uint8Array {
  switch (int(5)) {
    case 0: return encodeMetrics(int(1e6), { 'ppo/policy_loss': rand(), 'ppo/entropy': rand() * 3 }, RUN);
    case 1: return encodeEvent(EventKind.Milestone, { name: 'fuzz', run: RUN, message: 'm'.repeat(int(50)) });
    case 2: return encodeEvent(EventKind.Hello, { token: pick([INGEST_TOKEN, 'wrong-token', '', undefined]) as string | undefined });
    case 3: return encodeEvent(EventKind.GameState, { run: RUN, sfen: pick(['lnsgkgsnl/1r5b1/ppppppppp/9/9/9/PPPPPPPPP/1B5R1/LNSGKGSNL b - 1', 'garbage', '']), move_count: int(300) });
    default: return bytes(int(200));
  }
}

/** Flips, truncates, extends or splices an event's bytes. */
function mutate(input: Uint8Array): Uint8Array {
  const out = Uint8Array.from(input);
  switch (int(6)) {
    case 0: for (let i = 0; i < 1 + int(8); i++) if (out.length) out[int(out.length)] ^= 1 << int(8); return out;
    case 1: return out.subarray(0, int(out.length + 1));
    case 2: return concatFrame([out, bytes(int(64))]);
    case 3: { if (out.length >= 8) new DataView(out.buffer).setUint32(int(out.length - 4), int(2 ** 32), true); return out; }
    case 4: return concatFrame([out, sampleEvent(), mutate(sampleEvent())]);
    default: return out;
  }
}

/** A stream of length-prefixed frames, some with lying lengths. */
function streamPayload(): Uint8Array {
  const parts: Uint8Array[] = [];
  if (rand() < 0.5) parts.push(lengthPrefixed(encodeEvent(EventKind.Hello, { token: pick([INGEST_TOKEN, 'nope-nope-nope']) })));
  for (let i = 0; i < 1 + int(5); i++) {
    const frame = mutate(concatFrame([sampleEvent(), sampleEvent()]));
    if (rand() < 0.15) {
      const lie = new Uint8Array(4);
      new DataView(lie.buffer).setUint32(0, pick([0, 1, 0xffffffff, 16 * 1024 * 1024 + 1, frame.length + 100]), true);
      parts.push(lie, frame);
    } else {
      parts.push(lengthPrefixed(frame));
    }
  }
  return concatFrame(parts);
}

function randomJson(depth = 0): unknown {
  switch (int(depth > 2 ? 5 : 8)) {
    case 0: return null;
    case 1: return rand() < 0.5;
    case 2: return pick([0, -1, 1e308, -1e-308, 2 ** 53, 3.5, NaN]);
    case 3: return pick(['', 'x'.repeat(int(300)), 'y'.repeat(70_000), '../../etc/passwd', 'bad run\n<script>', '\u0000', '\ud800', '%00', 'all', 'beginner']);
    case 4: return pick(['name', 'run', 'channels', 'level']);
    case 5: return Array.from({ length: int(5) }, () => randomJson(depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      const keys = ['name', 'run', 'message', 'value', 'channels', 'level', 'max_fps', 'url', 'priority', 'interval', 'quality', 'type', 'layers', 'id', 'order', 'paused', 'scene', 'preset', 'meta', 'delta', '__proto__', 'constructor'];
      for (let i = 0; i < int(6); i++) o[pick(keys)] = randomJson(depth + 1);
      // Often shaped like a real body (a milestone, a subscription), so validation gets past the first check.
      if (depth === 0 && rand() < 0.4) Object.assign(o, { name: pick(['m', '', 'x'.repeat(200)]), message: pick(['hi', 'z'.repeat(70_000), '']) });
      return o;
    }
  }
}

/** Every route with the method it answers (the fuzzer uses another method a third of the time). */
const ROUTES: ReadonlyArray<readonly [string, string]> = [
  ['GET', '/healthz'], ['GET', '/metrics'], ['GET', '/api/state'], ['GET', '/api/runs'], ['GET', '/api/snapshot'], ['GET', '/api/snapshot?level=nope'],
  ['POST', '/api/admin/milestone'], ['GET', '/api/admin/actors'], ['GET', '/api/control'], ['POST', '/api/control'], ['POST', '/api/ingest'],
  ['GET', '/api/streams'], ['POST', '/api/streams'], ['POST', '/api/streams/bulk'], ['GET', '/api/streams/x'], ['DELETE', '/api/streams/x'],
  ['GET', '/api/streams/%ZZ'], ['PUT', '/api/streams/x/priority'], ['GET', '/api/config'], ['PUT', '/api/config'], ['GET', '/api/status'],
  ['GET', '/api/frames/x/latest.jpg'], ['GET', '/api/frames/%2e%2e/latest.jpg'], ['POST', '/api/restart'], ['GET', '/api/scene'], ['PUT', '/api/scene'],
  ['POST', '/api/scene/layers'], ['GET', '/api/scene/layers/x'], ['PATCH', '/api/scene/layers/x'], ['DELETE', '/api/scene/layers/x'],
  ['POST', '/api/scene/reorder'], ['GET', '/api/scene/preview.png?width=99999'], ['GET', '/api/scene/preview.png?width=64'], ['GET', '/overlay/'],
  ['GET', '/overlay/nope'], ['GET', '/overlay/%ff'], ['GET', '/overlay/../package.json'], ['GET', '/overlay/board'], ['GET', '/nope'], ['GET', '/api/nope'],
];
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'];
/** Routes whose admin writes only touch local state (no network, no process), safe to fuzz with the admin token. */
const ADMIN_SAFE = new Set(['/api/admin/milestone', '/api/control', '/api/scene', '/api/scene/layers', '/api/scene/layers/x', '/api/scene/reorder', '/api/config', '/api/admin/actors']);

/** A query value: usually the encoded form of random JSON, sometimes bytes that are not UTF-8. */
function queryValue(): string {
  if (rand() < 0.2) return pick(['%ff%fe', '%', '%e2%82', '%00']);
  try {
    return encodeURIComponent(JSON.stringify(randomJson()) ?? '');
  } catch {
    return '%ed%a0%80'; // a lone surrogate, as UTF-8 bytes
  }
}

/** Inputs that once broke the service: every batch replays one, beside the random ones. */
const CORPUS: ReadonlyArray<{ method: string; path: string; admin?: boolean; body?: unknown }> = [
  { method: 'GET', path: '/overlay/' }, { method: 'GET', path: '/overlay/favicon.ico' }, { method: 'GET', path: '/overlay/board/' },
  { method: 'GET', path: '/overlay/nope' },
  { method: 'POST', path: '/api/admin/milestone', admin: true, body: { name: 'big', message: 'z'.repeat(70_000) } },
  { method: 'POST', path: '/api/admin/milestone', admin: true, body: { name: 'm', run: 'bad run\n<script>' } },
  { method: 'POST', path: '/api/admin/milestone', admin: true, body: { name: 'm', run: '../../etc' } },
  { method: 'POST', path: '/api/control', admin: true, body: { action: 'milestone', name: 'big', message: 'z'.repeat(70_000) } },
  { method: 'POST', path: '/api/control', admin: true, body: { action: 'milestone', name: 'm', run: '../../etc' } },
];

async function replayCorpus(port: number, tally: Tally, index: number): Promise<void> {
  const c = CORPUS[index % CORPUS.length];
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (c.admin) headers.authorization = `Bearer ${ADMIN_TOKEN}`;
  tally.requests++;
  const res = await fetch(`http://127.0.0.1:${port}${c.path}`, { method: c.method, headers, body: c.body === undefined ? undefined : JSON.stringify(c.body), signal: AbortSignal.timeout(5_000) })
    .catch((error: Error) => { throw new Error(`corpus ${c.method} ${c.path}: ${error.message} (${String((error.cause as Error | undefined)?.message ?? "")})`); });
  await res.arrayBuffer();
  tally.statuses[res.status] = (tally.statuses[res.status] ?? 0) + 1;
  if (res.status >= 500) tally.fiveXX.push(`corpus ${c.method} ${c.path} → ${res.status}`);
}

interface Tally { requests: number; fiveXX: string[]; statuses: Record<number, number> }

async function fuzzRest(port: number, tally: Tally): Promise<void> {
  const [ownMethod, path] = pick(ROUTES);
  const method = rand() < 0.67 ? ownMethod : pick(METHODS);
  const route = path + (rand() < 0.3 ? `${path.includes('?') ? '&' : '?'}token=${pick(['x', INGEST_TOKEN, ''])}&q=${queryValue()}` : '');
  const headers: Record<string, string> = { 'content-type': pick(['application/json', 'text/plain', 'application/octet-stream']) };
  // The admin token only on ADMIN_SAFE: elsewhere it could legitimately register streams that fetch from the network.
  const roll = rand();
  if (ADMIN_SAFE.has(path) && roll < 0.5) headers.authorization = `Bearer ${ADMIN_TOKEN}`;
  else if (roll < 0.75) headers.authorization = `Bearer ${pick(['wrong', INGEST_TOKEN, ''])}`;
  const hasBody = method !== 'GET' && method !== 'HEAD';
  const body = hasBody ? (rand() < 0.8 ? JSON.stringify(randomJson()) : Buffer.from(bytes(int(4096)))) : undefined;
  tally.requests++;
  try {
    const res = await fetch(`http://127.0.0.1:${port}${route}`, { method, headers, body, signal: AbortSignal.timeout(5_000) });
    await res.arrayBuffer();
    tally.statuses[res.status] = (tally.statuses[res.status] ?? 0) + 1;
    if (res.status >= 500 && !(res.status === 503 && route.startsWith('/healthz'))) tally.fiveXX.push(`${method} ${route} → ${res.status}`);
  } catch (error) {
    // A refused or reset connection is a valid answer to garbage; a hang is not.
    if ((error as Error).name === 'TimeoutError') tally.fiveXX.push(`${method} ${route} → no answer in 5 s`);
  }
}

/** Raw bytes on a socket, then close; used for ingest streams and broken HTTP. */
function rawSend(target: { port: number } | { path: string }, payload: Uint8Array | string, holdMs = 50): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(target as net.NetConnectOpts);
    const done = () => { socket.destroy(); resolve(); };
    socket.on('error', done);
    socket.on('connect', () => { socket.write(payload); setTimeout(done, holdMs); });
    setTimeout(done, 2_000);
  });
}

function brokenHttp(): string {
  return pick([
    'GET /overlay/nope HTTP/1.1\r\nHost: x\r\n',
    'GET / HTTP/1.1\r\n' + 'X-A: b\r\n'.repeat(500) + '\r\n',
    'POST /api/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\nabc',
    'GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n',
    'PUT /api/scene HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffff\r\n',
    'GARBAGE\r\n\r\n',
    `GET /api/state HTTP/1.1\r\nHost: ${'h'.repeat(10_000)}\r\n\r\n`,
  ]);
}

function wsFuzz(port: number, path: '/ws' | '/ingest'): Promise<void> {
  return new Promise((resolve) => {
    const headers = path === '/ingest' && rand() < 0.5 ? { authorization: `Bearer ${pick([INGEST_TOKEN, 'wrong'])}` } : undefined;
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers });
    const finish = () => { ws.terminate(); resolve(); };
    ws.on('error', finish);
    ws.on('unexpected-response', finish);
    ws.on('open', () => {
      for (let i = 0; i < 1 + int(6); i++) {
        if (path === '/ingest' || rand() < 0.2) ws.send(mutate(concatFrame([sampleEvent(), sampleEvent()])));
        else if (rand() < 0.15) ws.send(Buffer.from([0xff, 0xfe, 0x7b, 0x22]), { binary: false });
        else ws.send(JSON.stringify(randomJson()));
      }
      setTimeout(finish, 30);
    });
    setTimeout(finish, 2_000);
  });
}

async function restarts(h: Harness): Promise<number> {
  const text = await h.service.supervisor.metrics();
  let total = 0;
  for (const m of text.matchAll(/^ringcast_actor_restarts_total\{[^}]*\} (\d+)/gm)) total += Number(m[1]);
  return total;
}

let h: Harness;
let viewer: OverlayClient;
let legit: net.Socket;
let legitStep = 0;

beforeAll(async () => {
  h = await startHarness(['--twitch-gql-url', 'http://127.0.0.1:9/gql', '--twitch-usher-url', 'http://127.0.0.1:9/usher']);
  viewer = await OverlayClient.connect(h.service.port, { channels: ['metrics'], level: 'advanced', max_fps: 30 });
  legit = net.connect({ port: h.tcpPort, host: '127.0.0.1' });
  await new Promise<void>((resolve, reject) => { legit.once('connect', () => resolve()); legit.once('error', reject); });
  legit.on('data', () => undefined);
  legit.write(lengthPrefixed(encodeEvent(EventKind.Hello, { token: INGEST_TOKEN, client: 'fuzz-legit' })));
}, 60_000);

afterAll(async () => {
  viewer?.close();
  legit?.destroy();
  await h?.close();
}, 30_000);

describe(`fuzz (seed ${SEED}, ${SECONDS} s)`, () => {
  it('survives hostile input on every door: no restart, no 5xx, healthy, and legitimate data still flows', async () => {
    const restartsBefore = await restarts(h);
    const tally: Tally = { requests: 0, fiveXX: [], statuses: {} };
    const deadline = Date.now() + SECONDS * 1000;
    let batch = 0;
    while (Date.now() < deadline) {
      batch++;
      const work: Promise<void>[] = [];
      for (let i = 0; i < 12; i++) work.push(fuzzRest(h.service.port, tally));
      work.push(replayCorpus(h.service.port, tally, batch));
      for (let i = 0; i < 4; i++) work.push(rawSend({ port: h.tcpPort }, streamPayload()));
      for (let i = 0; i < 2; i++) work.push(rawSend({ path: h.unixPath }, streamPayload()));
      for (let i = 0; i < 3; i++) work.push(rawSend({ port: h.service.port }, brokenHttp()));
      for (let i = 0; i < 3; i++) work.push(wsFuzz(h.service.port, '/ws'));
      for (let i = 0; i < 3; i++) work.push(wsFuzz(h.service.port, '/ingest'));
      await Promise.all(work);

      const context = `seed ${SEED}, batch ${batch}`;
      if (process.env.RINGCAST_FUZZ_VERBOSE) console.log(context, tally.statuses);
      expect(tally.fiveXX, context).toEqual([]);
      expect(await restarts(h), `${context}: an actor restarted`).toBe(restartsBefore);
      const health = await fetch(`http://127.0.0.1:${h.service.port}/healthz`);
      expect(health.status, context).toBe(200);
      legitStep++;
      legit.write(lengthPrefixed(encodeMetrics(legitStep, { 'ppo/policy_loss': 0.5 }, RUN)));
      const step = legitStep;
      await viewer.waitFor((m) => m.type === 'ppo_metrics' && m.data?.run === RUN && m.data?.step === step, 5_000, `${context}: legit step ${step}`);
      viewer.messages.length = 0;
    }
    console.log(`fuzz seed ${SEED}: ${batch} batches, ${tally.requests} REST requests, statuses ${JSON.stringify(tally.statuses)}`);
    expect(batch).toBeGreaterThan(3);
    expect(tally.requests).toBeGreaterThan(50);
  }, (SECONDS + 60) * 1000);
});
