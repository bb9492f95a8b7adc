// The shogi board drawn on stacked canvases: grid and coordinates, heatmap, pieces with hands
// and game info, and arrows for the model's top-3 moves. Each layer is redrawn only when its
// data changed, so a 10 Hz heatmap update never repaints the pieces and an idle page draws
// nothing. Positions are the server's parsed ones (position.js); malformed data is ignored
// and missing data is drawn as "no data", never guessed. Plain ES module.
import { addLayer, formatPercent, repaintOnChange, roundRect, wrapText } from './draw.js';
import {
  applyUsiMove, FILES, HAND_ORDER, parseUsiMove, positionOfGameState, RANKS, samePosition, squareName, validGrid, validPosition, validTopMoves,
} from './position.js';

export const KANJI = {
  P: '歩', L: '香', N: '桂', S: '銀', G: '金', B: '角', R: '飛', K: '玉',
  '+P': 'と', '+L': '杏', '+N': '圭', '+S': '全', '+B': '馬', '+R': '龍',
};

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

/** `pieces=kanji|letters` query parameter; default: kanji when a CJK font can draw them. */
export function pieceGlyphs() {
  const q = new URLSearchParams(location.search).get('pieces');
  if (q === 'kanji' || q === 'letters') return q;
  return canDrawKanji() ? 'kanji' : 'letters';
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

function distanceToSegment(p, a, b) {
  const dx = b.x - a.x, dy = b.y - a.y, l2 = dx * dx + dy * dy;
  const t = l2 ? Math.max(0, Math.min(1, ((p.x - a.x) * dx + (p.y - a.y) * dy) / l2)) : 0;
  return Math.hypot(p.x - a.x - t * dx, p.y - a.y - t * dy);
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
    board: addLayer(parent, rect, 'board'),
    heat: addLayer(parent, rect, 'heat'),
    pieces: addLayer(parent, rect, 'pieces'),
    arrows: addLayer(parent, rect, 'arrows'),
  };
  const sprites = new PieceSprites(theme, glyphs);
  const state = { game: null, position: null, heat: null, prediction: null };
  const drawn = { pieces: [], hands: { black: {}, white: {} }, turn: null, lastMove: null, positionSource: null, unreadablePosition: false, heatmapCells: [], hottest: null, arrows: [], arrowsFor: null, caption: null };

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
    const pos = validPosition(state.prediction?.position_board);
    if (!pos || !state.position) return { relation: 'current', side: pos?.turn ?? state.position?.turn ?? 'black' };
    if (samePosition(pos, state.position)) return { relation: 'current', side: pos.turn };
    if (samePosition(applyUsiMove(pos, state.game?.last_move), state.position)) return { relation: 'last_move', side: pos.turn };
    return { relation: 'other', side: pos.turn };
  }

  /**
   * Where an arrow's probability label goes: on a horizontal grid line of the target square
   * (its top or bottom edge, at its middle or a corner). A piece's glyph sits in the middle
   * half of its square's height, so a label no taller than half a square, centred on a grid
   * line, never covers one. Of those spots the one farthest from every arrow shaft wins, and
   * spots that would overlap a label already placed are skipped.
   */
  function labelSpot(b, tw, th, items, placed) {
    const { cell, x0, y0, size } = layout;
    const row = Math.round((b.y - y0) / cell - 0.5);
    const spots = [];
    for (const edge of [row, row + 1]) {
      for (const dx of [0, -0.5, 0.5]) {
        const x = Math.min(x0 + size - tw / 2, Math.max(x0 + tw / 2, b.x + dx * cell));
        spots.push({ x, y: y0 + edge * cell });
      }
    }
    const overlaps = (s) => placed.some((r) => s.x - tw / 2 < r.x + r.w && s.x + tw / 2 > r.x && s.y - th / 2 < r.y + r.h && s.y + th / 2 > r.y);
    let best = spots[0], bestScore = -Infinity;
    for (const s of spots) {
      const clearance = Math.min(...items.map((it) => distanceToSegment(s, it.a, it.b))) - (overlaps(s) ? 10 * cell : 0);
      if (clearance > bestScore) { best = s; bestScore = clearance; }
    }
    return best;
  }

  function drawArrows() {
    const ctx = layers.arrows.ctx;
    clearRect(layers.arrows);
    drawn.arrows = [];
    drawn.arrowsFor = null;
    drawn.caption = null;
    if (!state.prediction) return;
    const { relation, side } = predictionFor();
    drawn.arrowsFor = relation;
    const { cell } = layout;
    if (relation !== 'current') {
      // Say what the arrows mean (or why there are none) beside the board, under the game info.
      ctx.fillStyle = theme.fgDim;
      ctx.textAlign = 'left';
      ctx.textBaseline = 'top';
      const text = relation === 'last_move' ? `arrows: candidates for the last move ${state.game.last_move}` : 'prediction is for another position';
      // Three lines fit between the game info and sente's hand: the font shrinks (to a floor)
      // until the whole caption does, rather than cutting it.
      let px = Math.round(cell * 0.18), lines;
      for (;; px--) {
        ctx.font = `500 ${px}px ${theme.font}`;
        lines = wrapText(ctx, text, layout.blackHand.w);
        if ((lines.length <= 3 && lines.every((l) => ctx.measureText(l).width <= layout.blackHand.w)) || px <= Math.round(cell * 0.12)) break;
      }
      lines = lines.slice(0, 3);
      lines.forEach((line, i) => ctx.fillText(line, layout.blackHand.x, layout.y0 + cell * 1.25 + i * px * 1.25));
      drawn.caption = { text, lines, px, width: Math.max(...lines.map((l) => ctx.measureText(l).width)), maxWidth: layout.blackHand.w };
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
    const placed = [];
    for (const { m, mv, rank, a, b } of items) {
      const label = formatPercent(m.prob);
      ctx.font = `700 ${Math.round(cell * 0.2)}px ${theme.font}`;
      const tw = ctx.measureText(label).width + cell * 0.16, th = cell * 0.28;
      const { x: lx, y: ly } = labelSpot(b, tw, th, items, placed);
      placed.push({ x: lx - tw / 2, y: ly - th / 2, w: tw, h: th });
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
        labelRect: { x: lx - tw / 2, y: ly - th / 2, w: tw, h: th },
      });
    }
  }

  // The board layer is static: painted once per layout/theme (a rebuild), never marked again.
  const repaint = { board: repaintOnChange(drawBoard), heat: repaintOnChange(drawHeat), pieces: repaintOnChange(drawPieces), arrows: repaintOnChange(drawArrows) };
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
        repaint.pieces.mark();
        repaint.arrows.mark();
        return true;
      }
      if (type === 'board_heatmap') {
        const grid = validGrid(data.grid);
        if (!grid) return false;
        state.heat = { grid, focus: data.focus };
        repaint.heat.mark();
        return true;
      }
      if (type === 'move_prediction') {
        state.prediction = data;
        repaint.arrows.mark();
        return true;
      }
      return false;
    },
    draw() {
      let painted = false;
      // Bottom layer first; every dirty layer is painted (no short-circuit).
      for (const layer of [repaint.board, repaint.heat, repaint.pieces, repaint.arrows]) painted = layer.draw() || painted;
      return painted;
    },
  };
}
