/**
 * Per-frame acknowledgements: a producer whose hello asks for them (`acks: true`) gets
 * `{frames: n}` after each later frame, once that frame's events are in the ingest ring,
 * so it knows exactly what a lost connection swallowed. Producers that do not ask see no
 * change.
 */
import net from 'node:net';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { RecordRing } from '../src/shared/record-ring.js';
import { IngestAcceptor } from '../src/actors/ingest/acceptor.js';
import { StreamIngestServer } from '../src/actors/ingest/socket-server.js';
import { concatFrame, decodeEvent, encodeEvent, encodeMetrics, EventKind, type MetricsEvent } from '../src/shared/telemetry/event-codec.js';
import { readIngestRecord } from '../src/shared/telemetry/ring-records.js';

const TOKEN = 'test-token-123';
const setup = () => new IngestAcceptor({ ring: RecordRing.create({ capacityBytes: 1 << 16, policy: 'drop-newest' }), token: TOKEN, transport: 'tcp', producerIdBase: 1, metrics: new Registry() });
const replies = (r: { replies: Uint8Array[] }) => r.replies.map((b) => { const e = decodeEvent(b) as { kind: number; meta: Record<string, unknown> }; return { kind: e.kind, meta: e.meta }; });

describe('ingest per-frame acks', () => {
  it('a hello with acks: true gets them for every later frame, counted from 1, bad events included', () => {
    const acceptor = setup();
    const session = acceptor.openSession();
    expect(replies(acceptor.acceptFrame(session, encodeEvent(EventKind.Hello, { token: TOKEN, acks: true })))).toEqual([
      { kind: EventKind.Ack, meta: expect.objectContaining({ ok: true, acks: true }) },
    ]);
    expect(replies(acceptor.acceptFrame(session, concatFrame([encodeMetrics(1, { a: 1 }), encodeMetrics(2, { a: 2 })])))).toEqual([{ kind: EventKind.Ack, meta: { frames: 1 } }]);
    // A frame whose event is rejected was still handled: the Error, then the ack.
    const bad = replies(acceptor.acceptFrame(session, encodeEvent(EventKind.BoardHeatmap, {}, new Uint8Array(4))));
    expect(bad.map((r) => r.kind)).toEqual([EventKind.Error, EventKind.Ack]);
    expect(bad[1].meta).toEqual({ frames: 2 });
  });

  it('without acks: true nothing changes (no per-frame replies, no acks field)', () => {
    const acceptor = setup();
    const session = acceptor.openSession();
    const hello = replies(acceptor.acceptFrame(session, encodeEvent(EventKind.Hello, { token: TOKEN })));
    expect(hello[0].meta.acks).toBeUndefined();
    expect(acceptor.acceptFrame(session, encodeMetrics(1, { a: 1 })).replies).toEqual([]);
  });

  it('stop(): a producer that asked for acks is not read past the stop (no ack can reach it then, so what it sent would be resent: a duplicate); one without acks still is', async () => {
    const ring = RecordRing.create({ capacityBytes: 1 << 16, policy: 'drop-newest' });
    const server = new StreamIngestServer({
      transport: 'tcp', acceptor: new IngestAcceptor({ ring, token: TOKEN, transport: 'tcp', producerIdBase: 1, metrics: new Registry() }),
      maxFrameBytes: 1 << 20, maxConnections: 8, metrics: new Registry(), log: pino({ level: 'silent' }),
    });
    const port = await server.listenTcp('127.0.0.1', 0);
    const framed = (bytes: Uint8Array) => { const out = Buffer.alloc(4 + bytes.byteLength); out.writeUInt32LE(bytes.byteLength, 0); out.set(bytes, 4); return out; };
    const producer = (run: string, acks: boolean) => new Promise<net.Socket>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.on('error', () => {});
      socket.once('data', () => resolve(socket)); // the hello's Ack: the first frame was taken
      socket.once('connect', () => socket.write(framed(concatFrame([encodeEvent(EventKind.Hello, { token: TOKEN, run, acks }), encodeMetrics(1, { a: 1 })]))));
    });
    const sockets = [await producer('acks', true), await producer('plain', false)];
    const stopped = server.stop(1000);
    // Sent after the server ended its side, before the producers can know: read after end().
    for (const socket of sockets) socket.end(framed(encodeMetrics(2, { a: 2 })));
    await stopped;
    const got: string[] = [];
    ring.poll((data, offset, length) => {
      const rec = readIngestRecord(data, offset, length);
      got.push(`${rec.run}:${(decodeEvent(data.subarray(rec.eventOffset, rec.eventOffset + rec.eventLength)) as MetricsEvent).step}`);
    });
    expect(got.sort()).toEqual(['acks:1', 'plain:1', 'plain:2']);
  });
});
