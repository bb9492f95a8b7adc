/**
 * Per-frame acknowledgements: a producer whose hello asks for them (`acks: true`) gets
 * `{frames: n}` after each later frame, once that frame's events are in the ingest ring,
 * so it knows exactly what a lost connection swallowed. Producers that do not ask see no
 * change.
 */
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { RecordRing } from '../src/shared/record-ring.js';
import { IngestAcceptor } from '../src/actors/ingest/acceptor.js';
import { concatFrame, decodeEvent, encodeEvent, encodeMetrics, EventKind } from '../src/shared/telemetry/event-codec.js';

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
});
