import { describe, expect, it } from 'vitest';
import { explainMetrics, explainPrediction, fmt, type MetricsExplainInput } from '../src/actors/aggregator/explanations.js';
import { MetricWindow, type MetricSummary } from '../src/actors/aggregator/metric-window.js';
import { assessHealth } from '../src/actors/aggregator/ppo-health.js';
import { LEVELS } from '../src/shared/telemetry/channels.js';

const T = { klHealthy: 0.01, clipHealthy: 0.1, klLearning: 0.05 };
const JARGON = /\b(KL|divergence|entropy|clip|PPO|gradient|slope|loss)\b/i;

function input(series: Record<string, (i: number) => number>, steps = 20): MetricsExplainInput {
  const metrics = new Map<string, MetricSummary>();
  const latest = new Map<string, number>();
  for (const [name, f] of Object.entries(series)) {
    const w = new MetricWindow(50, 0.2);
    for (let i = 0; i < steps; i++) w.add(1000 + i * 10, f(i));
    w.closeWindow();
    metrics.set(name, w.summary());
    latest.set(name, w.latest);
  }
  return { step: 1190, health: assessHealth(latest, T), thresholds: T, metrics };
}

describe('aggregator explanations', () => {
  const gen1 = input({
    'ppo/policy_loss': (i) => 1 - i * 0.02,
    'ppo/kl_divergence_approx': () => 0.004,
    'ppo/clip_fraction': () => 0.06,
    'ppo/entropy': (i) => 3 - i * 0.05,
    win_rate: () => 0.55,
  });

  it('differs per level, and beginner text has no jargon', () => {
    const texts = LEVELS.map((l) => explainMetrics(l, gen1));
    expect(new Set(texts).size).toBe(3);
    expect(texts[0]).not.toMatch(JARGON);
    expect(texts[1]).toMatch(/KL/);
    expect(texts[2]).toMatch(/ppo\/kl_divergence_approx/);
  });

  it('mentions real values, the trend and the status', () => {
    const [beg, mid, adv] = LEVELS.map((l) => explainMetrics(l, gen1));
    expect(beg).toContain('1190');
    expect(beg).toContain(fmt(0.62)); // latest policy loss
    expect(beg).toMatch(/going down/);
    expect(beg).toContain('55%');
    expect(mid).toMatch(/Health: healthy/);
    expect(mid).toContain('0.004');
    expect(mid).toContain('0.06');
    expect(mid).toMatch(/Policy loss 0\.62 is falling/);
    expect(adv).toContain(`thresholds klHealthy ${T.klHealthy}`);
    expect(adv).toMatch(/ppo\/policy_loss 0\.62.*slope -0\.002\/step over 20 points \(falling\)/);
  });

  it('rising loss and exploring health read differently', () => {
    const bad = input({ 'ppo/policy_loss': (i) => 0.5 + i * 0.05, 'ppo/kl_divergence_approx': () => 0.2 });
    const beg = explainMetrics('beginner', bad);
    expect(beg).toMatch(/going up/);
    expect(beg).toMatch(/big changes/);
    expect(explainMetrics('intermediate', bad)).toMatch(/Health: exploring/);
  });

  it('gen 2 (no KL): says health is unknown and invents nothing', () => {
    const gen2 = input({ policy_loss: (i) => 2 - i * 0.01, value_loss: () => 0.3, gradient_norm: () => 0.8 });
    const [beg, mid, adv] = LEVELS.map((l) => explainMetrics(l, gen2));
    expect(beg).toMatch(/does not send/);
    expect(beg).not.toMatch(/wins/); // no win rate was sent
    expect(mid).toMatch(/unknown/);
    expect(mid).not.toMatch(/clip/i);
    expect(adv).toContain('gradient_norm 0.8');
    expect(beg).not.toMatch(JARGON);
  });

  it('move predictions: per level, from the sent moves and value only', () => {
    const p = { topMoves: [{ move: '2g2f', prob: 0.2 }, { move: '7g7f', prob: 0.42 }], value: 0.31 };
    const [beg, mid, adv] = LEVELS.map((l) => explainPrediction(l, p));
    expect(beg).toMatch(/7g7f.*42%/);
    expect(beg).toMatch(/doing well/);
    expect(mid).toBe('Top moves: 7g7f (42%), 2g2f (20%). Value estimate +0.31 for the side to move.');
    expect(adv).toMatch(/cover 62\.0% of the probability mass/);
    expect(explainPrediction('intermediate', { topMoves: p.topMoves })).not.toMatch(/Value/);
  });
});
