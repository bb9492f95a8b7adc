/**
 * Everything computed for one frame, synchronously on the raw RGB24 bytes: it runs inside
 * SlotRing.readSlot's handler, reading the frame in place, so it must not await (an
 * await would let the producer overwrite the slot mid-read without the seqlock noticing
 * which part was read when) and must not use sharp.
 */
import { CELL_GRID, describeBox, descriptorLength, score } from './descriptor.js';
import { checkFrame, hashAndThumb, lumaStats, type FrameView, type LumaStats } from './features.js';
import type { RegionConfig, TemplateGroup, TemplateSet } from './templates.js';

export interface RegionMatch {
  region: string;
  /** Cell index, row-major: row * cols + col. */
  cell: number;
  /** Best template when its score reaches the region's threshold, else null. */
  template: string | null;
  /** Best score (normalised cross-correlation, -1..1), reported even below the threshold. */
  score: number;
  /** Top 3 templates by score, best first. */
  candidates: Array<{ template: string; score: number }>;
}

export interface FrameAnalysis {
  phash: string;
  luma: LumaStats;
  /** 32x18 grey thumbnail (tinyThumb). */
  thumb: Uint8Array;
  matches: RegionMatch[];
  /** Best score against the offline-screen images, or null when none are configured. */
  offlineScore: number | null;
  /** Wall time of this analysis in ms. */
  ms: number;
}

const TOP = 3;

let cellVec = new Float32Array(descriptorLength(CELL_GRID, CELL_GRID));
let best = new Float64Array(64);

/**
 * Cell boxes are searched on a lattice of half-descriptor-bin offsets (at least one pixel),
 * up to two steps each way: HUD layouts drift by a pixel or two between streams (overlay
 * scaling, crop), and half a bin is about where the area grid starts to disagree with
 * itself (a whole-bin offset alone cost up to 0.3 of score in tests). Rather than all 25
 * positions the search climbs: the 3x3 around the centre, then the unvisited neighbours of
 * the best position while that moves (the objective is the best score over the group's
 * templates). An aligned cell costs 9 descriptors, a 2 px-off one ~12-15.
 */
const REACH = 2;
const SIDE = 2 * REACH + 1;
const visited = new Uint8Array(SIDE * SIDE);
const posScore = new Float64Array(SIDE * SIDE);

function matchCell(f: FrameView, region: RegionConfig, group: TemplateGroup, grid: number, cell: number, x: number, y: number, w: number, h: number): RegionMatch {
  const len = descriptorLength(grid, grid);
  if (cellVec.length < len) cellVec = new Float32Array(len);
  const n = group.names.length;
  if (best.length < n) best = new Float64Array(n * 2);
  best.fill(-Infinity, 0, n);
  const dx = Math.max(1, w / grid / 2);
  const dy = Math.max(1, h / grid / 2);
  visited.fill(0);

  /** Describes the box at lattice offset (i, j), folds the scores into best[], returns the max. */
  const visit = (i: number, j: number): number => {
    const k = (j + REACH) * SIDE + (i + REACH);
    if (visited[k] === 1) return posScore[k];
    visited[k] = 1;
    let top = 0;
    // A flat box (all-zero descriptor) scores 0 against everything: no need to compare.
    if (!describeBox(f.data, f.width, f.height, 3, { x: x + i * dx, y: y + j * dy, w, h }, grid, grid, cellVec, 0)) {
      for (let t = 0; t < n; t++) if (best[t] < 0) best[t] = 0;
    } else {
      top = -1;
      for (let t = 0; t < n; t++) {
        const s = score(cellVec, 0, group.vectors, t * len, len);
        if (s > best[t]) best[t] = s;
        if (s > top) top = s;
      }
    }
    posScore[k] = top;
    return top;
  };

  let ci = 0;
  let cj = 0;
  for (;;) {
    let bi = ci;
    let bj = cj;
    let bs = visit(ci, cj);
    for (let j = cj - 1; j <= cj + 1; j++) {
      for (let i = ci - 1; i <= ci + 1; i++) {
        if (i < -REACH || i > REACH || j < -REACH || j > REACH) continue;
        const s = visit(i, j);
        if (s > bs) { bs = s; bi = i; bj = j; }
      }
    }
    if (bi === ci && bj === cj) break;
    ci = bi;
    cj = bj;
  }

  const candidates: Array<{ template: string; score: number }> = [];
  // Top 3 by repeated selection: n is small (tens), and this allocates nothing but the result.
  for (let k = 0; k < Math.min(TOP, n); k++) {
    let bi = -1;
    for (let t = 0; t < n; t++) {
      if (best[t] === -Infinity) continue;
      if (bi < 0 || best[t] > best[bi]) bi = t;
    }
    if (bi < 0) break;
    candidates.push({ template: group.names[bi], score: best[bi] });
    best[bi] = -Infinity;
  }
  const top = candidates[0];
  return {
    region: region.name,
    cell,
    template: top !== undefined && top.score >= region.threshold ? top.template : null,
    score: top?.score ?? 0,
    candidates,
  };
}

let frameVec = new Float32Array(0);

function offlineScore(f: FrameView, set: TemplateSet): number | null {
  const g = set.offline;
  if (g === null || g.names.length === 0) return null;
  const len = descriptorLength(set.offlineGridW, set.offlineGridH);
  if (frameVec.length < len) frameVec = new Float32Array(len);
  if (!describeBox(f.data, f.width, f.height, 3, { x: 0, y: 0, w: f.width, h: f.height }, set.offlineGridW, set.offlineGridH, frameVec, 0)) return 0;
  let bestScore = -1;
  for (let t = 0; t < g.names.length; t++) bestScore = Math.max(bestScore, score(frameVec, 0, g.vectors, t * len, len));
  return bestScore;
}

export function analyzeFrame(f: FrameView, templates: TemplateSet): FrameAnalysis {
  const t0 = performance.now();
  checkFrame(f, 'analyzeFrame');
  const { phash, thumb } = hashAndThumb(f);
  const luma = lumaStats(f);
  const matches: RegionMatch[] = [];
  const grid = templates.grid;
  for (const r of templates.regions) {
    const group = Object.hasOwn(templates.groups, r.group) ? templates.groups[r.group] : undefined;
    if (group === undefined) throw new Error(`analyzeFrame: region "${r.name}" uses group "${r.group}", which the template set does not hold`);
    if (group.vectors.length !== group.names.length * descriptorLength(grid, grid)) {
      throw new Error(`analyzeFrame: group "${r.group}" holds ${group.vectors.length} floats for ${group.names.length} templates of grid ${grid}`);
    }
    const cw = (r.w * f.width) / r.cols;
    const ch = (r.h * f.height) / r.rows;
    for (let row = 0; row < r.rows; row++) {
      for (let col = 0; col < r.cols; col++) {
        matches.push(matchCell(f, r, group, grid, row * r.cols + col, r.x * f.width + col * cw, r.y * f.height + row * ch, cw, ch));
      }
    }
  }
  return { phash, luma, thumb, matches, offlineScore: offlineScore(f, templates), ms: performance.now() - t0 };
}
