/** Pure pieces of the experience stream: the v2 batch codec, filter parsing and the retained window. */
import { describe, expect, it } from 'vitest';
import { decodeBatchV2, encodeBatchV2 } from '../src/shared/telemetry/experience-batch.js';
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
