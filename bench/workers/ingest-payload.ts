/** The metric event every bench/ingest.ts producer sends: one PPO step, 6 metrics. */
export const METRICS = (step: number): Record<string, number> => ({
  'ppo/policy_loss': 0.0123 + step * 1e-6, 'ppo/value_loss': 0.456, 'ppo/entropy': 1.789,
  'ppo/kl_divergence_approx': 0.0042, 'ppo/clip_fraction': 0.12, 'ppo/learning_rate': 3e-4,
});

export const jsonLine = (step: number): string => `${JSON.stringify({ kind: 'metrics', step, timestamp: Date.now(), metrics: METRICS(step) })}\n`;
