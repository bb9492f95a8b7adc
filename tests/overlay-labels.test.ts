/**
 * The overlay pages' pure text helpers (overlay/lib/labels.js): milestone names as titles and
 * the game page's "move N · side to play" line.
 */
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain browser ES module without types
import { humanName, positionLine } from '../overlay/lib/labels.js';

describe('humanName', () => {
  it('keeps short tokens as upper-case abbreviations', () => {
    expect(humanName('hc-ov')).toBe('HC OV');
    expect(humanName('ppo/kl_spike')).toBe('PPO KL spike');
  });
  it('capitalises the first word of an ordinary name and keeps the rest as sent', () => {
    expect(humanName('first_win')).toBe('First win');
    expect(humanName('loss_below_1')).toBe('Loss below 1');
    expect(humanName('reward.plateau')).toBe('Reward plateau');
  });
  it('reads short English words as words', () => {
    expect(humanName('new_high')).toBe('New high');
    expect(humanName('top-1-of-the-run')).toBe('Top 1 of the run');
  });
  it('returns "" for a non-string', () => {
    expect(humanName(undefined)).toBe('');
  });
});

describe('positionLine', () => {
  const start = 'lnsgkgsnl/1r5b1/ppppppppp/9/9/9/PPPPPPPPP/1B5R1/LNSGKGSNL b - 1';
  it('numbers the move from move_count when the position carries it, not the SFEN ply', () => {
    // A move-96 position whose SFEN was written with a reset ply field.
    expect(positionLine({ sfen: start.replace(' b ', ' w '), move_count: 95 })).toBe('move 96 · Gote (white) to play');
  });
  it('falls back to the SFEN move number without a move_count', () => {
    expect(positionLine({ sfen: start.replace(/ 1$/, ' 34'), move_count: null })).toBe('move 34 · Sente (black) to play');
    expect(positionLine(start)).toBe('move 1 · Sente (black) to play');
  });
  it('is empty without an SFEN', () => {
    expect(positionLine(null)).toBe('');
  });
});
