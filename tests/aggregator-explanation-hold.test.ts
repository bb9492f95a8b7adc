/**
 * Explanations refresh their numbers at a reading pace: a text whose words stay the same
 * (only numbers changed) replaces the held one only after it has stood the hold time; a change
 * of words goes out at once; each level holds its own text. And in the aggregator's messages:
 * a window's retained message and its live tails carry the same text.
 */
import { describe, expect, it } from 'vitest';
import { ExplanationHold, wordsOf } from '../src/actors/aggregator/explanation-hold.js';
import { encode, metricsExplanations, ppoMetricsData, ppoMetricsTails } from '../src/actors/aggregator/messages.js';
import { RunState, type RunSettings } from '../src/actors/aggregator/run-state.js';
import { EventKind, decodeEvent, encodeMetrics, type TelemetryEvent } from '../src/shared/telemetry/event-codec.js';

const SETTINGS: RunSettings = {
  seriesPoints: 20, smoothingAlpha: 0.2, attentionAlpha: 0.5, heatmapFreshMs: 1000,
  health: { klHealthy: 0.01, clipHealthy: 0.1, klLearning: 0.05 },
  milestones: { klSettledBelow: 0.01, klSettledWindows: 30, entropyCollapseBelow: 0.5, lossPlateauWindows: 100, lossPlateauSlope: 1e-5, gameMarks: [2], bestWinRate: true },
};

describe('explanation hold', () => {
  it('masks standalone numbers, not move names', () => {
    expect(wordsOf('Step 220. KL 0.0418 with clip fraction 0.249 shows it. Entropy 4.21 is falling.'))
      .toBe('Step #. KL # with clip fraction # shows it. Entropy # is falling.');
    expect(wordsOf('Top moves: 7g7f (11%), P*5e (3%), 1f1g+ (2%). Value estimate +0.706 for the side to move; slope -1.5e-4/step'))
      .toBe('Top moves: 7g7f (#%), P*5e (#%), 1f1g+ (#%). Value estimate # for the side to move; slope -1.5e-4/step');
  });

  it('holds a numbers-only change for the hold time, passes a change of words at once, per level', () => {
    const hold = new ExplanationHold(1000);
    expect(hold.next('intermediate', 'Step 1. Loss 0.5 is falling.', 0)).toBe('Step 1. Loss 0.5 is falling.');
    expect(hold.next('intermediate', 'Step 2. Loss 0.49 is falling.', 400)).toBe('Step 1. Loss 0.5 is falling.');
    expect(hold.next('beginner', 'After 2 steps.', 400)).toBe('After 2 steps.');
    // Words changed (the trend): at once, and the hold starts again from there.
    expect(hold.next('intermediate', 'Step 3. Loss 0.49 is rising.', 500)).toBe('Step 3. Loss 0.49 is rising.');
    expect(hold.next('intermediate', 'Step 9. Loss 0.52 is rising.', 1499)).toBe('Step 3. Loss 0.49 is rising.');
    expect(hold.next('intermediate', 'Step 10. Loss 0.53 is rising.', 1500)).toBe('Step 10. Loss 0.53 is rising.');
    // Unchanged text keeps its age: the next numbers-only change replaces it once it has stood the hold.
    expect(hold.next('intermediate', 'Step 10. Loss 0.53 is rising.', 2400)).toBe('Step 10. Loss 0.53 is rising.');
    expect(hold.next('intermediate', 'Step 11. Loss 0.54 is rising.', 2500)).toBe('Step 11. Loss 0.54 is rising.');
  });

  it('a window\'s retained message and its tails carry the texts given, the numbers\' own by default', () => {
    const r = new RunState('x', 0, SETTINGS);
    r.applyMetrics(decodeEvent(encodeMetrics(1, { 'ppo/policy_loss': 0.5, 'ppo/kl_divergence_approx': 0.004 })) as Extract<TelemetryEvent, { kind: EventKind.Metrics }>, 1);
    r.closeWindow(100);
    const texts = { ...metricsExplanations(r, SETTINGS.health), intermediate: 'held text' };
    const explanation = (data: ReturnType<typeof ppoMetricsData>, mask: number) => {
      const v = encode('ppo_metrics', 1, data).find((x) => x.levelMask & mask)!;
      return JSON.parse(new TextDecoder().decode(v.body)).data.explanation as string;
    };
    expect(explanation(ppoMetricsData(r, SETTINGS.health, texts), 2)).toBe('held text');
    expect(explanation(ppoMetricsTails(r, SETTINGS.health, 100, texts)[0], 2)).toBe('held text');
    expect(explanation(ppoMetricsData(r, SETTINGS.health), 2)).toMatch(/^Step 1\. /);
    expect(explanation(ppoMetricsData(r, SETTINGS.health, texts), 1)).toBe(texts.beginner);
  });
});
