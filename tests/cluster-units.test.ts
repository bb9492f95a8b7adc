/**
 * The cluster's pieces without Redis: the PUB/SUB batch and retained-value formats and their
 * checks, the history stamp, and the `/ws` subscription's `since` validation.
 */
import { describe, expect, it } from 'vitest';
import { BatchBuilder, checkRecord, decodeBatch, decodeRetained, encodeBatch, encodeRetained, originBytes } from '../src/actors/cluster/wire.js';
import { runOfKey, stampBody } from '../src/shared/cluster-history.js';
import { parseSubscription } from '../src/actors/gateway/subscription.js';
import { FanoutFlag, FanoutType, encodeFanoutRecord, readFanoutRecord } from '../src/shared/telemetry/ring-records.js';
import { Readiness, type ReadinessSource } from '../src/services/health/readiness.js';
import type { FfmpegStatus } from '../src/services/health/ffmpeg-status.js';

const body = (s: string) => new TextEncoder().encode(s);
const record = (key: string, text: string, flags = 0) => encodeFanoutRecord({ type: FanoutType.Update, channel: 4, levelMask: 7, flags, key, stamp: 123, body: body(text) });

describe('cluster wire format', () => {
  it('a batch carries its origin and records byte for byte', () => {
    const records = [record('milestone:r1', '{"type":"milestone"}', FanoutFlag.Critical), record('ppo_metrics:r1', '{"type":"ppo_metrics"}')];
    const decoded = decodeBatch(encodeBatch(originBytes('node-a'), records));
    expect(decoded.error).toBeUndefined();
    expect(decoded.origin).toBe('node-a');
    expect(decoded.records.map((r) => Buffer.from(r).toString('hex'))).toEqual(records.map((r) => Buffer.from(r).toString('hex')));
    const view = readFanoutRecord(decoded.records[0], 0, decoded.records[0].byteLength);
    expect([view.key, view.flags, view.stamp]).toEqual(['milestone:r1', FanoutFlag.Critical, 123]);
  });

  it('the batch builder writes the same format in place, growing past its first buffer, and starts afresh after take()', () => {
    const builder = new BatchBuilder(originBytes('node-a'), 64);
    const records = Array.from({ length: 20 }, (_, i) => record(`ppo_metrics:r${i}`, `{"type":"ppo_metrics","i":${i}}`));
    const ring = new Uint8Array(4096);
    let at = 100;
    for (const r of records) { ring.set(r, at); builder.add(ring, at, r.byteLength); at += r.byteLength; }
    expect(builder.count).toBe(20);
    const { message, count } = builder.take();
    expect(count).toBe(20);
    expect(message.equals(encodeBatch(originBytes('node-a'), records))).toBe(true);
    expect(builder.count).toBe(0);
    builder.add(records[0], 0, records[0].byteLength);
    expect(decodeBatch(builder.take().message)).toMatchObject({ origin: 'node-a', records: [records[0]] });
  });

  it('malformed batches keep what came before the fault and say what it was', () => {
    const good = record('k', '{"type":"x"}');
    const whole = encodeBatch(originBytes('n'), [good, good]);
    const cut = decodeBatch(whole.subarray(0, whole.byteLength - 3));
    expect(cut.records).toHaveLength(1);
    expect(cut.error).toMatch(/runs past the batch/);
    expect(decodeBatch(Buffer.from([9, 1])).error).toMatch(/shorter than its origin/);
    expect(decodeBatch(Buffer.alloc(0)).error).toBeDefined();
  });

  it('refuses records a gateway must not take', () => {
    expect(checkRecord(record('k', '{}'))).toBeUndefined();
    expect(checkRecord(new Uint8Array(5))).toMatch(/shorter than its header/);
    const exp = encodeFanoutRecord({ type: FanoutType.Experience, channel: 0, levelMask: 7, flags: 0, key: '1', stamp: 0, body: new Uint8Array(4) });
    expect(checkRecord(exp)).toMatch(/type 2 is not relayed/);
    const badChannel = record('k', '{}');
    badChannel[1] = 200;
    expect(checkRecord(badChannel)).toMatch(/unknown channel 200/);
    const badKey = record('k', '{}');
    badKey[4] = 250;
    expect(checkRecord(badKey)).toMatch(/key longer than the record/);
  });

  it('retained values carry their origin; garbage is refused with the reason', () => {
    const r = record('game_state:r1', '{"type":"game_state"}', FanoutFlag.Retain);
    const ok = decodeRetained(encodeRetained(originBytes('node-b'), r));
    expect(ok).toMatchObject({ origin: 'node-b' });
    expect(decodeRetained(Buffer.from('garbage'))).toHaveProperty('error');
  });

  it('a critical message is stamped with run, offset and epoch in front, still one JSON object', () => {
    const stamped = stampBody(body('{"type":"milestone","timestamp":5,"data":{"name":"m1"}}'), 'r1', 7, 'ep0ch');
    expect(JSON.parse(Buffer.from(stamped).toString())).toEqual({ run: 'r1', offset: 7, epoch: 'ep0ch', type: 'milestone', timestamp: 5, data: { name: 'm1' } });
    expect(runOfKey('milestone:my-run:2')).toBe('my-run:2');
    expect(runOfKey('milestone')).toBeUndefined();
    expect(runOfKey('milestone:has space')).toBeUndefined();
  });
});

describe('/ws subscription: since', () => {
  const parse = (o: unknown) => parseSubscription(JSON.stringify(o), 30);
  it('takes run, since and epoch together', () => {
    const p = parse({ channels: ['milestones'], run: 'r1', since: 12, epoch: 'abc123' });
    expect(p).toMatchObject({ ok: true, sub: { since: { run: 'r1', offset: 12, epoch: 'abc123' } } });
    const plain = parse({ channels: ['milestones'] });
    expect(plain.ok && 'since' in plain.sub).toBe(false);
  });

  it.each([
    [{ since: -1, run: 'r', epoch: 'e' }, /since must be a non-negative integer offset/],
    [{ since: 1.5, run: 'r', epoch: 'e' }, /since must be a non-negative integer offset/],
    [{ since: '3', run: 'r', epoch: 'e' }, /since must be a non-negative integer offset/],
    [{ since: 3, epoch: 'e' }, /since needs "run"/],
    [{ since: 3, run: 'a b', epoch: 'e' }, /since needs "run"/],
    [{ since: 3, run: 'r' }, /since needs "epoch"/],
    [{ since: 3, run: 'r', epoch: 'x'.repeat(65) }, /since needs "epoch"/],
    [{ run: 'r' }, /"run" and "epoch" go with "since"/],
  ])('refuses %j naming the problem', (sub, error) => {
    const p = parse(sub);
    expect(p.ok).toBe(false);
    expect(!p.ok && p.error).toMatch(error);
  });
});

describe('/readyz with an advisory check (a cluster node without Redis)', () => {
  it('a failing advisory check makes the node degraded, not unready; without one the report is as before', async () => {
    const supervisor: ReadinessSource = {
      health: () => ({ ok: true, actors: { aggregator: 'running' } }),
      actorNames: () => ['aggregator'],
      call: async () => undefined,
      ring: () => { throw new Error('no rings here'); },
    };
    const ffmpeg = { availability: { ok: false, reason: 'not needed' }, needed: [], details: () => ({}), register: () => undefined } as unknown as FfmpegStatus;
    let redisUp = false;
    const r = new Readiness({ supervisor, ffmpeg, rings: [], producers: [], advisory: [{ name: 'cluster', check: () => ({ ok: redisUp, detail: redisUp ? 'redis up' : 'redis down since …' }) }] });
    try {
      expect(await r.check()).toMatchObject({ ready: true, failing: [], degraded: ['cluster'], checks: { cluster: { ok: false } } });
      redisUp = true;
      expect(await r.check()).toMatchObject({ ready: true, failing: [], degraded: [], checks: { cluster: { ok: true, detail: 'redis up' } } });
    } finally {
      r.close();
    }
    const plain = new Readiness({ supervisor, ffmpeg, rings: [], producers: [] });
    try {
      const report = await plain.check();
      expect(report.ready).toBe(true);
      expect('degraded' in report).toBe(false);
    } finally {
      plain.close();
    }
  });
});
