/**
 * The main thread's control rings: what control, scene, capture and chat messages travel in
 * on their way to the gateways (next to the aggregator's fan-out ring), the retained copy a
 * new /ws client and a restarted gateway get, and that the aggregator no longer carries them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { RecordRing } from '../src/shared/record-ring.js';
import { CHANNELS } from '../src/shared/telemetry/channels.js';
import { FanoutFlag, FanoutType, readFanoutRecord } from '../src/shared/telemetry/ring-records.js';
import { encode } from '../src/actors/aggregator/messages.js';
import { ControlRings, MAX_MESSAGE_BYTES, OverlayMessageError } from '../src/services/control-rings.js';
import { ADMIN_TOKEN, OverlayClient, startHarness, type Harness } from './helpers/service-harness.js';

const decoder = new TextDecoder();
const drain = (ring: RecordRing) => {
  const out: Uint8Array[] = [];
  ring.poll((data, offset, length) => { out.push(data.slice(offset, offset + length)); });
  return out;
};
const view = (record: Uint8Array) => {
  const rec = readFanoutRecord(record, 0, record.byteLength);
  return { ...rec, body: decoder.decode(record.subarray(rec.bodyOffset, rec.bodyOffset + rec.bodyLength)) };
};

describe('ControlRings', () => {
  const make = (capacityBytes = 1 << 20) => {
    const a = RecordRing.create({ capacityBytes });
    const b = RecordRing.create({ capacityBytes });
    const registry = new Registry();
    return { a, b, registry, rings: new ControlRings({ 'control.a': a, 'control.b': b }, registry) };
  };

  it('writes one record into every ring, in the layout and envelope the aggregator writes', () => {
    const { a, b, rings } = make();
    const data = { level: 'advanced', paused: false, scene: null, updated_at: 1 };
    expect(rings.publish({ type: 'control', channel: 'control', key: 'control', retain: true, critical: true, data })).toBe(true);
    const [ra] = drain(a);
    const [rb] = drain(b);
    expect(rb).toEqual(ra);
    const rec = view(ra);
    expect(rec).toMatchObject({ type: FanoutType.Update, channel: CHANNELS.indexOf('control'), levelMask: 7, flags: FanoutFlag.Critical | FanoutFlag.Retain, key: 'control' });
    const { timestamp } = JSON.parse(rec.body) as { timestamp: number };
    expect(rec.stamp).toBe(timestamp);
    // Byte for byte what the aggregator made of the same message for /ws clients.
    expect(rec.body).toBe(decoder.decode(encode('control', timestamp, { all: data })[0].body));
  });

  it('keeps the last retained message per key, not the others, and replays them into one ring', () => {
    const { a, b, rings } = make();
    rings.publish({ type: 'scene', channel: 'control', key: 'scene', retain: true, data: { version: 1 } });
    rings.publish({ type: 'chat_message', channel: 'chat', data: { text: 'not retained' } });
    rings.publish({ type: 'scene', channel: 'control', key: 'scene', retain: true, data: { version: 2 } });
    rings.publish({ type: 'capture_result', channel: 'capture', key: 'stream-a', retain: true, data: { ok: true } });
    expect(rings.retained().map((r) => [view(r).key, JSON.parse(view(r).body).data])).toEqual([['scene', { version: 2 }], ['stream-a', { ok: true }]]);
    drain(a);
    drain(b);
    expect(rings.replay('control.a')).toBe(2);
    expect(drain(a).map((r) => view(r).key)).toEqual(['scene', 'stream-a']);
    expect(drain(b)).toEqual([]);
    expect(rings.replay('control.nope')).toBe(0);
  });

  it('refuses a malformed or oversized message with a reason, and counts it', async () => {
    const { a, rings, registry } = make();
    expect(() => rings.publish({ type: 'Bad Type', channel: 'control', data: 1 })).toThrow(/"type" must be a lower_snake_case/);
    expect(() => rings.publish({ type: 'x', channel: 'radio', data: 1 })).toThrow(/unknown channel "radio"/);
    expect(() => rings.publish({ type: 'x', channel: 'control', data: 'y'.repeat(MAX_MESSAGE_BYTES) })).toThrow(OverlayMessageError);
    expect(drain(a)).toEqual([]);
    expect(rings.retained()).toEqual([]);
    const text = await registry.metrics();
    expect(text).toMatch(/ringcast_control_messages_refused_total\{reason="invalid"\} 2/);
    expect(text).toMatch(/ringcast_control_messages_refused_total\{reason="too_big"\} 1/);
  });

  it('answers false when a ring is full (the others still get the message)', async () => {
    const small = RecordRing.create({ capacityBytes: 4096, policy: 'drop-newest' });
    const big = RecordRing.create({ capacityBytes: 1 << 20 });
    const registry = new Registry();
    const rings = new ControlRings({ small, big }, registry);
    const results = Array.from({ length: 20 }, (_, i) => rings.publish({ type: 'chat_message', channel: 'chat', data: { i, text: 'z'.repeat(400) } }));
    expect(results.at(-1)).toBe(false);
    expect(drain(big)).toHaveLength(20);
    expect(await registry.metrics()).toMatch(/ringcast_control_messages_refused_total\{reason="ring_full"\} [1-9]/);
  });
});

describe('through the service', () => {
  let h: Harness;
  let base: string;
  beforeAll(async () => {
    h = await startHarness(['--fanout-threads', '1']);
    base = `http://127.0.0.1:${h.service.port}`;
  }, 30_000);
  afterAll(async () => { await h?.close(); });

  const control = (body: unknown) => fetch(`${base}/api/control`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, body: JSON.stringify(body) });
  const snapshotOf = async () => {
    const client = await OverlayClient.connect(h.service.port, { channels: ['control'], level: 'intermediate', max_fps: 30 });
    try {
      const got = await client.waitFor((m) => m.type === 'control', 3_000, 'the retained control message');
      await client.waitFor((m) => m.type === 'scene', 3_000, 'the retained scene message');
      return got;
    } finally {
      client.close();
    }
  };

  it('a new /ws client gets the control state as part of its snapshot; the aggregator never sees it', async () => {
    expect((await control({ action: 'level', level: 'advanced' })).status).toBe(200);
    expect((await fetch(`${base}/api/scene/layers/live`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status).toBe(200);
    const got = await snapshotOf();
    expect(got.data).toMatchObject({ level: 'advanced', paused: false });
    const stats = (await h.service.supervisor.call('aggregator', 'stats')) as { eventsByKind: Record<string, number> };
    expect(stats.eventsByKind.relay).toBe(0);
    expect(h.service.supervisor.ring<RecordRing>('control.gw0').stats().recordsIn).toBeGreaterThanOrEqual(2);
  }, 20_000);

  it('a restarted gateway has the control state again without asking for it', async () => {
    expect((await control({ action: 'pause' })).status).toBe(200);
    const ring = h.service.supervisor.ring<RecordRing>('control.gw0');
    const written = ring.stats().recordsIn;
    const before = h.service.supervisor.incarnation('gateway-0');
    await h.service.supervisor.crash('gateway-0', 'test: control snapshot after restart');
    const deadline = Date.now() + 10_000;
    while (!(h.service.supervisor.incarnation('gateway-0') === before + 1 && h.service.supervisor.health().ok) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(h.service.supervisor.incarnation('gateway-0')).toBe(before + 1);
    // The main thread wrote its retained messages (control, scene) into the ring again.
    while (ring.stats().recordsIn < written + 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(ring.stats().recordsIn).toBeGreaterThanOrEqual(written + 2);
    const got = await snapshotOf();
    expect(got.data).toMatchObject({ level: 'advanced', paused: true });
  }, 30_000);
});
