/**
 * Binary layout of a demo telemetry record (little-endian):
 *   0  u32 seq          — continuous across restarts
 *   4  u32 kind         — 1 = ppo metrics
 *   8  f64 step
 *  16  f64 policy_loss
 *  24  f64 value_loss
 *  32  f64 entropy
 *  40  f64 kl_divergence
 *  48  f64 clip_fraction
 *  56  f64 produced_at  — performance.timeOrigin + performance.now(), for hand-off latency
 */
export const DEMO_RECORD_MIN_BYTES = 64;
export const DEMO_METRIC_NAMES = ['policy_loss', 'value_loss', 'entropy', 'kl_divergence', 'clip_fraction'] as const;

export function writeDemoRecord(view: DataView, at: number, seq: number, nowMs: number): void {
  const step = seq * 32;
  const t = step / 50_000;
  // Curves shaped like a PPO run that is learning: losses fall, entropy decays, KL settles.
  view.setUint32(at, seq, true);
  view.setUint32(at + 4, 1, true);
  view.setFloat64(at + 8, step, true);
  view.setFloat64(at + 16, 0.8 * Math.exp(-t) + 0.05 + 0.02 * Math.sin(seq / 7), true);
  view.setFloat64(at + 24, 1.5 * Math.exp(-t / 2) + 0.1 + 0.03 * Math.sin(seq / 11), true);
  view.setFloat64(at + 32, 3.5 * Math.exp(-t / 4) + 0.4, true);
  view.setFloat64(at + 40, 0.04 * Math.exp(-t) + 0.004 + 0.002 * Math.sin(seq / 5), true);
  view.setFloat64(at + 48, 0.2 * Math.exp(-t) + 0.03, true);
  view.setFloat64(at + 56, performance.timeOrigin + nowMs, true);
}
