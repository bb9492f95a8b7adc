import { describe, expect, it } from 'vitest';
import { MergedReader } from '../src/shared/merged-reader.js';
import { RecordRing } from '../src/shared/record-ring.js';
import type { MergedConsumerResult } from './fixtures/ring-merged-consumer.js';
import type { RingProducerResult } from './fixtures/ring-producer.js';
import { newCtl, startFixture } from './helpers/ring-workers.js';

function putByte(ring: RecordRing, b: number): void {
  expect(ring.tryWrite(new Uint8Array([b]))).toBe(true);
}

describe('MergedReader across threads', () => {
  it('merges three producer threads: every record once, in per-producer order, uncorrupted', async () => {
    const n = 3;
    const count = 300_000;
    const rings = Array.from({ length: n }, (_, k) => RecordRing.create({ capacityBytes: 1 << 14, policy: 'block', blockTimeoutMs: 10_000, name: `p${k}` }));
    const ctl = newCtl();
    const shared = { minLen: 12, maxLen: 90 };
    const consumer = startFixture<MergedConsumerResult>('ring-merged-consumer', { sabs: rings.map((r) => r.sab), ctl: ctl.sab, seed: 40, ...shared });
    const producers = rings.map((r, k) => startFixture<RingProducerResult>('ring-producer', {
      sab: r.sab, ctl: ctl.sab, seed: 40 + k, tag: k, count, publishEvery: 1 + k * 7, ...shared,
      // the last producer trickles, so the consumer also sleeps on rings other than the busy one
      ...(k === n - 1 ? { pauseEvery: 5_000, pauseMs: 2 } : {}),
    }));
    const [c, ...ps] = await Promise.all([consumer.result, ...producers.map((p) => p.result)]);
    for (const p of ps) expect(p).toMatchObject({ published: count, refused: 0 });
    expect(c).toEqual({ delivered: [count, count, count], corrupt: 0, badSource: 0, outOfOrder: 0, gaps: 0 });
    const totals = new MergedReader(rings).totals();
    expect(totals).toMatchObject({ recordsIn: n * count, recordsOut: n * count, depth: 0, name: 'p0+p1+p2' });
  });

  it('waitReadable wakes within a slice when a ring other than the last active one gets data', async () => {
    const rings = [0, 1].map(() => RecordRing.create({ capacityBytes: 4096 }));
    const reader = new MergedReader(rings, { sliceMs: 5 });
    putByte(rings[0], 1);
    expect(reader.poll(() => undefined)).toBe(1); // ring 0 is now the "hot" one
    const ctl = newCtl();
    const producer = startFixture<RingProducerResult>('ring-producer', { sab: rings[1].sab, ctl: ctl.sab, seed: 1, count: 1, minLen: 12, maxLen: 12, pauseEvery: 1, pauseMs: 0 });
    const t0 = performance.now();
    expect(reader.waitReadable(10_000)).toBe(true); // main thread blocks; the producer thread publishes
    expect(performance.now() - t0).toBeLessThan(5_000);
    await producer.result;
    const sources: number[] = [];
    expect(reader.poll((_d, _o, _l, source) => sources.push(source))).toBe(1);
    expect(sources).toEqual([1]);
  });
});

describe('MergedReader in one thread', () => {
  it('polls round-robin so a flooding producer cannot starve the others', () => {
    const rings = [0, 1, 2].map(() => RecordRing.create({ capacityBytes: 1 << 14 }));
    for (let i = 0; i < 100; i++) putByte(rings[0], i);
    for (let i = 0; i < 5; i++) putByte(rings[1], 100 + i);
    for (let i = 0; i < 5; i++) putByte(rings[2], 200 + i);
    const reader = new MergedReader(rings, { batchPerRing: 4 });
    const seen: Array<[number, number]> = [];
    const got = reader.poll((d, o, _l, source) => seen.push([source, d[o]]), 12);
    expect(got).toBe(12);
    expect(seen.filter(([s]) => s === 0)).toHaveLength(4);
    expect(seen.filter(([s]) => s === 1)).toHaveLength(4);
    expect(seen.filter(([s]) => s === 2)).toHaveLength(4);
    // the next call starts one ring later and keeps per-ring order
    seen.length = 0;
    reader.poll((d, o, _l, source) => seen.push([source, d[o]]), 3);
    expect(seen[0]).toEqual([1, 104]);
    // drain: everything comes out exactly once
    let total = 12 + 3;
    for (let n = reader.poll(() => undefined, 1000); n > 0; n = reader.poll(() => undefined, 1000)) total += n;
    expect(total).toBe(110);
    expect(reader.available()).toBe(0);
  });

  it('waitReadable and waitReadableAsync time out on time across all rings', async () => {
    const reader = new MergedReader([0, 1, 2].map(() => RecordRing.create({ capacityBytes: 1024 })), { sliceMs: 3 });
    let t0 = performance.now();
    expect(reader.waitReadable(40)).toBe(false);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(35);
    expect(performance.now() - t0).toBeLessThan(500);
    t0 = performance.now();
    expect(await reader.waitReadableAsync(40)).toBe(false);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(35);
    expect(performance.now() - t0).toBeLessThan(500);
    putByte(reader.rings[2], 1);
    expect(await reader.waitReadableAsync(10_000)).toBe(true);
    expect(reader.waitReadable(10_000)).toBe(true);
  });

  it('rejects bad inputs with clear errors', () => {
    const ring = RecordRing.create({ capacityBytes: 1024 });
    expect(() => new MergedReader([])).toThrow(/non-empty array/);
    expect(() => new MergedReader([{} as RecordRing])).toThrow(/must be a RecordRing/);
    expect(() => new MergedReader([ring, RecordRing.attach(ring.sab)])).toThrow(/listed twice/);
    expect(() => new MergedReader([ring], { batchPerRing: 0 })).toThrow(/batchPerRing/);
    expect(() => MergedReader.attach([new SharedArrayBuffer(4096)])).toThrow(/not a ringcast ring/);
    expect(() => new MergedReader([ring]).waitReadable(Number.NaN)).toThrow(/never unbounded/);
  });
});
