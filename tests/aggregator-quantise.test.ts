/**
 * Numbers as each level shows them: SE attention summaries with two decimals, advanced
 * strips in steps of 1/500, board heatmap cells with 3 significant digits, health reasons
 * with 4; and what that buys a delta subscriber on the demo trainer's slowly evolving
 * attention (a delta carries only what changed after quantising).
 */
import { describe, expect, it } from 'vitest';
import { RunState, type RunSettings } from '../src/actors/aggregator/run-state.js';
import { boardHeatmapData, encode, gateLabel, gateStrip, seAttentionData, sig3 } from '../src/actors/aggregator/messages.js';
import { assessHealth } from '../src/actors/aggregator/ppo-health.js';
import { AttentionField, SE_BLOCKS, SE_CHANNELS } from '../src/actors/demo-trainer/attention.js';
import { EventKind, decodeEvent, encodeEvent, float32Bytes } from '../src/shared/telemetry/event-codec.js';
import { LEVEL_BIT } from '../src/shared/telemetry/channels.js';
import { DeltaFanout } from '../src/actors/gateway/delta-fanout.js';
// @ts-expect-error plain ES module without types
import { deltaState } from '../overlay/lib/delta-state.js';

const SETTINGS: RunSettings = {
  seriesPoints: 100, smoothingAlpha: 0.2, attentionAlpha: 0.3, heatmapFreshMs: 1000,
  health: { klHealthy: 0.01, clipHealthy: 0.1, klLearning: 0.05 },
  milestones: { klSettledBelow: 0.01, klSettledWindows: 30, entropyCollapseBelow: 0.5, lossPlateauWindows: 100, lossPlateauSlope: 1e-5, gameMarks: [], bestWinRate: false },
};

const isMultiple = (x: number, step: number) => Math.abs(Math.round(x / step) * step - x) < 1e-12;
const sigDigits = (x: number) => (x === 0 ? 0 : String(Math.abs(x)).replace(/e.*$/, '').replace('.', '').replace(/^0+/, '').length);

function attentionEvent(weights: ArrayLike<number>, step: number, blocks = SE_BLOCKS, channels = SE_CHANNELS) {
  return decodeEvent(encodeEvent(EventKind.SeAttention, { blocks, channels, step }, float32Bytes(Array.from(weights)))) as never;
}

function levelBody(type: string, data: ReturnType<typeof seAttentionData>, level: 'beginner' | 'intermediate' | 'advanced', ts: number): Uint8Array {
  return encode(type, ts, data).find((v) => v.levelMask & LEVEL_BIT[level])!.body;
}

describe('numbers as each level shows them', () => {
  it('gates: two decimals in summaries, steps of 1/500 in strips; other scales 3 significant digits', () => {
    expect(gateLabel(0.90451)).toBe(0.9);
    expect(gateLabel(0.0293)).toBe(0.03);
    expect(gateStrip(0.90451)).toBe(0.904);
    expect(gateStrip(0.9051)).toBe(0.906);
    expect(gateStrip(1)).toBe(1);
    expect(gateLabel(3.14159)).toBe(3.14);
    expect(gateStrip(-0.012345)).toBe(-0.0123);
    expect(sig3(0.0109123)).toBe(0.0109);
    expect(sig3(0)).toBe(0);
  });

  it('se_attention: summaries and strips carry the quantised smoothed weights; board heatmap cells 3 significant digits', () => {
    const run = new RunState('r', 0, SETTINGS);
    const field = new AttentionField(5);
    run.applyAttention(attentionEvent(field.at(100), 100), 0);
    const data = seAttentionData(run) as Record<'beginner' | 'intermediate' | 'advanced', { summary?: { mean: number; min: number; max: number; top_channels: { weight: number }[] }[]; weights?: number[][] }>;
    const summary = data.intermediate.summary!;
    expect(summary).toHaveLength(SE_BLOCKS);
    for (const b of summary) {
      for (const x of [b.mean, b.min, b.max, ...b.top_channels.map((t) => t.weight)]) expect(isMultiple(x, 0.01)).toBe(true);
      expect(b.top_channels).toHaveLength(5);
    }
    const rows = data.advanced.weights!;
    for (let b = 0; b < SE_BLOCKS; b++) {
      for (let c = 0; c < SE_CHANNELS; c++) {
        expect(isMultiple(rows[b][c], 1 / 500)).toBe(true);
        expect(Math.abs(rows[b][c] - run.attention.weight(b, c))).toBeLessThanOrEqual(1 / 1000 + 1e-12);
      }
    }
    run.applyHeatmap(decodeEvent(encodeEvent(EventKind.BoardHeatmap, { step: 1, source: 'policy_to_square' }, float32Bytes(Array.from({ length: 81 }, (_, i) => (i % 7) / 91.3)))) as never, 0);
    const grid = (boardHeatmapData(run, 5) as { all: { grid: number[][] } }).all.grid.flat();
    expect(grid.filter((x) => x > 0).length).toBeGreaterThan(60);
    for (const x of grid) expect(sigDigits(x)).toBeLessThanOrEqual(3);
  });

  it('a health reason quotes KL and clip fraction with 4 significant digits', () => {
    const h = assessHealth(new Map([['ppo/kl_divergence_approx', 0.06842348733749658], ['ppo/clip_fraction', 0.37537175203087414]]), SETTINGS.health);
    expect(h.reason).toBe('KL 0.06842 >= 0.05');
    expect(h.kl).toBe(0.06842348733749658); // the number itself stays the trainer's
  });

  it("on the demo trainer's slowly evolving attention, an intermediate se_attention delta carries only the summary numbers that changed, and rebuilds the full message exactly", () => {
    const run = new RunState('demo', 0, SETTINGS);
    const field = new AttentionField(1);
    const fan = new DeltaFanout();
    const held = deltaState();
    let before: { seq: number; bytes: Uint8Array } | undefined;
    let deltaBytes = 0;
    let fullBytes = 0;
    let deltas = 0;
    // 60 s of the demo's attention (5 updates/s), after 20 s of warm-up.
    for (let i = 0; i < 400; i++) {
      const step = 2000 + 2 * i;
      run.applyAttention(attentionEvent(field.at(step), step), i);
      const to = { seq: i + 1, bytes: levelBody('se_attention', seAttentionData(run), 'intermediate', i) };
      const wire = JSON.parse(new TextDecoder().decode(fan.update('se_attention:demo', before, to)));
      const { message } = held.accept(wire);
      expect(message).toEqual(JSON.parse(new TextDecoder().decode(to.bytes)));
      before = to;
      if (i < 100) continue;
      fullBytes += to.bytes.byteLength;
      if (wire.type === 'delta') { deltas++; deltaBytes += JSON.stringify(wire).length; }
    }
    expect(deltas).toBe(300);
    // Unquantised (4 significant digits) nearly every summary number moved every update:
    // deltas were ~1.2 KB against a ~2.1 KB message; now a few numbers move per update.
    expect(deltaBytes / deltas).toBeLessThan(250);
    expect(deltaBytes / fullBytes).toBeLessThan(0.15);
  });
});
