/**
 * The pre-auth budget of the TCP and Unix producer listeners, through the real ingest actor
 * under a supervisor: anyone who can reach the port can open a connection, so until a
 * connection has authenticated it gets a hello deadline, a small first frame and a bounded
 * share of the connection slots — and every refusal is counted.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { concatFrame, encodeEvent, encodeMetrics, EventKind, lengthPrefixed, type ControlEvent } from '../src/shared/telemetry/event-codec.js';
import type { IngestStats } from '../src/actors/ingest/index.js';
import { StreamFramer } from '../src/actors/ingest/stream-framer.js';
import { until } from './helpers/supervisor-harness.js';
import { rawClient, startIngest, TOKEN, type IngestRig, type RawClient } from './helpers/ingest-harness.js';

const rigs: IngestRig[] = [];
afterEach(async () => { await Promise.all(rigs.splice(0).map((r) => r.stop())); });
const start = async (...args: Parameters<typeof startIngest>) => { const rig = await startIngest(...args); rigs.push(rig); return rig; };

const errorsOf = (c: RawClient) => c.replies.filter((r) => r.kind === EventKind.Error).map((r) => String((r as ControlEvent).meta.error));
const stats = async (rig: IngestRig, transport: 'tcp' | 'unix') =>
  ((await rig.supervisor.call('ingest', 'stats')) as IngestStats).transports.find((t) => t.transport === transport)!;

/** The value of ringcast_ingest_rejected_total for one transport and reason (0 when absent). */
async function rejected(rig: IngestRig, transport: string, reason: string): Promise<number> {
  const text = await rig.supervisor.metrics();
  const line = text.split('\n').find((l) => l.startsWith('ringcast_ingest_rejected_total{') && l.includes(`transport="${transport}"`) && l.includes(`reason="${reason}"`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

const targets = (rig: IngestRig) => [
  { transport: 'tcp' as const, target: { port: rig.address.tcpPort } },
  { transport: 'unix' as const, target: { path: rig.address.unixPath } },
];

describe('StreamFramer first-frame limit', () => {
  it('judges the first frame on its 4-byte prefix against the tighter limit; later frames get the full one', () => {
    const prefix = new Uint8Array(4);
    new DataView(prefix.buffer).setUint32(0, 16 << 20, true);
    const framer = new StreamFramer(16 << 20, 64 * 1024);
    expect(framer.push(prefix, () => { throw new Error('must not be called'); })).toMatch(/first frame length 16777216 exceeds the limit of 65536 bytes before authentication/);
    expect(framer.errorKind).toBe('first_too_large');
    expect(framer.buffered).toBe(0);

    const ok = new StreamFramer(16 << 20, 64 * 1024);
    const sizes: number[] = [];
    expect(ok.push(concatFrame([lengthPrefixed(new Uint8Array(100)), lengthPrefixed(new Uint8Array(1 << 20))]), (f) => sizes.push(f.byteLength))).toBeUndefined();
    expect(sizes).toEqual([100, 1 << 20]);
  });
});

describe('hello deadline', () => {
  it('a connection that never says hello is sent an Error event, closed and counted (TCP and Unix)', async () => {
    const rig = await start({ helloTimeoutMs: 300 });
    for (const { transport, target } of targets(rig)) {
      const silent = await rawClient(target);
      const opened = Date.now();
      await until(() => silent.closed, 5_000, `${transport}: the silent connection to be closed`);
      expect(Date.now() - opened).toBeGreaterThanOrEqual(250);
      expect(errorsOf(silent)).toEqual([expect.stringMatching(/no hello within 300 ms/)]);
      expect(await rejected(rig, transport, 'hello_timeout')).toBe(1);
      expect((await stats(rig, transport)).preAuth).toBe(0);
    }
  });

  it('a producer that said hello is not touched by the deadline', async () => {
    const rig = await start({ helloTimeoutMs: 200 });
    const producer = await rawClient({ port: rig.address.tcpPort });
    producer.send(lengthPrefixed(encodeEvent(EventKind.Hello, { token: TOKEN, run: 'patient' })));
    await until(() => producer.replies.length > 0, 3_000, 'the Ack');
    await new Promise((r) => setTimeout(r, 600));
    producer.send(lengthPrefixed(encodeMetrics(1, { loss: 0.5 })));
    await until(() => rig.records.length >= 1, 3_000, 'the metrics event in the ring', rig.drain);
    expect(producer.closed).toBe(false);
    expect(rig.records[0].run).toBe('patient');
    expect(await rejected(rig, 'tcp', 'hello_timeout')).toBe(0);
    producer.socket.destroy();
  });
});

describe('pre-auth frame cap', () => {
  it('a first frame declaring 16 MiB is refused on its length prefix: closed, counted, and never buffered', async () => {
    const rig = await start({ maxFrameBytes: 16 << 20 });
    for (const { transport, target } of targets(rig)) {
      const before = (await stats(rig, transport)).bytesRead;
      const client = await rawClient(target);
      const prefix = new Uint8Array(4);
      new DataView(prefix.buffer).setUint32(0, 16 << 20, true);
      client.send(prefix);
      // Keep streaming the declared frame for as long as the server lets us.
      const chunk = new Uint8Array(64 * 1024).fill(0x52);
      let sent = 0;
      while (!client.closed && sent < 16 << 20) {
        if (!client.socket.write(chunk)) await new Promise((r) => { client.socket.once('drain', r); client.socket.once('close', r); });
        sent += chunk.byteLength;
      }
      await until(() => client.closed, 5_000, `${transport}: the connection to be closed`);
      expect(errorsOf(client)).toEqual([expect.stringMatching(/first frame length 16777216 exceeds the limit of 65536 bytes before authentication/)]);
      expect(await rejected(rig, transport, 'preauth_too_large')).toBe(1);
      // Only what arrived with the prefix was read; the 16 MiB frame never was.
      const read = (await stats(rig, transport)).bytesRead - before;
      expect(read).toBeLessThanOrEqual(256 * 1024);
    }
  });

  it('after the hello, frames up to maxFrameBytes are still taken', async () => {
    const rig = await start({ maxFrameBytes: 1 << 20, preAuthMaxBytes: 1024 });
    const producer = await rawClient({ port: rig.address.tcpPort });
    producer.send(lengthPrefixed(encodeEvent(EventKind.Hello, { token: TOKEN, run: 'big-frames' })));
    // One frame of 2,000 metrics events: ~70 KB, far over the pre-auth cap.
    const big = concatFrame(Array.from({ length: 2_000 }, (_, i) => encodeMetrics(i, { loss: i / 2_000 })));
    expect(big.byteLength).toBeGreaterThan(64 * 1024);
    producer.send(lengthPrefixed(big));
    await until(() => rig.records.length >= 2_000, 5_000, 'the 2,000 events of the big frame in the ring', rig.drain);
    expect(producer.closed).toBe(false);
    expect(errorsOf(producer)).toEqual([]);
    producer.socket.destroy();
  });
});

describe('per-address pre-auth limit', () => {
  it('1,100 idle sockets from one address do not lock out a producer from another (bounded time)', async () => {
    const rig = await start({ maxConnections: 1024, helloTimeoutMs: 60_000 }, false);
    const port = rig.address.tcpPort;
    const started = Date.now();
    const idle: net.Socket[] = [];
    const closedIdle = { count: 0 };
    await Promise.all(Array.from({ length: 1_100 }, () => new Promise<void>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.on('error', () => resolve());
      s.on('close', () => { closedIdle.count++; });
      s.resume(); // read, so the server's refusal (an Error event, then FIN) is seen
      s.once('connect', () => resolve());
      idle.push(s);
    })));
    try {
      // Every idle socket has reached the listener (accepted or refused) before the producer tries.
      const deadline = Date.now() + 20_000;
      for (let s = await stats(rig, 'tcp'); s.connectionsAccepted + s.connectionsRefused < 1_100; s = await stats(rig, 'tcp')) {
        if (Date.now() > deadline) throw new Error(`only ${s.connectionsAccepted + s.connectionsRefused} of 1,100 idle sockets reached the listener`);
        await new Promise((r) => setTimeout(r, 50));
      }
      // A real producer on another loopback address gets in, says hello and is heard.
      const producer = await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' }, () => resolve(s));
        s.once('error', reject);
      });
      const replies: Buffer[] = [];
      producer.on('data', (d) => replies.push(d));
      producer.write(lengthPrefixed(encodeEvent(EventKind.Hello, { token: TOKEN, run: 'real' })));
      producer.write(lengthPrefixed(encodeMetrics(7, { loss: 0.25 })));
      await until(() => rig.records.some((r) => r.run === 'real'), 5_000, 'the real producer\'s event in the ring', rig.drain);
      expect(Buffer.concat(replies).toString('latin1')).not.toMatch(/too many/);
      producer.destroy();
      await until(() => closedIdle.count >= 1_100 - 64, 10_000, 'the refused idle sockets to be closed');
      expect(Date.now() - started).toBeLessThan(30_000);
      expect(await rejected(rig, 'tcp', 'address_limit')).toBe(1_100 - 64);
      const s = await stats(rig, 'tcp');
      expect(s.preAuth).toBe(64);
    } finally {
      for (const s of idle) s.destroy();
    }
  }, 60_000);

  it('authenticated connections do not count against the limit', async () => {
    const rig = await start({ maxConnections: 64, maxPreAuthPerAddress: 2 }, false);
    const producers: RawClient[] = [];
    for (let i = 0; i < 6; i++) {
      const p = await rawClient({ port: rig.address.tcpPort });
      p.send(lengthPrefixed(encodeEvent(EventKind.Hello, { token: TOKEN, run: `p${i}` })));
      await until(() => p.replies.length > 0, 3_000, `producer ${i}'s Ack`);
      expect(p.replies[0].kind).toBe(EventKind.Ack);
      producers.push(p);
    }
    expect(producers.every((p) => !p.closed)).toBe(true);
    expect(await rejected(rig, 'tcp', 'address_limit')).toBe(0);
    for (const p of producers) p.socket.destroy();
  });
});
