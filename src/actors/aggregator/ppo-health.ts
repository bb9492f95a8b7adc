/**
 * PPO training health from the latest KL divergence and clip fraction.
 *
 *   KL < klHealthy and clip < clipHealthy  → healthy   (small, controlled policy updates)
 *   KL < klLearning                        → learning  (the policy is still moving noticeably)
 *   otherwise                              → exploring (large updates; unstable or early)
 *
 * Hysteresis: given the previous window's status, a value within HEALTH_MARGIN (10 %) of a
 * threshold keeps that status, so a KL hovering at a threshold does not flip the health
 * colour (and its explanation) from window to window.
 *
 * A trainer that sends no KL (Keisei gen 2 reports losses, entropy and gradient norm only)
 * gets status "unknown" with a reason, never a guess. Without a clip fraction (gen 1 omits
 * it for an empty batch) the verdict rests on KL alone, and the reason says so.
 */
import { findRole } from './metric-roles.js';

export interface HealthThresholds {
  klHealthy: number;
  clipHealthy: number;
  klLearning: number;
}

export type HealthStatus = 'healthy' | 'learning' | 'exploring' | 'unknown';

export interface PpoHealth {
  status: HealthStatus;
  kl: number | null;
  clip_fraction: number | null;
  /** Which metric names the verdict used (null when absent). */
  kl_metric: string | null;
  clip_metric: string | null;
  reason: string;
}

export function checkThresholds(t: HealthThresholds): void {
  for (const key of ['klHealthy', 'clipHealthy', 'klLearning'] as const) {
    if (typeof t?.[key] !== 'number' || !Number.isFinite(t[key]) || t[key] < 0) {
      throw new RangeError(`health.${key} must be a finite number >= 0 (got ${String(t?.[key])})`);
    }
  }
  if (t.klHealthy > t.klLearning) throw new RangeError(`health.klHealthy (${t.klHealthy}) must not exceed health.klLearning (${t.klLearning})`);
}

/** How far past a threshold a value must go to leave the previous window's status. */
export const HEALTH_MARGIN = 0.1;

/** Whether `previous` still holds for these values with the margin in its favour. */
function stillHolds(previous: HealthStatus, kl: number, clip: number | null, t: HealthThresholds): boolean {
  const up = 1 + HEALTH_MARGIN;
  const down = 1 - HEALTH_MARGIN;
  const clearlyHealthy = kl < t.klHealthy * down && (clip === null || clip < t.clipHealthy * down);
  switch (previous) {
    case 'healthy': return kl < t.klHealthy * up && (clip === null || clip < t.clipHealthy * up);
    case 'learning': return kl < t.klLearning * up && !clearlyHealthy;
    case 'exploring': return kl >= t.klLearning * down;
    default: return false;
  }
}

/** `latest` maps metric name → its latest value; `previous` is the last window's status. */
export function assessHealth(latest: ReadonlyMap<string, number>, t: HealthThresholds, previous?: HealthStatus): PpoHealth {
  const verdict = judge(latest, t);
  if (previous === undefined || verdict.status === previous || verdict.status === 'unknown' || verdict.kl === null) return verdict;
  if (!stillHolds(previous, verdict.kl, verdict.clip_fraction, t)) return verdict;
  return { ...verdict, status: previous, reason: `${verdict.reason}, within ${HEALTH_MARGIN * 100} % of the threshold: still ${previous}` };
}

function judge(latest: ReadonlyMap<string, number>, t: HealthThresholds): PpoHealth {
  const klName = findRole(latest.keys(), 'kl');
  const clipName = findRole(latest.keys(), 'clip');
  const kl = klName === undefined ? null : latest.get(klName)!;
  const clip = clipName === undefined ? null : latest.get(clipName)!;
  const base = { kl, clip_fraction: clip, kl_metric: klName ?? null, clip_metric: clipName ?? null };
  if (kl === null) {
    return { ...base, status: 'unknown', reason: 'no KL divergence metric received (this trainer does not report one, e.g. Keisei gen 2), so policy-update size cannot be judged' };
  }
  const clipNote = clip === null ? ' (no clip fraction received; judged on KL alone)' : '';
  // The reason is read, not computed with: 4 significant digits, as the numbers beside it
  // (a full double here would also make every window's text differ for delta clients).
  const shown = (x: number | null) => (x === null || !Number.isFinite(x) || x === 0 ? x : Number(x.toPrecision(4)));
  const klText = shown(kl);
  const clipText = shown(clip);
  if (kl < t.klHealthy && (clip === null || clip < t.clipHealthy)) {
    return { ...base, status: 'healthy', reason: `KL ${klText} < ${t.klHealthy}${clip === null ? '' : ` and clip fraction ${clipText} < ${t.clipHealthy}`}${clipNote}` };
  }
  if (kl < t.klLearning) {
    const why = kl >= t.klHealthy ? `KL ${klText} is between ${t.klHealthy} and ${t.klLearning}` : `KL ${klText} < ${t.klHealthy} but clip fraction ${clipText} >= ${t.clipHealthy}`;
    return { ...base, status: 'learning', reason: `${why}${clipNote}` };
  }
  return { ...base, status: 'exploring', reason: `KL ${klText} >= ${t.klLearning}${clipNote}` };
}
