// The model's top moves as probability bars with its value estimate and the server's
// explanation (the predictions page and the showcase). Plain ES module.
import { KANJI } from './board.js';
import { addLayer, repaintOnChange, roundRect, wrapText } from './draw.js';
import { parseUsiMove, positionOfGameState, validPosition, validTopMoves } from './position.js';

/**
 * The model's top-N moves as horizontal probability bars, plus its value estimate as a bar
 * centred on 0 (range -1..1). The moving piece is named when the prediction carries its
 * position (or the board's position is given).
 */
export function createPredictionsView(parent, rect, { theme, glyphs = 'letters', count = 5 }) {
  const layer = addLayer(parent, rect, 'predictions');
  let prediction = null;
  let position = null;
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
    const pos = validPosition(prediction.position_board) ?? position;
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
      drawn.explanation = wrapText(ctx, prediction.explanation, rect.w - pad * 2, maxLines);
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

  const repaint = repaintOnChange(draw);
  return {
    layer,
    drawn,
    hasData: () => prediction !== null,
    update(type, data) {
      if (type === 'move_prediction') { prediction = data; repaint.mark(); return true; }
      if (type === 'game_state') {
        // Only used to name pieces when the prediction carries no position of its own.
        position = positionOfGameState(data);
        if (prediction && !validPosition(prediction.position_board)) repaint.mark();
        return true;
      }
      return false;
    },
    draw: repaint.draw,
  };
}
