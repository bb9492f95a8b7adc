import { describe, expect, it } from 'vitest';
import { RunState, MAX_METRICS_PER_RUN, type RunSettings } from '../src/actors/aggregator/run-state.js';
import { boardHeatmapData, encode, ppoMetricsData, seAttentionData } from '../src/actors/aggregator/messages.js';
import { squareIndex } from '../src/actors/aggregator/heatmap-from-policy.js';
import { EventKind, decodeEvent, encodeEvent, encodeMetrics, float32Bytes, type TelemetryEvent } from '../src/shared/telemetry/event-codec.js';

const SETTINGS: RunSettings = {
  seriesPoints: 20, smoothingAlpha: 0.2, attentionAlpha: 0.5, heatmapFreshMs: 1000,
  health: { klHealthy: 0.01, clipHealthy: 0.1, klLearning: 0.05 },
  milestones: { klSettledBelow: 0.01, klSettledWindows: 30, entropyCollapseBelow: 0.5, lossPlateauWindows: 100, lossPlateauSlope: 1e-5, gameMarks: [2], bestWinRate: true },
};
const dec = <K extends EventKind>(bytes: Uint8Array) => decodeEvent(bytes) as Extract<TelemetryEvent, { kind: K }>;
const json = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b));

describe('aggregator run state and messages', () => {
  it('ppo_metrics: values exactly as sent, health, lighter beginner view, one serialisation per distinct level', () => {
    const r = new RunState('default', 0, SETTINGS);
    r.applyMetrics(dec(encodeMetrics(100, { 'ppo/kl_divergence_approx': 0.1234567891234, 'ppo/clip_fraction': 0.02, custom_thing: 7 })), 1);
    r.applyMetrics(dec(encodeMetrics(110, { 'ppo/kl_divergence_approx': 0.004 })), 2);
    r.closeWindow(3);
    const variants = encode('ppo_metrics', 42, ppoMetricsData(r, SETTINGS.health));
    expect(variants.map((v) => v.levelMask).sort()).toEqual([1, 2, 4]);
    const [beg, mid, adv] = [1, 2, 4].map((bit) => json(variants.find((v) => v.levelMask === bit)!.body));
    expect(adv).toMatchObject({ type: 'ppo_metrics', timestamp: 42 });
    expect(adv.data).toMatchObject({ run: 'default', step: 110, values: { 'ppo/kl_divergence_approx': 0.004, 'ppo/clip_fraction': 0.02, custom_thing: 7 } });
    expect(adv.data.health).toMatchObject({ status: 'healthy', kl: 0.004, clip_fraction: 0.02 });
    expect(adv.data.metrics['ppo/kl_divergence_approx']).toMatchObject({ latest: 0.004, count: 2, series: [0.1234567891234, 0.004] });
    expect(adv.data.metrics.custom_thing).toMatchObject({ latest: 7, mean: 7 }); // unknown metrics pass through
    expect(mid.data.metrics.custom_thing.series).toBeUndefined();
    expect(mid.data.metrics.custom_thing.smoothed).toEqual([7]);
    expect(beg.data.metrics.custom_thing.smoothed).toBeUndefined();
    expect(new Set([beg.data.explanation, mid.data.explanation, adv.data.explanation]).size).toBe(3);
  });

  it('compact numbers: presentation at 4 significant digits, the trainer\'s values and raw series exact, attention summaries sized per level', () => {
    const r = new RunState('x', 0, SETTINGS);
    r.applyMetrics(dec(encodeMetrics(1, { loss: 0.123456789123 })), 1);
    r.applyMetrics(dec(encodeMetrics(2, { loss: 1.98765432198 })), 1);
    r.closeWindow(2);
    const byLevel = (data: ReturnType<typeof ppoMetricsData>) => Object.fromEntries(encode('t', 1, data).flatMap((v) => [1, 2, 4].filter((b) => v.levelMask & b).map((b) => [b, json(v.body)])));
    const m = byLevel(ppoMetricsData(r, SETTINGS.health));
    const digits = (x: number) => x.toExponential().split('e')[0].replace(/[-.]/g, '').length;
    expect(m[4].data.values.loss).toBe(1.98765432198);
    expect(m[4].data.metrics.loss.series).toEqual([0.123456789123, 1.98765432198]);
    expect(m[4].data.metrics.loss.latest).toBe(1.988);
    expect(m[4].data.metrics.loss.mean).toBe(Number(((0.123456789123 + 1.98765432198) / 2).toPrecision(4)));
    for (const x of [...m[2].data.metrics.loss.smoothed, m[1].data.metrics.loss.min, m[1].data.metrics.loss.max, m[4].data.metrics.loss.trend]) expect(digits(x)).toBeLessThanOrEqual(4);
    // Trends are drawn as arrows only (beginner, intermediate): 2 significant digits.
    for (const x of [m[1].data.metrics.loss.trend, m[2].data.metrics.loss.trend]) expect(digits(x)).toBeLessThanOrEqual(2);
    // Intermediate: the chart and the trend; the value is in `values`, no window statistics.
    expect(Object.keys(m[2].data.metrics.loss).sort()).toEqual(['smoothed', 'steps', 'trend']);
    const weights = Array.from({ length: 2 * 8 }, (_, i) => (i * 7919 % 13) / 13 + 1e-7);
    r.applyAttention(dec(encodeEvent(EventKind.SeAttention, { blocks: 2, channels: 8 }, float32Bytes(weights))), 3);
    const a = byLevel(seAttentionData(r));
    expect(a[1].data.summary[0].top_channels).toHaveLength(3);
    expect(a[2].data.summary[0].top_channels).toHaveLength(5);
    expect(a[2].data.summary[0].top_channels.slice(0, 3)).toEqual(a[1].data.summary[0].top_channels);
    for (const row of a[4].data.weights) for (const x of row) expect(digits(x)).toBeLessThanOrEqual(4);
  });

  it('identical level variants are written once with a merged mask', () => {
    const r = new RunState('x', 0, SETTINGS);
    r.applyAttention(dec(encodeEvent(EventKind.SeAttention, { blocks: 2, channels: 3 }, float32Bytes([0.1, 0.9, 0.5, 0.2, 0.2, 0.8]))), 1);
    const variants = encode('se_attention', 1, seAttentionData(r));
    expect(variants.map((v) => v.levelMask).sort()).toEqual([3, 4]);
    const adv = json(variants.find((v) => v.levelMask === 4)!.body);
    expect(adv.data.weights).toEqual([[0.1, 0.9, 0.5], [0.2, 0.2, 0.8]]);
    const sum = json(variants.find((v) => v.levelMask === 3)!.body);
    expect(sum.data.summary[0]).toMatchObject({ block: 0, max: 0.9, top_channels: [{ channel: 1, weight: 0.9 }, { channel: 2, weight: 0.5 }, { channel: 0, weight: 0.1 }] });
    expect(encode('x', 1, { all: { a: 1 } })).toHaveLength(1);
    expect(encode('x', 1, { all: { a: 1 } })[0].levelMask).toBe(7);
  });

  it('heatmap: policy-derived until the trainer sends one, trainer wins while fresh, policy again once stale', () => {
    const r = new RunState('x', 0, SETTINGS);
    const policy = dec<EventKind.Policy>(encodeEvent(EventKind.Policy, { top_moves: [{ move: '7g7f', prob: 0.6 }, { move: 'P*5e', prob: 0.3 }], step: 5 }));
    r.applyPolicy(policy, 1000);
    expect(r.dirty.heatmap).toBe(true);
    let h = boardHeatmapData(r, 3) as { all: { source: string; grid: number[][]; focus: string[] } };
    expect(h.all).toMatchObject({ source: 'policy', focus: ['7f', '5e'] });
    expect(h.all.grid[5][2]).toBeCloseTo(0.6);
    r.clearDirty();
    const grid = new Float32Array(81); grid[squareIndex('1a')] = 1;
    r.applyHeatmap(dec(encodeEvent(EventKind.BoardHeatmap, { source: 'policy_planes' }, float32Bytes(grid))), 2000);
    r.applyPolicy(policy, 2100); // fresh trainer heatmap: not replaced
    h = boardHeatmapData(r, 3) as typeof h;
    expect(h.all).toMatchObject({ source: 'trainer', focus: ['1a'] });
    r.clearDirty();
    r.closeWindow(2500);
    expect(r.dirty.heatmap).toBe(false);
    r.closeWindow(3200); // trainer heatmap older than heatmapFreshMs
    expect(r.dirty.heatmap).toBe(true);
    expect((boardHeatmapData(r, 3) as typeof h).all.source).toBe('policy');
  });

  it('game results are kept until the window even when the next game starts; finished games are counted once', () => {
    const r = new RunState('x', 0, SETTINGS);
    const game = (id: string, result?: string) => dec<EventKind.GameState>(encodeEvent(EventKind.GameState, { game_id: id, moves: ['7g7f'], ...(result ? { result } : {}) }));
    expect(r.applyGame(game('g1', 'sente_win'), 1)).toEqual([]);
    r.applyGame(game('g1', 'sente_win'), 2); // repeated final state
    const [mark] = r.applyGame(game('g2', 'gote_win'), 3);
    expect(mark.id).toBe('x:games:2');
    r.applyGame(game('g3'), 4);
    expect(r.pendingResults.map((g) => g.game_id)).toEqual(['g1', 'g2']);
    expect(r.game).toMatchObject({ game_id: 'g3', result: null, move_count: 1 });
    expect(r.gamesFinished).toBe(2);
    r.clearDirty();
    r.applyGame(game('g2', 'gote_win'), 5); // the final state repeated in a later window
    expect(r.pendingResults).toEqual([]);
    expect(r.gamesFinished).toBe(2);
  });

  it('bounds the number of metrics per run and reports what it dropped', () => {
    const drops: string[] = [];
    const r = new RunState('x', 0, SETTINGS, (why) => drops.push(why));
    const many: Record<string, number> = {};
    for (let i = 0; i < MAX_METRICS_PER_RUN + 3; i++) many[`m${i}`] = i;
    for (let i = 0; i < MAX_METRICS_PER_RUN + 3; i += 200) r.applyMetrics(dec(encodeMetrics(1, Object.fromEntries(Object.entries(many).slice(i, i + 200)))), 1);
    expect(r.metrics.size).toBe(MAX_METRICS_PER_RUN);
    expect(drops).toEqual(['metric_limit', 'metric_limit', 'metric_limit']);
  });
});

describe('ppo_metrics series modes', () => {
  it('the retained message carries the whole kept series; the live one only the last window', async () => {
    const { ppoMetricsData, ppoMetricsTails } = await import('../src/actors/aggregator/messages.js');
    const r = new RunState('default', 0, SETTINGS);
    let step = 0;
    for (let w = 0; w < 30; w++) {
      for (let i = 0; i < 5; i++) r.applyMetrics(dec(encodeMetrics(++step, { 'ppo/entropy': 3 - step / 100 })), w);
      r.closeWindow(w);
    }
    const thresholds = { klHealthy: 0.01, clipHealthy: 0.1, klLearning: 0.05 };
    const full = ppoMetricsData(r, thresholds) as Record<string, { metrics: Record<string, { steps?: number[]; series?: number[]; smoothed?: number[] }> }>;
    const points = SETTINGS.seriesPoints;
    const tails = ppoMetricsTails(r, thresholds, points) as (typeof full)[];
    expect(tails).toHaveLength(1); // a window within seriesPoints is one message
    const [tail] = tails;
    expect(full.advanced.metrics['ppo/entropy'].series).toHaveLength(Math.min(points, 150));
    expect(tail.advanced.metrics['ppo/entropy'].steps).toEqual([146, 147, 148, 149, 150]);
    expect(tail.intermediate.metrics['ppo/entropy'].smoothed).toHaveLength(5);
    expect(tail.beginner.metrics['ppo/entropy'].series).toBeUndefined();
    expect(JSON.stringify(tail.advanced.metrics).length).toBeLessThan(JSON.stringify(full.advanced.metrics).length / 1.8);
  });
});
