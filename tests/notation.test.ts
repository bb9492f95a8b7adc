import { describe, expect, it } from 'vitest';
import { moveLabel, normaliseMoveText, parseViewerMove, renderMove } from '../src/shared/shogi/notation.js';
import { listLegalMoves } from '../src/shared/shogi/legal-moves.js';
import { positionFromSfen, STANDARD_SFEN } from '../src/shared/shogi/tsshogi.js';

const start = positionFromSfen(STANDARD_SFEN);
const afterP76 = positionFromSfen('lnsgkgsnl/1r5b1/ppppppppp/9/9/2P6/PP1PPPPPP/1B5R1/LNSGKGSNL w - 2');
const twoSilvers = positionFromSfen('4k4/9/9/9/9/9/9/9/3S1S2K b - 1');
const recapture = positionFromSfen('4k4/9/9/7p1/7P1/9/9/9/4K4 b - 1');
const pawnInHand = positionFromSfen('4k4/9/9/9/9/9/9/9/4K4 b P 1');
const nifu = positionFromSfen('4k4/9/9/9/9/9/4P4/9/4K4 b P 1');
const bishopBoth = positionFromSfen('4k4/9/9/9/9/9/9/9/B3K4 b B 1');
const promo = positionFromSfen('4k4/9/9/2P6/9/9/9/9/4K4 b - 1');
const forced = positionFromSfen('4k4/2P6/9/9/9/9/9/9/4K4 b - 1');
const bishopCapture = positionFromSfen('4k4/9/6p2/9/9/9/9/1B7/4K4 b - 1');
const dragon = positionFromSfen('4k4/9/9/9/9/9/9/9/4K2+R1 b - 1');

function ok(text: string, position = start, last?: string): string {
  const r = parseViewerMove(text, position, last);
  if (!r.ok) throw new Error(`expected "${text}" to parse, got: ${r.error}`);
  return r.usi;
}
function err(text: string, position = start, last?: string): string {
  const r = parseViewerMove(text, position, last);
  if (r.ok) throw new Error(`expected "${text}" to fail, got ${r.usi}`);
  return r.error;
}

describe('parseViewerMove: USI', () => {
  it('reads board moves, promotions and drops', () => {
    expect(ok('7g7f')).toBe('7g7f');
    expect(ok('7G7F')).toBe('7g7f');
    expect(ok('７ｇ７ｆ')).toBe('7g7f'); // full-width
    expect(ok('7d7c+', promo)).toBe('7d7c+');
    expect(ok('7d7c', promo)).toBe('7d7c');
    expect(ok('P*5e', pawnInHand)).toBe('P*5e');
    expect(ok('p*5e', pawnInHand)).toBe('P*5e');
  });
  it('says why an illegal USI move is illegal', () => {
    expect(err('7g7e')).toMatch(/your pawn on 7g cannot move to 7e/);
    expect(err('5e5d')).toMatch(/there is no piece on 5e/);
    expect(err('3c3d')).toMatch(/not yours \(black \(sente\) to move\)/);
    expect(err('7b7a', forced)).toMatch(/must promote/);
    expect(err('7g7f+')).toMatch(/cannot promote/);
    expect(err('P*5e')).toMatch(/you have no pawn in hand/);
    expect(err('P*5e', nifu)).toMatch(/already have a pawn on file 5/);
    expect(err('7g7e')).toMatch(/; e\.g\. \S+/);
  });
});

describe('parseViewerMove: Western', () => {
  it('reads the usual forms', () => {
    expect(ok('P-7f')).toBe('7g7f');
    expect(ok('p-7f')).toBe('7g7f');
    expect(ok('P7g-7f')).toBe('7g7f');
    expect(ok('P7g7f')).toBe('7g7f');
    expect(ok('P-76')).toBe('7g7f'); // numeric rank
    expect(ok('ｐ－７ｆ')).toBe('7g7f');
    expect(ok('Bx3c+', bishopCapture)).toBe('8h3c+');
    expect(ok('Bx3c=', bishopCapture)).toBe('8h3c');
    expect(ok('B-3c+', bishopCapture)).toBe('8h3c+'); // '-' is accepted for a capture
    expect(ok('B*5e', bishopBoth)).toBe('B*5e');
    expect(ok('B-5e', bishopBoth)).toBe('9i5e'); // no drop mark: the board move
    expect(ok('P*5e', pawnInHand)).toBe('P*5e');
    expect(ok('+R-2b', dragon)).toBe('2i2b');
    expect(ok('D-2b', dragon)).toBe('2i2b');
    expect(ok('P-7a', forced)).toBe('7b7a+'); // forced promotion needs no mark
    expect(ok('P-7c+', promo)).toBe('7d7c+');
    expect(ok('P-7c=', promo)).toBe('7d7c');
  });
  it('lists the candidates of an ambiguous move', () => {
    const e = err('S-5h', twoSilvers);
    expect(e).toMatch(/ambiguous/);
    expect(e).toContain('S6i-5h');
    expect(e).toContain('S4i-5h');
    expect(ok('S6i-5h', twoSilvers)).toBe('6i5h');
    expect(ok('S4i5h', twoSilvers)).toBe('4i5h');
    expect(err('G-5h')).toMatch(/G6i-5h or G4i-5h|G4i-5h or G6i-5h/);
    expect(err('P-7c', promo)).toMatch(/ambiguous: .*P7d-7c\+.*\(add \+ to promote or = not to\)/);
    expect(err('Bx3c', bishopCapture)).toMatch(/ambiguous/);
  });
  it('explains illegal moves', () => {
    expect(err('P-7e')).toMatch(/no legal move matches "P-7e" \(none of your pawns can move to 7e\); e\.g\. P\S+/);
    expect(err('Bx4d', bishopCapture)).toMatch(/nothing to capture on 4d/);
    expect(err('P-6g')).toMatch(/occupied by your own/);
    expect(err('R-5e', pawnInHand)).toMatch(/no rook on the board or in hand/);
    expect(err('P7f-7e')).toMatch(/no piece on 7f/);
    expect(err('P-7f+')).toMatch(/cannot promote/);
  });
});

describe('parseViewerMove: Japanese', () => {
  it('reads digits in every width and kanji numerals', () => {
    expect(ok('７六歩')).toBe('7g7f');
    expect(ok('76歩')).toBe('7g7f');
    expect(ok('七六歩')).toBe('7g7f');
    expect(ok('7六歩')).toBe('7g7f');
    expect(ok('▲７六歩')).toBe('7g7f');
    expect(ok(' ７六歩 ')).toBe('7g7f');
    expect(ok('３四歩', afterP76)).toBe('3c3d'); // white to move
  });
  it('reads 同 with the previous move, and refuses it without one', () => {
    expect(ok('同歩', recapture, '2c2d')).toBe('2e2d');
    expect(ok('同　歩', recapture, '2c2d')).toBe('2e2d');
    expect(err('同歩', recapture)).toMatch(/同 .*no previous move/);
    expect(err('同歩', start, '5c5d')).toMatch(/none of your pawns can move to 5d/);
  });
  it('reads 成/不成/打 and the disambiguators', () => {
    expect(ok('７三歩成', promo)).toBe('7d7c+');
    expect(ok('７三歩不成', promo)).toBe('7d7c');
    expect(ok('７三歩生', promo)).toBe('7d7c');
    expect(err('７三歩', promo)).toMatch(/add 成 or 不成/);
    expect(ok('５五角', bishopBoth)).toBe('9i5e');
    expect(ok('５五角打', bishopBoth)).toBe('B*5e');
    expect(ok('５五歩', pawnInHand)).toBe('P*5e');
    expect(ok('58金右')).toBe('4i5h');
    expect(ok('58金左')).toBe('6i5h');
    expect(ok('５八銀右', twoSilvers)).toBe('4i5h');
    expect(ok('５八銀左', twoSilvers)).toBe('6i5h');
    expect(ok('76歩上')).toBe('7g7f'); // redundant but true
    expect(err('76歩引')).toMatch(/fits 引/);
    const amb = err('58金');
    expect(amb).toMatch(/５八金右/);
    expect(amb).toMatch(/５八金左/);
    // White: its right is towards file 9.
    const whiteGolds = positionFromSfen('lnsgkgsnl/1r5b1/ppppppppp/9/9/9/PPPPPPPPP/1B5R1/LNSGKGSNL w - 1');
    expect(ok('52金右', whiteGolds)).toBe('6a5b');
    expect(ok('52金左', whiteGolds)).toBe('4a5b');
    expect(ok('２二龍', dragon)).toBe('2i2b');
    expect(ok('22竜', dragon)).toBe('2i2b');
  });
});

describe('parseViewerMove: bad input', () => {
  it('says what it could not read', () => {
    expect(err('hello')).toMatch(/could not read "hello" as a move; try 7g7f/);
    expect(err('')).toMatch(/no move given/);
    expect(err('x'.repeat(100))).toMatch(/…/);
  });
});

describe('rendering', () => {
  it('renders every legal move so that each rendering reads back as the same move', () => {
    for (const position of [start, afterP76, twoSilvers, recapture, bishopBoth, promo, bishopCapture, dragon]) {
      const legal = listLegalMoves(position);
      for (const move of legal) {
        const r = renderMove(legal, move, '2c2d');
        expect(ok(r.usi, position, '2c2d')).toBe(move.usi);
        expect(ok(r.western, position, '2c2d')).toBe(move.usi);
        expect(ok(r.japanese, position, '2c2d')).toBe(move.usi);
      }
    }
  });
  it('labels moves in Western notation', () => {
    expect(moveLabel(start, '7g7f')).toBe('P-7f');
    expect(moveLabel(promo, '7d7c')).toBe('P-7c=');
    expect(moveLabel(start, '1a1b')).toBe('1a1b'); // not legal: the USI as is
    expect(normaliseMoveText('　P − 7f ')).toBe('P-7f');
  });
});
