// Shogi board, heatmap, move arrows, SE channel strips and prediction bars drawn on canvas.
// Plain ES module shared by overlay/board.html, predictions.html and showcase.html.
//
// Views own stacked canvases (one per layer) and redraw a layer only when its data changed,
// so a 10 Hz heatmap update never repaints the pieces and an idle page draws nothing.
// Everything here validates what it is given: malformed data is ignored (counted) and
// missing data is drawn as "no data", never guessed.

import { connect, frameScheduler, pageParams, statusBadge } from './connection.js';

const FILES = 9;
const RANKS = 'abcdefghi';
/** Hand pieces in the order they are laid out (strongest first, as on a komadai). */
export const HAND_ORDER = ['R', 'B', 'G', 'S', 'N', 'L', 'P'];
const PIECE_CODE = /^\+?[PLNSGBRK]$/i;
const PROMOTABLE = 'PLNSBR';

const KANJI = {
  P: '歩', L: '香', N: '桂', S: '銀', G: '金', B: '角', R: '飛', K: '玉',
  '+P': 'と', '+L': '杏', '+N': '圭', '+S': '全', '+B': '馬', '+R': '龍',
};

// ---------------------------------------------------------------------------------------
// Positions and moves

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

/**
 * Parses the SFEN board, side to move and hands (a `sfen ` or `position sfen ` prefix is
 * accepted). Returns `{board, hands, turn}` shaped like the server's game_state fields, or
 * null for anything that is not a well-formed 9×9 position: a wrong board is worse than none.
 */
export function parseSfen(sfen) {
  if (typeof sfen !== 'string') return null;
  const text = sfen.trim().replace(/^position\s+/, '').replace(/^sfen\s+/, '');
  const [placement, side = 'b', hand = '-'] = text.split(/\s+/);
  const ranks = placement?.split('/');
  if (!ranks || ranks.length !== 9) return null;
  const board = [];
  for (const rank of ranks) {
    const row = [];
    for (let i = 0; i < rank.length; i++) {
      const c = rank[i];
      if (c >= '1' && c <= '9') { for (let n = Number(c); n > 0; n--) row.push(''); continue; }
      const code = c === '+' ? `+${rank[++i] ?? ''}` : c;
      if (!PIECE_CODE.test(code) || (code[0] === '+' && !PROMOTABLE.includes(code[1].toUpperCase()))) return null;
      row.push(code);
    }
    if (row.length !== 9) return null;
    board.push(row);
  }
  if (side !== 'b' && side !== 'w') return null;
  const hands = { black: {}, white: {} };
  if (hand !== '-') {
    let count = '';
    for (const c of hand) {
      if (c >= '0' && c <= '9') { count += c; continue; }
      const letter = c.toUpperCase();
      if (!HAND_ORDER.includes(letter)) return null;
      const owner = c === letter ? hands.black : hands.white;
      owner[letter] = (owner[letter] ?? 0) + (count ? Number(count) : 1);
      count = '';
    }
  }
  return { board, hands, turn: side === 'w' ? 'white' : 'black' };
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
 * The drawable position of a game_state message: the server's parsed `board`/`hands`/`turn`;
 * when the server sent `board: null` it could not read the SFEN, so neither do we (null);
 * only a server that sends no `board` field at all gets the SFEN parsed here.
 */
export function positionOfGameState(data) {
  if (validBoard(data.board) && validHands(data.hands)) {
    return { board: data.board, hands: data.hands, turn: data.turn === 'white' ? 'white' : 'black', source: 'server' };
  }
  if ('board' in data) return null;
  const parsed = parseSfen(data.sfen);
  return parsed && { ...parsed, source: 'sfen' };
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

export function formatPercent(p) {
  return `${(p * 100).toFixed(p >= 0.1 ? 0 : 1)}%`;
}

// ---------------------------------------------------------------------------------------
// Canvas plumbing

/** Reads the palette from theme.css custom properties (call again after a theme change). */
export function readTheme(element = document.body) {
  const css = getComputedStyle(element);
  const v = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  return {
    font: v('--font', 'sans-serif'),
    fg: v('--fg', '#fff'),
    fgDim: v('--fg-dim', '#aaa'),
    panel: v('--panel-bg', 'rgba(0,0,0,0.7)'),
    panelEdge: v('--panel-edge', 'rgba(255,255,255,0.2)'),
    track: v('--track', 'rgba(255,255,255,0.1)'),
    board: v('--board', '#d6aa60'),
    boardLine: v('--board-line', '#3a2710'),
    lastMove: v('--last-move', 'rgba(255,230,80,0.45)'),
    piece: v('--piece', '#f3d9a4'),
    pieceEdge: v('--piece-edge', '#6b4b1f'),
    pieceText: v('--piece-text', '#111'),
    piecePromoted: v('--piece-promoted', '#c0231a'),
    arrows: [v('--arrow-1', '#2f8cff'), v('--arrow-2', '#19b394'), v('--arrow-3', '#a06cf0')],
    heatCold: v('--heat-cold', '70, 120, 255').split(',').map(Number),
    heatHot: v('--heat-hot', '255, 60, 20').split(',').map(Number),
    ok: v('--ok', '#2e9d5b'),
    bad: v('--bad', '#c8412f'),
    accent: v('--accent', '#4aa3ff'),
  };
}

/** Adds an absolutely placed canvas covering `rect` inside `parent`, scaled for devicePixelRatio. */
export function addCanvas(parent, rect, name) {
  const canvas = document.createElement('canvas');
  canvas.className = 'layer';
  canvas.dataset.layer = name;
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(rect.w * dpr);
  canvas.height = Math.round(rect.h * dpr);
  canvas.style.left = `${rect.x}px`;
  canvas.style.top = `${rect.y}px`;
  canvas.style.width = `${rect.w}px`;
  canvas.style.height = `${rect.h}px`;
  parent.appendChild(canvas);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { canvas, ctx, rect };
}

/**
 * Whether this browser can draw kanji pieces: without a CJK font every kanji renders as the
 * same fallback box, so two different kanji produce identical pixels.
 */
export function canDrawKanji() {
  const c = document.createElement('canvas');
  c.width = 32; c.height = 32;
  const x = c.getContext('2d', { willReadFrequently: true });
  const pixels = (ch) => {
    x.clearRect(0, 0, 32, 32);
    x.font = '26px sans-serif';
    x.fillStyle = '#000';
    x.fillText(ch, 2, 27);
    return x.getImageData(0, 0, 32, 32).data.join(',');
  };
  return pixels('歩') !== pixels('金');
}

function roundRect(ctx, x, y, w, h, r) {
  ctx.beginPath();
  ctx.moveTo(x + r, y);
  ctx.arcTo(x + w, y, x + w, y + h, r);
  ctx.arcTo(x + w, y + h, x, y + h, r);
  ctx.arcTo(x, y + h, x, y, r);
  ctx.arcTo(x, y, x + w, y, r);
  ctx.closePath();
}

/**
 * Piece sprites: each (code, size) is rendered once into an offscreen canvas and then only
 * blitted, so a board repaint is ~40 drawImage calls instead of 40 path fills + text layouts.
 */
class PieceSprites {
  constructor(theme, glyphs) {
    this.theme = theme;
    this.glyphs = glyphs;
    this.cache = new Map();
  }

  get(code, size) {
    const key = `${code}|${size}`;
    let sprite = this.cache.get(key);
    if (!sprite) { sprite = this.render(code, size); this.cache.set(key, sprite); }
    return sprite;
  }

  render(code, size) {
    const dpr = window.devicePixelRatio || 1;
    const c = document.createElement('canvas');
    c.width = Math.ceil(size * dpr); c.height = Math.ceil(size * dpr);
    const ctx = c.getContext('2d');
    ctx.scale(dpr, dpr);
    const gote = code.replace('+', '') === code.replace('+', '').toLowerCase();
    const upper = code.toUpperCase();
    if (gote) { ctx.translate(size, size); ctx.rotate(Math.PI); }
    // The pentagon of a shogi piece, pointing at the opponent.
    const w = size * 0.84, h = size * 0.92, x0 = (size - w) / 2, y0 = (size - h) / 2;
    ctx.beginPath();
    ctx.moveTo(size / 2, y0);
    ctx.lineTo(x0 + w * 0.86, y0 + h * 0.2);
    ctx.lineTo(x0 + w, y0 + h);
    ctx.lineTo(x0, y0 + h);
    ctx.lineTo(x0 + w * 0.14, y0 + h * 0.2);
    ctx.closePath();
    ctx.fillStyle = this.theme.piece;
    ctx.fill();
    ctx.lineWidth = Math.max(1, size * 0.025);
    ctx.strokeStyle = this.theme.pieceEdge;
    ctx.stroke();
    const promoted = upper.startsWith('+');
    ctx.fillStyle = promoted ? this.theme.piecePromoted : this.theme.pieceText;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    const text = this.glyphs === 'kanji' ? (code === 'k' ? '王' : KANJI[upper]) : upper;
    const fontSize = this.glyphs === 'kanji' ? size * 0.5 : size * (promoted ? 0.4 : 0.5);
    ctx.font = `700 ${Math.round(fontSize)}px ${this.theme.font}`;
    ctx.fillText(text, size / 2, y0 + h * 0.58);
    return c;
  }
}

// ---------------------------------------------------------------------------------------
// Layout

/**
 * Geometry of the board cluster inside `rect` (gote's hand left, board, sente's hand right),
 * in units of one cell: 1.5 hand + 0.3 gap + 9 board + 0.4 rank labels + 0.3 gap + 1.5 hand
 * = 13 wide; 0.45 file labels + 9 board + 0.25 = 9.7 high.
 */
export function boardLayout(outer) {
  // A small margin so the panel never touches the edge of the page or of its neighbours.
  const m = Math.round(Math.min(16, outer.w * 0.01, outer.h * 0.01));
  const rect = { x: outer.x + m, y: outer.y + m, w: outer.w - 2 * m, h: outer.h - 2 * m };
  const cell = Math.floor(Math.min(rect.h / 9.7, rect.w / 13));
  const clusterW = 13 * cell;
  const left = rect.x + (rect.w - clusterW) / 2;
  const x0 = Math.round(left + 1.8 * cell);
  const y0 = Math.round(rect.y + (rect.h - 9.7 * cell) / 2 + 0.45 * cell);
  const slot = cell * 0.95;
  const whiteHand = { x: left + 0.1 * cell, y: y0 + 0.45 * cell, w: 1.4 * cell, slot };
  const blackHand = { x: x0 + 9.7 * cell, y: y0 + 9 * cell - 7 * slot, w: 1.5 * cell, slot };
  const cluster = { x: left, y: y0 - 0.45 * cell, w: clusterW, h: 9.7 * cell };
  return { cell, x0, y0, size: 9 * cell, whiteHand, blackHand, cluster, rect: outer };
}

function squareCenter(layout, row, col) {
  return { x: layout.x0 + (col + 0.5) * layout.cell, y: layout.y0 + (row + 0.5) * layout.cell };
}

function handSlotCenter(layout, side, piece) {
  const hand = side === 'white' ? layout.whiteHand : layout.blackHand;
  const i = HAND_ORDER.indexOf(piece);
  return { x: hand.x + hand.slot * 0.5, y: hand.y + (i + 0.5) * hand.slot };
}

// ---------------------------------------------------------------------------------------
// Board view

/**
 * The board with its layers inside `parent` at `rect` (page coordinates):
 *   board  grid, coordinates (static: drawn on layout/theme change only)
 *   heat   9×9 heatmap under the pieces
 *   pieces last-move highlight, pieces, hands, game info
 *   arrows the model's top-3 moves with probabilities
 * `update(type, data)` takes overlay messages; `draw()` repaints the dirty layers and
 * returns whether anything was painted.
 */
export function createBoardView(parent, rect, { theme, glyphs = 'letters' }) {
  const layout = boardLayout(rect);
  const layers = {
    board: addCanvas(parent, rect, 'board'),
    heat: addCanvas(parent, rect, 'heat'),
    pieces: addCanvas(parent, rect, 'pieces'),
    arrows: addCanvas(parent, rect, 'arrows'),
  };
  // Layer contexts are drawn in page coordinates (rect-relative translation once).
  for (const l of Object.values(layers)) l.ctx.translate(-rect.x, -rect.y);
  const sprites = new PieceSprites(theme, glyphs);
  const state = { game: null, position: null, heat: null, prediction: null };
  const dirty = { board: true, heat: true, pieces: true, arrows: true };
  const drawn = { pieces: [], hands: { black: {}, white: {} }, turn: null, lastMove: null, positionSource: null, unreadablePosition: false, heatmapCells: [], hottest: null, arrows: [], arrowsFor: null };

  const clearRect = (l) => l.ctx.clearRect(rect.x, rect.y, rect.w, rect.h);

  function drawBoard() {
    const ctx = layers.board.ctx;
    clearRect(layers.board);
    const { x0, y0, cell, size, cluster } = layout;
    // A translucent panel behind board, hands and labels keeps them readable over any video.
    ctx.fillStyle = theme.panel;
    roundRect(ctx, cluster.x, cluster.y, cluster.w, cluster.h, cell * 0.2);
    ctx.fill();
    ctx.fillStyle = theme.board;
    roundRect(ctx, x0 - cell * 0.12, y0 - cell * 0.12, size + cell * 0.24, size + cell * 0.24, cell * 0.08);
    ctx.fill();
    ctx.strokeStyle = theme.boardLine;
    ctx.lineWidth = Math.max(1, cell * 0.015);
    ctx.beginPath();
    for (let i = 0; i <= 9; i++) {
      ctx.moveTo(x0 + i * cell, y0); ctx.lineTo(x0 + i * cell, y0 + size);
      ctx.moveTo(x0, y0 + i * cell); ctx.lineTo(x0 + size, y0 + i * cell);
    }
    ctx.stroke();
    ctx.lineWidth = Math.max(2, cell * 0.03);
    ctx.strokeRect(x0, y0, size, size);
    ctx.fillStyle = theme.boardLine;
    for (const [r, c] of [[3, 3], [3, 6], [6, 3], [6, 6]]) {
      ctx.beginPath(); ctx.arc(x0 + c * cell, y0 + r * cell, cell * 0.05, 0, Math.PI * 2); ctx.fill();
    }
    ctx.fillStyle = theme.fg;
    ctx.font = `600 ${Math.round(cell * 0.24)}px ${theme.font}`;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    for (let c = 0; c < 9; c++) ctx.fillText(String(FILES - c), x0 + (c + 0.5) * cell, y0 - cell * 0.3);
    for (let r = 0; r < 9; r++) ctx.fillText(RANKS[r], x0 + size + cell * 0.3, y0 + (r + 0.5) * cell);
  }

  function drawHeat() {
    const ctx = layers.heat.ctx;
    clearRect(layers.heat);
    drawn.heatmapCells = [];
    drawn.hottest = null;
    const grid = state.heat?.grid;
    if (!grid) return;
    let min = 0, max = -Infinity;
    for (const row of grid) for (const v of row) { if (v < min) min = v; if (v > max) max = v; }
    if (!(max > min)) return;
    const { x0, y0, cell } = layout;
    const [cr, cg, cb] = theme.heatCold, [hr, hg, hb] = theme.heatHot;
    let best = -Infinity;
    for (let r = 0; r < 9; r++) {
      for (let c = 0; c < 9; c++) {
        const t = (grid[r][c] - min) / (max - min);
        if (t < 0.02) continue;
        // Colour and opacity both rise with the value, so the hottest square is the most opaque and the reddest.
        const alpha = 0.1 + 0.7 * t;
        const mix = (a, b) => Math.round(a + (b - a) * t);
        ctx.fillStyle = `rgba(${mix(cr, hr)}, ${mix(cg, hg)}, ${mix(cb, hb)}, ${alpha.toFixed(3)})`;
        ctx.fillRect(x0 + c * cell, y0 + r * cell, cell, cell);
        const square = squareName(r, c);
        drawn.heatmapCells.push({ square, value: grid[r][c], alpha: Number(alpha.toFixed(3)) });
        if (grid[r][c] > best) { best = grid[r][c]; drawn.hottest = square; }
      }
    }
  }

  function drawHand(ctx, side, hand) {
    const h = side === 'white' ? layout.whiteHand : layout.blackHand;
    const size = Math.round(h.slot * 0.9);
    ctx.textAlign = 'left';
    ctx.textBaseline = 'middle';
    ctx.font = `700 ${Math.round(layout.cell * 0.3)}px ${theme.font}`;
    for (let i = 0; i < HAND_ORDER.length; i++) {
      const letter = HAND_ORDER[i];
      const n = hand?.[letter] ?? 0;
      if (n <= 0) continue;
      const code = side === 'white' ? letter.toLowerCase() : letter;
      const cy = h.y + (i + 0.5) * h.slot;
      ctx.drawImage(sprites.get(code, size), h.x + (h.slot - size) / 2, cy - size / 2, size, size);
      if (n > 1) { ctx.fillStyle = theme.fg; ctx.fillText(`×${n}`, h.x + h.slot, cy); }
    }
    // Side label above the hand; the side to move is marked.
    const toMove = state.position?.turn === side;
    ctx.font = `${toMove ? 700 : 500} ${Math.round(layout.cell * 0.22)}px ${theme.font}`;
    ctx.fillStyle = toMove ? theme.accent : theme.fgDim;
    ctx.fillText(`${side === 'black' ? '☗ sente' : '☖ gote'}${toMove ? ' ▸' : ''}`, h.x, h.y - layout.cell * 0.25);
  }

  function drawPieces() {
    const ctx = layers.pieces.ctx;
    clearRect(layers.pieces);
    drawn.pieces = [];
    drawn.lastMove = null;
    const pos = state.position;
    drawn.positionSource = pos?.source ?? null;
    drawn.unreadablePosition = !!state.game && !pos;
    const { x0, y0, cell } = layout;
    if (!pos) {
      if (state.game) {
        // A game_state whose position cannot be read: say so instead of drawing a guess.
        ctx.fillStyle = theme.fg;
        ctx.font = `600 ${Math.round(cell * 0.3)}px ${theme.font}`;
        ctx.textAlign = 'center';
        ctx.textBaseline = 'middle';
        ctx.fillText('no readable position in game_state', x0 + layout.size / 2, y0 + layout.size / 2);
      }
      return;
    }
    const last = parseUsiMove(state.game?.last_move);
    if (last) {
      drawn.lastMove = state.game.last_move;
      ctx.fillStyle = theme.lastMove;
      for (const sq of [last.from, last.to]) if (sq) ctx.fillRect(x0 + sq.col * cell, y0 + sq.row * cell, cell, cell);
    }
    const size = Math.round(cell * 0.96);
    for (let r = 0; r < 9; r++) {
      for (let c = 0; c < 9; c++) {
        const code = pos.board[r][c];
        if (!code) continue;
        ctx.drawImage(sprites.get(code, size), x0 + c * cell + (cell - size) / 2, y0 + r * cell + (cell - size) / 2, size, size);
        drawn.pieces.push({ square: squareName(r, c), piece: code });
      }
    }
    drawHand(ctx, 'white', pos.hands.white);
    drawHand(ctx, 'black', pos.hands.black);
    drawn.hands = pos.hands;
    drawn.turn = pos.turn;
    // Game info in the free space above sente's hand.
    const g = state.game;
    const lines = [
      g.game_id != null ? `game ${g.game_id}` : null,
      Number.isFinite(g.move_count) ? `move ${g.move_count}` : null,
      g.result ? `result: ${g.result}` : null,
      Number.isFinite(g.games_finished) ? `${g.games_finished} games done` : null,
    ].filter(Boolean);
    ctx.fillStyle = theme.fg;
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    ctx.font = `500 ${Math.round(cell * 0.2)}px ${theme.font}`;
    lines.forEach((line, i) => ctx.fillText(line, layout.blackHand.x, y0 + i * cell * 0.3));
  }

  /**
   * How the prediction relates to the board on screen. A trainer predicts before it moves and
   * reports the new position right after, so the latest prediction is usually for the position
   * before the last move: its arrows are then drawn dimmed ("candidates for the last move"),
   * and a prediction for some other position is not drawn at all.
   *   'current'    made for the position shown (or it names no position: taken as current)
   *   'last_move'  made for the position before the last move
   *   'other'      made for a position that is not on screen
   */
  function predictionFor() {
    const pos = typeof state.prediction?.position === 'string' ? parseSfen(state.prediction.position) : null;
    if (!pos || !state.position) return { relation: 'current', side: pos?.turn ?? state.position?.turn ?? 'black' };
    if (samePosition(pos, state.position)) return { relation: 'current', side: pos.turn };
    if (samePosition(applyUsiMove(pos, state.game?.last_move), state.position)) return { relation: 'last_move', side: pos.turn };
    return { relation: 'other', side: pos.turn };
  }

  function drawArrows() {
    const ctx = layers.arrows.ctx;
    clearRect(layers.arrows);
    drawn.arrows = [];
    drawn.arrowsFor = null;
    if (!state.prediction) return;
    const { relation, side } = predictionFor();
    drawn.arrowsFor = relation;
    const { cell } = layout;
    if (relation !== 'current') {
      // Say what the arrows mean (or why there are none) beside the board, under the game info.
      ctx.font = `500 ${Math.round(cell * 0.18)}px ${theme.font}`;
      ctx.fillStyle = theme.fgDim;
      ctx.textAlign = 'left';
      ctx.textBaseline = 'top';
      const text = relation === 'last_move' ? `arrows: the model's candidates for the last move (${state.game.last_move})` : 'prediction is for another position';
      wrapLines(ctx, text, layout.blackHand.w, 3).forEach((line, i) => ctx.fillText(line, layout.blackHand.x, layout.y0 + cell * 1.25 + i * cell * 0.23));
      if (relation === 'other') return;
    }
    const dim = relation === 'last_move' ? 0.5 : 1;
    const moves = validTopMoves(state.prediction.top_moves).slice(0, 3);
    // Draw the weakest first so the top move's arrow ends up on top.
    const items = moves.map((m, rank) => {
      const mv = parseUsiMove(m.move);
      const a = mv.from ? squareCenter(layout, mv.from.row, mv.from.col) : handSlotCenter(layout, side, mv.drop);
      const b = squareCenter(layout, mv.to.row, mv.to.col);
      return { m, mv, rank, a, b };
    });
    for (const { m, rank, a, b } of [...items].reverse()) {
      const width = cell * [0.16, 0.12, 0.1][rank];
      const dx = b.x - a.x, dy = b.y - a.y, len = Math.hypot(dx, dy) || 1;
      const ux = dx / len, uy = dy / len;
      const head = Math.min(cell * 0.42, len * 0.6);
      const tip = { x: b.x - ux * cell * 0.12, y: b.y - uy * cell * 0.12 };
      const base = { x: tip.x - ux * head, y: tip.y - uy * head };
      ctx.globalAlpha = 0.88 * dim;
      ctx.strokeStyle = ctx.fillStyle = theme.arrows[rank];
      ctx.lineWidth = width;
      ctx.lineCap = 'round';
      ctx.beginPath(); ctx.moveTo(a.x, a.y); ctx.lineTo(base.x, base.y); ctx.stroke();
      ctx.beginPath();
      ctx.moveTo(tip.x, tip.y);
      ctx.lineTo(base.x - uy * width * 1.6, base.y + ux * width * 1.6);
      ctx.lineTo(base.x + uy * width * 1.6, base.y - ux * width * 1.6);
      ctx.closePath(); ctx.fill();
      ctx.globalAlpha = 1;
    }
    for (const { m, mv, rank, a, b } of items) {
      const label = formatPercent(m.prob);
      // Label at 45 % of the way, where it covers neither the moving piece nor the target; a
      // one-square arrow has no such room, so its label sits beside the arrow instead.
      const len = Math.hypot(b.x - a.x, b.y - a.y) || 1;
      const offset = len < cell * 1.6 ? cell * 0.42 : 0;
      const lx = a.x + (b.x - a.x) * 0.45 + ((b.y - a.y) / len) * offset, ly = a.y + (b.y - a.y) * 0.45 - ((b.x - a.x) / len) * offset;
      ctx.font = `700 ${Math.round(cell * 0.22)}px ${theme.font}`;
      const tw = ctx.measureText(label).width + cell * 0.16, th = cell * 0.32;
      ctx.globalAlpha = dim === 1 ? 1 : 0.75;
      ctx.fillStyle = theme.arrows[rank];
      roundRect(ctx, lx - tw / 2, ly - th / 2, tw, th, th / 2);
      ctx.fill();
      ctx.fillStyle = '#fff';
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText(label, lx, ly + 1);
      ctx.globalAlpha = 1;
      drawn.arrows.push({
        move: m.move, prob: m.prob, rank: rank + 1, label,
        from: mv.from ? squareName(mv.from.row, mv.from.col) : `hand:${side}:${mv.drop}`,
        to: squareName(mv.to.row, mv.to.col),
        x1: Math.round(a.x), y1: Math.round(a.y), x2: Math.round(b.x), y2: Math.round(b.y),
      });
    }
  }

  return {
    layout,
    layers,
    drawn,
    hasData: () => !!(state.game || state.heat || state.prediction),
    update(type, data) {
      if (type === 'game_state') {
        const position = positionOfGameState(data);
        state.game = data;
        state.position = position;
        dirty.pieces = dirty.arrows = true;
        return true;
      }
      if (type === 'board_heatmap') {
        const grid = validGrid(data.grid);
        if (!grid) return false;
        state.heat = { grid, focus: data.focus };
        dirty.heat = true;
        return true;
      }
      if (type === 'move_prediction') {
        state.prediction = data;
        dirty.arrows = true;
        return true;
      }
      return false;
    },
    draw() {
      let painted = false;
      if (dirty.board) { drawBoard(); dirty.board = false; painted = true; }
      if (dirty.heat) { drawHeat(); dirty.heat = false; painted = true; }
      if (dirty.pieces) { drawPieces(); dirty.pieces = false; painted = true; }
      if (dirty.arrows) { drawArrows(); dirty.arrows = false; painted = true; }
      return painted;
    },
  };
}

// ---------------------------------------------------------------------------------------
// SE channel strips (advanced level)

/**
 * One horizontal strip per SE block, one column per channel, brightness = channel weight.
 * SE weights have no spatial layout, so they are shown beside the board, never on it.
 * Rows are painted into an ImageData (one pixel per channel) and scaled up without
 * smoothing: one putImageData + one drawImage per frame whatever the channel count.
 */
export function createSeStripsView(parent, rect, { theme }) {
  const layer = addCanvas(parent, rect, 'se');
  layer.ctx.translate(-rect.x, -rect.y);
  let weights = null;
  let dirty = true;
  const drawn = { blocks: 0, channels: 0, rows: [] };
  // One pixel per (block, channel), reused across frames.
  const off = document.createElement('canvas');

  function draw() {
    const ctx = layer.ctx;
    ctx.clearRect(rect.x, rect.y, rect.w, rect.h);
    drawn.blocks = 0; drawn.channels = 0; drawn.rows = [];
    ctx.fillStyle = theme.panel;
    roundRect(ctx, rect.x, rect.y, rect.w, rect.h, 14);
    ctx.fill();
    ctx.fillStyle = theme.fg;
    ctx.font = `700 26px ${theme.font}`;
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    ctx.fillText('SE channel attention', rect.x + 18, rect.y + 14);
    const rows = weights;
    if (!rows || rows.length === 0) {
      ctx.fillStyle = theme.fgDim;
      ctx.font = `500 22px ${theme.font}`;
      ctx.fillText('no data', rect.x + 18, rect.y + 60);
      return;
    }
    const channels = Math.max(...rows.map((r) => r?.length ?? 0));
    let min = Infinity, max = -Infinity;
    for (const r of rows) if (r) for (const v of r) { if (v < min) min = v; if (v > max) max = v; }
    // Sigmoid gates live in [0, 1]; use that scale when they do so strips compare across updates.
    if (min >= 0 && max <= 1) { min = 0; max = 1; }
    const span = max > min ? max - min : 1;
    const image = new ImageData(channels, rows.length);
    const [cr, cg, cb] = theme.heatCold, [hr, hg, hb] = theme.heatHot;
    rows.forEach((r, b) => {
      if (!r) return;
      for (let c = 0; c < r.length; c++) {
        const t = Math.min(1, Math.max(0, (r[c] - min) / span));
        const i = (b * channels + c) * 4;
        image.data[i] = cr + (hr - cr) * t;
        image.data[i + 1] = cg + (hg - cg) * t;
        image.data[i + 2] = cb + (hb - cb) * t;
        image.data[i + 3] = 60 + 195 * t;
      }
    });
    if (off.width !== channels || off.height !== rows.length) { off.width = channels; off.height = rows.length; }
    off.getContext('2d').putImageData(image, 0, 0);
    const top = rect.y + 60, labelW = 56, stripW = rect.w - labelW - 30;
    const rowH = Math.min(56, (rect.h - 80) / rows.length);
    ctx.imageSmoothingEnabled = false;
    ctx.font = `500 ${Math.round(Math.min(20, rowH * 0.6))}px ${theme.font}`;
    ctx.textBaseline = 'middle';
    rows.forEach((r, b) => {
      const y = top + b * rowH;
      ctx.fillStyle = theme.fgDim;
      ctx.fillText(`b${b + 1}`, rect.x + 16, y + rowH / 2);
      if (!r) { ctx.fillText('no data', rect.x + labelW + 16, y + rowH / 2); return; }
      ctx.drawImage(off, 0, b, channels, 1, rect.x + labelW + 12, y + rowH * 0.12, stripW, rowH * 0.76);
      drawn.rows.push({ block: b, x: rect.x + labelW + 12, y: y + rowH * 0.12, w: stripW, h: rowH * 0.76 });
    });
    drawn.blocks = rows.length;
    drawn.channels = channels;
  }

  return {
    layer,
    drawn,
    hasData: () => weights !== null,
    update(type, data) {
      if (type !== 'se_attention') return false;
      // Full rows arrive at the advanced level only; other levels get summaries we do not draw as strips.
      if (!Array.isArray(data.weights) || !data.weights.every((r) => r === null || (Array.isArray(r) && r.every(Number.isFinite)))) return false;
      weights = data.weights;
      dirty = true;
      return true;
    },
    draw() {
      if (!dirty) return false;
      dirty = false;
      draw();
      return true;
    },
  };
}

/** Greedy word wrap into at most `maxLines` lines; the last one gets an ellipsis when text is left. */
export function wrapLines(ctx, text, width, maxLines) {
  const words = text.split(/\s+/).filter(Boolean);
  const lines = [];
  let line = '';
  for (let i = 0; i < words.length; i++) {
    const next = line ? `${line} ${words[i]}` : words[i];
    if (ctx.measureText(next).width <= width || !line) { line = next; continue; }
    lines.push(line);
    line = words[i];
    if (lines.length === maxLines) {
      line = '';
      let last = lines[maxLines - 1];
      while (last.includes(' ') && ctx.measureText(`${last} …`).width > width) last = last.slice(0, last.lastIndexOf(' '));
      lines[maxLines - 1] = `${last} …`;
      break;
    }
  }
  if (line && lines.length < maxLines) lines.push(line);
  return lines;
}

// ---------------------------------------------------------------------------------------
// Prediction bars

/**
 * The model's top-N moves as horizontal probability bars, plus its value estimate as a bar
 * centred on 0 (range -1..1). The moving piece is named when the prediction carries its
 * position (or the board's position is given).
 */
export function createPredictionsView(parent, rect, { theme, glyphs = 'letters', count = 5 }) {
  const layer = addCanvas(parent, rect, 'predictions');
  layer.ctx.translate(-rect.x, -rect.y);
  let prediction = null;
  let position = null;
  let dirty = true;
  const drawn = { bars: [], value: null, valueBar: null, explanation: [] };

  function pieceOf(move, pos) {
    const mv = parseUsiMove(move);
    if (!mv) return '';
    if (mv.drop) return mv.drop;
    const code = pos?.board[mv.from.row][mv.from.col];
    return code ? code.toUpperCase() : '';
  }

  function draw() {
    const ctx = layer.ctx;
    ctx.clearRect(rect.x, rect.y, rect.w, rect.h);
    drawn.bars = []; drawn.value = null; drawn.valueBar = null; drawn.explanation = [];
    ctx.fillStyle = theme.panel;
    roundRect(ctx, rect.x, rect.y, rect.w, rect.h, 16);
    ctx.fill();
    const pad = Math.round(rect.h * 0.05);
    const titleSize = Math.round(Math.min(34, rect.h * 0.075));
    ctx.fillStyle = theme.fg;
    ctx.font = `700 ${titleSize}px ${theme.font}`;
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    ctx.fillText("Model's top moves", rect.x + pad, rect.y + pad);
    const moves = validTopMoves(prediction?.top_moves).slice(0, count);
    const bodyTop = rect.y + pad * 2 + titleSize;
    if (!prediction) {
      ctx.fillStyle = theme.fgDim;
      ctx.font = `500 ${Math.round(titleSize * 0.8)}px ${theme.font}`;
      ctx.fillText('no data', rect.x + pad, bodyTop);
      return;
    }
    const pos = (typeof prediction.position === 'string' ? parseSfen(prediction.position) : null) ?? position;
    const valueH = titleSize * 2.2;
    // Bars, then room for about three lines of explanation, then the value row.
    const rowH = Math.min(titleSize * 1.6, (rect.y + rect.h - pad - valueH - bodyTop) / (count + 2));
    const labelW = rowH * 3.4, pctW = rowH * 2.3;
    const trackX = rect.x + pad + labelW, trackW = rect.w - pad * 2 - labelW - pctW;
    const font = Math.round(rowH * 0.5);
    moves.forEach((m, i) => {
      const y = bodyTop + i * rowH;
      const barY = y + rowH * 0.18, barH = rowH * 0.64;
      ctx.fillStyle = theme.track;
      ctx.fillRect(trackX, barY, trackW, barH);
      const w = Math.round(trackW * m.prob);
      ctx.fillStyle = theme.arrows[Math.min(i, 2)];
      ctx.fillRect(trackX, barY, w, barH);
      const piece = pieceOf(m.move, pos);
      // A drop already names its piece (B*5e); a board move gets the moving piece in front.
      const name = piece && !m.move.includes('*') ? `${glyphs === 'kanji' ? KANJI[piece] ?? piece : piece} ${m.move}` : m.move;
      ctx.fillStyle = theme.fg;
      ctx.textBaseline = 'middle';
      ctx.textAlign = 'left';
      ctx.font = `700 ${font}px ${theme.font}`;
      ctx.fillText(name, rect.x + pad, y + rowH / 2);
      const label = `${(m.prob * 100).toFixed(1)}%`;
      ctx.textAlign = 'right';
      ctx.fillText(label, rect.x + rect.w - pad, y + rowH / 2);
      drawn.bars.push({ move: m.move, prob: m.prob, label, piece, x: Math.round(trackX), y: Math.round(barY), w, h: Math.round(barH), trackW: Math.round(trackW) });
    });
    if (moves.length === 0) {
      ctx.fillStyle = theme.fgDim;
      ctx.font = `500 ${font}px ${theme.font}`;
      ctx.textAlign = 'left';
      ctx.fillText('no moves in this prediction', rect.x + pad, bodyTop + rowH / 2);
    }
    // Value estimate: a bar from the centre (0) towards -1 or +1.
    const vy = rect.y + rect.h - pad - valueH;
    // The server's explanation at the page's level, in the room between bars and value.
    const expTop = bodyTop + count * rowH + rowH * 0.2;
    const expFont = Math.round(rowH * 0.36);
    const maxLines = Math.floor((vy - expTop) / (expFont * 1.3));
    if (typeof prediction.explanation === 'string' && maxLines > 0) {
      ctx.font = `500 ${expFont}px ${theme.font}`;
      ctx.fillStyle = theme.fgDim;
      ctx.textAlign = 'left';
      ctx.textBaseline = 'top';
      drawn.explanation = wrapLines(ctx, prediction.explanation, rect.w - pad * 2, maxLines);
      drawn.explanation.forEach((line, i) => ctx.fillText(line, rect.x + pad, expTop + i * expFont * 1.3));
    }
    ctx.textAlign = 'left';
    ctx.textBaseline = 'middle';
    ctx.font = `700 ${font}px ${theme.font}`;
    ctx.fillStyle = theme.fg;
    ctx.fillText('value', rect.x + pad, vy + valueH / 2);
    const value = typeof prediction.value === 'number' && Number.isFinite(prediction.value) ? prediction.value : null;
    const barY = vy + valueH * 0.25, barH = valueH * 0.5;
    ctx.fillStyle = theme.track;
    ctx.fillRect(trackX, barY, trackW, barH);
    ctx.textAlign = 'right';
    if (value === null) {
      ctx.fillStyle = theme.fgDim;
      ctx.fillText('no data', rect.x + rect.w - pad, vy + valueH / 2);
      return;
    }
    const clamped = Math.max(-1, Math.min(1, value));
    const mid = trackX + trackW / 2;
    const w = Math.round((trackW / 2) * Math.abs(clamped));
    ctx.fillStyle = clamped >= 0 ? theme.ok : theme.bad;
    const x = clamped >= 0 ? mid : mid - w;
    ctx.fillRect(x, barY, w, barH);
    ctx.fillStyle = theme.fg;
    ctx.fillRect(mid - 1, barY - 4, 2, barH + 8);
    const label = `${value >= 0 ? '+' : ''}${value.toFixed(2)}`;
    ctx.fillText(label, rect.x + rect.w - pad, vy + valueH / 2);
    drawn.value = value;
    drawn.valueBar = { label, x: Math.round(x), y: Math.round(barY), w, h: Math.round(barH), mid: Math.round(mid) };
  }

  return {
    layer,
    drawn,
    hasData: () => prediction !== null,
    update(type, data) {
      if (type === 'move_prediction') { prediction = data; dirty = true; return true; }
      if (type === 'game_state') {
        // Only used to name pieces when the prediction carries no position of its own.
        position = positionOfGameState(data);
        if (prediction && typeof prediction.position !== 'string') dirty = true;
        return true;
      }
      return false;
    },
    draw() {
      if (!dirty) return false;
      dirty = false;
      draw();
      return true;
    },
  };
}

// ---------------------------------------------------------------------------------------
// Page wiring shared by the pages

/**
 * Frame statistics and the read-only `window.__overlay` test hook: `frames` holds the last
 * draw durations in ms (what one repaint cost), `frameStamps` their rAF timestamps.
 */
export function createFrameStats(limit = 2000) {
  const frames = [];
  const frameStamps = [];
  return {
    frames,
    frameStamps,
    record(duration, stamp) {
      frames.push(Number(duration.toFixed(3)));
      frameStamps.push(Number(stamp.toFixed(3)));
      if (frames.length > limit) { frames.shift(); frameStamps.shift(); }
    },
  };
}

/** Defines `window.__overlay` as a getter returning a frozen deep copy of `snapshot()`. */
export function exposeOverlay(snapshot) {
  Object.defineProperty(window, '__overlay', {
    configurable: false,
    enumerable: true,
    get() {
      const freeze = (o) => {
        if (o && typeof o === 'object') { Object.values(o).forEach(freeze); Object.freeze(o); }
        return o;
      };
      return freeze(structuredClone(snapshot()));
    },
  });
}

/**
 * Which run a page shows. `?run=` pins one. Otherwise the page follows the run of the first
 * game it sees and stays with it while that run keeps reporting games (switching only after
 * `quietMs` without one), so two trainers' data never mix or flicker on one board.
 * Returns `accept(type, data)`; `following()` names the run.
 */
export function runFilter(quietMs = 30_000) {
  const pinned = new URLSearchParams(location.search).get('run');
  let current = null;
  let lastGameAt = 0;
  const accept = (type, data) => {
    if (pinned) return data?.run === pinned;
    if (type === 'game_state' && typeof data.run === 'string') {
      const now = Date.now();
      if (current === null || data.run === current || now - lastGameAt > quietMs) {
        current = data.run;
        lastGameAt = now;
      }
    }
    return current === null || data.run === undefined || data.run === current;
  };
  accept.following = () => pinned ?? current;
  return accept;
}

/** `pieces=kanji|letters` query parameter; default: kanji when a CJK font can draw them. */
export function pieceGlyphs() {
  const q = new URLSearchParams(location.search).get('pieces');
  if (q === 'kanji' || q === 'letters') return q;
  return canDrawKanji() ? 'kanji' : 'letters';
}

/**
 * Runs one overlay page: theme class, connection + status badge, "no data" until a view has
 * data, one frame scheduler for all views (a repaint only after a message changed a view),
 * a rebuild on resize, the streamer's `control` messages (level unless the URL pins one;
 * `paused` freezes the picture and shows a label), and `window.__overlay`.
 * `subscribe(channels)` maps the `channels` parameter to the socket's channels (default: as is).
 * `build(stage, ctx)` creates the views for a width × height and returns `{views, snapshot()}`;
 * each view has update/draw/hasData.
 */
export function startPage({ name, channels, build, subscribe = (list) => list }) {
  const params = pageParams({ channels });
  const pinnedLevel = new URLSearchParams(location.search).has('level');
  document.body.classList.add(params.theme === 'light' ? 'theme-light' : 'theme-dark');
  const stage = document.getElementById('stage');
  const nodata = document.getElementById('nodata');
  const pausedLabel = document.getElementById('paused');
  const badge = statusBadge(document.getElementById('status'));
  const accept = runFilter();
  const stats = createFrameStats();
  const theme = readTheme();
  const glyphs = pieceGlyphs();
  // Latest message per type: replayed into fresh views after a resize, a level change or a pause.
  const latest = new Map();
  let page;
  let connection = 'connecting';
  let paused = false;
  let messages = 0;
  let ignored = 0;
  let draws = 0;

  const scheduler = frameScheduler((t) => {
    const t0 = performance.now();
    let painted = false;
    for (const view of page.views) painted = view.draw() || painted;
    if (painted) { draws++; stats.record(performance.now() - t0, t); }
  });

  function showNoData() {
    const empty = page.views.length > 0 && !page.views.some((v) => v.hasData?.());
    // Touch the DOM only on a change, so live updates never cause style recalculation.
    if (nodata.hidden === empty) nodata.hidden = !empty;
  }

  function rebuild() {
    stage.replaceChildren();
    page = build(stage, { width: window.innerWidth, height: window.innerHeight, level: params.level, theme, glyphs, params });
    for (const [type, data] of latest) for (const view of page.views) view.update(type, data);
    showNoData();
    scheduler.invalidate();
  }

  function applyControl(c) {
    if (!pinnedLevel && ['beginner', 'intermediate', 'advanced'].includes(c.level) && c.level !== params.level) {
      params.level = c.level;
      conn.resubscribe({ level: c.level });
      rebuild();
    }
    const p = c.paused === true;
    if (p === paused) return;
    paused = p;
    if (pausedLabel) pausedLabel.hidden = !paused;
    // Resuming shows the newest data at once (kept while paused), not the stale picture.
    if (!paused) rebuild();
  }

  function onMessage(msg) {
    if (!msg || typeof msg.type !== 'string' || !msg.data || typeof msg.data !== 'object') return;
    if (msg.type === 'control') { applyControl(msg.data); return; }
    if (!accept(msg.type, msg.data)) { ignored++; return; }
    messages++;
    if (paused) { latest.set(msg.type, msg.data); return; }
    let changed = false;
    for (const view of page.views) changed = view.update(msg.type, msg.data) || changed;
    if (!changed) { ignored++; return; }
    latest.set(msg.type, msg.data);
    showNoData();
    scheduler.invalidate();
  }

  rebuild();
  let resizeTimer;
  window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(rebuild, 100); });
  // `subscribe` maps the page's channel choice to what its socket needs (showcase: panels → channels).
  const asked = subscribe(params.channels);
  const wanted = asked.includes('all') ? ['all'] : [...new Set([...asked, 'control'])];
  const conn = connect({
    channels: wanted, level: params.level, maxFps: params.maxFps, server: params.server,
    onMessage,
    onState: (s, detail) => { connection = s; badge(s, detail); },
  });
  exposeOverlay(() => ({
    page: name, level: params.level, theme: params.theme, glyphs, connection, paused, run: accept.following(),
    noData: !nodata.hidden, messages, ignored, draws,
    frames: stats.frames, frameStamps: stats.frameStamps,
    ...page.snapshot(),
  }));
  return { conn, rebuild, params };
}
