import { describe, expect, it } from 'vitest';
import { drawableBoard } from '../src/shared/shogi/sfen-board.js';

describe('drawable board from SFEN', () => {
  it('places pieces by rank (rows a..i) and file (columns 9..1), with promotions, hands and turn', () => {
    const b = drawableBoard('lnsgkgsnl/1r5b1/ppppppppp/9/9/2P6/PP1PPPPPP/1B5R1/LNSGKGSNL w 2Pb 2')!;
    expect(b.board[0]).toEqual(['l', 'n', 's', 'g', 'k', 'g', 's', 'n', 'l']);
    expect(b.board[1][1]).toBe('r'); // 8b
    expect(b.board[5][2]).toBe('P'); // 7f: rank f = row 5, file 7 = column 2
    expect(b.board[6][2]).toBe('');
    expect(b.hands).toEqual({ black: { P: 2 }, white: { B: 1 } });
    expect(b.turn).toBe('white');
    expect(drawableBoard('sfen 4k4/9/9/9/9/9/9/9/4K2+R1 b - 1')!.board[8][7]).toBe('+R');
  });

  it('returns null for a position tsshogi rejects', () => {
    expect(drawableBoard('not a position')).toBeNull();
    expect(drawableBoard('lnsgkgsnl/1r5b1/ppppppppp/9/9 b - 1')).toBeNull();
  });
});
