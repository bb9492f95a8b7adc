/**
 * A position as overlays draw it: 9×9 piece codes, pieces in hand, side to move. Parsed
 * once on the server (the aggregator) so every overlay page gets the same, checked board
 * instead of each page parsing SFEN itself.
 */
import { positionFromSfen } from './tsshogi.js';

export interface DrawableBoard {
  /** Rows rank a..i (top to bottom as sente sees it), columns file 9..1; SFEN codes ("P", "+r", …) or "" for empty. */
  board: string[][];
  /** Counts per SFEN letter, e.g. {P: 2, B: 1}; black = sente, white = gote. */
  hands: { black: Record<string, number>; white: Record<string, number> };
  turn: 'black' | 'white';
}

const HAND_ORDER = 'RBGSNLP';

/** Returns null for an SFEN tsshogi rejects (an overlay then shows "no data" rather than a wrong board). */
export function drawableBoard(sfen: string): DrawableBoard | null {
  const text = sfen.startsWith('sfen ') ? sfen.slice(5) : sfen;
  try {
    positionFromSfen(text);
  } catch {
    return null;
  }
  const [placement, turn, hand] = text.trim().split(/\s+/);
  const board = placement.split('/').map((rank) => {
    const row: string[] = [];
    for (let i = 0; i < rank.length; i++) {
      const c = rank[i];
      if (c >= '1' && c <= '9') for (let n = Number(c); n > 0; n--) row.push('');
      else if (c === '+') row.push(`+${rank[++i]}`);
      else row.push(c);
    }
    return row;
  });
  const hands: DrawableBoard['hands'] = { black: {}, white: {} };
  if (hand && hand !== '-') {
    let count = '';
    for (const c of hand) {
      if (c >= '0' && c <= '9') { count += c; continue; }
      const side = c === c.toUpperCase() ? hands.black : hands.white;
      const letter = c.toUpperCase();
      if (HAND_ORDER.includes(letter)) side[letter] = (side[letter] ?? 0) + (count ? Number(count) : 1);
      count = '';
    }
  }
  return { board, hands, turn: turn === 'w' ? 'white' : 'black' };
}
