/**
 * Metrics panel layer: one row per metric with its latest value and a sparkline of the last N values.
 * The history lives here (fixed-size Float64Array rings, allocated once per metric) because overlay
 * messages only carry the latest values; it is fed once per new `ppo_metrics` step.
 */
import type { SKRSContext2D } from '@napi-rs/canvas';

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
  return v.toFixed(a >= 100 ? 1 : 4);
}

export const PANEL_COLOR = 'rgba(12,18,28,0.82)';
export const SPARK_COLOR = '#4cc9f0';

export function drawMetricsPanel(ctx: SKRSContext2D, w: number, h: number, history: MetricHistory, props: Record<string, unknown>): void {
  ctx.fillStyle = PANEL_COLOR;
  ctx.fillRect(0, 0, w, h);
  const pad = Math.max(4, Math.min(w, h) * 0.04);
  const title = typeof props.title === 'string' ? props.title : 'metrics';
  const titleSize = Math.max(10, Math.round(h * 0.08));
  ctx.fillStyle = '#ffffff';
  ctx.textAlign = 'left';
  ctx.textBaseline = 'middle';
  ctx.font = `bold ${titleSize}px "DejaVu Sans"`;
  ctx.fillText(title, pad, pad + titleSize / 2);

  const wanted = Array.isArray(props.metrics) ? (props.metrics as string[]) : history.names();
  let shown = wanted.filter((n) => (history.get(n)?.count ?? 0) > 0);
  // Trainers name metrics differently (policy_loss, ppo/policy_loss, train/…): when none of the configured
  // names arrive, show what does arrive rather than an empty panel.
  if (shown.length === 0) shown = history.names();
  if (shown.length > MAX_ROWS) shown = shown.slice(0, MAX_ROWS);
  const top = pad * 2 + titleSize;
  if (shown.length === 0) {
    ctx.fillStyle = '#9aa5b1';
    ctx.font = `${titleSize}px "DejaVu Sans"`;
    ctx.fillText('no data', pad, top + titleSize);
    return;
  }
  const rowH = (h - top - pad) / shown.length;
  const textSize = Math.max(9, Math.round(Math.min(rowH * 0.38, titleSize)));
  const labelW = w * 0.42;
  const sparkX = pad + labelW;
  const sparkW = w - sparkX - pad;
  for (let i = 0; i < shown.length; i++) {
    const s = history.get(shown[i])!;
    const y = top + i * rowH;
    ctx.fillStyle = '#c9d1d9';
    ctx.font = `${textSize}px "DejaVu Sans"`;
    ctx.fillText(shown[i], pad, y + rowH * 0.3);
    ctx.fillStyle = '#ffffff';
    ctx.font = `bold ${textSize}px "DejaVu Sans Mono"`;
    ctx.fillText(formatValue(s.latest()), pad, y + rowH * 0.72);
    drawSparkline(ctx, s, sparkX, y + rowH * 0.12, sparkW, rowH * 0.76);
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
  const dx = w / (s.values.length - 1); // fixed x scale: the line grows in from the left until the ring fills
  const x0 = x + w - dx * (s.count - 1);
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
