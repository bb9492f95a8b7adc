// Sparklines: a bounded (step, value) series and a canvas renderer that draws the raw
// series faint and the smoothed one bold, x by training step, y by the shown range.
// Plain ES module, no build step.

/** The newest `capacity` points of one series, in step order. Appends only newer steps. */
export class Series {
  constructor(capacity = 100) {
    this.capacity = capacity;
    this.steps = [];
    this.values = [];
  }

  get length() { return this.steps.length; }
  get lastStep() { return this.steps.length ? this.steps[this.steps.length - 1] : -Infinity; }

  /**
   * mean/min/max over the points held ({count: 0, … null} when empty). The cards show these: the
   * server's per-message window stats cover a single sample, so they only repeat the latest value.
   */
  stats() {
    const n = this.values.length;
    if (!n) return { count: 0, mean: null, min: null, max: null };
    let sum = 0, min = Infinity, max = -Infinity;
    for (const v of this.values) { sum += v; if (v < min) min = v; if (v > max) max = v; }
    return { count: n, mean: sum / n, min, max };
  }

  /** Adds a point if its step is newer than the last one (live tails overlap the snapshot). */
  append(step, value) {
    if (!Number.isFinite(step) || !Number.isFinite(value) || step <= this.lastStep) return false;
    this.steps.push(step);
    this.values.push(value);
    if (this.steps.length > this.capacity) {
      this.steps.splice(0, this.steps.length - this.capacity);
      this.values.splice(0, this.values.length - this.capacity);
    }
    return true;
  }

  /** Replaces everything with a full series from the server (JSON nulls and NaN are skipped, not drawn as 0). */
  replace(steps, values) {
    this.steps = [];
    this.values = [];
    const n = Math.min(steps.length, values.length);
    // A server series that steps back (the trainer restarted the run) is kept from the restart on.
    let from = Math.max(0, n - this.capacity);
    for (let i = n - 1; i > from; i--) {
      if (steps[i] <= steps[i - 1]) { from = i; break; }
    }
    for (let i = from; i < n; i++) {
      if (Number.isFinite(steps[i]) && Number.isFinite(values[i]) && steps[i] > this.lastStep) {
        this.steps.push(steps[i]);
        this.values.push(values[i]);
      }
    }
  }

  /**
   * Takes in a full series from the server without losing older points this page holds: the
   * server keeps `seriesPoints` per metric, the page up to its own capacity, so a page fed
   * whole series (a delta subscription, a catching-up run) draws what a page fed window
   * tails draws. The server's points are the truth from their first step on (late points
   * filed among them included); held points before it stay. A series that steps back
   * inside (the run restarted) replaces everything, as replace() does.
   */
  merge(steps, values) {
    const held = { steps: this.steps, values: this.values };
    this.replace(steps, values);
    const n = Math.min(steps.length, values.length);
    let restarted = false;
    for (let i = 1; i < n && !restarted; i++) restarted = steps[i] <= steps[i - 1];
    if (restarted || held.steps.length === 0) return;
    if (this.steps.length === 0) { this.steps = held.steps; this.values = held.values; return; }
    let before = 0;
    while (before < held.steps.length && held.steps[before] < this.steps[0]) before++;
    this.steps = [...held.steps.slice(0, before), ...this.steps];
    this.values = [...held.values.slice(0, before), ...this.values];
    if (this.steps.length > this.capacity) {
      this.steps.splice(0, this.steps.length - this.capacity);
      this.values.splice(0, this.values.length - this.capacity);
    }
  }

  clear() {
    this.steps = [];
    this.values = [];
  }
}

/**
 * Where a sparkline maps data to pixels. Exposed so tests (and anyone debugging) can tell
 * where a given (step, value) must appear: x = x0 + (step − minStep) / (maxStep − minStep) · w,
 * y = y0 + h − (value − lo) / (hi − lo) · h.
 * The step range is the main series' (the page's last 100 points); other series only count
 * where they overlap it (a per-window raw series reaches further back than 100 smoothed points).
 */
export function sparkGeometry(rect, main, others = []) {
  if (!main || main.length === 0) return null;
  const minStep = main.steps[0];
  const maxStep = main.steps[main.length - 1];
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of [main, ...others]) {
    for (let i = 0; i < s.length; i++) {
      if (s.steps[i] < minStep || s.steps[i] > maxStep) continue;
      const v = s.values[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  // Flat lines sit mid-height instead of on an edge; a little headroom keeps strokes inside.
  if (hi - lo < 1e-12) {
    const pad = Math.abs(hi) * 0.1 || 1;
    lo -= pad;
    hi += pad;
  } else {
    const pad = (hi - lo) * 0.08;
    lo -= pad;
    hi += pad;
  }
  return { x: rect.x, y: rect.y, w: rect.w, h: rect.h, minStep, maxStep, lo, hi };
}

export function toPixel(g, step, value) {
  const span = g.maxStep - g.minStep;
  const x = span > 0 ? g.x + ((step - g.minStep) / span) * g.w : g.x + g.w;
  const y = g.y + g.h - ((value - g.lo) / (g.hi - g.lo)) * g.h;
  return [x, y];
}

function stroke(ctx, g, s, colour, width) {
  if (s.length === 0) return;
  ctx.strokeStyle = colour;
  ctx.lineWidth = width;
  ctx.lineJoin = 'round';
  ctx.lineCap = 'round';
  ctx.beginPath();
  for (let i = 0; i < s.length; i++) {
    const [x, y] = toPixel(g, s.steps[i], s.values[i]);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  }
  // A single point has no line; draw it as a dot so "one value so far" is still visible.
  if (s.length === 1) {
    const [x, y] = toPixel(g, s.steps[0], s.values[0]);
    ctx.fillStyle = colour;
    ctx.fillRect(x - width, y - width, width * 2, width * 2);
  }
  ctx.stroke();
}

/**
 * Draws raw (faint, thin) under smoothed (bold) inside rect; the x range is the smoothed
 * series' when there is one, so both line up by step (raw points before it are clipped).
 * Returns the geometry, or null when there is nothing to draw.
 */
export function drawSparkline(ctx, rect, { raw, smoothed, rawColour, smoothColour, gridColour }) {
  const main = smoothed && smoothed.length ? smoothed : raw;
  const g = sparkGeometry(rect, main, raw && raw !== main ? [raw] : []);
  if (!g) return null;
  if (gridColour) {
    ctx.strokeStyle = gridColour;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(rect.x, rect.y + rect.h + 0.5);
    ctx.lineTo(rect.x + rect.w, rect.y + rect.h + 0.5);
    ctx.stroke();
  }
  ctx.save();
  ctx.beginPath();
  ctx.rect(rect.x - 4, rect.y - 4, rect.w + 8, rect.h + 8);
  ctx.clip();
  if (raw && raw.length && raw !== main) stroke(ctx, g, raw, rawColour, 1.5);
  stroke(ctx, g, main, smoothColour, 3);
  ctx.restore();
  // What was drawn, so a caller (or a test) can find the line's ends on the canvas.
  g.first = [main.steps[0], main.values[0]];
  g.last = [main.steps[main.length - 1], main.values[main.length - 1]];
  g.points = main.length;
  g.rawPoints = raw && raw !== main ? raw.length : 0;
  return g;
}
