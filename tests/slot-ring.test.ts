import { describe, expect, it } from 'vitest';
import { RecordRing } from '../src/shared/record-ring.js';
import { SlotRing, type SlotMeta } from '../src/shared/slot-ring.js';
import { CTL_STOP, frameWord } from './fixtures/ring-common.js';
import type { SlotConsumerResult } from './fixtures/ring-slot-consumer.js';
import type { SlotProducerData, SlotProducerResult } from './fixtures/ring-slot-producer.js';
import { newCtl, startFixture } from './helpers/ring-workers.js';

function fillFrame(ring: SlotRing, i: number, key: number, length: number): void {
  const w = ring.slotI32(i);
  for (let k = 0; k < length >> 2; k++) w[k] = frameWord(key, k);
}

function queuePair(ring: SlotRing, p: Omit<SlotProducerData, 'sab' | 'ctl'>, slowUs = 0) {
  const ctl = newCtl();
  const consumer = startFixture<SlotConsumerResult>('ring-slot-consumer', { sab: ring.sab, ctl: ctl.sab, slowUs });
  const producer = startFixture<SlotProducerResult>('ring-slot-producer', { sab: ring.sab, ctl: ctl.sab, ...p });
  return Promise.all([producer.result, consumer.result]);
}

describe('SlotRing queue mode across threads', () => {
  it('delivers every frame in order, in place and intact (block policy)', async () => {
    const ring = SlotRing.create({ slots: 4, slotBytes: 16384, mode: 'queue', policy: 'block', blockTimeoutMs: 10_000 });
    const count = 20_000;
    const [p, c] = await queuePair(ring, { count, length: 16384 });
    expect(p).toEqual({ published: count, refused: 0 });
    expect(c).toMatchObject({ delivered: count, corrupt: 0, outOfOrder: 0, gaps: 0 });
    expect(ring.stats()).toMatchObject({ kind: 'slot', capacity: 4, depth: 0, recordsIn: count, recordsOut: count });
  });

  it('drop-newest with a slow consumer: delivered + dropped == attempted, nothing twice', async () => {
    const ring = SlotRing.create({ slots: 3, slotBytes: 4096, mode: 'queue', policy: 'drop-newest' });
    const count = 20_000;
    const [p, c] = await queuePair(ring, { count, length: 4096 }, 20);
    const s = ring.stats();
    expect(s.drops['drop-newest']).toBeGreaterThan(0);
    expect(p.refused).toBe(s.drops['drop-newest']);
    expect(c.delivered).toBe(p.published);
    expect(c.delivered + s.drops['drop-newest']).toBe(count);
    expect(c).toMatchObject({ corrupt: 0, outOfOrder: 0 });
  });

  it('overwrite-oldest: delivered + overwritten == published, tags strictly increase, copies intact', async () => {
    const ring = SlotRing.create({ slots: 3, slotBytes: 8192, mode: 'queue', policy: 'overwrite-oldest' });
    const count = 20_000;
    const [p, c] = await queuePair(ring, { count, length: 8192 }, 20);
    const s = ring.stats();
    expect(p).toEqual({ published: count, refused: 0 });
    expect(s.drops['overwrite-oldest']).toBeGreaterThan(0);
    expect(c.delivered + s.drops['overwrite-oldest']).toBe(count);
    expect(c.gaps).toBe(s.drops['overwrite-oldest']);
    expect(c).toMatchObject({ corrupt: 0, outOfOrder: 0 });
  });
});

describe('SlotRing latest mode across threads', () => {
  it('two readers never accept a torn frame while a fast writer laps them', async () => {
    const ring = SlotRing.create({ slots: 3, slotBytes: 32768, mode: 'latest', name: 'frames' });
    const ctl = newCtl();
    const readers = [0, 1].map(() => startFixture<SlotConsumerResult>('ring-slot-consumer', { sab: ring.sab, ctl: ctl.sab }));
    const writer = startFixture<SlotProducerResult>('ring-slot-producer', { sab: ring.sab, ctl: ctl.sab, count: 1e9, length: 32768, burst: 40, pauseMs: 1 });
    await new Promise((r) => setTimeout(r, 1500));
    Atomics.store(ctl.i32, CTL_STOP, 1);
    const [w, ...rs] = await Promise.all([writer.result, ...readers.map((r) => r.result)]);
    expect(w.published).toBeGreaterThan(1000);
    for (const r of rs) {
      expect(r.corrupt).toBe(0);
      expect(r.outOfOrder).toBe(0);
      expect(r.delivered).toBeGreaterThan(50);
    }
    const totals = ring.latestTotals();
    expect(totals.reads).toBe(rs[0].delivered + rs[1].delivered);
    expect(totals.torn).toBe(rs[0].torn + rs[1].torn);
    expect(totals.skipped).toBe(rs[0].skipped + rs[1].skipped);
    expect(ring.stats().recordsOut).toBe(totals.reads);
  });
});

describe('SlotRing in one thread', () => {
  it('readLatest reports a frame rewritten during the handler as torn', () => {
    const ring = SlotRing.create({ slots: 2, slotBytes: 64, mode: 'latest' });
    const reader = SlotRing.attach(ring.sab);
    const write = (key: number) => { const i = ring.acquire(); fillFrame(ring, i, key, 64); ring.publish(i, 64); };
    write(1);
    let handled = 0;
    // While the reader looks at slot 0 the writer laps it (slot 1, then slot 0 again).
    expect(reader.readLatest(() => { handled++; write(2); write(3); })).toBe(false);
    expect(handled).toBe(1);
    expect(reader.torn).toBe(1);
    let seen = 0;
    expect(reader.readLatest((view, seq) => {
      seen = seq;
      const w = new Int32Array(view.buffer, view.byteOffset, 16);
      for (let k = 0; k < 16; k++) expect(w[k]).toBe(frameWord(3, k));
    })).toBe(true);
    expect(seen).toBe(3);
    expect(reader.readLatest(() => { throw new Error('nothing new: must not be called'); })).toBe(false);
    write(4); write(5); write(6);
    expect(reader.readLatest(() => undefined)).toBe(true);
    expect(reader.skipped).toBe(2); // frames 4 and 5
    expect(ring.latestTotals()).toEqual({ reads: 2, torn: 1, skipped: 2 });
  });

  it('passes length, tag and timestamp through the slot metadata', () => {
    const ring = SlotRing.create({ slots: 3, slotBytes: 256, mode: 'latest' });
    const i = ring.acquire();
    ring.publish(i, 100, 0xdeadbeef, 1234.5);
    let meta: SlotMeta | undefined;
    expect(SlotRing.attach(ring.sab).readLatest((_v, _s, m) => { meta = { ...m }; })).toBe(true);
    expect(meta).toEqual({ slot: i, length: 100, tag: 0xdeadbeef, timestamp: 1234.5, frame: 1 });
  });

  it('queue poll commits after the handler: a throwing handler gets the frame again', () => {
    const ring = SlotRing.create({ slots: 2, slotBytes: 64, mode: 'queue' });
    const i = ring.acquire();
    fillFrame(ring, i, 9, 64);
    ring.publish(i, 64, 9);
    expect(() => ring.poll(() => { throw new Error('crash'); })).toThrow('crash');
    const again = SlotRing.attach(ring.sab);
    const tags: number[] = [];
    expect(again.poll((_v, _s, m) => tags.push(m.tag))).toBe(1);
    expect(tags).toEqual([9]);
    expect(again.poll(() => undefined)).toBe(0);
  });

  it('block policy gives up after blockTimeoutMs and counts it', () => {
    const ring = SlotRing.create({ slots: 2, slotBytes: 64, mode: 'queue', policy: 'block', blockTimeoutMs: 50 });
    for (let k = 0; k < 2; k++) ring.publish(ring.acquire());
    const t0 = performance.now();
    expect(ring.acquire()).toBe(-1);
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(45);
    expect(waited).toBeLessThan(1000);
    expect(ring.stats().drops['block-timeout']).toBe(1);
  });

  it('waitReadable / waitReadableAsync time out on time in both modes', async () => {
    for (const mode of ['queue', 'latest'] as const) {
      const ring = SlotRing.create({ slots: 2, slotBytes: 64, mode });
      let t0 = performance.now();
      expect(ring.waitReadable(30)).toBe(false);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
      expect(performance.now() - t0).toBeLessThan(500);
      t0 = performance.now();
      expect(await ring.waitReadableAsync(30)).toBe(false);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
      expect(performance.now() - t0).toBeLessThan(500);
      ring.publish(ring.acquire());
      expect(ring.waitReadable(10_000)).toBe(true);
    }
  });

  it('rejects bad options, buffers and calls with clear errors', () => {
    expect(() => SlotRing.create({ slots: 2, slotBytes: 64, mode: 'ring' as never })).toThrow(/mode must be/);
    expect(() => SlotRing.create({ slots: 0, slotBytes: 64, mode: 'queue' })).toThrow(/slots must be/);
    expect(() => SlotRing.create({ slots: 1, slotBytes: 64, mode: 'latest' })).toThrow(/slots must be an integer in 2/);
    expect(() => SlotRing.create({ slots: 2, slotBytes: 0, mode: 'queue' })).toThrow(/slotBytes/);
    expect(() => SlotRing.create({ slots: 2, slotBytes: 64, mode: 'queue', policy: 'x' as never })).toThrow(/policy/);
    expect(() => SlotRing.attach(new SharedArrayBuffer(8192))).toThrow(/not a ringcast ring/);
    expect(() => SlotRing.attach(RecordRing.create({ capacityBytes: 1024 }).sab)).toThrow(/holds a RecordRing, not a SlotRing/);
    const ring = SlotRing.create({ slots: 2, slotBytes: 64, mode: 'queue' });
    expect(() => ring.publish(0)).toThrow(/acquired slot is -1/);
    const i = ring.acquire();
    expect(() => ring.publish(i, 65)).toThrow(/publish length/);
    expect(() => ring.readLatest(() => undefined)).toThrow(/queue mode/);
    expect(() => SlotRing.create({ slots: 2, slotBytes: 64, mode: 'latest' }).poll(() => undefined)).toThrow(/latest mode/);
  });
});
