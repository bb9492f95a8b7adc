/**
 * Cheap whole-frame features of one decoded RGB24 frame: a 64-bit DCT perceptual hash,
 * luma statistics and a tiny grey thumbnail. They run on the raw bytes in the frame
 * ring (no decode, no copy), so they are plain loops over the pixels with every
 * buffer allocated once per module and reused; only the returned values are new.
 *
 * Luma is BT.601 (77 R + 150 G + 29 B) / 256, which is what the decoder's YUV→RGB
 * conversion inverted, so a grey level here is close to the video's Y' value.
 */

export interface FrameView {
  /** RGB24, tightly packed, row-major; at least width*height*3 bytes (a whole ring slot is fine). */
  data: Uint8Array;
  width: number;
  height: number;
}

export interface LumaStats {
  /** Mean luma, 0..255. */
  mean: number;
  /** Standard deviation of luma, 0..~128. */
  stddev: number;
  /** Mean absolute luma step between neighbouring grid samples: how much structure the frame has. */
  detail: number;
}

/** pHash working grid (32x32) and the thumbnail size (16:9, one row of 32 columns shared with the pHash pass). */
const HASH_GRID = 32;
const HASH_KEEP = 8;
export const THUMB_W = 32;
export const THUMB_H = 18;
/** lumaStats samples at most this many columns x rows, evenly spread, whatever the frame size. */
const STATS_COLS = 128;
const STATS_ROWS = 72;

export function checkFrame(f: FrameView, who: string): void {
  if (f === null || typeof f !== 'object' || !(f.data instanceof Uint8Array)) {
    throw new TypeError(`${who}: frame must be { data: Uint8Array, width, height }`);
  }
  const { width, height } = f;
  if (!Number.isInteger(width) || width < 1 || width > 16384 || !Number.isInteger(height) || height < 1 || height > 16384) {
    throw new RangeError(`${who}: frame size must be integers in 1 .. 16384 (got ${String(width)}x${String(height)})`);
  }
  const need = width * height * 3;
  if (f.data.length < need) {
    throw new RangeError(`${who}: a ${width}x${height} RGB24 frame needs ${need} bytes but data has ${f.data.length}`);
  }
}

// ------------------------------------------------------------------ bin tables

/**
 * Bin boundaries splitting `size` pixels into `n` contiguous runs (run k = [start[k], start[k+1])).
 * Cached per (n, size): frames come in a handful of sizes, and the cache is cleared if it
 * ever grows past a few dozen entries so odd inputs cannot make it unbounded.
 */
const binCache = new Map<number, Int32Array>();
function bins(n: number, size: number): Int32Array {
  const key = size * 256 + n;
  let b = binCache.get(key);
  if (b === undefined) {
    if (binCache.size > 64) binCache.clear();
    b = new Int32Array(n + 1);
    for (let k = 0; k <= n; k++) b[k] = Math.floor((k * size) / n);
    binCache.set(key, b);
  }
  return b;
}

// ------------------------------------------------------------------ grey grids

const rowAcc = new Float64Array(HASH_GRID);
const hashGrid = new Float64Array(HASH_GRID * HASH_GRID);
const thumbGrid = new Float64Array(THUMB_W * THUMB_H);

/**
 * One pass over every pixel: per row, the 32 column-run luma sums; each row's sums are
 * added to the 32x32 pHash grid and the 32x18 thumbnail grid. Both grids are exact area
 * averages (bins with fewer pixels than others are normalised by their own count).
 * Sharing the pass halves the cost of analyzeFrame, which needs both.
 */
function greyGrids(f: FrameView, wantHash: boolean, wantThumb: boolean): void {
  const { data, width, height } = f;
  const cx = bins(HASH_GRID, width);
  const ry = bins(HASH_GRID, height);
  const ty = bins(THUMB_H, height);
  hashGrid.fill(0);
  thumbGrid.fill(0);
  let hr = 0;
  let tr = 0;
  for (let y = 0; y < height; y++) {
    while (y >= ry[hr + 1]) hr++;
    while (y >= ty[tr + 1]) tr++;
    let p = y * width * 3;
    for (let k = 0; k < HASH_GRID; k++) {
      let s = 0;
      for (let x = cx[k], end = cx[k + 1]; x < end; x++, p += 3) s += 77 * data[p] + 150 * data[p + 1] + 29 * data[p + 2];
      rowAcc[k] = s;
    }
    if (wantHash) {
      const o = hr * HASH_GRID;
      for (let k = 0; k < HASH_GRID; k++) hashGrid[o + k] += rowAcc[k];
    }
    if (wantThumb) {
      const o = tr * THUMB_W;
      for (let k = 0; k < THUMB_W; k++) thumbGrid[o + k] += rowAcc[k];
    }
  }
  if (wantHash) normaliseGrid(hashGrid, HASH_GRID, ry, cx);
  if (wantThumb) normaliseGrid(thumbGrid, THUMB_W, ty, cx);
}

/**
 * Divides each bin of a `cols`-wide grid by its own pixel count (x 256 for the luma
 * weights), from the row and column bin edges; frames narrower than the grid leave empty
 * column runs, which stay 0.
 */
function normaliseGrid(grid: Float64Array, cols: number, rowEdges: Int32Array, colEdges: Int32Array): void {
  for (let r = 0; r + 1 < rowEdges.length; r++) {
    const rows = rowEdges[r + 1] - rowEdges[r];
    for (let k = 0; k < cols; k++) {
      const n = rows * (colEdges[k + 1] - colEdges[k]) * 256;
      grid[r * cols + k] = n > 0 ? grid[r * cols + k] / n : 0;
    }
  }
}

// ------------------------------------------------------------------ pHash

/** DCT-II basis for the HASH_KEEP+1 lowest frequencies: cos[u * 32 + x] = cos((2x + 1) u π / 64). */
const COS = (() => {
  const t = new Float64Array((HASH_KEEP + 1) * HASH_GRID);
  for (let u = 0; u <= HASH_KEEP; u++) {
    for (let x = 0; x < HASH_GRID; x++) t[u * HASH_GRID + x] = Math.cos(((2 * x + 1) * u * Math.PI) / (2 * HASH_GRID));
  }
  return t;
})();
const rowDct = new Float64Array(HASH_GRID * HASH_KEEP);
const coef = new Float64Array(HASH_KEEP * HASH_KEEP);
const sorted = new Float64Array(HASH_KEEP * HASH_KEEP - 1);

/**
 * Hash of the grid in `hashGrid`. Only the top-left 8x8 DCT coefficients are computed
 * (separable: rows, then columns, 8 frequencies each): they hold the coarse layout that
 * survives rescaling and compression. The DC term is mean brightness, not structure,
 * so it does not take part in the median (see below for its bit).
 */
function hashFromGrid(): string {
  for (let y = 0; y < HASH_GRID; y++) {
    for (let u = 0; u < HASH_KEEP; u++) {
      let s = 0;
      for (let x = 0; x < HASH_GRID; x++) s += hashGrid[y * HASH_GRID + x] * COS[u * HASH_GRID + x];
      rowDct[y * HASH_KEEP + u] = s;
    }
  }
  for (let v = 0; v < HASH_KEEP; v++) {
    for (let u = 0; u < HASH_KEEP; u++) {
      let s = 0;
      for (let y = 0; y < HASH_GRID; y++) s += rowDct[y * HASH_KEEP + u] * COS[v * HASH_GRID + y];
      coef[v * HASH_KEEP + u] = s;
    }
  }
  // Median of the 63 AC coefficients (DC excluded: it is mean brightness, always far
  // above the others, and would drag the median). 63 is odd, so the median is an element.
  for (let i = 1; i < HASH_KEEP * HASH_KEEP; i++) sorted[i - 1] = coef[i];
  sorted.sort();
  const median = sorted[(sorted.length - 1) >> 1];
  // Bit i (i = v*8 + u, MSB first) = coefficient above the median. Bit 0 would be the DC
  // bit, which carries no structure; it is set when the frame is brighter than mid-grey
  // instead, so two frames differing only in overall level still differ by one bit.
  let hi = coef[0] / (HASH_GRID * HASH_GRID) > 128 ? 1 : 0;
  let lo = 0;
  for (let i = 1; i < 32; i++) hi = (hi << 1) | (coef[i] > median ? 1 : 0);
  for (let i = 32; i < 64; i++) lo = (lo << 1) | (coef[i] > median ? 1 : 0);
  return hex8(hi) + hex8(lo);
}

function hex8(v: number): string {
  return (v >>> 0).toString(16).padStart(8, '0');
}

/** 64-bit DCT perceptual hash as 16 lowercase hex characters. */
export function perceptualHash(f: FrameView): string {
  checkFrame(f, 'perceptualHash');
  greyGrids(f, true, false);
  return hashFromGrid();
}

const HEX_RE = /^[0-9a-fA-F]{16}$/;

/** Hamming distance (0..64) between two perceptualHash() values. */
export function hashDistance(a: string, b: string): number {
  if (typeof a !== 'string' || !HEX_RE.test(a)) throw new TypeError(`hashDistance: "${String(a)}" is not a 16-hex-digit hash`);
  if (typeof b !== 'string' || !HEX_RE.test(b)) throw new TypeError(`hashDistance: "${String(b)}" is not a 16-hex-digit hash`);
  return popcount32((parseInt(a.slice(0, 8), 16) ^ parseInt(b.slice(0, 8), 16)) >>> 0)
    + popcount32((parseInt(a.slice(8), 16) ^ parseInt(b.slice(8), 16)) >>> 0);
}

function popcount32(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

// ------------------------------------------------------------------ thumbnail

function thumbFromGrid(): Uint8Array {
  const out = new Uint8Array(THUMB_W * THUMB_H);
  for (let i = 0; i < out.length; i++) out[i] = Math.round(thumbGrid[i]);
  return out;
}

/** 32x18 grey area-average thumbnail (row-major, 576 bytes): the cheapest "same picture?" test. */
export function tinyThumb(f: FrameView): Uint8Array {
  checkFrame(f, 'tinyThumb');
  greyGrids(f, false, true);
  return thumbFromGrid();
}

/** Mean absolute difference, 0..255, between two tinyThumb() results. */
export function thumbDiff(a: Uint8Array, b: Uint8Array): number {
  if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array) || a.length !== b.length || a.length === 0) {
    throw new TypeError(`thumbDiff: need two thumbnails of the same non-zero length (got ${a?.length} and ${b?.length})`);
  }
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

/** perceptualHash + tinyThumb in one pass over the pixels (what analyzeFrame uses). */
export function hashAndThumb(f: FrameView): { phash: string; thumb: Uint8Array } {
  checkFrame(f, 'hashAndThumb');
  greyGrids(f, true, true);
  return { phash: hashFromGrid(), thumb: thumbFromGrid() };
}

// ------------------------------------------------------------------ luma stats

let statsBuf = new Float32Array(STATS_COLS * STATS_ROWS);

/**
 * Mean, standard deviation and "detail" of luma on an evenly spread grid of at most
 * 128x72 single-pixel samples (~9k reads for any frame size). Detail is the mean
 * absolute difference between horizontally and vertically adjacent samples: ~0 on a
 * flat or blurred frame, a few units on a slide with some text, tens on game footage.
 * Sample spacing is proportional to frame size, so detail is roughly resolution independent.
 */
export function lumaStats(f: FrameView): LumaStats {
  checkFrame(f, 'lumaStats');
  const { data, width, height } = f;
  const gx = Math.min(width, STATS_COLS);
  const gy = Math.min(height, STATS_ROWS);
  if (statsBuf.length < gx * gy) statsBuf = new Float32Array(gx * gy);
  const xs = bins(gx, width);
  const ys = bins(gy, height);
  let sum = 0;
  let sum2 = 0;
  let grad = 0;
  let gradN = 0;
  for (let j = 0; j < gy; j++) {
    // sample at the middle of each bin
    const y = (ys[j] + ys[j + 1]) >> 1;
    const row = y * width * 3;
    for (let i = 0; i < gx; i++) {
      const p = row + ((xs[i] + xs[i + 1]) >> 1) * 3;
      const l = (77 * data[p] + 150 * data[p + 1] + 29 * data[p + 2]) / 256;
      statsBuf[j * gx + i] = l;
      sum += l;
      sum2 += l * l;
      if (i > 0) { grad += Math.abs(l - statsBuf[j * gx + i - 1]); gradN++; }
      if (j > 0) { grad += Math.abs(l - statsBuf[(j - 1) * gx + i]); gradN++; }
    }
  }
  const n = gx * gy;
  const mean = sum / n;
  const variance = Math.max(0, sum2 / n - mean * mean);
  return { mean, stddev: Math.sqrt(variance), detail: gradN > 0 ? grad / gradN : 0 };
}
