/**
 * Legal move generation on top of tsshogi.
 *
 * tsshogi validates a given move (`Position.isValidMove`) but has no generator, so this
 * walks each of the side-to-move's pieces along its movable directions (tsshogi's own
 * direction tables, so the piece rules live in one place) to get pseudo-legal targets,
 * adds every drop onto an empty square, and keeps what `isValidMove` accepts: own king
 * left in check, dead-end ranks, nifu and pawn-drop mate are all tsshogi's checks.
 */
import {
  Color, Square, directionToDeltaMap, handPieceTypes, isPromotable, isPromotableRank, movableDirections, resolveMoveType,
  type Move, type Position,
} from './tsshogi.js';

/** Every legal move of the side to move, in a deterministic order (board moves by square, then drops). */
export function listLegalMoves(position: Position): Move[] {
  const moves: Move[] = [];
  const color = position.color;
  const board = position.board;
  for (const from of board.listNonEmptySquares()) {
    const piece = board.at(from);
    if (!piece || piece.color !== color) continue;
    const canPromote = isPromotable(piece.type);
    for (const direction of movableDirections(piece)) {
      const long = resolveMoveType(piece, direction) === 'long';
      const d = directionToDeltaMap[direction];
      for (let to = from.neighbor(d.x, d.y); to.valid; to = to.neighbor(d.x, d.y)) {
        const target = board.at(to);
        if (target && target.color === color) break;
        const move = position.createMove(from, to);
        if (move) {
          if (position.isValidMove(move)) moves.push(move);
          if (canPromote && (isPromotableRank(color, from.rank) || isPromotableRank(color, to.rank))) {
            const promoted = move.withPromote();
            if (position.isValidMove(promoted)) moves.push(promoted);
          }
        }
        if (target || !long) break;
      }
    }
  }
  const hand = position.hand(color);
  for (const type of handPieceTypes) {
    if (hand.count(type) === 0) continue;
    for (const to of Square.all) {
      if (board.at(to)) continue;
      const move = position.createMove(type, to);
      if (move && position.isValidMove(move)) moves.push(move);
    }
  }
  return moves;
}

/** The side that is not `color`. */
export function opponentOf(color: Color): Color {
  return color === Color.BLACK ? Color.WHITE : Color.BLACK;
}
