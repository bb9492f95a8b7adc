import { describe, expect, it } from 'vitest';
import { assessHealth, checkThresholds } from '../src/actors/aggregator/ppo-health.js';
import { findRole, hasRole } from '../src/actors/aggregator/metric-roles.js';

const T = { klHealthy: 0.01, clipHealthy: 0.1, klLearning: 0.05 };
const m = (o: Record<string, number>) => new Map(Object.entries(o));

describe('aggregator PPO health', () => {
  it('healthy / learning / exploring by the default thresholds', () => {
    expect(assessHealth(m({ 'ppo/kl_divergence_approx': 0.005, 'ppo/clip_fraction': 0.05 }), T).status).toBe('healthy');
    expect(assessHealth(m({ 'ppo/kl_divergence_approx': 0.03, 'ppo/clip_fraction': 0.05 }), T).status).toBe('learning');
    // small KL but too much clipping is not healthy
    expect(assessHealth(m({ 'ppo/kl_divergence_approx': 0.005, 'ppo/clip_fraction': 0.3 }), T).status).toBe('learning');
    expect(assessHealth(m({ 'ppo/kl_divergence_approx': 0.05, 'ppo/clip_fraction': 0.05 }), T).status).toBe('exploring');
  });

  it('a KL hovering at a threshold keeps the last status within 10 %, and the reason says so', () => {
    const kl = (v: number, clip = 0.05) => m({ 'ppo/kl_divergence_approx': v, 'ppo/clip_fraction': clip });
    // Around klLearning (0.05): 0.049 / 0.052 / 0.047 would flip every window without a previous status.
    let status = assessHealth(kl(0.049), T).status;
    expect(status).toBe('learning');
    for (const v of [0.052, 0.047, 0.054, 0.046]) {
      const h = assessHealth(kl(v), T, status);
      expect(h.status).toBe('learning');
      if (v >= 0.05) expect(h.reason).toMatch(/within 10 % of the threshold: still learning$/);
      status = h.status;
    }
    expect(assessHealth(kl(0.056), T, 'learning').status).toBe('exploring'); // past the margin
    expect(assessHealth(kl(0.046), T, 'exploring').status).toBe('exploring');
    expect(assessHealth(kl(0.044), T, 'exploring').status).toBe('learning');
    // Around klHealthy (0.01) and the clip threshold (0.1).
    expect(assessHealth(kl(0.0105), T, 'healthy').status).toBe('healthy');
    expect(assessHealth(kl(0.0112), T, 'healthy').status).toBe('learning');
    expect(assessHealth(kl(0.005, 0.105), T, 'healthy').status).toBe('healthy');
    expect(assessHealth(kl(0.0095), T, 'learning').status).toBe('learning');
    expect(assessHealth(kl(0.0085), T, 'learning').status).toBe('healthy');
    // Without KL there is nothing to hold on to.
    expect(assessHealth(m({ 'ppo/clip_fraction': 0.05 }), T, 'learning').status).toBe('unknown');
  });

  it('thresholds are configurable', () => {
    const values = m({ 'ppo/kl_divergence_approx': 0.03, 'ppo/clip_fraction': 0.15 });
    expect(assessHealth(values, T).status).toBe('learning');
    expect(assessHealth(values, { klHealthy: 0.04, clipHealthy: 0.2, klLearning: 0.1 }).status).toBe('healthy');
    expect(assessHealth(values, { klHealthy: 0.001, clipHealthy: 0.2, klLearning: 0.02 }).status).toBe('exploring');
  });

  it('reports the values and names it used', () => {
    const h = assessHealth(m({ 'ppo/kl_divergence_approx': 0.005, 'ppo/clip_fraction': 0.05, 'ppo/entropy': 2 }), T);
    expect(h).toMatchObject({ kl: 0.005, clip_fraction: 0.05, kl_metric: 'ppo/kl_divergence_approx', clip_metric: 'ppo/clip_fraction' });
    expect(h.reason).toContain('0.005');
  });

  it('finds KL under other names and judges on KL alone without a clip fraction', () => {
    for (const name of ['train/approx_kl', 'kl', 'policy/kl_divergence', 'my_kl']) {
      const h = assessHealth(m({ [name]: 0.002 }), T);
      expect(h.status, name).toBe('healthy');
      expect(h.kl_metric).toBe(name);
      expect(h.clip_fraction).toBeNull();
      expect(h.reason).toMatch(/KL alone/);
    }
    expect(hasRole('ppo/clip_fraction', 'clip')).toBe(true);
    expect(hasRole('clip_fraction', 'clip')).toBe(true);
    expect(hasRole('walk', 'kl')).toBe(false); // ends in "lk", not a KL
    expect(hasRole('ankle', 'kl')).toBe(false);
  });

  it('gen 2 (no KL) is "unknown" with a reason, never a guess', () => {
    const h = assessHealth(m({ policy_loss: 1.2, value_loss: 0.3, score_loss: 0.1, entropy: 3, gradient_norm: 0.8 }), T);
    expect(h.status).toBe('unknown');
    expect(h.kl).toBeNull();
    expect(h.reason).toMatch(/no KL/);
  });

  it('prefers the gen-1 name when several metrics look like KL', () => {
    expect(findRole(['z/kl', 'ppo/kl_divergence_approx', 'a/approx_kl'], 'kl')).toBe('ppo/kl_divergence_approx');
    expect(findRole(['z/kl', 'a/approx_kl'], 'kl')).toBe('a/approx_kl');
  });

  it('rejects inconsistent thresholds', () => {
    expect(() => checkThresholds({ klHealthy: 0.1, clipHealthy: 0.1, klLearning: 0.05 })).toThrow(/klHealthy/);
    expect(() => checkThresholds({ klHealthy: 0.01, clipHealthy: -1, klLearning: 0.05 })).toThrow(/clipHealthy/);
  });
});
