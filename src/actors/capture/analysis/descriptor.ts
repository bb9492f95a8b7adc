/**
 * The small appearance descriptor template matching compares: a box of an RGB image
 * area-averaged to a fixed grid (12x12 for HUD cells), each channel made zero-mean and
 * scaled by its spread, and the whole vector scaled to unit length. The score of two
 * descriptors is then their dot product, the normalised cross-correlation, in [-1, 1].
 *
 * Why this shape:
 * - Area averaging to a fixed grid makes a template image of any size comparable to a
 *   cell of any size (templates are often 128 px portraits, cells 20-60 px), and the
 *   averaging itself smooths away video-compression blocking and noise.
 * - Mean removal and scaling per channel make the score blind to brightness/contrast
 *   changes (stream colour grading, HUD transparency) yet keep colour layout: a red
 *   portrait and the same shape in blue load different channels and correlate poorly.
 * - The spread is floored (STD_FLOOR) so a nearly flat channel (compression noise on a
 *   dark HUD slot) is attenuated rather than blown up to the same weight as real content.
 *
 * Same code for templates (at load time) and cells (per frame), so both sides are
 * sampled identically. Nothing here allocates per call beyond growing scratch buffers.
 */

/** Descriptor grid for region cells and their templates. */
export const CELL_GRID = 12;
/** Descriptor grid for whole-frame "offline screen" images (16:9). */
export const OFFLINE_GRID_W = 32;
export const OFFLINE_GRID_H = 18;
/** Channel spread floor, in 0..255 units. */
const STD_FLOOR = 8;
/** A box whose every channel spreads less than this (0..255 units) is "flat": all-zero descriptor, score 0 against anything. */
const FLAT_STD = 1.5;
/**
 * At most this many taps per output bin per axis: boxes much larger than the grid
 * (a whole 640x360 frame into 32x18) sample a regular subset of each bin's pixels
 * instead of every pixel, which keeps the cost bounded and is still an average.
 */
const MAX_TAPS = 6;

export function descriptorLength(gw: number, gh: number): number {
  return gw * gh * 3;
}

/** A box in source pixel coordinates (fractional; may reach outside the image, edges repeat). */
export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

let tapIdx = new Int32Array(256);
let tapW = new Float64Array(256);
const colStart = new Int32Array(4097);
const rowStart = new Int32Array(4097);

/**
 * Taps of an area filter mapping [a0, a0 + len) onto n equal bins, appended at tap index
 * `from`; `starts[k]` .. `starts[k + 1]` are bin k's taps. Weights are normalised per bin.
 */
function buildTaps(a0: number, len: number, n: number, size: number, starts: Int32Array, from: number): number {
  const bin = len / n;
  const stride = Math.max(1, Math.floor(bin / MAX_TAPS));
  let t = from;
  for (let k = 0; k < n; k++) {
    starts[k] = t;
    const a = a0 + k * bin;
    const b = a + bin;
    const first = t;
    let total = 0;
    for (let p = Math.floor(a); p < b; p += stride) {
      const w = Math.min(p + 1, b) - Math.max(p, a);
      if (w <= 0) continue;
      if (t >= tapIdx.length) growTaps(t * 2);
      tapIdx[t] = p < 0 ? 0 : p >= size ? size - 1 : p;
      tapW[t] = w;
      total += w;
      t++;
    }
    for (let i = first; i < t; i++) tapW[i] /= total;
  }
  starts[n] = t;
  return t;
}

function growTaps(n: number): void {
  const i = new Int32Array(n);
  i.set(tapIdx);
  tapIdx = i;
  const w = new Float64Array(n);
  w.set(tapW);
  tapW = w;
}

/**
 * Writes the unit-length descriptor of `box` of an RGB(A) image (`channels` 3 or 4, the
 * 4th ignored) into out[offset .. offset + gw*gh*3), channel-planar (all R, then G, then B).
 * Returns false when the box is flat (the descriptor is then all zeros).
 */
export function describeBox(
  src: Uint8Array, srcW: number, srcH: number, channels: number,
  box: Box, gw: number, gh: number, out: Float32Array, offset = 0,
): boolean {
  if (gw > 4096 || gh > 4096) throw new RangeError(`describeBox: grid ${gw}x${gh} too large`);
  if (!(box.w > 0) || !(box.h > 0)) throw new RangeError(`describeBox: empty box ${box.w}x${box.h}`);
  const nCol = buildTaps(box.x, box.w, gw, srcW, colStart, 0);
  buildTaps(box.y, box.h, gh, srcH, rowStart, nCol);
  const plane = gw * gh;
  const rowBytes = srcW * channels;
  for (let j = 0; j < gh; j++) {
    for (let i = 0; i < gw; i++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let ty = rowStart[j], ey = rowStart[j + 1]; ty < ey; ty++) {
        const row = tapIdx[ty] * rowBytes;
        let rr = 0;
        let gg = 0;
        let bb = 0;
        for (let tx = colStart[i], ex = colStart[i + 1]; tx < ex; tx++) {
          const p = row + tapIdx[tx] * channels;
          const w = tapW[tx];
          rr += w * src[p];
          gg += w * src[p + 1];
          bb += w * src[p + 2];
        }
        const wy = tapW[ty];
        r += wy * rr;
        g += wy * gg;
        b += wy * bb;
      }
      const o = offset + j * gw + i;
      out[o] = r;
      out[o + plane] = g;
      out[o + 2 * plane] = b;
    }
  }
  return normalise(out, offset, plane);
}

function normalise(v: Float32Array, offset: number, plane: number): boolean {
  let flat = true;
  let norm2 = 0;
  for (let c = 0; c < 3; c++) {
    const o = offset + c * plane;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < plane; i++) { s += v[o + i]; s2 += v[o + i] * v[o + i]; }
    const mean = s / plane;
    const std = Math.sqrt(Math.max(0, s2 / plane - mean * mean));
    if (std >= FLAT_STD) flat = false;
    const scale = 1 / Math.max(std, STD_FLOOR);
    for (let i = 0; i < plane; i++) {
      const x = (v[o + i] - mean) * scale;
      v[o + i] = x;
      norm2 += x * x;
    }
  }
  const n = offset + 3 * plane;
  if (flat || norm2 === 0) {
    for (let i = offset; i < n; i++) v[i] = 0;
    return false;
  }
  const inv = 1 / Math.sqrt(norm2);
  for (let i = offset; i < n; i++) v[i] *= inv;
  return true;
}

/** Dot product of two descriptors of length `len` stored at the given offsets. */
export function score(a: Float32Array, aOff: number, b: Float32Array, bOff: number, len: number): number {
  let s = 0;
  for (let i = 0; i < len; i++) s += a[aOff + i] * b[bOff + i];
  return s;
}
