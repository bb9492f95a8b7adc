/**
 * Plain-language explanations of what the numbers say, at three levels.
 *
 *  beginner      no jargon (no "KL", "entropy", "loss"): is training steady, is it improving
 *  intermediate  names the quantities, with their latest values, trends and the health verdict
 *  advanced      thresholds, slopes per step, window statistics, metric names as sent
 *
 * Every number in a text comes from the input; a quantity that was not received is not
 * mentioned (or is said to be missing), never estimated.
 */
import type { Level } from '../../shared/telemetry/channels.js';
import { trendDirection, type MetricSummary, type TrendDirection } from './metric-window.js';
import { findRole, type MetricRole } from './metric-roles.js';
import type { HealthThresholds, PpoHealth } from './ppo-health.js';

export type SummaryLike = Pick<MetricSummary, 'latest' | 'mean' | 'min' | 'max' | 'trend' | 'steps'>;

export interface MetricsExplainInput {
  step: number;
  health: PpoHealth;
  thresholds: HealthThresholds;
  metrics: ReadonlyMap<string, SummaryLike>;
}

/** Short human number: integers as is, others to 3 significant digits. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (Number.isInteger(x)) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return x.toExponential(2);
  return String(Number(x.toPrecision(3)));
}

function pct(x: number): string {
  return `${Math.round(x * 100)}%`;
}

function pick(metrics: ReadonlyMap<string, SummaryLike>, role: MetricRole): [string, SummaryLike, TrendDirection] | undefined {
  const name = findRole(metrics.keys(), role);
  if (name === undefined) return undefined;
  const s = metrics.get(name)!;
  return [name, s, trendDirection(s)];
}

const BEGINNER_HEALTH: Readonly<Record<PpoHealth['status'], string>> = {
  healthy: 'Training is steady: the AI is making small, careful changes to how it plays.',
  learning: 'The AI is still changing its play quite a bit as it learns.',
  exploring: 'The AI is making big changes to how it plays right now. It is trying new things, which can be bumpy.',
  unknown: 'This trainer does not send the numbers we use to judge how steady training is.',
};

const BEGINNER_ERROR: Readonly<Record<TrendDirection, string>> = {
  falling: 'is going down, so it is getting better at predicting good moves',
  rising: 'has been going up lately, so it is struggling a little right now',
  flat: 'has stayed about the same recently',
};

function beginner(input: MetricsExplainInput): string {
  const parts = [`After ${fmt(input.step)} training steps.`, BEGINNER_HEALTH[input.health.status]];
  const loss = pick(input.metrics, 'policyLoss');
  if (loss) parts.push(`Its move-prediction error (lower is better, now ${fmt(loss[1].latest)}) ${BEGINNER_ERROR[loss[2]]}.`);
  const win = pick(input.metrics, 'winRate');
  if (win && win[1].latest >= 0 && win[1].latest <= 1) parts.push(`It currently wins ${pct(win[1].latest)} of its games.`);
  if (!loss && !win) parts.push('No progress numbers have arrived yet for this run.');
  return parts.join(' ');
}

function healthSentence(h: PpoHealth, t: HealthThresholds): string {
  switch (h.status) {
    case 'unknown':
      return 'Health: unknown, because no KL divergence is reported.';
    case 'healthy':
      return `Health: healthy. KL ${fmt(h.kl!)} is under ${t.klHealthy}${h.clip_fraction === null ? '' : ` and clip fraction ${fmt(h.clip_fraction)} is under ${t.clipHealthy}`}, so policy updates are small and controlled.`;
    case 'learning':
      return `Health: learning. KL ${fmt(h.kl!)}${h.clip_fraction === null ? '' : ` with clip fraction ${fmt(h.clip_fraction)}`} shows the policy is still moving noticeably each update.`;
    case 'exploring':
      return `Health: exploring. KL ${fmt(h.kl!)} is at or above ${t.klLearning}: updates are large, so training may be unstable.`;
  }
}

const ROLE_LABEL: ReadonlyArray<[MetricRole, string]> = [
  ['policyLoss', 'Policy loss'],
  ['valueLoss', 'Value loss'],
  ['entropy', 'Entropy'],
  ['winRate', 'Win rate'],
];

function intermediate(input: MetricsExplainInput): string {
  const parts = [`Step ${fmt(input.step)}.`, healthSentence(input.health, input.thresholds)];
  for (const [role, label] of ROLE_LABEL) {
    const m = pick(input.metrics, role);
    if (!m) continue;
    let note = '';
    if (role === 'entropy' && m[2] === 'falling') note = ' (the policy is becoming more decisive)';
    if (role === 'policyLoss' && m[2] === 'falling') note = ' (improving)';
    parts.push(`${label} ${fmt(m[1].latest)} is ${m[2]}${note}.`);
  }
  return parts.join(' ');
}

const ADVANCED_METRICS = 8;

function advanced(input: MetricsExplainInput): string {
  const h = input.health;
  const t = input.thresholds;
  const parts = [`step ${fmt(input.step)}`, `health ${h.status}: ${h.reason} (thresholds klHealthy ${t.klHealthy}, clipHealthy ${t.clipHealthy}, klLearning ${t.klLearning})`];
  // Role metrics first (they drive the verdicts), then the rest alphabetically, bounded.
  const roleNames = ROLE_LABEL.map(([r]) => findRole(input.metrics.keys(), r)).filter((n): n is string => n !== undefined);
  const rest = [...input.metrics.keys()].filter((n) => !roleNames.includes(n)).sort();
  const shown = [...roleNames, ...rest].slice(0, ADVANCED_METRICS);
  for (const name of shown) {
    const s = input.metrics.get(name)!;
    const window = Number.isFinite(s.mean) ? `, window mean ${fmt(s.mean)} [${fmt(s.min)}, ${fmt(s.max)}]` : '';
    parts.push(`${name} ${fmt(s.latest)}${window}, slope ${fmt(s.trend)}/step over ${s.steps.length} points (${trendDirection(s)})`);
  }
  const hidden = input.metrics.size - shown.length;
  if (hidden > 0) parts.push(`${hidden} more metric${hidden === 1 ? '' : 's'} in the data`);
  return `${parts.join('; ')}.`;
}

export function explainMetrics(level: Level, input: MetricsExplainInput): string {
  if (level === 'beginner') return beginner(input);
  if (level === 'intermediate') return intermediate(input);
  return advanced(input);
}

export interface PredictionExplainInput {
  topMoves: readonly { move: string; prob: number }[];
  value?: number;
}

/** The value head's sign is read as "good for the side to move"; its magnitude is not interpreted. */
const VALUE_EVEN_BAND = 0.15;

export function explainPrediction(level: Level, input: PredictionExplainInput): string {
  const moves = [...input.topMoves].sort((a, b) => b.prob - a.prob);
  if (moves.length === 0) return level === 'beginner' ? 'The AI has not shared its move ideas yet.' : 'No move predictions received.';
  const [best] = moves;
  const v = input.value;
  if (level === 'beginner') {
    const mood = v === undefined ? '' : v > VALUE_EVEN_BAND ? ' It thinks the side to move is doing well.' : v < -VALUE_EVEN_BAND ? ' It thinks the side to move is in trouble.' : ' It thinks the position is roughly even.';
    return `The AI's favourite move here is ${best.move}: it gives it about a ${pct(best.prob)} chance.${mood}`;
  }
  if (level === 'intermediate') {
    const list = moves.slice(0, 3).map((m) => `${m.move} (${pct(m.prob)})`).join(', ');
    return `Top moves: ${list}.${v === undefined ? '' : ` Value estimate ${v >= 0 ? '+' : ''}${fmt(v)} for the side to move.`}`;
  }
  const mass = moves.reduce((s, m) => s + m.prob, 0);
  const list = moves.slice(0, 5).map((m) => `${m.move} ${m.prob.toFixed(3)}`).join(', ');
  return `Policy top-${Math.min(5, moves.length)}: ${list}; the ${moves.length} reported moves cover ${(mass * 100).toFixed(1)}% of the probability mass${v === undefined ? '; no value estimate sent' : `; value head ${v >= 0 ? '+' : ''}${fmt(v)}`}.`;
}
