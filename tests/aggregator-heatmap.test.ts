import { describe, expect, it } from 'vitest';
import {
  KEISEI_V1_BOARD_ACTIONS, focusSquares, heatmapFromKeiseiV1, heatmapFromTopMoves, keiseiV1Action, squareIndex, squareName, toRows, usiDestination,
} from '../src/actors/aggregator/heatmap-from-policy.js';
import { AttentionState } from '../src/actors/aggregator/attention.js';

describe('aggregator board squares', () => {
  it('names squares as sente sees the board: row 0 = rank a, col 0 = file 9', () => {
    expect(squareName(0)).toBe('9a');
    expect(squareName(8)).toBe('1a');
    expect(squareName(80)).toBe('1i');
    expect(squareIndex('7f')).toBe(5 * 9 + 2);
    for (let i = 0; i < 81; i++) expect(squareIndex(squareName(i))).toBe(i);
    expect(squareIndex('0a')).toBe(-1);
    expect(squareIndex('5j')).toBe(-1);
  });

  it('finds the destination of USI board moves, promotions and drops, and nothing else', () => {
    expect(usiDestination('7g7f')).toBe(squareIndex('7f'));
    expect(usiDestination('8h2b+')).toBe(squareIndex('2b'));
    expect(usiDestination('P*5e')).toBe(squareIndex('5e'));
    expect(usiDestination('P-7f')).toBe(-1);
    expect(usiDestination('７六歩')).toBe(-1);
    expect(usiDestination('resign')).toBe(-1);
  });
});

describe('aggregator heatmap from the policy', () => {
  it('sums top-move probabilities per destination square', () => {
    const { grid, skipped } = heatmapFromTopMoves([
      { move: '7g7f', prob: 0.4 }, { move: '6g7f', prob: 0.1 }, { move: 'P*5e', prob: 0.2 }, { move: 'B-3c', prob: 0.3 },
    ]);
    expect(grid[squareIndex('7f')]).toBeCloseTo(0.5);
    expect(grid[squareIndex('5e')]).toBeCloseTo(0.2);
    expect(skipped).toBe(1);
    expect(grid.reduce((a, b) => a + b, 0)).toBeCloseTo(0.7);
    expect(focusSquares(grid, 5)).toEqual(['7f', '5e']);
  });

  it('decodes keisei-v1 action indices: from-major, to skipping from, ×{no promo, promo}, then drops', () => {
    expect(keiseiV1Action(0)).toEqual({ kind: 'move', from: 0, to: 1, promote: false });
    expect(keiseiV1Action(1)).toEqual({ kind: 'move', from: 0, to: 1, promote: true });
    expect(keiseiV1Action(159)).toEqual({ kind: 'move', from: 0, to: 80, promote: true });
    expect(keiseiV1Action(160)).toEqual({ kind: 'move', from: 1, to: 0, promote: false });
    expect(keiseiV1Action(162)).toEqual({ kind: 'move', from: 1, to: 2, promote: false }); // skips to == from
    expect(keiseiV1Action(KEISEI_V1_BOARD_ACTIONS - 1)).toEqual({ kind: 'move', from: 80, to: 79, promote: true });
    expect(keiseiV1Action(KEISEI_V1_BOARD_ACTIONS)).toEqual({ kind: 'drop', to: 0, piece: 0 });
    expect(keiseiV1Action(13526)).toEqual({ kind: 'drop', to: 80, piece: 6 });
    expect(() => keiseiV1Action(13527)).toThrow(RangeError);
  });

  it('puts a keisei-v1 distribution\'s mass on each action\'s to-square', () => {
    const dist = new Float32Array(13527);
    const put = (i: number, p: number) => { dist[i] = p; };
    // 7g7f: from 7g (row 6, col 2) to 7f (row 5, col 2), no promotion
    const from = squareIndex('7g');
    const to = squareIndex('7f');
    const moveIdx = from * 160 + (to < from ? to : to - 1) * 2;
    expect(keiseiV1Action(moveIdx)).toEqual({ kind: 'move', from, to, promote: false });
    put(moveIdx, 0.5);
    put(moveIdx + 1, 0.125); // same move with promotion
    put(KEISEI_V1_BOARD_ACTIONS + squareIndex('5e') * 7 + 0, 0.25); // a drop on 5e
    put(squareIndex('2h') * 160 + 0, 0.125); // 2h → 9a
    const grid = heatmapFromKeiseiV1(dist);
    expect(grid[to]).toBeCloseTo(0.625);
    expect(grid[squareIndex('5e')]).toBeCloseTo(0.25);
    expect(grid[squareIndex('9a')]).toBeCloseTo(0.125);
    expect(grid.reduce((a, b) => a + b, 0)).toBeCloseTo(1);
    // every index lands where keiseiV1Action says
    const one = new Float32Array(13527);
    for (const i of [3, 777, 5000, 12959, 12960, 13000]) {
      one.fill(0); one[i] = 1;
      expect(heatmapFromKeiseiV1(one)[keiseiV1Action(i).to], `index ${i}`).toBe(1);
    }
    expect(() => heatmapFromKeiseiV1(new Float32Array(11259))).toThrow(/13527/);
  });

  it('focus squares are the top k positive cells; rows are 9×9', () => {
    const grid = new Float64Array(81);
    grid[squareIndex('7f')] = 0.3; grid[squareIndex('2b')] = 0.5; grid[squareIndex('5e')] = 0.1;
    expect(focusSquares(grid, 2)).toEqual(['2b', '7f']);
    expect(focusSquares(new Float64Array(81), 3)).toEqual([]);
    const rows = toRows(grid, (x) => x);
    expect(rows).toHaveLength(9);
    expect(rows[5][2]).toBe(0.3);
  });
});

describe('aggregator SE attention smoothing', () => {
  it('keeps an EMA per [block][channel], starting at the first value', () => {
    const a = new AttentionState(0.5);
    expect(a.update([1, 2, 3, 4], 2, 2)).toBe(true);
    expect(a.update([3, 2, 3, 0], 2, 2)).toBe(true);
    expect(a.weight(0, 0)).toBe(2);
    expect(a.weight(1, 1)).toBe(2);
    expect(a.blocks).toBe(2);
  });

  it('a layerId row updates only that block and grows the tower', () => {
    const a = new AttentionState(0.5);
    a.update([1, 1, 1], 1, 3, 0);
    a.update([0.2, 0.9, 0.4], 1, 3, 2);
    expect(a.blocks).toBe(3);
    expect(a.weight(0, 0)).toBe(1);
    expect(a.weight(2, 1)).toBeCloseTo(0.9);
    expect(a.rows((x) => x)[1]).toBeNull(); // block 1 never received
    const s = a.summaries(2, (x) => x);
    expect(s.map((b) => b.block)).toEqual([0, 2]);
    expect(s[1].top_channels).toEqual([{ channel: 1, weight: expect.closeTo(0.9) }, { channel: 2, weight: expect.closeTo(0.4) }]);
    a.update([0.4, 0.1, 0.4], 1, 3, 2);
    expect(a.weight(2, 1)).toBeCloseTo(0.5);
  });

  it('a new channel count starts over; an oversized tower is refused', () => {
    const a = new AttentionState(0.3);
    a.update([1, 2], 1, 2);
    a.update([5, 5, 5], 1, 3);
    expect(a.channels).toBe(3);
    expect(a.weight(0, 0)).toBe(5);
    expect(a.update(new Float32Array(4096), 1, 4096, 64)).toBe(false);
    expect(a.channels).toBe(3);
  });
});
