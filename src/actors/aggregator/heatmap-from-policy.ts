/**
 * A 9×9 board heatmap derived from the policy, for trainers that send no heatmap.
 *
 * Grid layout (as in event-codec's board_heatmap): index = row * 9 + col, row 0 = rank a
 * (top, as sente sees the board), col 0 = file 9. So USI square "7f" is row 5, col 2.
 *
 * Two sources, best first:
 *  - a full keisei-v1 distribution (13527 actions): the probability mass landing on each
 *    to-square, summed over every move and drop;
 *  - the top moves: each move's probability added to its destination square.
 * SE attention cannot be used: it has one weight per channel and no spatial layout.
 */
import { ACTION_SPACES } from '../../shared/telemetry/event-codec.js';

export const BOARD_SQUARES = 81;

/** "7f" for row 5, col 2. */
export function squareName(index: number): string {
  const row = Math.floor(index / 9);
  const col = index % 9;
  return `${9 - col}${String.fromCharCode(97 + row)}`;
}

/** Grid index of a USI square like "7f", or -1. */
export function squareIndex(square: string): number {
  if (square.length !== 2) return -1;
  const file = square.charCodeAt(0) - 48;
  const row = square.charCodeAt(1) - 97;
  if (file < 1 || file > 9 || row < 0 || row > 8) return -1;
  return row * 9 + (9 - file);
}

/**
 * Destination square of a USI move: board moves `7g7f` / `8h2b+`, drops `P*5e`.
 * -1 for anything else (Western or Japanese notation, `resign`, garbage).
 */
export function usiDestination(move: string): number {
  const m = /^(?:[1-9][a-i]|[PLNSGBR]\*)([1-9][a-i])\+?$/.exec(move.trim());
  return m ? squareIndex(m[1]) : -1;
}

export interface TopMoveLike {
  move: string;
  prob: number;
}

/** Sum of top-move probabilities per destination square; moves not in USI are skipped (and counted). */
export function heatmapFromTopMoves(moves: readonly TopMoveLike[]): { grid: Float64Array; skipped: number } {
  const grid = new Float64Array(BOARD_SQUARES);
  let skipped = 0;
  for (const { move, prob } of moves) {
    const to = usiDestination(move);
    if (to < 0 || !Number.isFinite(prob)) skipped++;
    else grid[to] += prob;
  }
  return { grid, skipped };
}

export const KEISEI_V1_BOARD_ACTIONS = 81 * 80 * 2; // 12960
export const KEISEI_V1_DROP_PIECES = 7;

export interface KeiseiV1Action {
  kind: 'move' | 'drop';
  /** Grid index of the from-square (board moves only). */
  from?: number;
  to: number;
  promote?: boolean;
  /** Hand piece index 0..6 in the trainer's order (drops only). */
  piece?: number;
}

/**
 * Decodes a keisei-v1 action index. Board moves enumerate from-row, from-col, to-row,
 * to-col, skipping to == from, each × {no promotion, promotion}: a from-square owns a
 * block of 80 × 2 indices. Drops follow: to-row, to-col × 7 hand pieces.
 */
export function keiseiV1Action(index: number): KeiseiV1Action {
  if (!Number.isInteger(index) || index < 0 || index >= ACTION_SPACES['keisei-v1']) {
    throw new RangeError(`keisei-v1 action index must be an integer 0..${ACTION_SPACES['keisei-v1'] - 1} (got ${index})`);
  }
  if (index < KEISEI_V1_BOARD_ACTIONS) {
    const from = Math.floor(index / 160);
    const within = index % 160;
    const ordinal = within >> 1; // 0..79 among the to-squares other than `from`
    return { kind: 'move', from, to: ordinal < from ? ordinal : ordinal + 1, promote: (within & 1) === 1 };
  }
  const d = index - KEISEI_V1_BOARD_ACTIONS;
  return { kind: 'drop', to: Math.floor(d / KEISEI_V1_DROP_PIECES), piece: d % KEISEI_V1_DROP_PIECES };
}

/** Probability mass per to-square of a full keisei-v1 distribution (13527 values). */
export function heatmapFromKeiseiV1(distribution: ArrayLike<number>): Float64Array {
  if (distribution.length !== ACTION_SPACES['keisei-v1']) {
    throw new RangeError(`keisei-v1 distribution must have ${ACTION_SPACES['keisei-v1']} values (got ${distribution.length})`);
  }
  const grid = new Float64Array(BOARD_SQUARES);
  // Walk the layout directly instead of decoding each index: same mapping as keiseiV1Action.
  let i = 0;
  for (let from = 0; from < BOARD_SQUARES; from++) {
    for (let to = 0; to < BOARD_SQUARES; to++) {
      if (to === from) continue;
      grid[to] += distribution[i] + distribution[i + 1];
      i += 2;
    }
  }
  for (let to = 0; to < BOARD_SQUARES; to++) {
    for (let p = 0; p < KEISEI_V1_DROP_PIECES; p++) grid[to] += distribution[i++];
  }
  return grid;
}

/** The k squares with the largest positive values, largest first (ties: lower index first). */
export function focusSquares(grid: ArrayLike<number>, k: number): string[] {
  const idx: number[] = [];
  for (let i = 0; i < grid.length && i < BOARD_SQUARES; i++) if (grid[i] > 0) idx.push(i);
  idx.sort((a, b) => grid[b] - grid[a] || a - b);
  return idx.slice(0, Math.max(0, k)).map(squareName);
}

/** Flat 81 values → 9 rows of 9, rounded for the wire. */
export function toRows(grid: ArrayLike<number>, round: (x: number) => number): number[][] {
  const rows: number[][] = [];
  for (let r = 0; r < 9; r++) {
    const row = new Array<number>(9);
    for (let c = 0; c < 9; c++) row[c] = round(grid[r * 9 + c]);
    rows.push(row);
  }
  return rows;
}
