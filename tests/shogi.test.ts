import { describe, expect, it } from 'vitest';
import { listLegalMoves } from '../src/shared/shogi/legal-moves.js';
import {
  ActionIndexError, KEISEI_V1_ACTIONS, actionIndexOfMove, actionIndexOfUsi, legalActionMask, usiOfActionIndex,
} from '../src/shared/shogi/keisei-actions.js';
import { KEISEI_STATE_SIZE, keiseiPlanes } from '../src/shared/shogi/keisei-planes.js';
import { STANDARD_SFEN, positionFromSfen } from '../src/shared/shogi/tsshogi.js';

const plane = (planes: Float32Array, p: number) => planes.subarray(p * 81, p * 81 + 81);
const cell = (planes: Float32Array, p: number, row: number, col: number) => planes[p * 81 + row * 9 + col];
const sum = (a: Float32Array) => a.reduce((s, v) => s + v, 0);

// A middle game with pieces in hand on both sides and promoted pieces, and the
// published maximum-mobility position (593 legal moves, sente to move).
const MIDGAME = 'ln1g3nl/1r1sk1g2/p1pppp1pp/1p4p2/7P1/2P6/PPBPPPP1P/2+b2S1R1/LNSGKG1NL b Sp 15';
const MAX_MOBILITY = 'R8/2K1S1SSk/4B4/9/9/9/9/9/1L1L1L3 b RBGSNLP3g3n17p 1';

describe('legal moves', () => {
  it('start position: the 30 standard moves', () => {
    const moves = listLegalMoves(positionFromSfen(STANDARD_SFEN)).map((m) => m.usi);
    expect(moves).toHaveLength(30);
    expect(moves).toEqual(expect.arrayContaining(['7g7f', '2g2f', '5i5h', '2h1h', '1i1h']));
    expect(new Set(moves).size).toBe(30);
  });

  it('generates the 593 moves of the maximum-mobility position, drops included', () => {
    const moves = listLegalMoves(positionFromSfen(MAX_MOBILITY));
    expect(moves).toHaveLength(593);
    expect(moves.some((m) => m.usi === 'P*5e')).toBe(true);
  });

  it('every generated move is one tsshogi accepts and can play', () => {
    const position = positionFromSfen(MIDGAME);
    const moves = listLegalMoves(position);
    expect(moves.length).toBeGreaterThan(30);
    for (const move of moves) {
      const replay = positionFromSfen(MIDGAME);
      expect(replay.doMove(replay.createMoveByUSI(move.usi)!), move.usi).toBe(true);
    }
  });

  it('no legal moves when checkmated', () => {
    // Gote king on 1a, sente gold on 1b protected by a silver on 2c: mate.
    expect(listLegalMoves(positionFromSfen('8k/8G/7S1/9/9/9/9/9/K8 w - 1'))).toHaveLength(0);
  });
});

describe('Keisei gen-1 action index', () => {
  it('has 13527 actions: 12960 board moves then 567 drops', () => {
    expect(KEISEI_V1_ACTIONS).toBe(13527);
    expect(usiOfActionIndex(0)).toBe('9a8a'); // row 0 col 0 → row 0 col 1, no promotion
    expect(usiOfActionIndex(1)).toBe('9a8a+');
    expect(usiOfActionIndex(12959)).toBe('1i2i+');
    expect(usiOfActionIndex(12960)).toBe('P*9a');
    expect(usiOfActionIndex(12966)).toBe('R*9a');
    expect(usiOfActionIndex(13526)).toBe('R*1i');
    expect(actionIndexOfUsi('7g7f')).toBe(((6 * 9 + 2) * 80 + (5 * 9 + 2)) * 2);
  });

  it('round-trips every index and every USI string', () => {
    const seen = new Set<string>();
    for (let i = 0; i < KEISEI_V1_ACTIONS; i++) {
      const usi = usiOfActionIndex(i);
      seen.add(usi);
      expect(actionIndexOfUsi(usi)).toBe(i);
    }
    expect(seen.size).toBe(KEISEI_V1_ACTIONS);
  });

  it('legal moves of several positions map to distinct indices that round-trip to the same move', () => {
    for (const sfen of [STANDARD_SFEN, MIDGAME, MAX_MOBILITY, 'lnsgkgsnl/1r5b1/ppppppppp/9/9/2P6/PP1PPPPPP/1B5R1/LNSGKGSNL w - 2']) {
      const position = positionFromSfen(sfen);
      const moves = listLegalMoves(position);
      const indices = moves.map((m) => actionIndexOfMove(m));
      expect(new Set(indices).size).toBe(moves.length);
      moves.forEach((m, i) => {
        expect(actionIndexOfUsi(m.usi)).toBe(indices[i]);
        expect(usiOfActionIndex(indices[i])).toBe(m.usi);
      });
      const mask = legalActionMask(moves);
      expect(mask.reduce((s, v) => s + v, 0)).toBe(moves.length);
    }
  });

  it('rejects what is not a move with a clear error', () => {
    expect(() => actionIndexOfUsi('7g7g')).toThrow(/same square/);
    expect(() => actionIndexOfUsi('K*5e')).toThrow(ActionIndexError);
    expect(() => actionIndexOfUsi('0a1a')).toThrow(/file 1–9/);
    expect(() => actionIndexOfUsi('resign')).toThrow(/not a USI move/);
    expect(() => usiOfActionIndex(13527)).toThrow(/0–13526/);
  });
});

describe('Keisei input planes', () => {
  it('start position, sente to move', () => {
    const planes = keiseiPlanes(positionFromSfen(STANDARD_SFEN), { moveCount: 0 });
    expect(planes).toHaveLength(KEISEI_STATE_SIZE);
    expect(sum(plane(planes, 0))).toBe(9); // own pawns
    for (let col = 0; col < 9; col++) expect(cell(planes, 0, 6, col)).toBe(1); // on rank g
    expect(cell(planes, 7, 8, 4)).toBe(1); // own king on 5i
    expect(cell(planes, 5, 7, 1)).toBe(1); // own bishop on 8h
    expect(cell(planes, 6, 7, 7)).toBe(1); // own rook on 2h
    expect(sum(plane(planes, 14))).toBe(9); // opponent pawns on rank c
    for (let col = 0; col < 9; col++) expect(cell(planes, 14, 2, col)).toBe(1);
    expect(cell(planes, 21, 0, 4)).toBe(1); // opponent king on 5a
    for (const p of [8, 9, 10, 11, 12, 13, 22, 23, 24, 25, 26, 27, 44, 45]) expect(sum(plane(planes, p))).toBe(0);
    for (let p = 28; p <= 41; p++) expect(sum(plane(planes, p))).toBe(0); // empty hands
    expect(sum(plane(planes, 42))).toBe(81); // sente to move
    expect(sum(plane(planes, 43))).toBe(0);
    expect(sum(planes.subarray(0, 28 * 81))).toBe(40);
  });

  it('gote to move: board rotated 180°, hands and move count filled', () => {
    const position = positionFromSfen('lnsgkgsnl/1r5b1/ppppppppp/9/9/2P6/PP1PPPPPP/1B5R1/LNSGKGSNL w 2Pb 2');
    const planes = keiseiPlanes(position, { moveCount: 50, maxMoves: 500 });
    expect(cell(planes, 7, 8, 4)).toBe(1); // gote's own king (5a) seen at the bottom
    expect(cell(planes, 21, 0, 4)).toBe(1); // sente's king (5i) at the top
    expect(cell(planes, 14, 3, 6)).toBe(1); // sente pawn on 7f: row 5 col 2 → row 3 col 6
    expect(cell(planes, 28 + 5, 4, 4)).toBeCloseTo(1 / 18); // own hand: one bishop
    expect(cell(planes, 35, 0, 0)).toBeCloseTo(2 / 18); // opponent hand: two pawns
    expect(sum(plane(planes, 42))).toBe(0);
    expect(cell(planes, 43, 4, 4)).toBeCloseTo(0.1);
  });

  it('promoted pieces land on the promoted planes; a wrong-size buffer is refused', () => {
    const planes = keiseiPlanes(positionFromSfen(MIDGAME));
    expect(cell(planes, 22 + 4, 7, 2)).toBe(1); // gote horse (+b) on 7h
    expect(() => keiseiPlanes(positionFromSfen(MIDGAME), { out: new Float32Array(10) })).toThrow(/46×9×9/);
  });
});
