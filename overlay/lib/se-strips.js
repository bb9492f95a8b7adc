// SE channel strips (the board pages at level=advanced): the squeeze-excitation weights per
// block, drawn beside the board because they have no spatial layout. Plain ES module.
import { addLayer, repaintOnChange, roundRect } from './draw.js';

/**
 * One horizontal strip per SE block, one column per channel, brightness = channel weight.
 * SE weights have no spatial layout, so they are shown beside the board, never on it.
 * Rows are painted into an ImageData (one pixel per channel) and scaled up without
 * smoothing: one putImageData + one drawImage per frame whatever the channel count.
 */
export function createSeStripsView(parent, rect, { theme }) {
  const layer = addLayer(parent, rect, 'se');
  let weights = null;
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

  const repaint = repaintOnChange(draw);
  return {
    layer,
    drawn,
    hasData: () => weights !== null,
    update(type, data) {
      if (type !== 'se_attention') return false;
      // Full rows arrive at the advanced level only; other levels get summaries we do not draw as strips.
      if (!Array.isArray(data.weights) || !data.weights.every((r) => r === null || (Array.isArray(r) && r.every(Number.isFinite)))) return false;
      weights = data.weights;
      repaint.mark();
      return true;
    },
    draw: repaint.draw,
  };
}
