/**
 * Render times over the last N frames, per frame and per layer, for p50/p99 on demand.
 * Recording is allocation-free (fixed Float64Array rings; a layer's ring is made once,
 * the first time the layer is drawn); percentiles sort a copy, only when asked (RPC,
 * metrics scrape).
 */
export interface Percentiles {
  p50: number;
  p99: number;
  mean: number;
  max: number;
  n: number;
}

class Window {
  readonly values: Float64Array;
  count = 0;
  private at = 0;

  constructor(size: number) {
    this.values = new Float64Array(size);
  }

  push(v: number): void {
    this.values[this.at] = v;
    this.at = this.at + 1 === this.values.length ? 0 : this.at + 1;
    if (this.count < this.values.length) this.count++;
  }

  percentiles(): Percentiles {
    const n = this.count;
    if (n === 0) return { p50: 0, p99: 0, mean: 0, max: 0, n: 0 };
    const sorted = this.values.slice(0, n).sort();
    let sum = 0;
    for (let i = 0; i < n; i++) sum += sorted[i];
    const q = (p: number) => sorted[Math.min(n - 1, Math.ceil(p * n) - 1)];
    return { p50: q(0.5), p99: q(0.99), mean: sum / n, max: sorted[n - 1], n };
  }
}

export class RenderWindow {
  private readonly size: number;
  private readonly frame: Window;
  private readonly layers = new Map<string, Window>();

  constructor(size = 600) {
    this.size = size;
    this.frame = new Window(size);
  }

  record(totalMs: number, layers: Record<string, number>): void {
    this.frame.push(totalMs);
    for (const id in layers) {
      let w = this.layers.get(id);
      if (!w) {
        w = new Window(this.size);
        this.layers.set(id, w);
      }
      w.push(layers[id]);
    }
  }

  /** Forget layers no longer in the scene (their windows would report stale times). */
  retain(ids: Set<string>): void {
    for (const id of this.layers.keys()) if (!ids.has(id)) this.layers.delete(id);
  }

  frameMs(): Percentiles {
    return this.frame.percentiles();
  }

  layerMs(): Record<string, Percentiles> {
    const out: Record<string, Percentiles> = {};
    for (const [id, w] of this.layers) out[id] = w.percentiles();
    return out;
  }
}
