/**
 * Metric names are data, not schema: Keisei gen 1 sends `ppo/kl_divergence_approx`, gen 2
 * sends `policy_loss` with no prefix, other trainers `train/approx_kl`. Rules that need a
 * particular quantity (health, milestones, explanations) find it by role here, matching
 * on the last path segment, so every other name passes through untouched.
 */

export type MetricRole = 'kl' | 'clip' | 'entropy' | 'policyLoss' | 'valueLoss' | 'winRate';

/** Exact names preferred over suffix matches, so the gen-1 name wins when several match. */
const PREFERRED: Readonly<Record<MetricRole, string>> = {
  kl: 'ppo/kl_divergence_approx',
  clip: 'ppo/clip_fraction',
  entropy: 'ppo/entropy',
  policyLoss: 'ppo/policy_loss',
  valueLoss: 'ppo/value_loss',
  winRate: 'win_rate',
};

const MATCHERS: Readonly<Record<MetricRole, RegExp>> = {
  // `kl`, `approx_kl`, `kl_divergence`, `kl_divergence_approx`, `policy_kl` …
  kl: /(^|[_.-])kl$|(^|[_.-])kl_divergence(_approx)?$|^approx_kl$/,
  clip: /(^|[_.-])clip_?frac(tion)?$/,
  entropy: /(^|[_.-])entropy$/,
  policyLoss: /(^|[_.-])(policy|pi|actor)_loss$/,
  valueLoss: /(^|[_.-])(value|vf|critic)_loss$/,
  winRate: /(^|[_.-])win_?rate$/,
};

function lastSegment(name: string): string {
  const slash = name.lastIndexOf('/');
  return (slash < 0 ? name : name.slice(slash + 1)).toLowerCase();
}

export function hasRole(name: string, role: MetricRole): boolean {
  return name === PREFERRED[role] || MATCHERS[role].test(lastSegment(name));
}

/**
 * The metric name playing `role` among `names`, or undefined. Deterministic when several
 * match: the preferred gen-1 name, else the alphabetically first.
 */
export function findRole(names: Iterable<string>, role: MetricRole): string | undefined {
  let best: string | undefined;
  for (const name of names) {
    if (name === PREFERRED[role]) return name;
    if (MATCHERS[role].test(lastSegment(name)) && (best === undefined || name < best)) best = name;
  }
  return best;
}
