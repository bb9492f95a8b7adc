import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { RecordRing } from '../src/shared/record-ring.js';
import { IngestAcceptor } from '../src/actors/ingest/acceptor.js';
import { concatFrame, decodeEvent, encodeEvent, encodeMetrics, EventKind, float32Bytes, type MetricsEvent } from '../src/shared/telemetry/event-codec.js';
import { readIngestRecord } from '../src/shared/telemetry/ring-records.js';

const TOKEN = 'test-token-123';

function setup(capacityBytes = 1 << 16) {
  const ring = RecordRing.create({ capacityBytes, policy: 'drop-newest' });
  const registry = new Registry();
  const acceptor = new IngestAcceptor({ ring, token: TOKEN, transport: 'tcp', producerIdBase: 1 << 24, metrics: registry });
  const drain = () => {
    const out: Array<{ run: string; producerId: number; event: ReturnType<typeof decodeEvent> }> = [];
    ring.poll((data, offset, length) => {
      const rec = readIngestRecord(data, offset, length);
      out.push({ run: rec.run, producerId: rec.producerId, event: decodeEvent(data.slice(rec.eventOffset, rec.eventOffset + rec.eventLength)) });
    });
    return out;
  };
  return { ring, registry, acceptor, drain };
}

const hello = (token: string, run?: string) => encodeEvent(EventKind.Hello, { token, run });
const metaOf = (reply: Uint8Array) => (decodeEvent(reply) as { meta: Record<string, unknown> }).meta;

describe('ingest acceptor', () => {
  it('authenticates with a hello, names the run, and lands events byte-exact in the ring', async () => {
    const { acceptor, drain } = setup();
    const session = acceptor.openSession();
    expect(session.authenticated).toBe(false);
    const result = acceptor.acceptFrame(session, concatFrame([hello(TOKEN, 'run-7'), encodeMetrics(42, { 'ppo/entropy': 1.5, gradient_norm: 0.25 })]));
    expect(result.fatal).toBeUndefined();
    expect(result.accepted).toBe(1);
    expect(metaOf(result.replies[0])).toMatchObject({ ok: true, run: 'run-7' });
    const [record] = drain();
    expect(record.run).toBe('run-7');
    expect(record.producerId).toBe(session.producerId);
    const event = record.event as MetricsEvent;
    expect(event.step).toBe(42);
    expect(Object.fromEntries(event.names.map((n, i) => [n, event.values[i]]))).toEqual({ 'ppo/entropy': 1.5, gradient_norm: 0.25 });
  });

  it('a wrong token is fatal, and telemetry before authentication is refused', () => {
    const { acceptor, drain } = setup();
    const bad = acceptor.acceptFrame(acceptor.openSession(), hello('wrong-token-xx'));
    expect(bad.fatal).toMatch(/authentication failed/);
    expect(metaOf(bad.replies[0]).error).toMatch(/invalid ingest token/);
    const early = acceptor.acceptFrame(acceptor.openSession(), encodeMetrics(1, { a: 1 }));
    expect(early.fatal).toMatch(/not authenticated/);
    expect(drain()).toEqual([]);
  });

  it('a malformed event is rejected alone: the good events around it still land and the session stays usable', () => {
    const { acceptor, drain, registry } = setup();
    const session = acceptor.openSession({ token: TOKEN });
    const badHeatmap = encodeEvent(EventKind.BoardHeatmap, {}, float32Bytes([1, 2, 3]));
    const result = acceptor.acceptFrame(session, concatFrame([encodeMetrics(1, { a: 1 }), badHeatmap, encodeMetrics(2, { a: 2 })]));
    expect(result.fatal).toBeUndefined();
    expect(result.accepted).toBe(2);
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toMatchObject({ index: 1, kind: 'board_heatmap' });
    expect(metaOf(result.replies[0]).error).toMatch(/board_heatmap: payload is 12 bytes, expected 324/);
    expect(drain().map((r) => (r.event as MetricsEvent).step)).toEqual([1, 2]);
    expect(acceptor.acceptFrame(session, encodeMetrics(3, { a: 3 })).accepted).toBe(1);
    return registry.getSingleMetricAsString('ringcast_ingest_rejected_total').then((text) => expect(text).toMatch(/reason="malformed"} 1/));
  });

  it('a full ring drops the newest event, tells the producer, and counts it', async () => {
    const { acceptor, registry } = setup(1024);
    const session = acceptor.openSession({ token: TOKEN });
    const big = encodeEvent(EventKind.SeAttention, { blocks: 1, channels: 100 }, float32Bytes(new Float32Array(100)));
    let refused = 0;
    for (let i = 0; i < 10; i++) refused += acceptor.acceptFrame(session, big).errors.filter((e) => /ring is full/.test(e.error)).length;
    expect(refused).toBeGreaterThan(0);
    expect(await registry.getSingleMetricAsString('ringcast_ingest_ring_full_total')).toMatch(new RegExp(`kind="se_attention"} ${refused}`));
  });

  it('accepts the HTTP JSON form, with tensors as arrays, through the same checks', () => {
    const { acceptor, drain } = setup();
    const session = acceptor.openSession({ token: TOKEN });
    const grid = Array.from({ length: 9 }, (_, r) => Array.from({ length: 9 }, (_, c) => r * 9 + c));
    const result = acceptor.acceptJson(session, {
      run: 'json-run',
      events: [
        { kind: 'metrics', step: 5, metrics: { 'ppo/policy_loss': 0.5 } },
        { kind: 'board_heatmap', grid },
        { kind: 'policy', top_moves: [{ move: '7g7f', prob: 1.5 }] },
        { kind: 'nonsense' },
      ],
    });
    expect(result.accepted).toBe(2);
    expect(result.errors.map((e) => e.index)).toEqual([2, 3]);
    expect(result.errors[0].error).toMatch(/prob must be a number in \[0, 1\]/);
    expect(result.errors[1].error).toMatch(/unknown event kind "nonsense"/);
    const records = drain();
    expect(records.map((r) => r.run)).toEqual(['json-run', 'json-run']);
    expect(Array.from((records[1].event as { grid: Float32Array }).grid).slice(0, 3)).toEqual([0, 1, 2]);
  });

  it('rejects bad bodies and bad run names with messages that say what is wrong', () => {
    const { acceptor } = setup();
    const session = acceptor.openSession({ token: TOKEN });
    expect(acceptor.acceptJson(session, [1, 2]).errors[0].error).toMatch(/"events" array/);
    expect(acceptor.acceptJson(session, { run: 'bad run!', events: [] }).errors[0].error).toMatch(/"run": invalid run name "bad run!": a run name is 1-128 characters/);
    expect(acceptor.acceptFrame(session, new Uint8Array([1, 2, 3])).errors[0].error).toMatch(/truncated event header/);
  });
});

describe('relay events', () => {
  it('external producers cannot send them; a trusted in-process acceptor can', () => {
    const relay = encodeEvent(EventKind.Relay, { type: 'chat_message', channel: 'chat', data: { text: 'hi' } });
    const { acceptor, drain } = setup();
    const external = acceptor.acceptFrame(acceptor.openSession({ token: TOKEN }), relay);
    expect(external.accepted).toBe(0);
    expect(external.errors[0].error).toMatch(/relay events are internal/);
    const ring = RecordRing.create({ capacityBytes: 1 << 16, policy: 'drop-newest' });
    const trusted = new IngestAcceptor({ ring, token: TOKEN, transport: 'local', producerIdBase: 0, metrics: new Registry(), allowRelay: true });
    expect(trusted.acceptFrame(trusted.openSession({ token: TOKEN }), relay).accepted).toBe(1);
    expect(drain()).toEqual([]);
  });
});
