import { describe, expect, it } from 'vitest';
import { RecordRing } from '../src/shared/record-ring.js';
import { SlotRing } from '../src/shared/slot-ring.js';
import { attachRing } from '../src/shared/rings.js';
import { CTL_DELIVERED, CTL_LAST_SEEN, checksumOk, get32, recordLength, writeRecord } from './fixtures/ring-common.js';
import type { RingConsumerData, RingConsumerResult } from './fixtures/ring-consumer.js';
import type { RingProducerData, RingProducerResult } from './fixtures/ring-producer.js';
import { newCtl, startFixture, until } from './helpers/ring-workers.js';

/** Header word of the write position (documented layout: line 2, byte 128). */
const I_WRITE = 128 >> 2;

function pair(ring: RecordRing, p: Omit<RingProducerData, 'sab' | 'ctl'>, c: Omit<RingConsumerData, 'sab' | 'ctl' | 'seed' | 'minLen' | 'maxLen'> = {}) {
  const ctl = newCtl();
  const consumer = startFixture<RingConsumerResult>('ring-consumer', { sab: ring.sab, ctl: ctl.sab, seed: p.seed, minLen: p.minLen, maxLen: p.maxLen, ...c });
  const producer = startFixture<RingProducerResult>('ring-producer', { sab: ring.sab, ctl: ctl.sab, ...p });
  return { ctl, consumer, producer };
}

describe('RecordRing across threads', () => {
  it('delivers 2 M random-size records with no loss, duplicate or corruption (block policy, batched publish)', async () => {
    const ring = RecordRing.create({ capacityBytes: 1 << 16, policy: 'block', blockTimeoutMs: 10_000, name: 'bulk' });
    const count = 2_000_000;
    const { consumer, producer } = pair(ring, { seed: 11, count, minLen: 12, maxLen: 120, publishEvery: 16 }, { batch: 512 });
    const [p, c] = await Promise.all([producer.result, consumer.result]);
    expect(p).toMatchObject({ published: count, refused: 0 });
    expect(c).toMatchObject({ delivered: count, corrupt: 0, badLength: 0, outOfOrder: 0, gaps: 0, firstSeq: 0, lastSeq: count - 1 });
    const s = ring.stats();
    expect(s).toMatchObject({ recordsIn: count, recordsOut: count, depth: 0 });
    expect(Object.values(s.drops).every((n) => n === 0)).toBe(true);
  });

  it('keeps working across the 2^32 wrap of its position counters', async () => {
    const start = 2 ** 32 - 200_000; // wraps after ~200 kB, then keeps going
    const ring = RecordRing.create({ capacityBytes: 4096, policy: 'block', blockTimeoutMs: 10_000, startPosition: start });
    const count = 300_000;
    const { consumer, producer } = pair(ring, { seed: 5, count, minLen: 12, maxLen: 300, publishEvery: 4 }, { batch: 64 });
    const [p, c] = await Promise.all([producer.result, consumer.result]);
    expect(p.published).toBe(count);
    expect(c).toMatchObject({ delivered: count, corrupt: 0, badLength: 0, outOfOrder: 0, gaps: 0 });
    const w = Atomics.load(new Int32Array(ring.sab, 0, 256), I_WRITE) >>> 0;
    expect(w).toBeLessThan(start); // it really wrapped
    expect(w).toBeGreaterThan(count * 8);
    expect(ring.available()).toBe(0);
  });

  it('drop-newest with a slow consumer: every record is delivered once or counted as dropped', async () => {
    const ring = RecordRing.create({ capacityBytes: 2048, policy: 'drop-newest' });
    const count = 200_000;
    const { consumer, producer } = pair(ring, { seed: 3, count, minLen: 12, maxLen: 200 }, { batch: 8, slowUs: 2 });
    const [p, c] = await Promise.all([producer.result, consumer.result]);
    const s = ring.stats();
    expect(s.drops['drop-newest']).toBeGreaterThan(0);
    expect(p.refused).toBe(s.drops['drop-newest']);
    expect(s.recordsIn).toBe(p.published);
    expect(p.published + s.drops['drop-newest']).toBe(count);
    expect(c.delivered).toBe(p.published);
    expect(c.delivered + c.gaps + c.firstSeq + (count - 1 - c.lastSeq)).toBe(count); // every seq accounted for
    expect(c).toMatchObject({ corrupt: 0, badLength: 0, outOfOrder: 0 });
    expect(c.gaps + c.firstSeq + (count - 1 - c.lastSeq)).toBe(s.drops['drop-newest']);
  });

  it('overwrite-oldest: delivered + overwritten == written and delivered seqs strictly increase', async () => {
    const ring = RecordRing.create({ capacityBytes: 4096, policy: 'overwrite-oldest' });
    const count = 300_000;
    const { consumer, producer } = pair(ring, { seed: 8, count, minLen: 12, maxLen: 150 }, { batch: 16, slowUs: 1 });
    const [p, c] = await Promise.all([producer.result, consumer.result]);
    const s = ring.stats();
    expect(p).toMatchObject({ published: count, refused: 0 });
    expect(s.drops['overwrite-oldest']).toBeGreaterThan(0);
    expect(c.delivered + s.drops['overwrite-oldest']).toBe(count);
    expect(s.recordsOut).toBe(c.delivered);
    expect(c).toMatchObject({ corrupt: 0, badLength: 0, outOfOrder: 0 });
    expect(c.gaps + c.firstSeq + (count - 1 - c.lastSeq)).toBe(s.drops['overwrite-oldest']);
  });

  it('a consumer re-attached after its thread was terminated mid-stream resumes at the committed position', async () => {
    const ring = RecordRing.create({ capacityBytes: 1 << 14, policy: 'block', blockTimeoutMs: 20_000 });
    const count = 100_000;
    const batch = 50;
    const shared = { seed: 21, minLen: 12, maxLen: 64 };
    const ctl = newCtl();
    const producer = startFixture<RingProducerResult>('ring-producer', { sab: ring.sab, ctl: ctl.sab, count, ...shared });
    const first = startFixture<RingConsumerResult>('ring-consumer', { sab: ring.sab, ctl: ctl.sab, ...shared, batch, slowUs: 5, progress: true });
    await until(() => Atomics.load(ctl.i32, CTL_DELIVERED) > 5_000, 20_000, 'first consumer to get going');
    await first.worker.terminate();
    const lastSeen = Atomics.load(ctl.i32, CTL_LAST_SEEN);
    const committed = ring.stats().recordsOut;
    expect(committed).toBeGreaterThan(0);
    expect(committed).toBeLessThan(count);
    // seq i is record i (no drops), so the committed count is the next seq to deliver.
    expect(committed).toBeLessThanOrEqual(lastSeen + 1);
    expect(lastSeen + 1 - committed).toBeLessThanOrEqual(batch); // duplicate window: one batch

    const second = startFixture<RingConsumerResult>('ring-consumer', { sab: ring.sab, ctl: ctl.sab, ...shared, batch });
    const [p, c] = await Promise.all([producer.result, second.result]);
    expect(p.published).toBe(count);
    expect(c).toMatchObject({ firstSeq: committed, lastSeq: count - 1, delivered: count - committed, gaps: 0, outOfOrder: 0, corrupt: 0 });
    expect(ring.stats().recordsOut).toBe(count);
  });
});

describe('RecordRing in one thread', () => {
  it('publishes nothing until flush() when commit(false) batches', () => {
    const ring = RecordRing.create({ capacityBytes: 1024 });
    for (let i = 0; i < 3; i++) {
      const at = ring.reserve(16);
      writeRecord(ring.data, at, 16, i, 0);
      ring.commit(false);
    }
    expect(ring.available()).toBe(0);
    expect(ring.poll(() => undefined)).toBe(0);
    expect(ring.recordsWritten).toBe(0);
    ring.flush();
    expect(ring.recordsWritten).toBe(3);
    const seqs: number[] = [];
    expect(ring.poll((d, at, len) => { expect(checksumOk(d, at, len)).toBe(true); seqs.push(get32(d, at)); })).toBe(3);
    expect(seqs).toEqual([0, 1, 2]);
  });

  it('hands out contiguous 8-aligned payloads, wrapping with a marker instead of splitting', () => {
    const ring = RecordRing.create({ capacityBytes: 256 });
    const seen: number[] = [];
    for (let i = 0; i < 200; i++) {
      const len = recordLength(i, 1, 12, 100);
      const at = ring.reserve(len);
      expect(at % 8).toBe(0);
      expect(at + len).toBeLessThanOrEqual(ring.capacity);
      writeRecord(ring.data, at, len, i, 0);
      ring.commit();
      ring.poll((d, o, l) => { expect(l).toBe(len); expect(checksumOk(d, o, l)).toBe(true); seen.push(get32(d, o)); });
    }
    expect(seen).toEqual(Array.from({ length: 200 }, (_, i) => i));
  });

  it('re-delivers a batch whose handler threw (nothing of it was committed)', () => {
    const ring = RecordRing.create({ capacityBytes: 1024 });
    for (let i = 0; i < 5; i++) expect(ring.tryWrite(new Uint8Array([i, i, i, i]))).toBe(true);
    let calls = 0;
    expect(() => ring.poll(() => { if (++calls === 3) throw new Error('boom'); })).toThrow('boom');
    expect(ring.stats().recordsOut).toBe(0);
    const again: number[] = [];
    expect(ring.poll((d, o) => again.push(d[o]))).toBe(5);
    expect(again).toEqual([0, 1, 2, 3, 4]);
  });

  it('maxRecords: 1 commits after every record', () => {
    const ring = RecordRing.create({ capacityBytes: 1024 });
    for (let i = 0; i < 3; i++) ring.tryWrite(new Uint8Array([i]));
    expect(ring.poll(() => undefined, 1)).toBe(1);
    expect(ring.stats().recordsOut).toBe(1);
    const rest = RecordRing.attach(ring.sab);
    const got: number[] = [];
    rest.poll((d, o) => got.push(d[o]));
    expect(got).toEqual([1, 2]);
  });

  it('overwrite-oldest hands out a private copy at the same offsets and keeps the newest records', () => {
    const ring = RecordRing.create({ capacityBytes: 256, policy: 'overwrite-oldest' });
    for (let i = 0; i < 40; i++) {
      const at = ring.reserve(20);
      writeRecord(ring.data, at, 20, i, 0);
      ring.commit();
    }
    const seqs: number[] = [];
    ring.poll((data, at, len) => {
      expect(data).not.toBe(ring.data);
      expect(checksumOk(data, at, len)).toBe(true);
      expect(get32(ring.data, at)).toBe(get32(data, at)); // same offset, nothing overwrote it yet
      seqs.push(get32(data, at));
    });
    expect(seqs.length).toBeGreaterThan(0);
    expect(seqs[seqs.length - 1]).toBe(39);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, k) => 40 - seqs.length + k));
    expect(ring.stats().drops['overwrite-oldest']).toBe(40 - seqs.length);
  });

  it('readInto copies one record out and commits it', () => {
    const ring = RecordRing.create({ capacityBytes: 1024 });
    ring.tryWrite(new Uint8Array([7, 8, 9]));
    const dest = new Uint8Array(8);
    expect(ring.readInto(dest)).toBe(3);
    expect([...dest.subarray(0, 3)]).toEqual([7, 8, 9]);
    expect(ring.readInto(dest)).toBe(-1);
  });

  it('block policy gives up after blockTimeoutMs and counts a block-timeout', () => {
    const ring = RecordRing.create({ capacityBytes: 256, policy: 'block', blockTimeoutMs: 60 });
    let n = 0;
    while (ring.available() + 8 + 100 <= 256) { expect(ring.tryWrite(new Uint8Array(100))).toBe(true); n++; }
    expect(n).toBeGreaterThan(0);
    const t0 = performance.now();
    expect(ring.reserve(100)).toBe(-1);
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(55);
    expect(waited).toBeLessThan(1000);
    const s = ring.stats();
    expect(s.drops['block-timeout']).toBe(1);
    expect(s.waitMs).toBeGreaterThanOrEqual(55);
  });

  it('refuses records larger than capacity/2 - 8 and counts them as too-large', () => {
    const ring = RecordRing.create({ capacityBytes: 1024 });
    expect(ring.maxRecordBytes).toBe(504);
    expect(ring.reserve(505)).toBe(-1);
    expect(ring.tryWrite(new Uint8Array(4096))).toBe(false);
    expect(ring.reserve(504)).toBeGreaterThanOrEqual(0);
    expect(ring.stats().drops['too-large']).toBe(2);
  });

  it('waitReadable and waitReadableAsync return false after their timeout, not later', async () => {
    const ring = RecordRing.create({ capacityBytes: 1024 });
    let t0 = performance.now();
    expect(ring.waitReadable(40)).toBe(false);
    let waited = performance.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(35);
    expect(waited).toBeLessThan(500);
    t0 = performance.now();
    expect(await ring.waitReadableAsync(40)).toBe(false);
    waited = performance.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(35);
    expect(waited).toBeLessThan(500);
    expect(ring.stats().waitMs).toBeGreaterThanOrEqual(70);
    ring.tryWrite(new Uint8Array(1));
    expect(ring.waitReadable(10_000)).toBe(true);
  });

  it('waitReadableAsync wakes as soon as another thread publishes', async () => {
    const ring = RecordRing.create({ capacityBytes: 1 << 12 });
    const ctl = newCtl();
    const wait = ring.waitReadableAsync(20_000);
    const t0 = performance.now();
    const producer = startFixture<RingProducerResult>('ring-producer', { sab: ring.sab, ctl: ctl.sab, seed: 1, count: 1, minLen: 12, maxLen: 12 });
    expect(await wait).toBe(true);
    expect(performance.now() - t0).toBeLessThan(5_000);
    await producer.result;
  });

  it('rejects bad options, bad buffers and bad arguments with clear errors', () => {
    expect(() => RecordRing.create({ capacityBytes: 0 })).toThrow(/capacityBytes/);
    expect(() => RecordRing.create({ capacityBytes: Number.NaN })).toThrow(/capacityBytes/);
    expect(() => RecordRing.create({ capacityBytes: 2 ** 31 })).toThrow(/capacityBytes/);
    expect(() => RecordRing.create({ capacityBytes: 1024, policy: 'lossy' as never })).toThrow(/policy must be one of/);
    expect(() => RecordRing.create({ capacityBytes: 1024, blockTimeoutMs: Infinity })).toThrow(/never unbounded/);
    expect(() => RecordRing.create({ capacityBytes: 1024, name: 'x'.repeat(65) })).toThrow(/name/);
    expect(() => RecordRing.create({ capacityBytes: 1024, startPosition: 3 })).toThrow(/startPosition/);
    expect(() => RecordRing.attach(new ArrayBuffer(2048) as unknown as SharedArrayBuffer)).toThrow(/expected a SharedArrayBuffer/);
    expect(() => RecordRing.attach(new SharedArrayBuffer(100))).toThrow(/too small/);
    expect(() => RecordRing.attach(new SharedArrayBuffer(4096))).toThrow(/not a ringcast ring/);
    const slot = SlotRing.create({ slots: 2, slotBytes: 64, mode: 'queue' });
    expect(() => RecordRing.attach(slot.sab)).toThrow(/holds a SlotRing, not a RecordRing/);
    const ring = RecordRing.create({ capacityBytes: 1024, name: 'named' });
    expect(() => ring.reserve(-1)).toThrow(/non-negative integer/);
    expect(() => ring.reserve(1.5)).toThrow(/non-negative integer/);
    expect(() => ring.commit()).toThrow(/without a successful reserve/);
    expect(() => ring.waitReadable(Infinity)).toThrow(/never unbounded/);
    const again = attachRing(ring.sab);
    expect(again).toBeInstanceOf(RecordRing);
    expect(again.stats()).toMatchObject({ kind: 'record', name: 'named', capacity: 1024 });
    expect(attachRing(slot.sab)).toBeInstanceOf(SlotRing);
    expect(() => attachRing(new SharedArrayBuffer(64))).toThrow(/not a ringcast ring/);
  });

  it('attach reads capacity, policy and name from the header', () => {
    const ring = RecordRing.create({ capacityBytes: 3000, policy: 'overwrite-oldest', blockTimeoutMs: 7, name: 'fréquence' });
    const a = RecordRing.attach(ring.sab);
    expect(a.capacity).toBe(4096);
    expect(a.policy).toBe('overwrite-oldest');
    expect(a.blockTimeoutMs).toBe(7);
    expect(a.name).toBe('fréquence');
  });
});
