/**
 * Keisei generation-1 input planes (46 × 9 × 9, float32, plane-major) from a tsshogi position.
 *
 *   0–7    side to move, unpromoted   P L N S G B R K
 *   8–13   side to move, promoted     +P +L +N +S +B(horse) +R(dragon)
 *   14–21  opponent, unpromoted       (same order)
 *   22–27  opponent, promoted         (same order)
 *   28–34  side to move's hand        P L N S G B R, each plane filled with count / 18
 *   35–41  opponent's hand            (same)
 *   42     1.0 when sente (black) is to move, else 0.0
 *   43     move count / maxMoves (Keisei's max_moves_per_game, default 500)
 *   44–45  reserved, zero
 *
 * Like Keisei's `generate_neural_network_observation`, the board is seen from the side to
 * move: when gote is to move every square is rotated 180° (row → 8 - row, col → 8 - col), so
 * "my pieces" always start at the bottom. Rows/cols are those of keisei-actions.ts (row 0 =
 * rank a, col 0 = file 9). The hand divisor is Keisei's flat 18 (the pawn maximum) for every
 * piece type, kept for compatibility with trained models.
 */
import { Color, PieceType, type ImmutablePosition } from './tsshogi.js';

export const KEISEI_PLANES = 46;
export const KEISEI_STATE_SHAPE: readonly [number, number, number] = [46, 9, 9];
export const KEISEI_STATE_SIZE = 46 * 81;
export const KEISEI_DEFAULT_MAX_MOVES = 500;

const PLANE_OF_TYPE: Readonly<Record<PieceType, number>> = {
  [PieceType.PAWN]: 0,
  [PieceType.LANCE]: 1,
  [PieceType.KNIGHT]: 2,
  [PieceType.SILVER]: 3,
  [PieceType.GOLD]: 4,
  [PieceType.BISHOP]: 5,
  [PieceType.ROOK]: 6,
  [PieceType.KING]: 7,
  [PieceType.PROM_PAWN]: 8,
  [PieceType.PROM_LANCE]: 9,
  [PieceType.PROM_KNIGHT]: 10,
  [PieceType.PROM_SILVER]: 11,
  [PieceType.HORSE]: 12,
  [PieceType.DRAGON]: 13,
};
const HAND_TYPES: readonly PieceType[] = [PieceType.PAWN, PieceType.LANCE, PieceType.KNIGHT, PieceType.SILVER, PieceType.GOLD, PieceType.BISHOP, PieceType.ROOK];
const OPPONENT_OFFSET = 14;
const OWN_HAND = 28;
const OPPONENT_HAND = 35;
const SIDE_TO_MOVE = 42;
const MOVE_COUNT = 43;
const HAND_DIVISOR = 18;

export interface PlaneOptions {
  /** Moves played so far (plies), for plane 43. */
  moveCount?: number;
  maxMoves?: number;
  /** Write into this buffer (KEISEI_STATE_SIZE floats) instead of allocating. */
  out?: Float32Array;
}

export function keiseiPlanes(position: ImmutablePosition, options: PlaneOptions = {}): Float32Array {
  const out = options.out ?? new Float32Array(KEISEI_STATE_SIZE);
  if (out.length !== KEISEI_STATE_SIZE) throw new RangeError(`keiseiPlanes: out must hold ${KEISEI_STATE_SIZE} floats (46×9×9), got ${out.length}`);
  out.fill(0);
  const me = position.color;
  const flip = me === Color.WHITE;
  const board = position.board;
  for (const square of board.listNonEmptySquares()) {
    const piece = board.at(square);
    if (!piece) continue;
    const plane = PLANE_OF_TYPE[piece.type] + (piece.color === me ? 0 : OPPONENT_OFFSET);
    const cell = flip ? 80 - square.index : square.index; // 180° rotation of row * 9 + col
    out[plane * 81 + cell] = 1;
  }
  const mine = position.hand(me);
  const theirs = position.hand(flip ? Color.BLACK : Color.WHITE);
  for (let i = 0; i < HAND_TYPES.length; i++) {
    fillPlane(out, OWN_HAND + i, mine.count(HAND_TYPES[i]) / HAND_DIVISOR);
    fillPlane(out, OPPONENT_HAND + i, theirs.count(HAND_TYPES[i]) / HAND_DIVISOR);
  }
  fillPlane(out, SIDE_TO_MOVE, me === Color.BLACK ? 1 : 0);
  const maxMoves = options.maxMoves ?? KEISEI_DEFAULT_MAX_MOVES;
  fillPlane(out, MOVE_COUNT, Math.min(1, (options.moveCount ?? 0) / maxMoves));
  return out;
}

function fillPlane(out: Float32Array, plane: number, value: number): void {
  if (value !== 0) out.fill(value, plane * 81, plane * 81 + 81);
}
