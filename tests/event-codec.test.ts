import { describe, expect, it } from 'vitest';
import {
  concatFrame, decodeEvent, decodeFrame, encodeEvent, encodeMetrics, EventKind, float32Bytes,
  type EventError, type TelemetryEvent, type PolicyEvent, type ExperienceEvent, type SeAttentionEvent,
} from '../src/shared/telemetry/event-codec.js';

function decodeAll(frame: Uint8Array) {
  const events: TelemetryEvent[] = [];
  const errors: EventError[] = [];
  decodeFrame(frame, (e) => events.push(e), (e) => errors.push(e));
  return { events, errors };
}

describe('event codec', () => {
  it('round-trips metrics with any metric names (gen 1 and gen 2) and the producer timestamp', () => {
    const e = decodeEvent(encodeMetrics(1234, { 'ppo/kl_divergence_approx': 0.012, gradient_norm: 3.5, 'ünïcode': -1 }, 'r1', { timestamp: 1700000000123 }));
    expect(e).toMatchObject({ kind: EventKind.Metrics, step: 1234, run: 'r1', timestamp: 1700000000123, names: ['ppo/kl_divergence_approx', 'gradient_norm', 'ünïcode'], values: [0.012, 3.5, -1] });
  });

  it('decodes tensors from unaligned offsets inside a frame', () => {
    const weights = Float32Array.from({ length: 9 * 4 }, (_, i) => i / 10);
    const frame = concatFrame([encodeEvent(EventKind.Milestone, { name: 'x' }), encodeEvent(EventKind.SeAttention, { blocks: 9, channels: 4 }, float32Bytes(weights))]);
    const { events, errors } = decodeAll(frame);
    expect(errors).toEqual([]);
    const att = events[1] as SeAttentionEvent;
    expect([att.blocks, att.channels]).toEqual([9, 4]);
    expect(Array.from(att.weights)).toEqual(Array.from(weights));
  });

  it('validates policy moves and full distributions by action-space size', () => {
    const ok = decodeEvent(encodeEvent(EventKind.Policy, { top_moves: [['7g7f', 0.5], { move: '2g2f', prob: 0.25 }], value: 0.1 }, float32Bytes(new Float32Array(13527)))) as PolicyEvent;
    expect(ok.topMoves).toEqual([{ move: '7g7f', prob: 0.5 }, { move: '2g2f', prob: 0.25 }]);
    expect(ok.actionSpace).toBe('keisei-v1');
    expect(() => decodeEvent(encodeEvent(EventKind.Policy, { top_moves: [['7g7f', 0.5]] }, float32Bytes(new Float32Array(100))))).toThrow(/13527 \(keisei-v1\) or 11259 \(keisei-v2\)/);
  });

  it('experience: state shape and mask length must match the payload', () => {
    const state = new Float32Array(46 * 81);
    const mask = new Uint8Array(Math.ceil(13527 / 8));
    const payload = concatFrame([float32Bytes(state), mask]);
    const meta = { game_id: 'g1', player_id: 0, turn: 3, action: 17, reward: 0, done: false, state_shape: [46, 9, 9], mask_len: 13527 };
    const e = decodeEvent(encodeEvent(EventKind.Experience, meta, payload)) as ExperienceEvent;
    expect(e).toMatchObject({ gameId: 'g1', playerId: '0', turn: 3, action: 17, stateBytes: 46 * 81 * 4, maskLen: 13527 });
    expect(() => decodeEvent(encodeEvent(EventKind.Experience, meta, payload.subarray(1)))).toThrow(/payload is 16594 bytes, expected 16595/);
  });

  it('each malformed kind gets an error naming the problem, and the next event in the frame still decodes', () => {
    const good = encodeMetrics(1, { a: 1 });
    const bad: Array<[Uint8Array, RegExp]> = [
      [encodeEvent(99 as EventKind, {}), /unknown event kind 99/],
      [encodeEvent(EventKind.Metrics, undefined, new Uint8Array(4)), /too short/],
      [encodeEvent(EventKind.BoardHeatmap, {}, float32Bytes([NaN, ...new Array(80).fill(0)])), /value #0 is NaN/],
      [encodeEvent(EventKind.SeAttention, { blocks: 2 }, new Uint8Array(8)), /"channels" must be an integer/],
      [encodeEvent(EventKind.GameState, { sfen: 'x' }), /"game_id" must be a non-empty string/],
      [encodeEvent(EventKind.Milestone, {}), /needs "name"/],
      [encodeEvent(EventKind.Policy, { top_moves: [] }), /top_moves/],
      [Uint8Array.from([...encodeEvent(EventKind.Milestone, { name: 'm' })].map((b, i) => (i === 16 ? 0x7b + 1 : b))), /meta is not valid UTF-8 JSON/],
    ];
    for (const [event, message] of bad) {
      const { events, errors } = decodeAll(concatFrame([event, good]));
      expect(errors, String(message)).toHaveLength(1);
      expect(errors[0].error).toMatch(message);
      expect(events).toHaveLength(1);
    }
  });

  it('an untrustworthy header stops the frame but keeps what came before', () => {
    const good = encodeMetrics(1, { a: 1 });
    const truncated = encodeEvent(EventKind.Milestone, { name: 'm' }).subarray(0, 20);
    let r = decodeAll(concatFrame([good, truncated]));
    expect(r.events).toHaveLength(1);
    expect(r.errors[0].error).toMatch(/declares .* but only/);
    r = decodeAll(concatFrame([good, Uint8Array.from([0x00, ...new Array(15).fill(0)])]));
    expect(r.errors[0].error).toMatch(/bad magic byte 0x00/);
    expect(decodeAll(new Uint8Array(0)).errors[0].error).toMatch(/empty frame/);
  });
});
