import { existsSync, statSync } from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StreamFramer } from '../src/actors/ingest/stream-framer.js';
import {
  concatFrame, encodeEvent, encodeMetrics, EventKind, lengthPrefixed,
  type ControlEvent, type MetricsEvent,
} from '../src/shared/telemetry/event-codec.js';
import { until } from './helpers/supervisor-harness.js';
import { rawClient, startIngest, TOKEN, type IngestRig } from './helpers/ingest-harness.js';

const hello = (token = TOKEN, run = 'run-a') => encodeEvent(EventKind.Hello, { token, run });
const metrics = (step: number, loss: number) => encodeMetrics(step, { 'ppo/policy_loss': loss, 'ppo/kl_divergence_approx': step / 1000 }, undefined, { timestamp: 1_700_000_000_000 + step });
const waitFor = async (cond: () => Promise<boolean>, what: string) => {
  const deadline = Date.now() + 3_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};
const errorsOf = (replies: { kind: EventKind }[]) => replies.filter((r) => r.kind === EventKind.Error) as ControlEvent[];

describe('StreamFramer', () => {
  const frames = [new Uint8Array([1, 2, 3]), new Uint8Array(70_000).fill(7), new Uint8Array([9])];
  const stream = concatFrame(frames.map(lengthPrefixed));

  const collect = (chunks: Uint8Array[], max = 1 << 20) => {
    const framer = new StreamFramer(max);
    const out: number[][] = [];
    let error: string | undefined;
    for (const c of chunks) error ??= framer.push(c, (f) => out.push([f.length, f[0], f[f.length - 1]]));
    return { out, error, framer };
  };
  const expected = frames.map((f) => [f.length, f[0], f[f.length - 1]]);

  it('reassembles frames split at every byte boundary', () => {
    const chunks = [...stream].map((b) => new Uint8Array([b]));
    const { out, error, framer } = collect(chunks);
    expect(error).toBeUndefined();
    expect(out).toEqual(expected);
    expect(framer.buffered).toBe(0);
  });

  it('splits merged chunks and chunks cut inside the length prefix', () => {
    for (const cut of [1, 2, 3, 5, 9, 70_006, stream.length - 1]) {
      const { out, error } = collect([stream.subarray(0, cut), stream.subarray(cut)]);
      expect(error).toBeUndefined();
      expect(out).toEqual(expected);
    }
    expect(collect([stream]).out).toEqual(expected);
  });

  it('a length above the limit is unrecoverable: frames before it still arrive, nothing after', () => {
    const huge = new Uint8Array(4);
    new DataView(huge.buffer).setUint32(0, 2_000_000, true);
    const { out, error, framer } = collect([concatFrame([lengthPrefixed(new Uint8Array([5])), huge, lengthPrefixed(new Uint8Array([6]))])]);
    expect(error).toMatch(/frame length 2000000 exceeds the limit of 1048576/);
    expect(out).toEqual([[1, 5, 5]]);
    expect(framer.push(lengthPrefixed(new Uint8Array([1])), () => { throw new Error('must not be called'); })).toBeUndefined();
  });

  it('a zero length is unrecoverable', () => {
    const { error } = collect([new Uint8Array([0, 0]), new Uint8Array([0, 0, 1])]);
    expect(error).toMatch(/frame length 0/);
  });
});

describe('ingest actor under a supervisor', () => {
  let rig: IngestRig;
  beforeAll(async () => { rig = await startIngest({ maxConnections: 3 }); });
  afterAll(async () => { await rig?.stop(); });

  const take = async (n: number) => {
    await until(() => rig.records.length >= n, 5_000, `${n} records in the ring`, rig.drain);
    return rig.records.splice(0, n);
  };

  it('address() reports the bound TCP port and the socket path', () => {
    expect(rig.address.tcpPort).toBeGreaterThan(0);
    expect(rig.address.unixPath).toMatch(/ingest\.sock$/);
    expect(statSync(rig.address.unixPath).mode & 0o777).toBe(0o660);
  });

  for (const transport of ['tcp', 'unix'] as const) {
    it(`${transport}: events of a good frame land in the ring with exact values, the hello is acked`, async () => {
      const c = await rawClient(transport === 'tcp' ? { port: rig.address.tcpPort } : { path: rig.address.unixPath });
      c.send(lengthPrefixed(concatFrame([hello(TOKEN, `run-${transport}`), metrics(1, 0.5), metrics(2, -0.25)])));
      // Split a frame across two writes: the stream must reassemble it.
      const third = lengthPrefixed(metrics(3, 1e-9));
      c.send(third.subarray(0, 7));
      await new Promise((r) => setTimeout(r, 20));
      c.send(third.subarray(7));
      const got = await take(3);
      expect(got.map((r) => r.run)).toEqual([`run-${transport}`, `run-${transport}`, `run-${transport}`]);
      const events = got.map((r) => r.event as MetricsEvent);
      expect(events.map((e) => e.kind)).toEqual([EventKind.Metrics, EventKind.Metrics, EventKind.Metrics]);
      expect(events.map((e) => e.step)).toEqual([1, 2, 3]);
      expect(events[1].names).toEqual(['ppo/policy_loss', 'ppo/kl_divergence_approx']);
      expect(events[1].values).toEqual([-0.25, 0.002]);
      expect(events[2].values[0]).toBe(1e-9);
      expect(events[0].timestamp).toBe(1_700_000_000_001);
      expect(new Set(got.map((r) => r.producerId)).size).toBe(1);
      await until(() => c.replies.length >= 1, 2_000, 'ack');
      expect(c.replies[0].kind).toBe(EventKind.Ack);
      expect((c.replies[0] as ControlEvent).meta).toMatchObject({ ok: true, run: `run-${transport}` });
      expect(c.closed).toBe(false);
      c.socket.destroy();
    });
  }

  it('a wrong token gets an Error event and the connection is closed; nothing lands', async () => {
    const c = await rawClient({ port: rig.address.tcpPort });
    c.send(lengthPrefixed(concatFrame([hello('wrong-token-000'), metrics(1, 1)])));
    await until(() => c.closed, 3_000, 'server closes');
    expect(errorsOf(c.replies).map((e) => e.meta.error)).toContain('invalid ingest token');
    await new Promise((r) => setTimeout(r, 50));
    rig.drain();
    expect(rig.records).toEqual([]);
  });

  it('a first frame without a hello is refused and closed', async () => {
    const c = await rawClient({ port: rig.address.tcpPort });
    c.send(lengthPrefixed(encodeEvent(EventKind.Milestone, { name: 'x' })));
    await until(() => c.closed, 3_000, 'server closes');
    expect(errorsOf(c.replies)[0].meta.error).toMatch(/not authenticated/);
  });

  it('a malformed event among good ones: Error reply naming it, the good ones land, the connection stays up', async () => {
    const c = await rawClient({ port: rig.address.tcpPort });
    const bad = encodeEvent(EventKind.BoardHeatmap, { step: 1 }, new Uint8Array(12)); // needs 81 float32
    c.send(lengthPrefixed(concatFrame([hello(), metrics(10, 1), bad, metrics(11, 2)])));
    const got = await take(2);
    expect(got.map((r) => (r.event as MetricsEvent).step)).toEqual([10, 11]);
    await until(() => errorsOf(c.replies).length >= 1, 2_000, 'error reply');
    const [error] = errorsOf(c.replies);
    expect(error.meta).toMatchObject({ kind: 'board_heatmap', index: 2 });
    expect(String(error.meta.error)).toMatch(/81 float32/);
    c.send(lengthPrefixed(metrics(12, 3)));
    expect((await take(1))[0].event).toMatchObject({ step: 12 });
    expect(c.closed).toBe(false);
    c.socket.destroy();
  });

  it('a producer that does not read its replies: replies are dropped and counted, intake goes on', async () => {
    const c = await rawClient({ path: rig.address.unixPath });
    c.socket.pause(); // never read: the server's write buffer fills up
    c.send(lengthPrefixed(hello()));
    const badFrame = lengthPrefixed(concatFrame(Array.from({ length: 17 }, () => encodeEvent(EventKind.Milestone, {}))));
    for (let i = 0; i < 2_000; i++) c.send(badFrame); // 17 Error replies per frame, ~3 MB in all
    c.send(lengthPrefixed(metrics(30, 1)));
    expect((await take(1))[0].event).toMatchObject({ step: 30 });
    const stats = (await rig.supervisor.call('ingest', 'stats')) as { transports: { transport: string; repliesDropped: number; frames: number }[] };
    const unix = stats.transports.find((t) => t.transport === 'unix')!;
    expect(unix.repliesDropped).toBeGreaterThan(0);
    expect(c.closed).toBe(false);
    c.socket.destroy();
  });

  for (const [what, prefix] of [['zero', 0], ['oversized', (1 << 20) + 1]] as const) {
    it(`a ${what} frame length gets an Error event and a close`, async () => {
      const c = await rawClient({ path: rig.address.unixPath });
      c.send(lengthPrefixed(hello()));
      const bad = new Uint8Array(8);
      new DataView(bad.buffer).setUint32(0, prefix, true);
      c.send(bad);
      await until(() => c.closed, 3_000, 'server closes');
      expect(errorsOf(c.replies)[0].meta.error).toMatch(/frame length/);
    });
  }

  it('maxConnections: one more connection is refused with an Error, a freed slot is usable again', async () => {
    const stats = async () => ((await rig.supervisor.call('ingest', 'stats')) as { transports: { transport: string; connections: number; connectionsRefused: number }[] }).transports.find((t) => t.transport === 'tcp')!;
    // Earlier tests' sockets may still be closing on the server side; wait until they are gone.
    await waitFor(async () => (await stats()).connections === 0, 'earlier connections closed');
    const open = await Promise.all([0, 1, 2].map(() => rawClient({ port: rig.address.tcpPort })));
    for (const c of open) c.send(lengthPrefixed(hello()));
    await until(() => open.every((c) => c.replies.length > 0), 3_000, 'three acks');
    const extra = await rawClient({ port: rig.address.tcpPort });
    await until(() => extra.closed, 3_000, 'refused connection closed');
    expect(errorsOf(extra.replies)[0].meta.error).toMatch(/too many producer connections over tcp \(limit 3\)/);
    expect((await stats()).connectionsRefused).toBe(1);
    open[0].socket.destroy();
    await waitFor(async () => (await stats()).connections === 2, 'a slot freed');
    const again = await rawClient({ port: rig.address.tcpPort });
    again.send(lengthPrefixed(concatFrame([hello(), metrics(20, 1)])));
    expect((await take(1))[0].event).toMatchObject({ step: 20 });
    for (const c of [...open, again]) c.socket.destroy();
  });

  it('metrics count frames, connections and protocol errors', async () => {
    const text = await rig.supervisor.metrics();
    expect(text).toMatch(/ringcast_ingest_frames_total\{[^}]*transport="tcp"[^}]*\} [1-9]/);
    expect(text).toMatch(/ringcast_ingest_protocol_errors_total\{[^}]*reason="frame_length"[^}]*\} 2/);
    expect(text).toMatch(/ringcast_ingest_connections_total\{[^}]*outcome="refused"[^}]*\} 1/);
  });
});

describe('ingest actor stop', () => {
  it('stop() ends open connections, keeps what they sent, and removes the socket file', async () => {
    const rig = await startIngest();
    const c = await rawClient({ port: rig.address.tcpPort });
    c.send(lengthPrefixed(concatFrame([hello(), metrics(1, 1)])));
    await until(() => c.replies.length > 0, 3_000, 'ack');
    const socketPath = rig.address.unixPath;
    expect(existsSync(socketPath)).toBe(true);
    const result = await rig.supervisor.stop(3_000);
    expect(result.clean).toBe(true);
    expect(result.finals.ingest).toMatchObject({ transports: [{ transport: 'tcp', frames: 1 }, { transport: 'unix' }] });
    await until(() => c.closed, 2_000, 'client sees the close');
    expect(existsSync(socketPath)).toBe(false);
    rig.drain();
    expect(rig.records.map((r) => r.event.kind)).toEqual([EventKind.Metrics]);
    await rig.stop();
  });

  it('after a crash the restarted actor takes over the stale socket file and the same TCP port', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => { const p = (probe.address() as net.AddressInfo).port; probe.close(() => resolve(p)); });
    });
    const rig = await startIngest({ tcpPort: port });
    expect(rig.address.tcpPort).toBe(port);
    const socketPath = rig.address.unixPath;
    await rig.supervisor.crash('ingest'); // no stop(): the file stays behind
    await until(() => rig.supervisor.incarnation('ingest') === 1 && rig.supervisor.health().ok, 10_000, 'restart');
    expect(await rig.supervisor.call('ingest', 'address')).toEqual({ tcpPort: port, unixPath: socketPath });
    const clients = [await rawClient({ path: socketPath }), await rawClient({ port })];
    clients.forEach((c, i) => c.send(lengthPrefixed(concatFrame([hello(), metrics(5 + i, 5)]))));
    await until(() => rig.records.length >= 2, 5_000, 'records after restart', rig.drain);
    expect(rig.records.map((r) => (r.event as MetricsEvent).step).sort()).toEqual([5, 6]);
    for (const c of clients) c.socket.destroy();
    await rig.stop();
  });
});
