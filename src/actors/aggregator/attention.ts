/**
 * Squeeze-excitation attention, smoothed: one EMA per [block][channel].
 *
 * Trainers send either the whole tower ([blocks][channels]) or one block at a time with
 * `layerId` (the SDK's cacheAttentionWeights caches one layer per call); rows with a
 * layerId update only blocks layerId.. onward, and the matrix grows to the highest block
 * seen. SE weights have no spatial layout, so they are reported as per-block channel
 * strips, never drawn on the board (see heatmap-from-policy.ts for the board heatmap).
 */
import { ema } from './metric-window.js';

/** Largest matrix kept per run: the decoder's default se_attention limit. */
export const MAX_ATTENTION_VALUES = 64 * 4096;

export interface BlockSummary {
  block: number;
  mean: number;
  min: number;
  max: number;
  /** Channels with the largest smoothed weight, largest first. */
  top_channels: { channel: number; weight: number }[];
}

export class AttentionState {
  readonly alpha: number;
  channels = 0;
  blocks = 0;
  step: number | undefined;
  private weights = new Float64Array(0);
  /** Which blocks have received at least one row (EMA starts from the first value). */
  private seen = new Uint8Array(0);

  constructor(alpha: number) {
    if (!(alpha > 0 && alpha <= 1)) throw new RangeError(`AttentionState: alpha must be in (0, 1] (got ${alpha})`);
    this.alpha = alpha;
  }

  /**
   * Folds `rows` ([blocks][channels], row-major) into the EMA starting at block `layerId`
   * (0 when absent). A different channel count means a different model: start over.
   * Returns false (and changes nothing) when the result would exceed MAX_ATTENTION_VALUES.
   */
  update(rows: ArrayLike<number>, blocks: number, channels: number, layerId = 0, step?: number): boolean {
    if (rows.length !== blocks * channels) throw new RangeError(`attention: ${rows.length} values do not make ${blocks}×${channels}`);
    const needBlocks = layerId + blocks;
    if (needBlocks * channels > MAX_ATTENTION_VALUES) return false;
    if (channels !== this.channels) {
      this.channels = channels;
      this.blocks = 0;
      this.weights = new Float64Array(0);
      this.seen = new Uint8Array(0);
    }
    if (needBlocks > this.blocks) {
      const grown = new Float64Array(needBlocks * channels);
      grown.set(this.weights);
      const seen = new Uint8Array(needBlocks);
      seen.set(this.seen);
      this.weights = grown;
      this.seen = seen;
      this.blocks = needBlocks;
    }
    for (let b = 0; b < blocks; b++) {
      const block = layerId + b;
      const first = this.seen[block] === 0;
      const base = block * channels;
      for (let c = 0; c < channels; c++) {
        const v = rows[b * channels + c];
        this.weights[base + c] = first ? v : ema(this.weights[base + c], v, this.alpha);
      }
      this.seen[block] = 1;
    }
    if (step !== undefined) this.step = step;
    return true;
  }

  /** Smoothed weight of one channel of one block. */
  weight(block: number, channel: number): number {
    return this.weights[block * this.channels + channel];
  }

  /** Full rows for the advanced view; blocks never received are null. */
  rows(round: (x: number) => number): (number[] | null)[] {
    const out: (number[] | null)[] = [];
    for (let b = 0; b < this.blocks; b++) {
      if (this.seen[b] === 0) { out.push(null); continue; }
      const row = new Array<number>(this.channels);
      for (let c = 0; c < this.channels; c++) row[c] = round(this.weights[b * this.channels + c]);
      out.push(row);
    }
    return out;
  }

  summaries(topK: number, round: (x: number) => number): BlockSummary[] {
    const out: BlockSummary[] = [];
    for (let b = 0; b < this.blocks; b++) {
      if (this.seen[b] === 0) continue;
      const base = b * this.channels;
      let sum = 0;
      let min = Infinity;
      let max = -Infinity;
      for (let c = 0; c < this.channels; c++) {
        const v = this.weights[base + c];
        sum += v;
        if (v < min) min = v;
        if (v > max) max = v;
      }
      const order = Array.from({ length: this.channels }, (_, c) => c)
        .sort((x, y) => this.weights[base + y] - this.weights[base + x] || x - y)
        .slice(0, topK);
      out.push({
        block: b,
        mean: round(sum / this.channels),
        min: round(min),
        max: round(max),
        top_channels: order.map((c) => ({ channel: c, weight: round(this.weights[base + c]) })),
      });
    }
    return out;
  }
}
