/**
 * Squeeze-excitation channel weights for the demo: 9 blocks × 256 channels, values in (0, 1)
 * like the sigmoid gates of Keisei's SE blocks. Each block has a few smooth channel bands
 * (low-frequency sinusoids over the channel index plus a fixed per-channel bias) whose
 * phases drift slowly with training, and which sharpen as training progresses, so an overlay
 * shows structure that evolves instead of static or noise.
 */
import { Rng } from './rng.js';

export const SE_BLOCKS = 9;
export const SE_CHANNELS = 256;

export class AttentionField {
  readonly weights = new Float32Array(SE_BLOCKS * SE_CHANNELS);
  /** One row view per block, as the producer's [blocks][channels] input. */
  readonly rows: Float32Array[];
  private readonly bias = new Float32Array(SE_BLOCKS * SE_CHANNELS);
  private readonly freq: number[] = [];
  private readonly phase: number[] = [];
  private readonly drift: number[] = [];

  constructor(seed: number) {
    const rng = new Rng(seed ^ 0x5e5e5e5e);
    for (let i = 0; i < this.bias.length; i++) this.bias[i] = 0.6 * rng.gaussian();
    for (let b = 0; b < SE_BLOCKS; b++) {
      this.freq.push(1 + Math.floor(rng.next() * 4), 5 + Math.floor(rng.next() * 6));
      this.phase.push(rng.next() * 2 * Math.PI, rng.next() * 2 * Math.PI);
      this.drift.push((rng.next() - 0.5) * 0.004, (rng.next() - 0.5) * 0.01);
    }
    this.rows = Array.from({ length: SE_BLOCKS }, (_, b) => this.weights.subarray(b * SE_CHANNELS, (b + 1) * SE_CHANNELS));
  }

  /** Weights at training update `step` (progress sharpens the gates). */
  at(step: number): Float32Array {
    const sharpness = 0.8 + 1.7 * (1 - Math.exp(-step / 3000));
    for (let b = 0; b < SE_BLOCKS; b++) {
      const f1 = this.freq[2 * b], f2 = this.freq[2 * b + 1];
      const p1 = this.phase[2 * b] + this.drift[2 * b] * step;
      const p2 = this.phase[2 * b + 1] + this.drift[2 * b + 1] * step;
      // Deeper blocks gate more selectively, as trained SE networks tend to.
      const depth = 0.6 + 0.1 * b;
      for (let c = 0; c < SE_CHANNELS; c++) {
        const x = (2 * Math.PI * c) / SE_CHANNELS;
        const z = sharpness * depth * (1.2 * Math.sin(f1 * x + p1) + 0.5 * Math.sin(f2 * x + p2)) + this.bias[b * SE_CHANNELS + c];
        this.weights[b * SE_CHANNELS + c] = 1 / (1 + Math.exp(-z));
      }
    }
    return this.weights;
  }
}
