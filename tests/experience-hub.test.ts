/**
 * The gateway's experience hub on stand-in sockets (no threads, no network), where what a
 * consumer's socket accepts can be held back: record blocks are recycled only once nothing
 * refers to them (a queued batch is sent intact however far the stream has moved on), and the
 * block memory stays bounded by the window and the queues. Consumers with equal filters share
 * their batches' bytes (written, and deflated, once), without a record more or less for anyone.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { decodeEvent, encodeEvent, EventKind, float32Bytes, type ExperienceEvent } from '../src/shared/telemetry/event-codec.js';
import { BlockArena, decodeBatchV2, RECORD_PREFIX_BYTES, recordBlock } from '../src/shared/telemetry/experience-batch.js';
import { createGatewayMetrics } from '../src/actors/gateway/gateway-metrics.js';
import { ExperienceHub, parseExperienceQuery, type ExperienceConsumer } from '../src/actors/gateway/experience-stream.js';

const VALUES = 4000; // 16 KB states, as Keisei's
function event(turn: number): Uint8Array {
  // Every value of the state is the turn: a block written over by another record shows.
  return encodeEvent(EventKind.Experience, { game_id: `g${turn % 7}`, player_id: turn % 2 ? 'gote' : 'sente', turn, action: turn, reward: 0, done: false, state_shape: [VALUES] }, float32Bytes(new Float32Array(VALUES).fill(turn)));
}

interface FakeSocket { ws: Parameters<ExperienceHub['open']>[0]; sent: Uint8Array[]; setBuffered(n: number): void }
function consumer(hub: ExperienceHub, query: Record<string, string>): FakeSocket {
  const parsed = parseExperienceQuery(new URLSearchParams({ v: '2', ...query }), { batchSize: 32, timeoutMs: 100_000 });
  if (!parsed.ok) throw new Error(parsed.error);
  const data: ExperienceConsumer = hub.newConsumerData(parsed.filter);
  const sent: Uint8Array[] = [];
  let buffered = 0;
  const ws = {
    getUserData: () => data, getBufferedAmount: () => buffered, cork: (f: () => void) => f(),
    // uWS copies what it sends before send() returns: so do we (the hub reuses its buffer).
    send: (b: Uint8Array | string) => { if (typeof b !== 'string') sent.push(Uint8Array.from(b)); return 1; },
  } as unknown as FakeSocket['ws'];
  hub.open(ws);
  return { ws, sent, setBuffered: (n) => { buffered = n; } };
}

const digest = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const turnsOf = (sent: Uint8Array[]) => sent.flatMap((b) => decodeBatchV2(b).records.map((r) => {
  const ev = decodeEvent(r.bytes) as ExperienceEvent;
  // The whole state must be the record's own turn.
  const state = new Float32Array(r.bytes.slice(ev.stateOffset, ev.stateOffset + ev.stateBytes).buffer);
  expect(state.length).toBe(VALUES);
  expect(new Set(state)).toEqual(new Set([ev.turn]));
  return ev.turn;
}));

describe('experience hub', () => {
  it('an arena reuses its oldest full chunk only when told nothing refers to it', () => {
    let releasedBelow = 0;
    const a = new BlockArena(1024, (newest) => newest < releasedBelow);
    const blocks = Array.from({ length: 30 }, (_, i) => a.alloc(96, i + 1).fill(i + 1)); // 10 a chunk: 3 chunks
    expect(a.chunks).toBe(3);
    blocks.forEach((b, i) => expect(new Set(b)).toEqual(new Set([i + 1])));
    releasedBelow = 11; // blocks 1–10 (the first chunk) released
    const next = Array.from({ length: 20 }, (_, i) => a.alloc(96, 31 + i).fill(31 + i));
    // The first chunk was written over; the second and third (still held) were not: a fresh one was made.
    expect(a.chunks).toBe(4);
    blocks.slice(10).forEach((b, i) => expect(new Set(b)).toEqual(new Set([i + 11])));
    next.forEach((b, i) => expect(new Set(b)).toEqual(new Set([31 + i])));
    expect(blocks[0].buffer === next[0].buffer || blocks[0].buffer === next[10].buffer).toBe(true);
  });

  it("a record's event lands at its source's address mod 8 (shared-buffer copies run word by word only then)", () => {
    const a = new BlockArena(1 << 16);
    for (let phase = 0; phase < 8; phase++) {
      const b = a.alloc(33, 0, phase);
      expect((b.byteOffset - phase) & 7).toBe(0);
    }
    // The source: a shared ring's data region, as the gateway reads it.
    const ring = new Uint8Array(new SharedArrayBuffer(4096), 24, 4000);
    const event = Uint8Array.from({ length: 301 }, (_, i) => (i * 13) & 0xff);
    for (let offset = 0; offset < 16; offset++) {
      ring.set(event, offset);
      const block = recordBlock(offset + 1, ring, offset, event.byteLength, a);
      expect((block.byteOffset + RECORD_PREFIX_BYTES - (ring.byteOffset + offset)) & 7).toBe(0);
      expect([...block.subarray(RECORD_PREFIX_BYTES)]).toEqual([...event]);
      expect(new DataView(block.buffer, block.byteOffset).getFloat64(0, true)).toBe(offset + 1);
    }
  });

  it('a consumer held back while the stream moves on still gets its queued batches intact; block memory stays bounded', () => {
    const hub = new ExperienceHub({
      queueBatches: 8, softLimitBytes: 1 << 20, hardLimitBytes: 1 << 30, statusEveryMs: 60_000,
      metrics: createGatewayMetrics(new Registry()), limits: { retainBytes: 200_000, retainMs: 60_000 },
    });
    try {
      const slow = consumer(hub, { consumer: 'slow' });
      const fast = consumer(hub, { consumer: 'fast', players: 'gote' });
      slow.setBuffered(2 << 20); // over the soft limit: its batches queue (8 at most, the oldest dropped)
      const events = Array.from({ length: 3000 }, (_, t) => event(t));
      const ring = new Uint8Array(events.reduce((a, e) => a + e.byteLength, 0));
      let seq = 5_000_000;
      let at = 0;
      for (const e of events) {
        ring.set(e, at);
        hub.onExperience(ring, at, e.byteLength, String(++seq));
        at += e.byteLength;
        if (seq === 5_001_500) ring.fill(0xff); // the source is not referred to after the call either
      }
      // 3000 × 16 KB went through; what is held is the window (~12 records) and 8 × 32 queued: a few 4 MiB chunks, not 12.
      expect(hub.stats().arenaChunks).toBeLessThanOrEqual(5);
      expect(slow.sent).toEqual([]);
      slow.setBuffered(0);
      hub.drain(slow.ws);
      const slowTurns = turnsOf(slow.sent);
      // The newest 8 full batches of 32 (the last 24 records wait in an unfinished batch), in order, each record its own.
      const full = Math.floor(3000 / 32) * 32;
      expect(slowTurns).toEqual(Array.from({ length: 256 }, (_, i) => full - 256 + i));
      expect(turnsOf(fast.sent)).toEqual(Array.from({ length: 1500 }, (_, i) => 2 * i + 1).slice(0, Math.floor(1500 / 32) * 32));
    } finally {
      hub.stop();
    }
  });

  it('consumers with equal filters get byte-identical batches, written once; different filters get their own', () => {
    const hub = new ExperienceHub({ queueBatches: 64, softLimitBytes: 1 << 30, hardLimitBytes: 1 << 31, statusEveryMs: 60_000, metrics: createGatewayMetrics(new Registry()) });
    try {
      const events = Array.from({ length: 400 }, (_, t) => event(t));
      let seq = 7_000_000;
      const feed = (from: number, to: number) => { for (let t = from; t < to; t++) hub.onExperience(events[t], 0, events[t].byteLength, String(++seq)); };
      const a = consumer(hub, { consumer: 'a', players: 'gote', batch_size: '8' });
      const other = consumer(hub, { consumer: 'other', players: 'sente', batch_size: '8' });
      feed(0, 21); // a has sent one batch of 8 gote records and holds 2 of its second
      const b = consumer(hub, { consumer: 'b', players: 'gote', batch_size: '8' }); // joins mid-batch
      const deflatedA = consumer(hub, { consumer: 'da', compress: 'deflate', batch_size: '16' });
      const deflatedB = consumer(hub, { consumer: 'db', compress: 'deflate', batch_size: '16' });
      feed(21, 400);
      const gote = (from: number) => Array.from({ length: 200 }, (_, i) => 2 * i + 1).filter((t) => t >= from);
      // Nobody loses or gains a record: b from its join on, a and the other filter throughout.
      expect(turnsOf(a.sent)).toEqual(gote(0));
      expect(turnsOf(b.sent)).toEqual(gote(21));
      expect(turnsOf(other.sent)).toEqual(Array.from({ length: 200 }, (_, i) => 2 * i));
      // b's first batch ended where a's second did (2 + 6 records); from then on the very same bytes.
      expect(decodeBatchV2(b.sent[0]).head.count).toBe(6);
      const aRest = a.sent.slice(2).map(digest);
      expect(b.sent.slice(1).map(digest)).toEqual(aRest);
      expect(aRest.length).toBeGreaterThan(20);
      // Different filters: never the same bytes.
      const otherBytes = new Set(other.sent.map(digest));
      expect(a.sent.some((x) => otherBytes.has(digest(x)))).toBe(false);
      // Deflated twins (joined together): identical, and deflated once per batch.
      expect(deflatedB.sent.map(digest)).toEqual(deflatedA.sent.map(digest));
      expect(deflatedA.sent.length).toBe(Math.floor((400 - 21) / 16)); // joined after 21 records; a partial batch waits
      expect(decodeBatchV2(deflatedA.sent[0]).records.length).toBe(16);
      expect(hub.stats().sharedBatches).toBe(aRest.length + deflatedB.sent.length);
    } finally {
      hub.stop();
    }
  });

  it('a twin that lost records gets its own batch (its head says so); sampling and per-game caps never share', () => {
    const hub = new ExperienceHub({ queueBatches: 1, softLimitBytes: 1 << 20, hardLimitBytes: 1 << 30, statusEveryMs: 60_000, metrics: createGatewayMetrics(new Registry()) });
    try {
      const events = Array.from({ length: 64 }, (_, t) => event(t));
      let seq = 9_000_000;
      const feed = (from: number, to: number) => { for (let t = from; t < to; t++) hub.onExperience(events[t], 0, events[t].byteLength, String(++seq)); };
      const a = consumer(hub, { consumer: 'a', batch_size: '8' });
      const b = consumer(hub, { consumer: 'b', batch_size: '8' });
      const sampled = [consumer(hub, { consumer: 's1', batch_size: '8', sample_rate: '0.999' }), consumer(hub, { consumer: 's2', batch_size: '8', sample_rate: '0.999' })];
      b.setBuffered(2 << 20); // held: its queue of one batch overflows, the oldest dropped
      feed(0, 32);
      b.setBuffered(0);
      hub.drain(b.ws);
      feed(32, 40);
      const headsB = b.sent.map((x) => decodeBatchV2(x).head);
      expect(headsB.map((h) => h.dropped)).toEqual([24, 0]);
      expect(digest(b.sent[0])).not.toBe(digest(a.sent[3])); // same records, but b's head counts its drops
      expect(turnsOf([b.sent[0]])).toEqual(turnsOf([a.sent[3]]));
      expect(digest(b.sent[1])).toBe(digest(a.sent[4]));
      expect(hub.stats().sharedBatches).toBe(1);
      expect(sampled.every((s) => s.sent.length > 0)).toBe(true);
    } finally {
      hub.stop();
    }
  });
});
