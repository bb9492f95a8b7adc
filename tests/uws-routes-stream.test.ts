/**
 * Streamed replies (Exchange.stream in src/shared/uws-routes.ts) against a real uWS app: a
 * client that stops reading stops the writer (write() stays pending until uWS says the
 * connection drained), a client that reads again gets every byte, and a client that leaves
 * mid-stream settles the pending write with false instead of leaving it hanging.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import { loadUws } from '../src/shared/http-server.js';
import { UwsRoutes } from '../src/shared/uws-routes.js';

const CHUNK = 1 << 20;
const CHUNKS = 64;

interface Progress { resolved: number; results: boolean[]; ended: boolean }

describe('Exchange.stream backpressure (uWS in process)', () => {
  let app: TemplatedApp;
  let socket: us_listen_socket;
  let port: number;
  const runs: Progress[] = [];
  const { uws } = loadUws();

  beforeAll(async () => {
    app = uws.App();
    const routes = new UwsRoutes(app);
    routes.get('/stream', async (ex) => {
      const p: Progress = { resolved: 0, results: [], ended: false };
      runs.push(p);
      const stream = ex.stream(200, { 'content-type': 'application/octet-stream' })!;
      const chunk = Buffer.alloc(CHUNK, 0x61);
      for (let i = 0; i < CHUNKS; i++) {
        const ok = await stream.write(chunk);
        p.results.push(ok);
        p.resolved++;
        if (!ok) break;
      }
      stream.end();
      p.ended = true;
      // A second reply after streaming is refused, and nothing throws.
      expect(ex.reply(200, {}, 'x')).toBe(false);
    });
    socket = await new Promise<us_listen_socket>((resolve, reject) => app.listen('127.0.0.1', 0, (s) => (s ? resolve(s) : reject(new Error('listen')))));
    port = uws.us_socket_local_port(socket as never);
  });
  afterAll(() => {
    uws.us_listen_socket_close(socket);
    (app as TemplatedApp & { close?: () => void }).close?.();
  });

  const open = () => new Promise<Socket>((resolve) => {
    const s = connect(port, '127.0.0.1', () => { s.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n'); resolve(s); });
  });
  const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('a client that does not read holds the writer back; reading again lets it finish with every byte', async () => {
    const s = await open();
    s.pause();
    await settle(500);
    const p = runs.at(-1)!;
    // Kernel buffers take a few MiB at most: the writer is waiting, far from done.
    expect(p.resolved).toBeLessThan(CHUNKS / 2);
    expect(p.ended).toBe(false);
    const stuckAt = p.resolved;
    await settle(300);
    expect(p.resolved).toBe(stuckAt);

    let bytes = 0;
    const done = new Promise<void>((resolve) => {
      s.on('data', (d: Buffer) => {
        bytes += d.byteLength;
        // The chunked body ends with "0\r\n\r\n".
        if (d.subarray(-5).toString('latin1') === '0\r\n\r\n') resolve();
      });
    });
    s.resume();
    await done;
    s.destroy();
    expect(p.ended).toBe(true);
    expect(p.results).toEqual(new Array(CHUNKS).fill(true));
    expect(bytes).toBeGreaterThan(CHUNK * CHUNKS);
  }, 30_000);

  it('a client that leaves while a write waits: the write settles false and the writer stops', async () => {
    const s = await open();
    s.pause();
    await settle(400);
    const p = runs.at(-1)!;
    expect(p.ended).toBe(false);
    s.destroy();
    await settle(300);
    expect(p.ended).toBe(true);
    expect(p.results.at(-1)).toBe(false);
    expect(p.results.length).toBeLessThan(CHUNKS);
  }, 30_000);
});
