/**
 * The demo's stand-in for a policy network: a softmax over the legal moves of a heuristic
 * score (material won, promotion, check, mate in one, hanging the moved piece, a little
 * centralisation and advancement). The temperature falls as training progresses, so the
 * "learner" plays sharper and wins more against a fixed high-temperature baseline: the win
 * rate and the policy entropy the broadcast shows come from real games, not invented numbers.
 */
import { listLegalMoves, opponentOf } from '../../shared/shogi/legal-moves.js';
import { PieceType, isBoardMove, type Move, type Position } from '../../shared/shogi/tsshogi.js';
import type { Rng } from './rng.js';

/** Rough piece values in pawns (promoted pieces by what they become). */
export const PIECE_VALUE: Readonly<Record<PieceType, number>> = {
  [PieceType.PAWN]: 1, [PieceType.LANCE]: 3, [PieceType.KNIGHT]: 3.5, [PieceType.SILVER]: 5, [PieceType.GOLD]: 6,
  [PieceType.BISHOP]: 8, [PieceType.ROOK]: 10, [PieceType.KING]: 0,
  [PieceType.PROM_PAWN]: 6, [PieceType.PROM_LANCE]: 6, [PieceType.PROM_KNIGHT]: 6, [PieceType.PROM_SILVER]: 6,
  [PieceType.HORSE]: 10, [PieceType.DRAGON]: 12,
};
const UNPROMOTED: Readonly<Partial<Record<PieceType, PieceType>>> = {
  [PieceType.PROM_PAWN]: PieceType.PAWN, [PieceType.PROM_LANCE]: PieceType.LANCE, [PieceType.PROM_KNIGHT]: PieceType.KNIGHT,
  [PieceType.PROM_SILVER]: PieceType.SILVER, [PieceType.HORSE]: PieceType.BISHOP, [PieceType.DRAGON]: PieceType.ROOK,
};
const PROMOTED: Readonly<Partial<Record<PieceType, PieceType>>> = Object.fromEntries(Object.entries(UNPROMOTED).map(([p, u]) => [u, p]));
const HAND_TYPES: readonly PieceType[] = [PieceType.PAWN, PieceType.LANCE, PieceType.KNIGHT, PieceType.SILVER, PieceType.GOLD, PieceType.BISHOP, PieceType.ROOK];
const MATE_SCORE = 1000;

export interface ScoredMove {
  move: Move;
  usi: string;
  score: number;
  prob: number;
  /** The move gives check / mates. */
  check: boolean;
  mate: boolean;
}

export interface PolicyOutput {
  moves: ScoredMove[];
  /** Shannon entropy of the distribution, nats. */
  entropy: number;
}

/**
 * Temperature of the learner's softmax after `step` training updates: near-uniform play at
 * the start (scores are in pawns, so T = 3 barely prefers winning a pawn), sharp play after
 * some 10 000 updates (about 17 minutes at the default 10 updates/s).
 */
export function learnerTemperature(step: number): number {
  return 0.25 + 2.75 * Math.exp(-step / 6000);
}
/** The baseline starts out stronger than the learner (T = 3) and is overtaken as the learner's temperature falls. */
export const BASELINE_TEMPERATURE = 2;

/** Heuristic score of every legal move for the side to move, and the softmax at `temperature`. */
export function evaluateMoves(position: Position, temperature: number, legal: readonly Move[] = listLegalMoves(position)): PolicyOutput {
  const me = position.color;
  const them = opponentOf(me);
  const forward = me === 'black' ? -1 : 1; // rank direction toward the opponent
  const scored: ScoredMove[] = new Array(legal.length);
  for (let i = 0; i < legal.length; i++) {
    const move = legal[i];
    let score = 0;
    const movedAfter = move.promote ? (PROMOTED[move.pieceType] ?? move.pieceType) : move.pieceType;
    if (move.capturedPieceType) score += PIECE_VALUE[move.capturedPieceType] + 0.2 * PIECE_VALUE[UNPROMOTED[move.capturedPieceType] ?? move.capturedPieceType];
    if (move.promote) score += PIECE_VALUE[movedAfter] - PIECE_VALUE[move.pieceType];
    const col = move.to.x;
    score -= 0.04 * Math.abs(col - 4);
    if (isBoardMove(move)) {
      const advance = (move.to.rank - move.from.rank) * forward;
      score += move.pieceType === PieceType.KING ? -0.3 * Math.max(0, advance) - 0.05 : 0.06 * advance;
    } else {
      score += 0.15; // dropping keeps material in play
    }
    position.doMove(move, { ignoreValidation: true });
    const check = position.checked;
    let mate = false;
    if (check) {
      score += 0.5;
      // Mate in one is only possible for checking moves, so the expensive test runs rarely.
      if (listLegalMoves(position).length === 0) {
        mate = true;
        score += MATE_SCORE;
      }
    }
    if (!mate && movedAfter !== PieceType.KING && position.board.hasPower(move.to, them)) {
      const defended = position.board.hasPower(move.to, me);
      score -= PIECE_VALUE[movedAfter] * (defended ? 0.35 : 0.8);
    }
    position.undoMove(move);
    scored[i] = { move, usi: move.usi, score, prob: 0, check, mate };
  }
  const entropy = softmaxInPlace(scored, temperature);
  return { moves: scored, entropy };
}

function softmaxInPlace(moves: ScoredMove[], temperature: number): number {
  let max = -Infinity;
  for (const m of moves) if (m.score > max) max = m.score;
  let total = 0;
  for (const m of moves) {
    m.prob = Math.exp((m.score - max) / temperature);
    total += m.prob;
  }
  let entropy = 0;
  for (const m of moves) {
    m.prob /= total;
    if (m.prob > 0) entropy -= m.prob * Math.log(m.prob);
  }
  return entropy;
}

/** Sample a move index from the distribution. */
export function sampleMove(output: PolicyOutput, rng: Rng): number {
  let r = rng.next();
  for (let i = 0; i < output.moves.length; i++) {
    r -= output.moves[i].prob;
    if (r <= 0) return i;
  }
  return output.moves.length - 1;
}

/** The k most probable moves, most probable first. */
export function topMoves(output: PolicyOutput, k: number): ScoredMove[] {
  return [...output.moves].sort((a, b) => b.prob - a.prob).slice(0, k);
}

/** Policy mass per destination square, 81 values (index = row * 9 + col, row 0 = rank a, col 0 = file 9). */
export function destinationHeatmap(output: PolicyOutput, out: Float32Array = new Float32Array(81)): Float32Array {
  out.fill(0);
  for (const m of output.moves) out[m.move.to.index] += m.prob;
  return out;
}

/** Material balance (board + hand) for `color`, in pawns. */
export function materialBalance(position: Position, color: 'black' | 'white'): number {
  let balance = 0;
  const board = position.board;
  for (const square of board.listNonEmptySquares()) {
    const piece = board.at(square);
    if (piece) balance += piece.color === color ? PIECE_VALUE[piece.type] : -PIECE_VALUE[piece.type];
  }
  const mine = position.hand(color);
  const theirs = position.hand(opponentOf(color));
  for (const type of HAND_TYPES) balance += 1.1 * PIECE_VALUE[type] * (mine.count(type) - theirs.count(type));
  return balance;
}

/** Value estimate in [-1, 1] for the side to move: tanh of the material balance. */
export function valueEstimate(position: Position): number {
  return Math.tanh(materialBalance(position, position.color) / 12);
}
