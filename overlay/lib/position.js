// Shogi positions and moves as the overlay pages use them. Positions come parsed from the
// server (the aggregator reads SFEN with tsshogi): `{board, hands, turn}` with rows rank a..i,
// columns file 9..1. Here they are only validated, compared and replayed one USI move, so a
// page can tell whether a prediction was made for the position on screen. Plain ES module.

const FILES = 9;
const RANKS = 'abcdefghi';
/** Hand pieces in the order they are laid out (strongest first, as on a komadai). */
export const HAND_ORDER = ['R', 'B', 'G', 'S', 'N', 'L', 'P'];
const PIECE_CODE = /^\+?[PLNSGBRK]$/i;

/** File numbers 9..1 and rank letters a..i, for the board's coordinate labels. */
export { FILES, RANKS };

/** `"7g"` for row 6 (rank g), col 2 (file 7): rows are ranks a..i, columns files 9..1. */
export function squareName(row, col) {
  return `${FILES - col}${RANKS[row]}`;
}

/** `{row, col}` of a square like `"7g"`, or null. */
export function parseSquare(name) {
  if (typeof name !== 'string' || name.length !== 2) return null;
  const file = Number(name[0]);
  const row = RANKS.indexOf(name[1]);
  if (!(file >= 1 && file <= 9) || row < 0) return null;
  return { row, col: FILES - file };
}

function validBoard(board) {
  return Array.isArray(board) && board.length === 9 && board.every((row) =>
    Array.isArray(row) && row.length === 9 && row.every((c) => c === '' || (typeof c === 'string' && PIECE_CODE.test(c))));
}

function validHands(hands) {
  const side = (h) => h && typeof h === 'object' && Object.entries(h).every(([k, v]) => HAND_ORDER.includes(k) && Number.isInteger(v) && v >= 0);
  return hands && side(hands.black) && side(hands.white);
}

/**
 * A server-parsed position `{board, hands, turn}` (game_state's fields, or move_prediction's
 * `position_board`) when it is well formed, else null: a wrong board is worse than none.
 */
export function validPosition(p) {
  if (!p || !validBoard(p.board) || !validHands(p.hands)) return null;
  return { board: p.board, hands: p.hands, turn: p.turn === 'white' ? 'white' : 'black' };
}

/**
 * The drawable position of a game_state message: the server's parsed `board`/`hands`/`turn`,
 * or null when it sent none (it could not read the SFEN): nothing is guessed.
 */
export function positionOfGameState(data) {
  const p = validPosition(data);
  return p && { ...p, source: 'server' };
}

/**
 * A USI move: `{from: {row, col}} | {drop: 'P'}`, `to`, `promote`. Null when malformed.
 * `7g7f`, `2b3c+`, `P*5e`.
 */
export function parseUsiMove(usi) {
  if (typeof usi !== 'string') return null;
  let m = /^([1-9][a-i])([1-9][a-i])(\+?)$/.exec(usi);
  if (m) return { from: parseSquare(m[1]), drop: null, to: parseSquare(m[2]), promote: m[3] === '+' };
  m = /^([PLNSGBR])\*([1-9][a-i])$/.exec(usi);
  if (m) return { from: null, drop: m[1], to: parseSquare(m[2]), promote: false };
  return null;
}

/**
 * The position after `usi` is played in `position` (no legality check: it only needs to
 * reproduce a position the trainer reported), or null when the move does not fit it.
 */
export function applyUsiMove(position, usi) {
  const mv = parseUsiMove(usi);
  if (!position || !mv) return null;
  const board = position.board.map((row) => row.slice());
  const hands = { black: { ...position.hands.black }, white: { ...position.hands.white } };
  const side = position.turn;
  const own = (code) => (side === 'black' ? code.toUpperCase() : code.toLowerCase());
  if (mv.drop) {
    if (!(hands[side][mv.drop] > 0) || board[mv.to.row][mv.to.col]) return null;
    hands[side][mv.drop]--;
    board[mv.to.row][mv.to.col] = own(mv.drop);
  } else {
    const piece = board[mv.from.row][mv.from.col];
    if (!piece || own(piece) !== piece) return null;
    const target = board[mv.to.row][mv.to.col];
    if (target) {
      if (own(target) === target) return null;
      const captured = target.replace('+', '').toUpperCase();
      hands[side][captured] = (hands[side][captured] ?? 0) + 1;
    }
    board[mv.to.row][mv.to.col] = mv.promote && !piece.startsWith('+') ? `+${piece}` : piece;
    board[mv.from.row][mv.from.col] = '';
  }
  return { board, hands, turn: side === 'black' ? 'white' : 'black' };
}

/** Same pieces on the same squares, same hands (zero counts ignored), same side to move. */
export function samePosition(a, b) {
  if (!a || !b || a.turn !== b.turn) return false;
  for (let r = 0; r < 9; r++) for (let c = 0; c < 9; c++) if (a.board[r][c] !== b.board[r][c]) return false;
  const hand = (h) => HAND_ORDER.map((p) => h?.[p] ?? 0).join(',');
  return hand(a.hands.black) === hand(b.hands.black) && hand(a.hands.white) === hand(b.hands.white);
}

/** Validated top moves: `[{move, prob}]` with a parseable move and a probability in [0, 1]. */
export function validTopMoves(list) {
  if (!Array.isArray(list)) return [];
  return list.filter((m) => m && parseUsiMove(m.move) && typeof m.prob === 'number' && m.prob >= 0 && m.prob <= 1);
}

/** A 9×9 grid of finite numbers, or null. */
export function validGrid(grid) {
  return Array.isArray(grid) && grid.length === 9 && grid.every((r) => Array.isArray(r) && r.length === 9 && r.every(Number.isFinite)) ? grid : null;
}
