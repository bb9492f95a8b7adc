/**
 * Keisei generation-1 action space: USI move ↔ policy index 0..13526.
 *
 * Coordinates (the same ones the board heatmap and the input planes use):
 *   row 0 = rank a (gote's back rank) … row 8 = rank i;  col 0 = file 9 … col 8 = file 1.
 *   So square index = row * 9 + col, which is also tsshogi's `Square.index` (y * 9 + x).
 *   USI "7g" is file 7, rank g → row 6, col 2.
 *
 * Board moves (indices 0..12959), enumerated as Keisei's PolicyOutputMapper does:
 *   for from-row, from-col, to-row, to-col (skipping from == to), for promote in {no, yes}
 *   → index = (from * 80 + (to < from ? to : to - 1)) * 2 + promote.
 * Drops (12960..13526): for to-row, to-col, for hand piece in P, L, N, S, G, B, R
 *   → index = 12960 + to * 7 + piece.
 *
 * Indices are absolute board coordinates for both colours (no flip for gote): that is the
 * mapper's contract, even though the input planes are seen from the side to move.
 */
import { PieceType, isBoardMove, type Move } from './tsshogi.js';

export const KEISEI_V1_BOARD_ACTIONS = 81 * 80 * 2;
export const KEISEI_V1_DROP_ACTIONS = 81 * 7;
export const KEISEI_V1_ACTIONS = KEISEI_V1_BOARD_ACTIONS + KEISEI_V1_DROP_ACTIONS;

/** Hand piece order of the drop actions and of the hand planes. */
export const KEISEI_HAND_ORDER = ['P', 'L', 'N', 'S', 'G', 'B', 'R'] as const;
const HAND_TYPES: readonly PieceType[] = [PieceType.PAWN, PieceType.LANCE, PieceType.KNIGHT, PieceType.SILVER, PieceType.GOLD, PieceType.BISHOP, PieceType.ROOK];

export class ActionIndexError extends Error {
  override readonly name = 'ActionIndexError';
}

/** Square index (row * 9 + col) of a USI square like "7g"; -1 when it is not one. */
export function usiSquareIndex(file: string, rank: string): number {
  const f = file.charCodeAt(0) - 48; // '1'..'9'
  const r = rank.charCodeAt(0) - 97; // 'a'..'i'
  if (!(f >= 1 && f <= 9) || !(r >= 0 && r <= 8) || file.length !== 1 || rank.length !== 1) return -1;
  return r * 9 + (9 - f);
}

/** USI square ("7g") of a square index. */
export function squareIndexUsi(index: number): string {
  const row = Math.floor(index / 9);
  const col = index % 9;
  return `${9 - col}${String.fromCharCode(97 + row)}`;
}

export function boardActionIndex(from: number, to: number, promote: boolean): number {
  return (from * 80 + (to < from ? to : to - 1)) * 2 + (promote ? 1 : 0);
}

export function dropActionIndex(to: number, handPiece: number): number {
  return KEISEI_V1_BOARD_ACTIONS + to * 7 + handPiece;
}

/** Gen-1 index of a USI move ("7g7f", "8h2b+", "P*5e"). Throws ActionIndexError on anything else. */
export function actionIndexOfUsi(usi: string): number {
  if (typeof usi !== 'string') throw new ActionIndexError('a USI move must be a string');
  if (usi.length === 4 && usi[1] === '*') {
    const piece = KEISEI_HAND_ORDER.indexOf(usi[0] as (typeof KEISEI_HAND_ORDER)[number]);
    const to = usiSquareIndex(usi[2], usi[3]);
    if (piece < 0) throw new ActionIndexError(`"${usi}": a drop names one of ${KEISEI_HAND_ORDER.join(', ')} before "*"`);
    if (to < 0) throw new ActionIndexError(`"${usi}": "${usi.slice(2)}" is not a square (file 1–9, rank a–i)`);
    return dropActionIndex(to, piece);
  }
  if (usi.length === 4 || (usi.length === 5 && usi[4] === '+')) {
    const from = usiSquareIndex(usi[0], usi[1]);
    const to = usiSquareIndex(usi[2], usi[3]);
    if (from < 0 || to < 0) throw new ActionIndexError(`"${usi}": squares are a file 1–9 then a rank a–i, e.g. 7g7f`);
    if (from === to) throw new ActionIndexError(`"${usi}": from and to are the same square`);
    return boardActionIndex(from, to, usi.length === 5);
  }
  throw new ActionIndexError(`"${usi}" is not a USI move (e.g. 7g7f, 8h2b+, P*5e)`);
}

/** USI move of a gen-1 index. Throws ActionIndexError outside 0..13526. */
export function usiOfActionIndex(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index >= KEISEI_V1_ACTIONS) {
    throw new ActionIndexError(`action index must be an integer 0–${KEISEI_V1_ACTIONS - 1}, got ${String(index)}`);
  }
  if (index >= KEISEI_V1_BOARD_ACTIONS) {
    const d = index - KEISEI_V1_BOARD_ACTIONS;
    return `${KEISEI_HAND_ORDER[d % 7]}*${squareIndexUsi(Math.floor(d / 7))}`;
  }
  const promote = index & 1;
  const pair = index >> 1;
  const from = Math.floor(pair / 80);
  const rest = pair % 80;
  const to = rest < from ? rest : rest + 1;
  return `${squareIndexUsi(from)}${squareIndexUsi(to)}${promote ? '+' : ''}`;
}

/** Gen-1 index of a tsshogi move (no USI string round trip). */
export function actionIndexOfMove(move: Move): number {
  if (isBoardMove(move)) return boardActionIndex(move.from.index, move.to.index, move.promote);
  const piece = HAND_TYPES.indexOf(move.from as PieceType);
  if (piece < 0) throw new ActionIndexError(`cannot drop a ${String(move.from)}`);
  return dropActionIndex(move.to.index, piece);
}

/** Legal-action mask (1 = legal) over the gen-1 space; reuses `out` when given. */
export function legalActionMask(moves: readonly Move[], out?: Uint8Array): Uint8Array {
  const mask = out ?? new Uint8Array(KEISEI_V1_ACTIONS);
  if (mask.length !== KEISEI_V1_ACTIONS) throw new ActionIndexError(`mask buffer must hold ${KEISEI_V1_ACTIONS} entries`);
  mask.fill(0);
  for (const move of moves) mask[actionIndexOfMove(move)] = 1;
  return mask;
}
