/**
 * Typed facade over the parts of tsshogi (MIT) that ringcast uses.
 *
 * Why a facade: tsshogi 2.2 ships its declarations with extensionless relative imports
 * (`export * from "./position"`) inside a `"type": "module"` package, which TypeScript's
 * NodeNext resolution cannot follow, so `import { Position } from 'tsshogi'` type-checks
 * as "no exported member". The runtime ESM build is fine; this module re-exports it with
 * hand-written types for the subset we call. Import tsshogi through here, never directly.
 */
import * as lib from 'tsshogi';

export type Color = 'black' | 'white';
export const Color = { BLACK: 'black', WHITE: 'white' } as const;

export type PieceType =
  | 'pawn' | 'lance' | 'knight' | 'silver' | 'gold' | 'bishop' | 'rook' | 'king'
  | 'promPawn' | 'promLance' | 'promKnight' | 'promSilver' | 'horse' | 'dragon';
export const PieceType = {
  PAWN: 'pawn', LANCE: 'lance', KNIGHT: 'knight', SILVER: 'silver', GOLD: 'gold', BISHOP: 'bishop', ROOK: 'rook', KING: 'king',
  PROM_PAWN: 'promPawn', PROM_LANCE: 'promLance', PROM_KNIGHT: 'promKnight', PROM_SILVER: 'promSilver', HORSE: 'horse', DRAGON: 'dragon',
} as const;

export type Direction = string;

export interface Square {
  readonly file: number;
  readonly rank: number;
  /** 0 = file 9 … 8 = file 1. */
  readonly x: number;
  /** 0 = rank a (1) … 8 = rank i (9). */
  readonly y: number;
  /** y * 9 + x. */
  readonly index: number;
  readonly valid: boolean;
  readonly usi: string;
  neighbor(dx: number, dy: number): Square;
  equals(square: Square | null | undefined): boolean;
}
export interface SquareStatic {
  new (file: number, rank: number): Square;
  readonly all: Square[];
  newByIndex(index: number): Square;
  newByUSI(usi: string): Square | null;
}

export interface Piece {
  readonly color: Color;
  readonly type: PieceType;
}

export interface Move {
  readonly from: Square | PieceType;
  readonly to: Square;
  readonly promote: boolean;
  readonly color: Color;
  readonly pieceType: PieceType;
  readonly capturedPieceType: PieceType | null;
  readonly usi: string;
  withPromote(): Move;
  equals(move: Move | null | undefined): boolean;
}

export interface Hand {
  count(type: PieceType): number;
}

export interface Board {
  at(square: Square): Piece | null;
  listNonEmptySquares(): Square[];
  findKing(color: Color): Square | undefined;
  hasPower(target: Square, color: Color, option?: { filled?: Square; ignore?: Square }): boolean;
  isChecked(kingColor: Color): boolean;
  readonly sfen: string;
}

export interface Position {
  readonly board: Board;
  readonly color: Color;
  readonly checked: boolean;
  readonly sfen: string;
  hand(color: Color): Hand;
  createMove(from: Square | PieceType, to: Square): Move | null;
  createMoveByUSI(usi: string): Move | null;
  isValidMove(move: Move): boolean;
  doMove(move: Move, opt?: { ignoreValidation?: boolean }): boolean;
  undoMove(move: Move): void;
  getSFEN(nextPly: number): string;
  clone(): Position;
}
export interface PositionStatic {
  newBySFEN(sfen: string): Position | null;
}

/** Read-only view accepted by the feature encoders. */
export type ImmutablePosition = Pick<Position, 'board' | 'color' | 'hand' | 'checked' | 'sfen'>;

interface Api {
  Square: SquareStatic;
  Position: PositionStatic;
  handPieceTypes: PieceType[];
  isPromotable(type: PieceType): boolean;
  isPromotableRank(color: Color, rank: number): boolean;
  movableDirections(piece: Piece): Direction[];
  resolveMoveType(piece: Piece, direction: Direction): 'short' | 'long' | undefined;
  directionToDeltaMap: Readonly<Record<Direction, { x: number; y: number }>>;
}
const api = lib as unknown as Api;

export const Square: SquareStatic = api.Square;
export const Position: PositionStatic = api.Position;
export const handPieceTypes: readonly PieceType[] = api.handPieceTypes;
export const isPromotable = api.isPromotable;
export const isPromotableRank = api.isPromotableRank;
export const movableDirections = api.movableDirections;
export const resolveMoveType = api.resolveMoveType;
export const directionToDeltaMap = api.directionToDeltaMap;

export const STANDARD_SFEN = 'lnsgkgsnl/1r5b1/ppppppppp/9/9/9/PPPPPPPPP/1B5R1/LNSGKGSNL b - 1';

/** Parse an SFEN (with or without a leading "sfen "); throws with the SFEN in the message when invalid. */
export function positionFromSfen(sfen: string): Position {
  const position = api.Position.newBySFEN(sfen.startsWith('sfen ') ? sfen.slice(5) : sfen);
  if (!position) throw new Error(`not a valid SFEN: "${sfen}"`);
  return position;
}

/** True when `from` is a board square (a board move), false for a drop. */
export function isBoardMove(move: Move): move is Move & { from: Square } {
  return typeof move.from === 'object';
}
