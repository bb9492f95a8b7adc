import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { RecordRing } from '../src/shared/record-ring.js';
import { readIngestRecord } from '../src/shared/telemetry/ring-records.js';
import {
  EventKind, decodeEvent, type ExperienceEvent, type GameStateEvent, type MetricsEvent, type MilestoneEvent,
  type PolicyEvent, type SeAttentionEvent, type BoardHeatmapEvent, type TelemetryEvent,
} from '../src/shared/telemetry/event-codec.js';
import { RingProducer } from '../src/sdk/ring-producer.js';
import { ProducerInputError, encodeMetricsEvent, flattenTensor, maskBit, packLegalMask } from '../src/sdk/encode.js';

interface Read { producerId: number; run: string; receivedAt: number; event: TelemetryEvent; bytes: Uint8Array }

function drain(ring: RecordRing): Read[] {
  const out: Read[] = [];
  ring.poll((data, offset, length) => {
    const rec = readIngestRecord(data, offset, length);
    const bytes = data.slice(rec.eventOffset, rec.eventOffset + rec.eventLength);
    out.push({ producerId: rec.producerId, run: rec.run, receivedAt: rec.receivedAt, event: decodeEvent(bytes), bytes });
  });
  return out;
}

const fixedNow = () => 1_700_000_000_123;

describe('RingProducer', () => {
  it('every kind decodes back to the values emitted', () => {
    const ring = RecordRing.create({ capacityBytes: 1 << 20 });
    const p = new RingProducer({ ring, run: 'run-a', producerId: 7, now: fixedNow });
    p.emitPpoMetrics({ 'ppo/policy_loss': 0.125, 'ppo/kl_divergence_approx': 0.011, 'gradient_norm': 3 }, 4096);
    p.emitPredictions([{ move: '7g7f', prob: 0.6 }, { move: '2g2f', prob: 0.3 }], 'lnsgkgsnl/1r5b1/ppppppppp/9/9/9/PPPPPPPPP/1B5R1/LNSGKGSNL b - 1', -0.25, 12);
    const se = Array.from({ length: 9 }, (_, b) => Array.from({ length: 256 }, (_, c) => (b * 256 + c) / 2304));
    p.cacheAttentionWeights(se, undefined, 12);
    p.cacheAttentionWeights(new Float32Array([0.5, 0.25, 0.125]), 3, 13);
    const grid = Array.from({ length: 9 }, (_, r) => Array.from({ length: 9 }, (_, c) => r * 9 + c));
    p.emitBoardHeatmap(grid, 14);
    p.emitGameState({ gameId: 'g1', sfen: 'x', moves: ['7g7f', '3c3d'], lastMove: '3c3d', moveCount: 2, result: 'draw', learner: 'sente' });
    p.emitMilestone({ name: 'first_checkmate', message: 'mate!', step: 99, value: 1, gameId: 'g1' });
    const state = new Float32Array(46 * 81).map((_, i) => (i % 7) / 7);
    const mask = new Uint8Array(13527);
    for (const i of [0, 5, 8, 12959, 13526]) mask[i] = 1;
    p.emitExperience({ gameId: 'g1', playerId: 'sente', turn: 4, action: 12959, reward: 1, done: true, state, legalMask: mask });

    const reads = drain(ring);
    expect(reads).toHaveLength(8);
    for (const r of reads) {
      expect(r.producerId).toBe(7);
      expect(r.run).toBe('run-a');
      expect(r.receivedAt).toBe(fixedNow());
      expect(r.event.timestamp).toBe(fixedNow());
    }
    const [metrics, policy, seAll, seOne, heat, game, milestone, exp] = reads.map((r) => r.event);
    expect(metrics.kind).toBe(EventKind.Metrics);
    expect((metrics as MetricsEvent).step).toBe(4096);
    expect((metrics as MetricsEvent).names).toEqual(['ppo/policy_loss', 'ppo/kl_divergence_approx', 'gradient_norm']);
    expect((metrics as MetricsEvent).values).toEqual([0.125, 0.011, 3]);

    expect(policy as PolicyEvent).toMatchObject({ kind: EventKind.Policy, step: 12, value: -0.25, topMoves: [{ move: '7g7f', prob: 0.6 }, { move: '2g2f', prob: 0.3 }] });
    expect((policy as PolicyEvent).position).toMatch(/^lnsgkgsnl/);

    const a = seAll as SeAttentionEvent;
    expect([a.blocks, a.channels, a.layerId, a.step]).toEqual([9, 256, undefined, 12]);
    expect(a.weights[0]).toBe(0);
    expect(a.weights[2303]).toBeCloseTo(2303 / 2304, 6);
    expect(a.weights[256 * 4 + 10]).toBeCloseTo((4 * 256 + 10) / 2304, 6);
    const one = seOne as SeAttentionEvent;
    expect([one.blocks, one.channels, one.layerId, one.step]).toEqual([1, 3, 3, 13]);
    expect([...one.weights]).toEqual([0.5, 0.25, 0.125]);

    const h = heat as BoardHeatmapEvent;
    expect(h.step).toBe(14);
    expect([...h.grid]).toEqual(Array.from({ length: 81 }, (_, i) => i));

    expect(game as GameStateEvent).toMatchObject({ gameId: 'g1', sfen: 'x', moves: ['7g7f', '3c3d'], lastMove: '3c3d', moveCount: 2, result: 'draw' });
    expect((game as GameStateEvent).meta.learner).toBe('sente');
    expect(milestone as MilestoneEvent).toMatchObject({ name: 'first_checkmate', message: 'mate!', step: 99, value: 1 });
    expect((milestone as MilestoneEvent).meta.gameId).toBe('g1');

    const e = exp as ExperienceEvent;
    expect(e).toMatchObject({ gameId: 'g1', playerId: 'sente', turn: 4, action: 12959, reward: 1, done: true, stateShape: [46, 9, 9], maskLen: 13527 });
    const bytes = reads[7].bytes;
    const decodedState = new Float32Array(bytes.slice(e.stateOffset, e.stateOffset + e.stateBytes).buffer);
    expect(decodedState).toEqual(state);
    const set: number[] = [];
    for (let i = 0; i < e.maskLen; i++) if (maskBit(bytes, e.maskOffset, i)) set.push(i);
    expect(set).toEqual([0, 5, 8, 12959, 13526]);

    expect(p.stats()).toMatchObject({ sent: 8, dropped: {}, queued: 0, state: 'open' });
  });

  it('a full ring drops and counts per kind, never throws, and the ring stays usable', () => {
    const ring = RecordRing.create({ capacityBytes: 4096, policy: 'drop-newest' });
    const registry = new Registry();
    const p = new RingProducer({ ring, run: 'r', metrics: registry });
    const grid = new Float32Array(81);
    for (let i = 0; i < 50; i++) {
      expect(() => p.emitBoardHeatmap(grid, i)).not.toThrow();
      expect(() => p.emitPpoMetrics({ loss: i }, i)).not.toThrow();
    }
    const s = p.stats();
    expect(s.sent).toBeGreaterThan(0);
    expect(s.dropped.board_heatmap).toBeGreaterThan(0);
    expect(s.dropped.metrics).toBeGreaterThan(0);
    expect(s.sent + s.dropped.board_heatmap + s.dropped.metrics).toBe(100);
    expect(ring.stats().drops['drop-newest']).toBe(s.dropped.board_heatmap + s.dropped.metrics);
    // Every record the ring did take is intact.
    const reads = drain(ring);
    expect(reads).toHaveLength(s.sent);
    // Drained, the ring takes events again.
    p.emitPpoMetrics({ loss: 1 }, 1000);
    expect(p.stats().sent).toBe(s.sent + 1);
    return registry.getSingleMetricAsString('ringcast_ring_producer_dropped_total').then((text) => {
      expect(text).toMatch(new RegExp(`kind="board_heatmap",reason="ring_full"} ${s.dropped.board_heatmap}`));
    });
  });

  it('an event larger than the ring can ever hold is counted as too large, not as a full ring', () => {
    const ring = RecordRing.create({ capacityBytes: 4096 });
    const p = new RingProducer({ ring, run: 'r' });
    p.cacheAttentionWeights(new Float32Array(1024), 0);
    expect(p.stats().dropped).toEqual({ too_large_se_attention: 1 });
    expect(p.lastError()).toMatch(/exceeds the ring's largest record/);
    p.cacheAttentionWeights(new Float32Array(16), 0);
    expect(p.stats().sent).toBe(1);
  });

  it('bad input is refused with a reason, counted, and costs nothing else', () => {
    const ring = RecordRing.create({ capacityBytes: 1 << 16 });
    const p = new RingProducer({ ring, run: 'r' });
    expect(() => p.emitBoardHeatmap([1, 2, 3])).not.toThrow();
    expect(p.lastError()).toMatch(/81 values/);
    p.emitPredictions([]);
    expect(p.lastError()).toMatch(/1–64/);
    p.cacheAttentionWeights([[1, 2], [3]]);
    expect(p.lastError()).toMatch(/ragged/);
    p.emitExperience({ gameId: 'g', playerId: 1, turn: 0, action: 0, reward: 0, done: false, state: [1, 2, 3] });
    expect(p.lastError()).toMatch(/3 values but stateShape \[46,9,9\] needs 3726/);
    p.emitGameState({ gameId: '' });
    p.emitMilestone({ name: '' });
    // One NaN metric is skipped; the rest of the step still goes out.
    p.emitPpoMetrics({ 'ppo/value_loss': Number.NaN, 'ppo/entropy': 2.5 }, 10);
    p.emitPpoMetrics({ only: Number.POSITIVE_INFINITY }, 11);
    const s = p.stats();
    expect(s.dropped).toEqual({
      invalid_board_heatmap: 1, invalid_policy: 1, invalid_se_attention: 1, invalid_experience: 1, invalid_game_state: 1, invalid_milestone: 1,
      invalid_metrics: 1, metrics_invalid_value: 2,
    });
    const reads = drain(ring);
    expect(reads).toHaveLength(1);
    expect(reads[0].event).toMatchObject({ kind: EventKind.Metrics, step: 10, names: ['ppo/entropy'], values: [2.5] });
  });

  it('after close() emits are dropped as closed and the ring is flushed', async () => {
    const ring = RecordRing.create({ capacityBytes: 1 << 16 });
    const p = new RingProducer({ ring, run: 'r' });
    p.emitMilestone({ name: 'a' });
    await p.close();
    p.emitMilestone({ name: 'b' });
    expect(p.stats()).toMatchObject({ sent: 1, dropped: { closed_milestone: 1 }, state: 'closed' });
    expect(drain(ring)).toHaveLength(1);
  });
});

describe('encode helpers', () => {
  it('flattens nested arrays row-major and refuses ragged or non-numeric input', () => {
    expect(flattenTensor([[1, 2, 3], [4, 5, 6]], 't')).toEqual({ values: new Float32Array([1, 2, 3, 4, 5, 6]), shape: [2, 3] });
    const f = new Float32Array([1, 2]);
    expect(flattenTensor(f, 't').values).toBe(f); // flat input is not copied
    expect(flattenTensor([new Float32Array([1, 2]), new Float32Array([3, 4])], 't').shape).toEqual([2, 2]);
    expect(() => flattenTensor([[1], ['x' as unknown as number]], 't')).toThrow(ProducerInputError);
    expect(() => flattenTensor(42 as never, 't')).toThrow(/typed array/);
  });

  it('packs masks LSB first', () => {
    expect([...packLegalMask([1, 0, 0, 0, 0, 0, 0, 1, true, false])]).toEqual([0x81, 0x01]);
  });

  it('packs 0/1 byte masks (the word-at-a-time path) exactly as the plain loop does, any length, offset or stray value', () => {
    const plain = (m: ArrayLike<number>) => { const o = new Uint8Array(Math.ceil(m.length / 8)); for (let i = 0; i < m.length; i++) if (m[i]) o[i >> 3] |= 1 << (i & 7); return [...o]; };
    let x = 12345;
    const rand = () => { x = (Math.imul(x, 1103515245) + 12345) >>> 0; return x / 2 ** 32; };
    for (const len of [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 13_527]) {
      for (const byteOffset of [0, 4, 1]) { // aligned (fast path) and unaligned (plain loop)
        const backing = new Uint8Array(len + 8);
        const mask = backing.subarray(byteOffset, byteOffset + len);
        for (let i = 0; i < len; i++) mask[i] = rand() < 0.3 ? 1 : 0;
        if (len > 20) { mask[3] = 2; mask[17] = 255; } // not 0/1: still "set"
        expect([...packLegalMask(mask)]).toEqual(plain(mask));
        const out = new Uint8Array(Math.ceil(len / 8) + 3).fill(0xaa);
        packLegalMask(mask, out, 3);
        expect([...out.subarray(3)]).toEqual(plain(mask));
        expect([...out.subarray(0, 3)]).toEqual([0xaa, 0xaa, 0xaa]);
      }
    }
  });

  it('reuses the scratch buffer unless asked for a copy', () => {
    const a = encodeMetricsEvent({ x: 1 }, 1);
    const b = encodeMetricsEvent({ x: 2 }, 2);
    expect(decodeEvent(a)).toMatchObject({ values: [1] }); // no scratch given → owned copies
    expect(decodeEvent(b)).toMatchObject({ values: [2] });
  });
});
