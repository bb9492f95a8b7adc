/**
 * PPO training curves for the demo trainer: what `PPOAgent.learn()` of a Keisei gen-1
 * trainer returns per update, shaped like a run that is actually learning.
 *
 *   ppo/policy_loss           decays from ~0.13 toward ~0.01, noisy (can dip below 0, as a
 *                             clipped surrogate does)
 *   ppo/value_loss            decays from ~0.65 toward ~0.05, multiplicative noise
 *   ppo/entropy               from ~ln(#legal moves) toward a floor as the policy sharpens
 *   ppo/kl_divergence_approx  high early (~0.05), settles around 0.01 (lognormal spread
 *                             ≈ 0.007–0.017), with occasional spikes that decay in a few updates
 *   ppo/clip_fraction         follows KL (clipping happens when the ratio moves, i.e. when KL is high)
 *   ppo/learning_rate         linear decay over `totalSteps`, then held at 2 %
 *
 * Every noise term is AR(1) so consecutive updates are correlated like minibatch averages
 * are. The generator is a pure function of (seed, step count): no timers, no clock, so
 * tests can run thousands of updates and a seed replays the same run.
 */
import { Ar1, Rng } from './rng.js';

export const PPO_METRIC_NAMES = [
  'ppo/policy_loss', 'ppo/value_loss', 'ppo/entropy', 'ppo/kl_divergence_approx', 'ppo/clip_fraction', 'ppo/learning_rate',
] as const;
export type PpoMetricName = (typeof PPO_METRIC_NAMES)[number];
export type PpoMetrics = Record<PpoMetricName, number>;

export interface PpoCurveOptions {
  seed: number;
  /** Updates over which the learning rate decays linearly (default 20 000). */
  totalSteps?: number;
  /** Entropy at update 0, nats (default ln 80: a uniform policy over a middlegame's legal moves). */
  initialEntropy?: number;
  /** Entropy the policy settles at (default 0.9). */
  entropyFloor?: number;
  /** Initial learning rate (default 3e-4, Keisei's default). */
  learningRate?: number;
  /** Chance per update that a KL spike starts (default 0.004). */
  spikeChance?: number;
  /** Updates already made (a resumed run continues its curves from here; default 0). */
  startStep?: number;
}

export class PpoCurves {
  /** Updates generated so far. */
  step = 0;
  private readonly rng: Rng;
  private readonly noise: { policy: Ar1; value: Ar1; entropy: Ar1; kl: Ar1; clip: Ar1 };
  private readonly totalSteps: number;
  private readonly h0: number;
  private readonly hFloor: number;
  private readonly lr0: number;
  private readonly spikeChance: number;
  private spike = 0;

  constructor(options: PpoCurveOptions) {
    this.rng = new Rng(options.seed);
    this.noise = {
      policy: new Ar1(this.rng, 0.8),
      value: new Ar1(this.rng, 0.9),
      entropy: new Ar1(this.rng, 0.95),
      kl: new Ar1(this.rng, 0.7),
      clip: new Ar1(this.rng, 0.6),
    };
    this.totalSteps = options.totalSteps ?? 20_000;
    this.h0 = options.initialEntropy ?? Math.log(80);
    this.hFloor = options.entropyFloor ?? 0.9;
    this.lr0 = options.learningRate ?? 3e-4;
    this.spikeChance = options.spikeChance ?? 0.004;
    this.step = options.startStep ?? 0;
  }

  /** Metrics of the next update. */
  next(): PpoMetrics {
    const s = ++this.step;
    const n = this.noise;
    const lr = this.lr0 * Math.max(0.02, 1 - s / this.totalSteps);

    const policyTrend = 0.01 + 0.12 * Math.exp(-s / 1200);
    const policyLoss = policyTrend + (0.003 + 0.15 * policyTrend) * n.policy.next();

    const valueTrend = 0.05 + 0.6 * Math.exp(-s / 2000);
    const valueLoss = valueTrend * Math.exp(0.12 * n.value.next());

    const entropyTrend = this.hFloor + (this.h0 - this.hFloor) * Math.exp(-s / 3000);
    const entropy = entropyTrend * (1 + 0.015 * n.entropy.next());

    // A spike is a bad minibatch or a too-large step: KL jumps, then the next updates pull back.
    this.spike *= 0.55;
    if (this.rng.next() < this.spikeChance) this.spike = 2 + 3 * this.rng.next();
    const klTrend = 0.011 + 0.045 * Math.exp(-s / 700);
    const kl = klTrend * Math.exp(0.25 * n.kl.next()) * (1 + this.spike);

    const clip = Math.min(1, Math.max(0, 0.015 + 5.5 * kl + 0.01 * n.clip.next()));

    return {
      'ppo/policy_loss': policyLoss,
      'ppo/value_loss': valueLoss,
      'ppo/entropy': entropy,
      'ppo/kl_divergence_approx': kl,
      'ppo/clip_fraction': clip,
      'ppo/learning_rate': lr,
    };
  }
}

/** `steps` updates of a fresh generator: the pure form tests use. */
export function simulatePpoCurves(steps: number, options: PpoCurveOptions): PpoMetrics[] {
  const curves = new PpoCurves(options);
  const out: PpoMetrics[] = new Array(steps);
  for (let i = 0; i < steps; i++) out[i] = curves.next();
  return out;
}
