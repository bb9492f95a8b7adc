/**
 * The uWS request-lifetime wrapper (src/shared/uws-routes.ts): handlers see a copied request
 * head and an exchange that is safe after any await, after the client left, and when the
 * handler throws; and a scan of src/ that fails when any module but the wrapper registers a
 * uWS route or handles uWS's request/response objects.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import { loadUws } from '../src/shared/http-server.js';
import { UwsRoutes, type Exchange, type RequestHead } from '../src/shared/uws-routes.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WRAPPER = path.join('src', 'shared', 'uws-routes.ts');

/** Every way a module could reach uWS's request/response or register a route behind the wrapper's back. */
const FORBIDDEN: Array<{ rule: string; re: RegExp }> = [
  { rule: 'names uWS request/response types', re: /\b(HttpRequest|HttpResponse|us_socket_context_t)\b/ },
  { rule: 'registers a route on a uWS app', re: /\bapp\s*\??\.\s*(get|post|put|patch|del|options|head|any|connect|trace|ws)\s*[<(]/ },
  { rule: 'indexes a uWS app by method name', re: /\bapp\s*\[/ },
  {
    rule: 'calls a uWS request/response method',
    re: /(?<!\bthis)\.\s*(upgrade|onAborted|onData|onWritable|getRemoteAddress\w*|getProxiedRemoteAddress\w*|getUrl|getQuery|getMethod|getCaseSensitiveMethod|getHeader|getParameter|writeStatus|endWithoutBody|tryEnd)\s*\(/,
  },
];

/** The offending lines of one source text, as `line: rule`. */
function violations(text: string): string[] {
  const found: string[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const code = line.replace(/\/\/.*$/, '');
    if (/^\s*(\*|\/\*)/.test(code)) return; // comment lines
    for (const { rule, re } of FORBIDDEN) if (re.test(code)) found.push(`${i + 1}: ${rule}: ${line.trim()}`);
  });
  // An app under another name would slip past the route rule: every uWS app is called `app`.
  for (const m of text.matchAll(/\b(\w+)\s*=\s*[\w.]+\.(?:SSL)?App\(/g)) if (m[1] !== 'app') found.push(`uWS app assigned to "${m[1]}" (name it "app")`);
  return found;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...sourceFiles(full));
    else if (name.endsWith('.ts')) out.push(full);
  }
  return out;
}

describe('uWS routes are registered only through src/shared/uws-routes.ts', () => {
  it('the scan catches the patterns it is meant to catch', () => {
    // The static-file handler as it was: a promise callback reading the request after return.
    const before = [
      "import type { HttpResponse, HttpRequest, TemplatedApp } from 'uWebSockets.js';",
      'const serve = (res: HttpResponse, req: HttpRequest) => {',
      '  readFile(file).then(() => {}, () => reply(res, state, 404, {}, `no overlay file ${req.getUrl()}`));',
      '};',
      "app.get('/overlay/*', serve);",
      "this.app.ws<X>('/ws', {});",
      'const server = uws.App();',
    ].join('\n');
    const found = violations(before);
    expect(found.some((v) => v.includes('names uWS request/response types'))).toBe(true);
    expect(found.some((v) => v.includes('calls a uWS request/response method'))).toBe(true);
    expect(found.filter((v) => v.includes('registers a route'))).toHaveLength(2);
    expect(found.some((v) => v.includes('name it "app"'))).toBe(true);
    // And it leaves ordinary code alone.
    expect(violations("router.get('/api/state', h);\nthis.onData(conn, chunk);\napp.publish('t', b);\nconst app = uws.App();")).toEqual([]);
  });

  it('finds no uWS route or request/response use outside the wrapper', () => {
    const files = sourceFiles(path.join(root, 'src')).filter((f) => path.relative(root, f) !== WRAPPER);
    expect(files.length).toBeGreaterThan(50);
    const report: string[] = [];
    for (const file of files) for (const v of violations(readFileSync(file, 'utf8'))) report.push(`${path.relative(root, file)}:${v}`);
    expect(report).toEqual([]);
    // The wrapper is where the routes really are registered.
    expect(readFileSync(path.join(root, WRAPPER), 'utf8')).toMatch(/this\.app\[method\]\(/);
  });
});

describe('UwsRoutes behaviour (uWS in process)', () => {
  let app: TemplatedApp;
  let socket: us_listen_socket;
  let base: string;
  let port: number;
  const errors: unknown[] = [];
  const late: Array<{ head: RequestHead; wrote: boolean; aborted: boolean; signalAborted: boolean }> = [];
  let release: () => void = () => {};
  const released = new Promise<void>((r) => { release = r; });
  const { uws } = loadUws();

  beforeAll(async () => {
    app = uws.App();
    const routes = new UwsRoutes(app, { maxBodyBytes: 64, onError: (e) => errors.push(e) });
    routes.get('/later/:id', async (ex: Exchange) => {
      await new Promise((r) => setTimeout(r, 20));
      // Everything a handler reads after an await comes from the copy.
      ex.reply(200, { 'content-type': 'application/json' }, JSON.stringify({ ...ex.request, signal: ex.signal.aborted }));
    });
    routes.get('/hang', async (ex) => {
      await released;
      late.push({ head: ex.request, wrote: ex.reply(200, {}, 'too late'), aborted: ex.aborted, signalAborted: ex.signal.aborted });
    });
    routes.get('/throw', () => { throw new Error('sync boom'); });
    routes.get('/reject', async () => { await Promise.resolve(); throw new Error('async boom'); });
    routes.get('/twice', (ex) => { expect(ex.reply(200, {}, 'one')).toBe(true); expect(ex.reply(201, {}, 'two')).toBe(false); });
    routes.post('/echo', async (ex) => {
      const body = await ex.body();
      if (!body.ok) ex.reply(413, {}, `over ${body.tooLarge}`, true);
      else ex.reply(200, {}, body.body);
    });
    routes.post('/refuse-first', (ex) => { ex.reply(401, {}, 'no'); });
    routes.ws<{ who: string }>('/sock', {
      upgrade: (head) => {
        const q = new URLSearchParams(head.query);
        if (q.get('boom')) throw new Error('upgrade boom');
        if (!q.get('name')) return { refuse: { status: 403, error: 'name required' } };
        return { accept: { who: `${q.get('name')}@${head.remoteAddress}` } };
      },
      open: (ws) => { ws.send(ws.getUserData().who); },
    });
    socket = await new Promise<us_listen_socket>((resolve, reject) => app.listen('127.0.0.1', 0, (s) => (s ? resolve(s) : reject(new Error('listen')))));
    port = uws.us_socket_local_port(socket as never);
    base = `http://127.0.0.1:${port}`;
  });
  afterAll(() => {
    uws.us_listen_socket_close(socket);
    (app as TemplatedApp & { close?: () => void }).close?.();
  });

  it('hands the handler a copy of the request that stays valid after an await', async () => {
    const res = await fetch(`${base}/later/a%20b?x=1`, { headers: { 'x-thing': 'yes' } });
    expect(res.status).toBe(200);
    const got = await res.json() as RequestHead & { signal: boolean };
    expect(got).toMatchObject({ method: 'GET', path: '/later/a%20b', query: 'x=1', params: ['a%20b'], remoteAddress: '127.0.0.1', signal: false });
    expect(got.headers['x-thing']).toBe('yes');
  });

  it('a client that leaves before the answer: the late reply is dropped, the signal fired, nothing throws', async () => {
    await new Promise<void>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.write('GET /hang HTTP/1.1\r\nHost: x\r\n\r\n');
        setTimeout(() => { s.destroy(); resolve(); }, 50);
      });
    });
    await new Promise((r) => setTimeout(r, 50));
    release();
    await new Promise((r) => setTimeout(r, 50));
    expect(late).toHaveLength(1);
    expect(late[0]).toMatchObject({ wrote: false, aborted: true, signalAborted: true, head: { path: '/hang' } });
    // Still serving.
    expect((await fetch(`${base}/later/1`)).status).toBe(200);
  });

  it('a throwing or rejecting handler is answered 500 and reported; a second reply is refused', async () => {
    const before = errors.length;
    expect((await fetch(`${base}/throw`)).status).toBe(500);
    const rejected = await fetch(`${base}/reject`);
    expect(rejected.status).toBe(500);
    expect(await rejected.json()).toEqual({ error: 'internal server error' });
    expect(errors.slice(before).map((e) => (e as Error).message)).toEqual(['sync boom', 'async boom']);
    const twice = await fetch(`${base}/twice`);
    expect([twice.status, await twice.text()]).toEqual([200, 'one']);
  });

  it('collects bodies up to the limit; over it (declared or streamed) the handler is told', async () => {
    const ok = await fetch(`${base}/echo`, { method: 'POST', body: 'hello' });
    expect([ok.status, await ok.text()]).toEqual([200, 'hello']);
    const declared = await fetch(`${base}/echo`, { method: 'POST', body: 'x'.repeat(100) });
    expect([declared.status, await declared.text()]).toEqual([413, 'over 64']);
    const streamed = await fetch(`${base}/echo`, {
      method: 'POST', duplex: 'half',
      body: new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode('y'.repeat(40))); c.enqueue(new TextEncoder().encode('y'.repeat(40))); c.close(); } }),
    } as RequestInit);
    expect(streamed.status).toBe(413);
  });

  it('a reply before the body was read closes the connection instead of reading the rest', async () => {
    const raw = await new Promise<string>((resolve) => {
      let text = '';
      const s = connect(port, '127.0.0.1', () => s.write('POST /refuse-first HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\nabc'));
      s.on('data', (d) => { text += String(d); });
      s.on('close', () => resolve(text));
      setTimeout(() => s.destroy(), 3000);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 401/);
  });

  it('WebSocket upgrades are decided from the copied head: accept, refuse with a status, 500 on a throw', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/sock?name=ann`);
    expect(String(await new Promise((resolve, reject) => { ws.once('message', resolve); ws.once('error', reject); }))).toBe('ann@127.0.0.1');
    ws.close();
    const status = (url: string) => new Promise<number>((resolve) => {
      const c = new WebSocket(url);
      c.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      c.on('open', () => { c.close(); resolve(101); });
      c.on('error', () => resolve(-1));
    });
    expect(await status(`ws://127.0.0.1:${port}/sock`)).toBe(403);
    const before = errors.length;
    expect(await status(`ws://127.0.0.1:${port}/sock?boom=1`)).toBe(500);
    expect(errors.length).toBe(before + 1);
  });
});
