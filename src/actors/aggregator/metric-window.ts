/**
 * One metric of one run: its bounded history and the statistics of the current window.
 *
 * The history is a fixed-size circular buffer of (step, raw value, smoothed value), so
 * memory per metric is `3 × seriesPoints` doubles no matter how long a run trains.
 * Window statistics (mean/min/max/count) cover the values received since the last
 * `closeWindow()`; when a window received nothing, the previous window's numbers are kept
 * (count 0) so a quiet metric still shows its last known state rather than zeros.
 *
 * Bursts: when one window receives more points than the history holds (a trainer catching
 * up after a stall), the points the history overwrites before the window closes would never
 * reach a client. They go to an overflow kept only until the window's messages are written,
 * paid for from a BurstBudget shared by every metric of every run, so a burst costs at most
 * the budget; a point the budget cannot pay for is dropped and counted (`windowPoints().dropped`).
 */

/** Points beyond the histories that one window may hold, shared by every metric. */
export class BurstBudget {
  left: number;
  constructor(readonly points: number) {
    if (!Number.isInteger(points) || points < 0) throw new RangeError(`BurstBudget: points must be a non-negative integer (got ${points})`);
    this.left = points;
  }
  /** A new window: the previous one's overflow has been written and released. */
  refill(): void {
    this.left = this.points;
  }
}

/** The points one closed window received, oldest first, and how many of them were dropped. */
export interface WindowPoints {
  steps: number[];
  smoothed: number[];
  series: number[];
  dropped: number;
}

/** Exponential moving average step: `alpha` weighs the new value. */
export function ema(previous: number | undefined, value: number, alpha: number): number {
  return previous === undefined ? value : previous + alpha * (value - previous);
}

/**
 * Least-squares slope of ys over xs (units of y per unit of x). 0 when there are fewer
 * than two points or every x is the same (no spread, so no direction can be told).
 */
export function slope(xs: ArrayLike<number>, ys: ArrayLike<number>, n = Math.min(xs.length, ys.length)): number {
  if (n < 2) return 0;
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < n; i++) { sx += xs[i]; sy += ys[i]; }
  const mx = sx / n;
  const my = sy / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i] - mx;
    sxy += dx * (ys[i] - my);
    sxx += dx * dx;
  }
  return sxx === 0 ? 0 : sxy / sxx;
}

export interface MetricSummary {
  latest: number;
  /** Step of the latest value. */
  step: number;
  mean: number;
  min: number;
  max: number;
  /** Least-squares slope over the kept series, per training step. */
  trend: number;
  /** Values received in the last closed window. */
  count: number;
  /** Values received since the metric was first seen. */
  total: number;
  smoothed: number[];
  series: number[];
  steps: number[];
}

/** A MetricWindow as JSON (NaN and infinities become null in JSON; restore reads them back as NaN). */
export interface PersistedMetricWindow {
  steps: number[];
  raw: number[];
  smooth: number[];
  smoothedLast: number | null;
  latest: number;
  latestStep: number;
  total: number;
  closed: { mean: number; min: number; max: number; count: number };
}

export class MetricWindow {
  readonly capacity: number;
  readonly alpha: number;
  private readonly stepsBuf: Float64Array;
  private readonly rawBuf: Float64Array;
  private readonly smoothBuf: Float64Array;
  /** 1 where the kept point was filed late (fileLate), so a window's live tail can leave it out. */
  private readonly lateBuf: Uint8Array;
  // filed points that landed among the open window's live points, and the same for the last closed one
  private wFiled = 0;
  private closedFiled = 0;
  private head = 0; // next write slot
  private size = 0;
  private smoothedLast: number | undefined;
  latest = NaN;
  latestStep = 0;
  total = 0;
  // current (open) window
  private wSum = 0;
  private wCount = 0;
  private wMin = Infinity;
  private wMax = -Infinity;
  // last closed window that had data
  private closed = { mean: NaN, min: NaN, max: NaN, count: 0 };
  // points of the open window the history overwrote, and those the budget could not keep
  private over: { steps: number[]; raw: number[]; smooth: number[] } | null = null;
  private wDropped = 0;
  // the same for the last closed window, until release()
  private closedOver: { steps: number[]; raw: number[]; smooth: number[] } | null = null;
  private closedDropped = 0;
  private readonly budget: BurstBudget;

  constructor(seriesPoints: number, smoothingAlpha: number, budget: BurstBudget = new BurstBudget(0)) {
    if (!Number.isInteger(seriesPoints) || seriesPoints < 1) throw new RangeError(`MetricWindow: seriesPoints must be a positive integer (got ${seriesPoints})`);
    if (!(smoothingAlpha > 0 && smoothingAlpha <= 1)) throw new RangeError(`MetricWindow: smoothingAlpha must be in (0, 1] (got ${smoothingAlpha})`);
    this.capacity = seriesPoints;
    this.alpha = smoothingAlpha;
    this.stepsBuf = new Float64Array(seriesPoints);
    this.rawBuf = new Float64Array(seriesPoints);
    this.smoothBuf = new Float64Array(seriesPoints);
    this.lateBuf = new Uint8Array(seriesPoints);
    this.budget = budget;
  }

  add(step: number, value: number): void {
    this.smoothedLast = ema(this.smoothedLast, value, this.alpha);
    // The slot about to be overwritten holds a point of the open window: keep it if the budget allows.
    if (this.wCount >= this.capacity) this.spill(this.head);
    this.stepsBuf[this.head] = step;
    this.rawBuf[this.head] = value;
    this.smoothBuf[this.head] = this.smoothedLast;
    this.lateBuf[this.head] = 0;
    this.head = (this.head + 1) % this.capacity;
    if (this.size < this.capacity) this.size++;
    this.latest = value;
    this.latestStep = step;
    this.total++;
    this.wSum += value;
    this.wCount++;
    if (value < this.wMin) this.wMin = value;
    if (value > this.wMax) this.wMax = value;
  }

  /**
   * A point that arrives after newer ones (a producer's offline spool draining): filed into the
   * kept history at its step, so the series stays in step order. It is not the metric's latest
   * value and not part of the open window's statistics or live points. 'duplicate' when the
   * history already holds that step (at-least-once delivery), 'behind' when the history is full
   * and every kept point is newer (it would be the first to go): both leave the history as it is.
   */
  fileLate(step: number, value: number): 'filed' | 'duplicate' | 'behind' {
    const cap = this.capacity;
    const start = (this.head - this.size + cap) % cap;
    const slot = (j: number) => (start + j) % cap;
    // The newest points are at the end, and late points are usually only a little older than
    // them: search from the end, and shift only what lies after the new point.
    let j = this.size;
    while (j > 0 && this.stepsBuf[slot(j - 1)] > step) j--;
    if (j > 0 && this.stepsBuf[slot(j - 1)] === step) return 'duplicate';
    const full = this.size === cap;
    if (full && j === 0) return 'behind';
    // Shift points j.. one place newer; when full, the last of them lands on the oldest point's slot.
    for (let k = this.size; k > j; k--) {
      const to = slot(k);
      const from = slot(k - 1);
      this.stepsBuf[to] = this.stepsBuf[from];
      this.rawBuf[to] = this.rawBuf[from];
      this.smoothBuf[to] = this.smoothBuf[from];
      this.lateBuf[to] = this.lateBuf[from];
    }
    // Among the open window's live points (the newest wCount + wFiled): its tail must skip it.
    if (j >= this.size - (this.wCount + this.wFiled)) this.wFiled++;
    const at = slot(j);
    this.stepsBuf[at] = step;
    this.rawBuf[at] = value;
    this.smoothBuf[at] = j > 0 ? ema(this.smoothBuf[slot(j - 1)], value, this.alpha) : value;
    this.lateBuf[at] = 1;
    this.head = (this.head + 1) % cap;
    if (!full) this.size++;
    this.total++;
    return 'filed';
  }

  private spill(slot: number): void {
    if (this.budget.left <= 0) { this.wDropped++; return; }
    this.budget.left--;
    this.over ??= { steps: [], raw: [], smooth: [] };
    this.over.steps.push(this.stepsBuf[slot]);
    this.over.raw.push(this.rawBuf[slot]);
    this.over.smooth.push(this.smoothBuf[slot]);
  }

  /** Values received in the open window. */
  get pending(): number {
    return this.wCount;
  }

  /** Ends the open window; its statistics become what summary() reports. */
  closeWindow(): void {
    this.closed = this.wCount > 0
      ? { mean: this.wSum / this.wCount, min: this.wMin, max: this.wMax, count: this.wCount }
      : { ...this.closed, count: 0 };
    this.closedOver = this.over;
    this.closedDropped = this.wDropped;
    this.closedFiled = this.wFiled;
    this.wFiled = 0;
    this.over = null;
    this.wDropped = 0;
    this.wSum = 0;
    this.wCount = 0;
    this.wMin = Infinity;
    this.wMax = -Infinity;
  }

  /**
   * Every point the last closed window received, oldest first (those the budget could not
   * keep are missing and counted in `dropped`). A quiet window gives the latest point, so a
   * live client still sees where the metric stands.
   */
  windowPoints(): WindowPoints {
    const live = this.closed.count - this.closedDropped - (this.closedOver?.steps.length ?? 0);
    const fromRing = Math.min(this.size, Math.max(1, live + this.closedFiled));
    // Points filed late among the window's own are history, not part of its live tail.
    const keep = live > 0 && this.closedFiled > 0 ? this.ordered(this.lateBuf).slice(this.size - fromRing).map((l) => l === 0) : null;
    const tail = (buf: Float64Array | Uint8Array) => {
      const t = this.ordered(buf).slice(this.size - fromRing);
      return keep ? t.filter((_, i) => keep[i]) : t;
    };
    const over = this.closedOver;
    return {
      steps: over ? over.steps.concat(tail(this.stepsBuf)) : tail(this.stepsBuf),
      smoothed: over ? over.smooth.concat(tail(this.smoothBuf)) : tail(this.smoothBuf),
      series: over ? over.raw.concat(tail(this.rawBuf)) : tail(this.rawBuf),
      dropped: this.closedDropped,
    };
  }

  /** Points of the last closed window the burst budget could not keep. */
  get windowDropped(): number {
    return this.closedDropped;
  }

  /** The closed window's messages are written: its overflow is no longer needed. */
  release(): void {
    this.closedOver = null;
    this.closedDropped = 0;
  }

  /** The kept points, oldest first. */
  private ordered(buf: Float64Array | Uint8Array): number[] {
    const out = new Array<number>(this.size);
    const start = (this.head - this.size + this.capacity) % this.capacity;
    for (let i = 0; i < this.size; i++) out[i] = buf[(start + i) % this.capacity];
    return out;
  }

  trend(): number {
    return slope(this.ordered(this.stepsBuf), this.ordered(this.rawBuf));
  }

  /** What another node needs to continue this series (persisted with its run). */
  persist(): PersistedMetricWindow {
    return {
      steps: this.ordered(this.stepsBuf), raw: this.ordered(this.rawBuf), smooth: this.ordered(this.smoothBuf),
      smoothedLast: this.smoothedLast ?? null, latest: this.latest, latestStep: this.latestStep, total: this.total,
      closed: { ...this.closed },
    };
  }

  /** Loads a persisted series into this (empty) window; the newest `capacity` points are kept. */
  restore(p: PersistedMetricWindow): void {
    const n = Math.min(p.steps.length, p.raw.length, p.smooth.length);
    const from = Math.max(0, n - this.capacity);
    for (let i = from; i < n; i++) {
      this.stepsBuf[this.head] = p.steps[i];
      this.rawBuf[this.head] = p.raw[i];
      this.smoothBuf[this.head] = p.smooth[i];
      this.head = (this.head + 1) % this.capacity;
      this.size = Math.min(this.capacity, this.size + 1);
    }
    this.smoothedLast = p.smoothedLast ?? undefined;
    this.latest = p.latest;
    this.latestStep = p.latestStep;
    this.total = p.total;
    this.closed = { ...p.closed };
  }

  summary(): MetricSummary {
    const steps = this.ordered(this.stepsBuf);
    const series = this.ordered(this.rawBuf);
    return {
      latest: this.latest,
      step: this.latestStep,
      mean: this.closed.mean,
      min: this.closed.min,
      max: this.closed.max,
      trend: slope(steps, series),
      count: this.closed.count,
      total: this.total,
      smoothed: this.ordered(this.smoothBuf),
      series,
      steps,
    };
  }
}

/**
 * Which way a metric is heading, judged by how much the fitted line moves over the kept
 * steps relative to the metric's size: a slope that changes the value by under 2 % across
 * the series is "flat" (noise), whatever its sign.
 */
export type TrendDirection = 'rising' | 'falling' | 'flat';

export function trendDirection(s: Pick<MetricSummary, 'trend' | 'steps' | 'mean' | 'latest'>, relativeThreshold = 0.02): TrendDirection {
  if (s.steps.length < 2 || s.trend === 0) return 'flat';
  const span = s.steps[s.steps.length - 1] - s.steps[0];
  const scale = Math.max(Math.abs(Number.isFinite(s.mean) ? s.mean : s.latest), Math.abs(s.latest), 1e-9);
  const change = (s.trend * span) / scale;
  if (Math.abs(change) < relativeThreshold) return 'flat';
  return change > 0 ? 'rising' : 'falling';
}
