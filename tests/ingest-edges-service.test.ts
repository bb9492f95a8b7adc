/**
 * The edges of the running service that take producer input or run names, driven as a
 * stranger and as an admin would: the pre-auth budget of WebSocket /ingest (and that the
 * config flags reach the TCP listener), one run-name rule on every route, and client
 * mistakes answered 400 rather than 500.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { concatFrame, decodeFrame, encodeEvent, encodeMetrics, EventKind, lengthPrefixed, type ControlEvent, type TelemetryEvent } from '../src/shared/telemetry/event-codec.js';
import { StreamFramer } from '../src/actors/ingest/stream-framer.js';
import { until } from './helpers/supervisor-harness.js';
import { ADMIN_TOKEN, INGEST_TOKEN, startHarness, type Harness } from './helpers/service-harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness(['--fanout-threads', '1', '--ingest-hello-timeout-ms', '400', '--ingest-max-pre-auth-per-address', '3']);
}, 60_000);
afterAll(async () => { await h?.close(); }, 30_000);

const base = () => `http://127.0.0.1:${h.service.port}`;

/** Sum of a counter over every thread's series that carries all of `labels`. */
async function counter(name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${base()}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/**
 * A WebSocket client on a bare socket, so a test can send a frame header that announces
 * more than it sends. Records the server's binary messages (decoded events) and its close.
 */
class RawWs {
  readonly events: TelemetryEvent[] = [];
  closed = false;
  closeCode: number | undefined;
  private pending = Buffer.alloc(0);
  private constructor(readonly socket: net.Socket) {}

  static open(port: number, headers: Record<string, string> = {}): Promise<RawWs> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      const ws = new RawWs(socket);
      let handshake = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        if (handshake !== undefined && !ws.upgraded) {
          handshake = Buffer.concat([handshake, chunk]);
          const end = handshake.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = handshake.subarray(0, end).toString('latin1');
          if (!head.startsWith('HTTP/1.1 101')) { socket.destroy(); reject(new Error(`upgrade refused: ${head.split('\r\n')[0]}`)); return; }
          ws.upgraded = true;
          ws.feed(handshake.subarray(end + 4));
          resolve(ws);
          return;
        }
        ws.feed(chunk);
      };
      socket.on('data', onData);
      socket.on('error', () => { /* a reset after a refusal is expected */ });
      socket.on('close', () => { ws.closed = true; });
      socket.once('connect', () => {
        const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
        socket.write(`GET /ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`);
      });
      socket.once('error', reject);
    });
  }

  private upgraded = false;

  /** A masked binary frame header announcing `length` bytes (what a client must send). */
  static header(length: number): Buffer {
    const head = Buffer.alloc(14);
    head[0] = 0x82;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(length), 2);
    head.writeUInt32BE(0, 10); // zero mask key: the payload goes as is
    return head;
  }

  sendBinary(payload: Uint8Array): void {
    this.socket.write(Buffer.concat([RawWs.header(payload.byteLength), payload]));
  }

  private feed(chunk: Buffer): void {
    this.pending = Buffer.concat([this.pending, chunk]);
    for (;;) {
      if (this.pending.length < 2) return;
      const opcode = this.pending[0] & 0x0f;
      let length = this.pending[1] & 0x7f;
      let at = 2;
      if (length === 126) { if (this.pending.length < 4) return; length = this.pending.readUInt16BE(2); at = 4; }
      else if (length === 127) { if (this.pending.length < 10) return; length = Number(this.pending.readBigUInt64BE(2)); at = 10; }
      if (this.pending.length < at + length) return;
      const payload = this.pending.subarray(at, at + length);
      this.pending = this.pending.subarray(at + length);
      if (opcode === 2) decodeFrame(new Uint8Array(payload), (e) => this.events.push(e), () => {});
      if (opcode === 8) this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
    }
  }

  errors(): string[] {
    return this.events.filter((e) => e.kind === EventKind.Error).map((e) => String((e as ControlEvent).meta.error));
  }
}

describe('WebSocket /ingest without a bearer token: the pre-auth budget', () => {
  it('a first message declaring 16 MiB is refused on its header, without waiting for (or buffering) the payload', async () => {
    const before = await counter('ringcast_ingest_rejected_total', { transport: 'ws', reason: 'preauth_too_large' });
    const ws = await RawWs.open(h.service.port);
    ws.socket.write(RawWs.header(16 << 20));
    ws.socket.write(Buffer.alloc(1024)); // 1 KiB of the 16 MiB announced, then silence
    await until(() => ws.closed, 3_000, 'the connection to be closed');
    expect(await counter('ringcast_ingest_rejected_total', { transport: 'ws', reason: 'preauth_too_large' })).toBe(before + 1);
  });

  it('a connection that never says hello is sent an Error event and closed, and counted', async () => {
    const before = await counter('ringcast_ingest_rejected_total', { transport: 'ws', reason: 'hello_timeout' });
    const ws = await RawWs.open(h.service.port);
    const opened = Date.now();
    await until(() => ws.closed, 5_000, 'the silent connection to be closed');
    expect(Date.now() - opened).toBeGreaterThanOrEqual(350);
    expect(ws.errors()).toEqual([expect.stringMatching(/no hello within 400 ms/)]);
    expect(ws.closeCode).toBe(1008);
    expect(await counter('ringcast_ingest_rejected_total', { transport: 'ws', reason: 'hello_timeout' })).toBe(before + 1);
  });

  it('a producer that says hello in its first message is acknowledged and outlives the deadline', async () => {
    const ws = await RawWs.open(h.service.port);
    ws.sendBinary(encodeEvent(EventKind.Hello, { token: INGEST_TOKEN, run: 'ws-hello' }));
    await until(() => ws.events.length > 0, 3_000, 'the Ack');
    expect(ws.events[0].kind).toBe(EventKind.Ack);
    await new Promise((r) => setTimeout(r, 700));
    expect(ws.closed).toBe(false);
    ws.socket.destroy();
  });

  it('one address may hold only maxPreAuthPerAddress unauthenticated sockets; the next upgrade is refused and counted', async () => {
    await new Promise((r) => setTimeout(r, 200)); // sockets of earlier tests are gone
    const before = await counter('ringcast_ingest_rejected_total', { transport: 'ws', reason: 'address_limit' });
    const idle = await Promise.all([1, 2, 3].map(() => RawWs.open(h.service.port)));
    await expect(RawWs.open(h.service.port)).rejects.toThrow(/upgrade refused: HTTP\/1.1 429/);
    expect(await counter('ringcast_ingest_rejected_total', { transport: 'ws', reason: 'address_limit' })).toBe(before + 1);
    // A producer with the token at the upgrade is not held to the pre-auth limit.
    const authed = await RawWs.open(h.service.port, { authorization: `Bearer ${INGEST_TOKEN}` });
    expect(authed.closed).toBe(false);
    for (const ws of [...idle, authed]) ws.socket.destroy();
  });

  it('with the token at the upgrade, frames far over the pre-auth cap are taken', async () => {
    const before = await counter('ringcast_ingest_events_total', { transport: 'ws', kind: 'metrics' });
    const ws = await RawWs.open(h.service.port, { authorization: `Bearer ${INGEST_TOKEN}` });
    const big = concatFrame(Array.from({ length: 3_000 }, (_, i) => encodeMetrics(i, { loss: 1 / (i + 1) }, 'ws-big')));
    expect(big.byteLength).toBeGreaterThan(100 * 1024);
    ws.sendBinary(big);
    const deadline = Date.now() + 5_000;
    while (await counter('ringcast_ingest_events_total', { transport: 'ws', kind: 'metrics' }) < before + 3_000) {
      if (Date.now() > deadline) throw new Error('the 3,000 events of the big frame were not accepted');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(ws.errors()).toEqual([]);
    expect(ws.closed).toBe(false);
    ws.socket.destroy();
  });
});

describe('the ingest flags reach the TCP listener', () => {
  it('a silent TCP producer connection is closed after --ingest-hello-timeout-ms and counted', async () => {
    const before = await counter('ringcast_ingest_rejected_total', { transport: 'tcp', reason: 'hello_timeout' });
    const socket = net.connect({ host: '127.0.0.1', port: h.tcpPort });
    const errors: string[] = [];
    const framer = new StreamFramer(1 << 20);
    socket.on('data', (d) => framer.push(d, (f) => decodeFrame(f.slice(), (e) => errors.push(String((e as ControlEvent).meta.error)), () => {})));
    let closed = false;
    socket.on('close', () => { closed = true; });
    socket.on('error', () => {});
    await until(() => closed, 5_000, 'the silent TCP connection to be closed');
    expect(errors).toEqual([expect.stringMatching(/no hello within 400 ms/)]);
    expect(await counter('ringcast_ingest_rejected_total', { transport: 'tcp', reason: 'hello_timeout' })).toBe(before + 1);
  });

  it('a hello with a bad run name is refused with the rule (the producer side of the same rule)', async () => {
    const socket = net.connect({ host: '127.0.0.1', port: h.tcpPort });
    const errors: string[] = [];
    const framer = new StreamFramer(1 << 20);
    socket.on('data', (d) => framer.push(d, (f) => decodeFrame(f.slice(), (e) => { if (e.kind === EventKind.Error) errors.push(String((e as ControlEvent).meta.error)); }, () => {})));
    socket.on('error', () => {});
    socket.write(lengthPrefixed(encodeEvent(EventKind.Hello, { token: INGEST_TOKEN, run: '../../etc' })));
    await until(() => errors.length > 0, 3_000, 'the Error event');
    expect(errors[0]).toMatch(/invalid run name "\.\.\/\.\.\/etc": a run name is 1-128 characters/);
    socket.destroy();
  });
});

const admin = (route: string, body: unknown) => fetch(`${base()}${route}`, {
  method: 'POST',
  headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

describe('one run-name rule on every route', () => {
  it('POST /api/admin/milestone refuses run names producers cannot use, naming the rule', async () => {
    for (const run of ['bad run\n<script>', '../../etc', '', 42]) {
      const res = await admin('/api/admin/milestone', { name: 'test', run });
      expect(res.status, `run ${JSON.stringify(run)}`).toBe(400);
      expect((await res.json()).error).toMatch(/invalid run name .*a run name is 1-128 characters of letters, digits/);
    }
    const ok = await admin('/api/admin/milestone', { name: 'test', run: 'keisei-7' });
    expect(ok.status).toBe(202);
  });

  it('the control route milestone and POST /api/ingest?run= hold to the same rule', async () => {
    const control = await admin('/api/control', { action: 'milestone', name: 'test', run: '../../etc' });
    expect(control.status).toBe(400);
    expect((await control.json()).error).toMatch(/invalid run name "\.\.\/\.\.\/etc"/);
    const ingest = await fetch(`${base()}/api/ingest?run=${encodeURIComponent('a b')}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ events: [{ kind: 'milestone', name: 'x' }] }),
    });
    expect(ingest.status).toBe(400);
    expect((await ingest.json()).error).toMatch(/invalid run name "a b": a run name is/);
  });
});

describe('client mistakes are 400, not 500', () => {
  it('a milestone whose meta exceeds 65,535 bytes answers 400 naming the limit (admin route and /api/control)', async () => {
    const message = 'x'.repeat(70_000);
    for (const [route, body] of [['/api/admin/milestone', { name: 'huge', message }], ['/api/control', { action: 'milestone', name: 'huge', message }]] as const) {
      const res = await admin(route, body);
      expect(res.status, route).toBe(400);
      expect((await res.json()).error, route).toMatch(/meta is \d+ bytes; the limit is 65535/);
    }
  });
});
