/**
 * `!explain [topic]` and `!stats` texts: what a quantity means at the viewer's level, plus its
 * latest value from the telemetry (never an invented number: "no data yet" when none came).
 */
import { findRole, type MetricRole } from '../aggregator/metric-roles.js';
import type { Level } from '../../shared/telemetry/channels.js';
import type { MetricView, PpoMetricsData, TelemetryView } from './telemetry-view.js';

type Texts = Readonly<Record<Level, string>>;

interface Topic {
  /** Metric roles (or a name pattern) whose numbers are quoted. */
  roles?: MetricRole[];
  pattern?: RegExp;
  text: Texts;
}

const TOPICS: Readonly<Record<string, Topic>> = {
  kl: {
    roles: ['kl'],
    text: {
      beginner: 'How much the AI changed its playing style in its last lesson. Small numbers mean small, careful changes.',
      intermediate: 'KL divergence: how far the updated policy moved from the one that collected the games. PPO keeps it small so each update is a safe step.',
      advanced: 'Approximate KL, mean(old_logp - new_logp) over the minibatches; the health verdict compares it with the configured thresholds.',
    },
  },
  entropy: {
    roles: ['entropy'],
    text: {
      beginner: 'How open-minded the AI is: high means it still tries many moves, low means it has settled on favourites.',
      intermediate: 'Policy entropy: the spread of the move distribution. It falls as the policy sharpens; a sudden collapse can mean premature certainty.',
      advanced: 'Mean entropy of the policy over the batch (nats); watch the slope: a fast fall with rising KL is a sign of collapse.',
    },
  },
  loss: {
    roles: ['policyLoss', 'valueLoss'],
    text: {
      beginner: 'Losses measure the AI\'s mistakes while it learns: going down means it is getting better.',
      intermediate: 'Policy loss (PPO clipped objective) and value loss (how wrong the position evaluations are). Trends matter more than values.',
      advanced: 'Clipped surrogate policy loss and MSE value loss, averaged over minibatches; the policy loss can go negative by construction.',
    },
  },
  value: {
    roles: ['valueLoss'],
    text: {
      beginner: 'The value is the AI\'s feeling about who is winning. Its error (value loss) shows how good that feeling is.',
      intermediate: 'The value head estimates the outcome for the side to move (-1 lose … +1 win); value loss is its squared error.',
      advanced: 'Value head output in [-1, 1] for the side to move; value loss = MSE against the returns.',
    },
  },
  clip: {
    roles: ['clip'],
    text: {
      beginner: 'How often the AI wanted to change more than it is allowed to in one lesson.',
      intermediate: 'Clip fraction: the share of samples where PPO clipped the probability ratio. High values mean updates push against the limit.',
      advanced: 'Mean of the clip mask |ratio - 1| > ε over the batch; with KL it drives the health verdict.',
    },
  },
  health: {
    text: {
      beginner: 'Training health tells if learning is steady, still changing a lot, or wild.',
      intermediate: 'Health comes from KL and clip fraction: healthy (small updates), learning, or exploring (big updates).',
      advanced: 'Health = thresholds on KL (klHealthy/klLearning) and clip fraction (clipHealthy); without KL it is "unknown".',
    },
  },
  attention: {
    text: {
      beginner: 'The glowing squares on the board are where the AI is looking the most.',
      intermediate: 'The heatmap shows where the policy puts its probability mass (or the trainer\'s own saliency map).',
      advanced: 'Board heatmap: trainer-sent 9x9 saliency, else policy mass per square; SE attention is per-block channel weights (no spatial layout).',
    },
  },
  lr: {
    pattern: /(^|[/_.-])(learning_rate|lr)$/i,
    text: {
      beginner: 'How big the AI\'s learning steps are.',
      intermediate: 'Learning rate: the optimiser\'s step size.',
      advanced: 'Optimiser learning rate as the trainer reports it (after any schedule).',
    },
  },
  winrate: {
    roles: ['winRate'],
    text: {
      beginner: 'How often the AI wins its practice games.',
      intermediate: 'Win rate against the evaluation opponent.',
      advanced: 'Win rate as reported by the trainer (its own evaluation protocol).',
    },
  },
};
const ALIASES: Readonly<Record<string, string>> = {
  divergence: 'kl', 'kl_divergence': 'kl', ent: 'entropy', losses: 'loss', policy: 'loss', clipping: 'clip', clip_fraction: 'clip',
  heatmap: 'attention', focus: 'attention', learning_rate: 'lr', win: 'winrate', win_rate: 'winrate',
};
export const TOPIC_NAMES = Object.keys(TOPICS);

function fmt(x: number | undefined | null): string {
  if (typeof x !== 'number' || !Number.isFinite(x)) return 'n/a';
  if (Number.isInteger(x)) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return x.toExponential(2);
  return String(Number(x.toPrecision(3)));
}

function trendWord(t: number | undefined): string {
  if (typeof t !== 'number' || !Number.isFinite(t) || Math.abs(t) < 1e-12) return 'flat';
  return t > 0 ? 'rising' : 'falling';
}

function metricLine(name: string, m: MetricView | undefined, raw: number | undefined, level: Level): string {
  const latest = m?.latest ?? raw;
  if (level === 'beginner') return `${name.split('/').pop()} is ${fmt(latest)} and ${trendWord(m?.trend)}`;
  if (level === 'intermediate') return `${name} ${fmt(latest)} (${trendWord(m?.trend)}, mean ${fmt(m?.mean)})`;
  return `${name} ${fmt(latest)} [min ${fmt(m?.min)} max ${fmt(m?.max)} mean ${fmt(m?.mean)} slope ${fmt(m?.trend)}/step n=${fmt(m?.count)}]`;
}

function numbers(topic: Topic, data: PpoMetricsData | undefined, level: Level, stats?: PpoMetricsData): string[] {
  if (!data) return [];
  const names = new Set([...Object.keys(data.values ?? {}), ...Object.keys(data.metrics ?? {})]);
  const found: string[] = [];
  for (const role of topic.roles ?? []) {
    const name = findRole(names, role);
    if (name) found.push(name);
  }
  if (topic.pattern) for (const n of names) if (topic.pattern.test(n)) found.push(n);
  // Intermediate messages carry no window statistics (their pages draw the series' own): the
  // mean comes from the advanced message of the same run, when the view holds one.
  const withStats = (n: string): MetricView | undefined => {
    const m = data.metrics?.[n];
    const s = stats && stats.run === data.run ? stats.metrics?.[n] : undefined;
    return m && m.mean === undefined && s ? { ...s, ...m } : m;
  };
  return found.map((n) => metricLine(n, withStats(n), data.values?.[n], level));
}

export type ExplainResult = { ok: true; text: string } | { ok: false; error: string };

export function explain(topicArg: string | undefined, level: Level, view: TelemetryView): ExplainResult {
  const data = view.metrics[level];
  if (!topicArg) {
    if (!data?.explanation) return { ok: true, text: 'No training data yet, so nothing to explain. Try !help.' };
    return { ok: true, text: data.explanation };
  }
  const key = topicArg.toLowerCase();
  const name = TOPICS[key] ? key : ALIASES[key];
  if (!name) return { ok: false, error: `unknown topic "${topicArg.slice(0, 20)}"; topics: ${TOPIC_NAMES.join(', ')}` };
  const topic = TOPICS[name];
  const parts = [topic.text[level]];
  if (name === 'health') {
    const h = data?.health;
    parts.push(h?.status ? `Now: ${h.status}${level === 'beginner' ? '' : ` (${h.reason ?? 'no reason given'})`}.` : 'No health verdict yet.');
  } else if (name === 'attention') {
    parts.push(view.heatmapFocus.length > 0 ? `Hot squares now: ${view.heatmapFocus.join(', ')}.` : 'No heatmap data yet.');
  } else if (name === 'value') {
    const lines = numbers(topic, data, level, view.metrics.advanced);
    const v = view.prediction?.value;
    parts.push(typeof v === 'number' ? `Current value estimate ${v >= 0 ? '+' : ''}${fmt(v)} for the side to move.` : 'No value estimate yet.');
    if (lines.length > 0) parts.push(`${lines.join('; ')}.`);
  } else {
    const lines = numbers(topic, data, level, view.metrics.advanced);
    parts.push(lines.length > 0 ? `Now: ${lines.join('; ')}.` : 'This trainer has not sent that number yet.');
  }
  return { ok: true, text: parts.join(' ') };
}

export function statsLine(view: TelemetryView, gameLine: string | undefined): string {
  const m = view.metrics.intermediate ?? view.metrics.beginner ?? view.metrics.advanced;
  const parts: string[] = [];
  parts.push(m?.step !== undefined ? `step ${fmt(m.step)}` : 'no training metrics yet');
  if (m?.health?.status) parts.push(`health ${m.health.status}${typeof m.health.kl === 'number' ? ` (KL ${fmt(m.health.kl)})` : ''}`);
  const g = view.game;
  if (g) {
    if (typeof g.games_finished === 'number') parts.push(`${g.games_finished} games finished`);
    parts.push(`game ${g.game_id}${typeof g.move_count === 'number' ? ` at move ${g.move_count}` : ''}${g.result ? ` (${g.result})` : ''}`);
  } else {
    parts.push('no game yet');
  }
  if (gameLine) parts.push(gameLine);
  return parts.join(' · ');
}
