/**
 * Metrics panel layer: training health (colour chip), one row per metric with its readable name,
 * latest value with its trend, and a sparkline of the last N values, then the explanation text.
 * The history lives here (fixed-size Float64Array rings, allocated once per metric) because overlay
 * messages only carry the latest values; it is fed once per new `ppo_metrics` step.
 */
import type { SKRSContext2D } from '@napi-rs/canvas';
import { fillBox, FG_DIM, FONT, HEALTH_COLORS, readableName, type TextBox } from './panels.js';

const MAX_METRICS = 16; // bounded: metric names come from the trainer
const MAX_ROWS = 6; // more rows would not be readable in a broadcast panel

class Series {
  readonly values: Float64Array;
  head = 0; // next write index
  count = 0;
  constructor(capacity: number) {
    this.values = new Float64Array(capacity);
  }
  push(v: number): void {
    this.values[this.head] = v;
    this.head = (this.head + 1) % this.values.length;
    if (this.count < this.values.length) this.count++;
  }
  /** i-th oldest value, i in [0, count). */
  at(i: number): number {
    const cap = this.values.length;
    return this.values[(this.head - this.count + i + cap) % cap];
  }
  latest(): number {
    return this.at(this.count - 1);
  }
}

export class MetricHistory {
  private readonly series = new Map<string, Series>();
  private lastStep: number | null = null;
  private lastMessage: unknown = null;
  /** Bumped on every accepted sample; cache key for the panel bitmap. */
  version = 0;
  /** Names dropped because MAX_METRICS was reached. */
  droppedNames = 0;

  constructor(readonly capacity: number) {}

  /** Feeds one ppo_metrics `data` object; ignores a repeat of the same message or step. Returns true if fed. */
  feed(data: unknown): boolean {
    if (data === this.lastMessage || typeof data !== 'object' || data === null) return false;
    this.lastMessage = data;
    const { values, step } = data as { values?: unknown; step?: unknown };
    if (typeof values !== 'object' || values === null) return false;
    if (typeof step === 'number') {
      if (step === this.lastStep) return false;
      this.lastStep = step;
    }
    let fed = false;
    for (const [name, v] of Object.entries(values as Record<string, unknown>)) {
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      let s = this.series.get(name);
      if (!s) {
        if (this.series.size >= MAX_METRICS) {
          this.droppedNames++;
          continue;
        }
        s = new Series(this.capacity);
        this.series.set(name, s);
      }
      s.push(v);
      fed = true;
    }
    if (fed) this.version++;
    return fed;
  }

  get(name: string): Series | undefined {
    return this.series.get(name);
  }

  names(): string[] {
    return [...this.series.keys()];
  }
}

function formatValue(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return v.toFixed(a >= 100 ? 1 : a >= 1 ? 3 : 4);
}

export const PANEL_COLOR = 'rgba(12,18,28,0.82)';
export const SPARK_COLOR = '#4cc9f0';

/** "ppo/kl_divergence_approx" → "KL divergence approx": the name after its group, readable. */
export function metricTitle(name: string): string {
  return readableName(name.split('/').pop() ?? name);
}

export interface MetricsLayout {
  title: TextBox;
  health: TextBox;
  rows: Array<{ name: TextBox; value: TextBox; spark: { x: number; y: number; w: number; h: number } }>;
  explanation: TextBox[];
}

/** Rows the panel lays out: the configured metric names (or the default 4), at most MAX_ROWS. */
export function metricRowCount(props: Record<string, unknown>): number {
  return Math.max(1, Math.min(MAX_ROWS, Array.isArray(props.metrics) ? props.metrics.length : 4));
}

/**
 * Header (title, health chip), one row per metric (readable name | value and trend | sparkline,
 * in separate columns so a long name never runs into the line), then the explanation (2 lines).
 */
export function metricsLayout(w: number, h: number, props: Record<string, unknown>): MetricsLayout {
  const pad = Math.min(w, h) * 0.04;
  const inner = w - pad * 2;
  const explain = props.explanation !== false;
  const headH = h * 0.13;
  const explH = explain ? h * 0.2 : 0;
  const n = metricRowCount(props);
  const rowH = (h - pad * 2 - headH - explH) / n;
  const headFont = headH * 0.6;
  const rowFont = Math.min(rowH * 0.46, headFont * 0.9);
  const box = (x: number, y: number, bw: number, font: number, bh: number): TextBox => ({ x, y: y + (bh - font * 1.25) / 2, w: bw, h: font * 1.25, font });
  const rows = Array.from({ length: n }, (_, i) => {
    const y = pad + headH + i * rowH;
    return {
      name: box(pad, y, inner * 0.4, rowFont, rowH),
      value: box(pad + inner * 0.42, y, inner * 0.24, rowFont, rowH),
      spark: { x: pad + inner * 0.68, y: y + rowH * 0.15, w: inner * 0.32, h: rowH * 0.7 },
    };
  });
  const explFont = explH * 0.3;
  const explanation = explain ? [0, 1].map((i) => box(pad, pad + headH + n * rowH + i * (explH / 2), inner, explFont, explH / 2)) : [];
  return { title: box(pad, pad, inner * 0.5, headFont, headH), health: box(pad + inner * 0.52, pad, inner * 0.48, headFont * 0.8, headH), rows, explanation };
}

/** Splits `text` into at most `lines` lines that fit `width` at the current font; the last one ends in "…" if cut. */
function wrap(ctx: SKRSContext2D, text: string, width: number, lines: number): string[] {
  const words = text.split(/\s+/).filter(Boolean);
  const out: string[] = [];
  let line = '';
  for (let i = 0; i < words.length; i++) {
    const next = line ? `${line} ${words[i]}` : words[i];
    if (ctx.measureText(next).width <= width || !line) {
      line = next;
      continue;
    }
    out.push(line);
    line = words[i];
    if (out.length === lines - 1) {
      const rest = words.slice(i).join(' ');
      let cut = rest;
      while (cut.length > 1 && ctx.measureText(`${cut}…`).width > width) cut = cut.slice(0, -1);
      out.push(cut === rest ? rest : `${cut.trimEnd()}…`);
      return out;
    }
  }
  if (line) out.push(line);
  return out;
}

const TREND_ARROWS = { rising: '▲', falling: '▼', flat: '▶' } as const;

function trendOf(s: Series, reported: unknown): keyof typeof TREND_ARROWS {
  if (typeof reported === 'number' && Number.isFinite(reported)) {
    const scale = Math.max(Math.abs(s.latest()), 1e-9);
    if (Math.abs(reported * s.count) / scale < 0.02) return 'flat';
    return reported > 0 ? 'rising' : 'falling';
  }
  if (s.count < 2) return 'flat';
  const first = s.at(0), last = s.latest();
  const change = (last - first) / Math.max(Math.abs(first), 1e-9);
  return Math.abs(change) < 0.02 ? 'flat' : change > 0 ? 'rising' : 'falling';
}

/**
 * `ppo` is the latest ppo_metrics message's data (health, per-metric trend, explanation); the
 * values come from the history so the sparklines and the numbers agree.
 */
export function drawMetricsPanel(ctx: SKRSContext2D, w: number, h: number, history: MetricHistory, props: Record<string, unknown>, ppo?: unknown): void {
  ctx.fillStyle = PANEL_COLOR;
  ctx.beginPath();
  ctx.roundRect(0, 0, w, h, Math.min(16, h / 20));
  ctx.fill();
  const l = metricsLayout(w, h, props);
  const title = typeof props.title === 'string' ? props.title : 'Training';
  fillBox(ctx, l.title, title, { bold: true });
  const data = (ppo ?? {}) as { health?: { status?: unknown }; metrics?: Record<string, { trend?: unknown } | undefined>; explanation?: unknown };
  const status = typeof data.health?.status === 'string' ? data.health.status : 'unknown';
  const chipColor = HEALTH_COLORS[status] ?? HEALTH_COLORS.unknown;
  ctx.font = `bold ${Math.round(l.health.font)}px ${FONT}`;
  const chipText = `● ${status}`;
  const chipW = Math.min(l.health.w, ctx.measureText(chipText).width + l.health.font);
  ctx.fillStyle = chipColor;
  ctx.beginPath();
  ctx.roundRect(l.health.x + l.health.w - chipW, l.health.y, chipW, l.health.h, l.health.h / 2);
  ctx.fill();
  fillBox(ctx, { ...l.health, x: l.health.x + l.health.w - chipW, w: chipW }, status, { bold: true, color: '#0b0d12', align: 'center' });

  const wanted = Array.isArray(props.metrics) ? (props.metrics as string[]) : history.names();
  let shown = wanted.filter((n) => (history.get(n)?.count ?? 0) > 0);
  // Trainers name metrics differently (policy_loss, ppo/policy_loss, train/…): when none of the configured
  // names arrive, show what does arrive rather than an empty panel.
  if (shown.length === 0) shown = history.names();
  shown = shown.slice(0, l.rows.length);
  if (shown.length === 0) {
    fillBox(ctx, l.rows[0].name, 'waiting for the trainer', { color: FG_DIM });
  }
  for (let i = 0; i < shown.length; i++) {
    const s = history.get(shown[i])!;
    const row = l.rows[i];
    fillBox(ctx, row.name, metricTitle(shown[i]), { color: '#d6dde4' });
    const trend = trendOf(s, data.metrics?.[shown[i]]?.trend);
    fillBox(ctx, row.value, `${formatValue(s.latest())} ${TREND_ARROWS[trend]}`, { bold: true, align: 'right' });
    drawSparkline(ctx, s, row.spark.x, row.spark.y, row.spark.w, row.spark.h);
  }
  if (l.explanation.length > 0 && typeof data.explanation === 'string' && data.explanation) {
    ctx.font = `${Math.round(l.explanation[0].font)}px ${FONT}`;
    const lines = wrap(ctx, data.explanation, l.explanation[0].w, l.explanation.length);
    lines.forEach((line, i) => fillBox(ctx, l.explanation[i], line, { color: chipColor === HEALTH_COLORS.unknown ? FG_DIM : '#e8edf2' }));
  }
}

function drawSparkline(ctx: SKRSContext2D, s: Series, x: number, y: number, w: number, h: number): void {
  ctx.fillStyle = 'rgba(255,255,255,0.06)';
  ctx.fillRect(x, y, w, h);
  if (s.count < 2) return;
  let min = Infinity, max = -Infinity;
  for (let i = 0; i < s.count; i++) {
    const v = s.at(i);
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const range = max - min || 1;
  // The line spans the box from the first sample kept: a young series is not squeezed into a corner.
  const dx = w / (s.count - 1);
  const x0 = x;
  ctx.beginPath();
  for (let i = 0; i < s.count; i++) {
    const px = x0 + i * dx;
    const py = y + h - ((s.at(i) - min) / range) * h;
    if (i === 0) ctx.moveTo(px, py);
    else ctx.lineTo(px, py);
  }
  ctx.strokeStyle = SPARK_COLOR;
  ctx.lineWidth = Math.max(1, h * 0.04);
  ctx.stroke();
}
