/**
 * Pure text helpers shared by the overlay pages (no DOM): names and position lines as viewers
 * read them.
 */

/**
 * A milestone/metric name as a title: separators become spaces, the first letter is upper-case,
 * and short tokens (≤ 3 letters, e.g. "hc", "ov", "kl", "ppo") stay abbreviations in upper case
 * rather than becoming half-capitalised words ("hc-ov" → "HC OV", "loss_below_1" → "Loss below 1").
 */
export function humanName(name) {
  if (typeof name !== 'string') return '';
  const words = name.split(/[_/.\-\s]+/).filter(Boolean);
  return words
    .map((w, i) => {
      if (/^[a-z]{1,3}$/i.test(w) && !COMMON_SHORT.has(w.toLowerCase())) return w.toUpperCase();
      return i === 0 ? w.charAt(0).toUpperCase() + w.slice(1) : w;
    })
    .join(' ');
}

// Short English words that read as words, not abbreviations.
const COMMON_SHORT = new Set(['a', 'an', 'the', 'of', 'to', 'in', 'on', 'at', 'by', 'for', 'and', 'or', 'is', 'up', 'new', 'top', 'win', 'won', 'low', 'high', 'max', 'min', 'avg', 'per', 'all', 'run', 'end', 'big', 'one', 'two', 'ten', 'day', 'hit', 'set', 'got', 'out', 'off', 'no', 'not']);

/**
 * "move 96 · Sente (black) to play". The move number is the game's `move_count` when the position
 * carries one (positions sent as SFEN with a reset ply still know how far the game is), else the
 * SFEN's move-number field. `position` is {sfen, move_count, …} or a bare SFEN string.
 */
export function positionLine(position) {
  const sfen = typeof position === 'string' ? position : position?.sfen;
  if (typeof sfen !== 'string') return '';
  const parts = sfen.trim().split(/\s+/);
  const side = parts[1] === 'b' ? 'Sente (black) to play' : parts[1] === 'w' ? 'Gote (white) to play' : '';
  const count = typeof position === 'object' ? position?.move_count : undefined;
  // move_count counts moves played; the position about to be played is the next move.
  const n = Number.isFinite(count) && count >= 0 ? count + 1 : Number(parts[3]);
  return [Number.isFinite(n) && n > 0 ? `move ${n}` : '', side].filter(Boolean).join(' · ');
}
