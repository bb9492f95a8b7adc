/** Pure pieces of the experience stream: the v2 batch codec, filter parsing and the retained window. */
import { describe, expect, it } from 'vitest';
import { BatchWriter, BlockArena, decodeBatchV1, decodeBatchV2, encodeBatchV1, encodeBatchV2, recordBlock } from '../src/shared/telemetry/experience-batch.js';
import { FilterError, matchesFilter, parseFilter, PerGameCounts } from '../src/actors/gateway/experience-filter.js';
import { RetainedWindow, type RetainedRecord } from '../src/actors/gateway/experience-window.js';
import { defaultFilter } from '../src/actors/gateway/experience-stream.js';

describe('v2 experience batch', () => {
  for (const deflate of [false, true]) {
    it(`round-trips sequence numbers, records and the head${deflate ? ' (deflated)' : ''}`, () => {
      const records = [{ seq: 1_765_000_000_000_001, bytes: new Uint8Array([1, 2, 3]) }, { seq: 1_765_000_000_000_002, bytes: new Uint8Array(2000) }];
      const head = { seq_first: records[0].seq, seq_last: records[1].seq, count: 2, dropped: 3, missed: 4, server_time: 1234.5 };
      const encoded = encodeBatchV2(head, records, deflate);
      expect(encoded[0]).toBe(0x58);
      const decoded = decodeBatchV2(encoded);
      expect(decoded.head).toEqual(head);
      expect(decoded.records.map((r) => [r.seq, Buffer.from(r.bytes)])).toEqual(records.map((r) => [r.seq, Buffer.from(r.bytes)]));
      if (deflate) expect(encoded.byteLength).toBeLessThan(500); // 2000 zero bytes deflate to almost nothing
    });
  }
  it('refuses a batch whose head and body disagree', () => {
    const encoded = encodeBatchV2({ seq_first: 1, seq_last: 1, count: 2, dropped: 0, missed: 0, server_time: 0 }, [{ seq: 1, bytes: new Uint8Array(1) }]);
    expect(() => decodeBatchV2(encoded)).toThrow(/head says 2 records, body holds 1/);
  });
});

describe('batch writer (record blocks into one reused buffer)', () => {
  const events = [new Uint8Array([1, 2, 3]), Uint8Array.from({ length: 5000 }, (_, i) => i & 0xff), new Uint8Array(0), new Uint8Array([9])];
  const seqs = [1_765_000_000_000_001, 1_765_000_000_000_002, 1_765_000_000_000_005, 1_765_000_000_000_006];
  // Events sit inside a larger buffer, as in the fan-out ring.
  const ring = new Uint8Array(8000);
  const arena = new BlockArena(8192);
  const blocks = events.map((e, i) => { ring.set(e, 100 + i); return recordBlock(seqs[i], ring, 100 + i, e.byteLength, arena); });
  const records = events.map((bytes, i) => ({ seq: seqs[i], bytes }));
  const head = { seq_first: seqs[0], seq_last: seqs[3], count: 4, dropped: 1, missed: 2, server_time: 99 };

  for (const deflate of [false, true]) {
    it(`writes v2 byte-for-byte as encodeBatchV2 does${deflate ? ' (deflated)' : ''}, and again after a larger batch`, () => {
      const w = new BatchWriter();
      expect(Buffer.from(w.v2(head, blocks, deflate))).toEqual(Buffer.from(encodeBatchV2(head, records, deflate)));
      const big = Array.from({ length: 400 }, (_, i) => recordBlock(i + 1, new Uint8Array(5000).fill(i & 0xff), 0, 5000)); // 2 MB: past the first buffer
      const bigHead = { seq_first: 1, seq_last: 400, count: 400, dropped: 0, missed: 0, server_time: 1 };
      const decodedBig = decodeBatchV2(w.v2(bigHead, big, deflate));
      expect(decodedBig.records.map((r) => r.bytes[4999])).toEqual(big.map((_, i) => i & 0xff));
      expect(Buffer.from(w.v2(head, blocks.slice(0, 2), deflate))).toEqual(Buffer.from(encodeBatchV2({ ...head }, records.slice(0, 2), deflate)));
    });
  }
  it('writes v1 as encodeBatchV1 does', () => {
    const w = new BatchWriter();
    const out = w.v1(blocks);
    expect(Buffer.from(out)).toEqual(Buffer.from(encodeBatchV1(events)));
    expect(decodeBatchV1(out).map((b) => Buffer.from(b))).toEqual(events.map((e) => Buffer.from(e)));
  });
  it('arena blocks are own copies that never overlap; large ones get their own buffer', () => {
    ring.fill(0xee);
    expect(Buffer.from(blocks[1].subarray(12))).toEqual(Buffer.from(events[1])); // not a view into the ring
    const a = new BlockArena(1024);
    const xs = Array.from({ length: 10 }, (_, i) => a.alloc(100).fill(i));
    xs.forEach((x, i) => expect([...new Set(x)]).toEqual([i]));
    const huge = a.alloc(600);
    expect(huge.byteLength).toBe(600);
    expect(huge.byteOffset).toBe(0);
  });
});

describe('experience filters', () => {
  const base = defaultFilter({ batchSize: 32, timeoutMs: 100 });
  it('merges game/games, keeps absent fields from the base, and clears a field given as null', () => {
    const f = parseFilter({ games: 'a,b', game: 'c', min_turn: '3', terminal_only: 'true' }, base);
    expect([...f.games!]).toEqual(['a', 'b', 'c']);
    const g = parseFilter({ min_turn: null, max_turn: 9 }, f);
    expect(g.minTurn).toBeUndefined();
    expect(g.maxTurn).toBe(9);
    expect(g.terminalOnly).toBe(true);
    expect(matchesFilter(g, { gameId: 'a', playerId: 'x', turn: 9, reward: 0, done: true })).toBe(true);
    expect(matchesFilter(g, { gameId: 'a', playerId: 'x', turn: 10, reward: 0, done: true })).toBe(false);
    expect(matchesFilter(g, { gameId: 'z', playerId: 'x', turn: 1, reward: 0, done: true })).toBe(false);
  });
  it('names the field in every error', () => {
    for (const [field, raw] of [['sample_rate', { sample_rate: '2' }], ['players', { players: [''] }], ['max_turn', { min_turn: 5, max_turn: 1 }]] as const) {
      try {
        parseFilter(raw as Record<string, unknown>, base);
        expect.fail(`${field} accepted`);
      } catch (error) {
        expect(error).toBeInstanceOf(FilterError);
        expect((error as FilterError).field).toBe(field);
        expect((error as Error).message).toMatch(new RegExp(`^${field}: `));
      }
    }
  });
  it('per_game_cap counts are bounded', () => {
    const counts = new PerGameCounts();
    for (let i = 0; i < 10_000; i++) expect(counts.take(`g${i}`, 1)).toBe(true);
    expect(counts.take('g9999', 1)).toBe(false); // still remembered
    expect(counts.take('g0', 1)).toBe(true); // forgotten: the oldest went past 4096 games
  });
});

describe('retained window', () => {
  const rec = (seq: number, at: number, size = 100): RetainedRecord => ({ seq, bytes: new Uint8Array(size), stamp: at, at, gameId: 'g', playerId: 'p', turn: 0, reward: 0, done: false });
  it('evicts by bytes and by age and finds records by sequence number', () => {
    const w = new RetainedWindow({ maxBytes: 1000, maxAgeMs: 5000 });
    for (let s = 1; s <= 30; s++) w.push(rec(s, 1000));
    expect(w.size).toBe(10);
    expect(w.first()!.seq).toBe(21);
    expect(w.at(w.indexOf(25))!.seq).toBe(25);
    expect(w.indexOf(1)).toBe(0);
    expect(w.indexOf(31)).toBe(w.size);
    w.evict(1000 + 5001);
    expect(w.size).toBe(0);
  });
  it('starts over when the numbering goes backwards (a new numbering upstream)', () => {
    const w = new RetainedWindow({ maxBytes: 1 << 20, maxAgeMs: 60_000 });
    for (let s = 100; s < 110; s++) w.push(rec(s, 0));
    w.push(rec(5, 0));
    expect(w.size).toBe(1);
    expect(w.first()!.seq).toBe(5);
  });
});
