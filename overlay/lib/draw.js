// Canvas helpers every overlay page draws with: the theme palette read from theme.css,
// HiDPI canvases, rounded panels, word wrap, number formats and the frozen picture shown
// while the streamer has paused the data. Plain ES module, no build step.

/** '#rrggbb' → 'rgba(r,g,b,a)'; other colour syntaxes are returned unchanged. */
function withAlpha(colour, alpha) {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(colour);
  return m ? `rgba(${parseInt(m[1], 16)},${parseInt(m[2], 16)},${parseInt(m[3], 16)},${alpha})` : colour;
}

/**
 * The palette, read from theme.css's custom properties on <body> (which carries theme-dark or
 * theme-light), so DOM and canvas share one set of colours. The fallbacks only apply where
 * the stylesheet lacks a variable. `muted`, `grid`, `raw` and `health` are the names the
 * chart pages use; health status → --ok / --warn / --bad.
 */
export function readTheme(element = document.body) {
  const css = getComputedStyle(element);
  const v = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  const fgDim = v('--fg-dim', '#aab3c5');
  const track = v('--track', 'rgba(255,255,255,0.12)');
  const accent = v('--accent', '#4aa3ff');
  const ok = v('--ok', '#2e9d5b');
  const warn = v('--warn', '#d99a1e');
  const bad = v('--bad', '#c8412f');
  return {
    // theme.css's font stack lists CJK fonts, so kanji and Japanese move names render where installed.
    font: v('--font', 'system-ui, sans-serif'),
    fg: v('--fg', '#f4f6fb'),
    fgDim,
    muted: fgDim,
    panel: v('--panel-bg', 'rgba(16,20,30,0.78)'),
    panelEdge: v('--panel-edge', 'rgba(255,255,255,0.14)'),
    track,
    grid: track,
    accent,
    raw: withAlpha(accent, 0.35),
    ok,
    warn,
    bad,
    health: { healthy: ok, learning: warn, exploring: bad, unknown: fgDim },
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
  };
}

/** Sizes `canvas` to width × height CSS pixels × devicePixelRatio; its context draws in CSS pixels. */
export function setupCanvas(canvas, width = 1920, height = 1080) {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(height * dpr);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { ctx, width, height, dpr };
}

/**
 * Adds an absolutely placed canvas layer covering `rect` inside `parent`; its context draws
 * in page coordinates (the rect's offset is translated away once).
 */
export function addLayer(parent, rect, name) {
  const canvas = document.createElement('canvas');
  canvas.className = 'layer';
  canvas.dataset.layer = name;
  canvas.style.left = `${rect.x}px`;
  canvas.style.top = `${rect.y}px`;
  const { ctx } = setupCanvas(canvas, rect.w, rect.h);
  parent.appendChild(canvas);
  ctx.translate(-rect.x, -rect.y);
  return { canvas, ctx, rect };
}

/**
 * Repaint-on-change for one canvas layer: `draw()` calls `paint()` only after `mark()` (and
 * once at the start) and says whether it painted, so views redraw only what changed.
 */
export function repaintOnChange(paint) {
  let dirty = true;
  return {
    mark() { dirty = true; },
    draw() {
      if (!dirty) return false;
      dirty = false;
      paint();
      return true;
    },
  };
}

/** Rounded rectangle path (ctx.roundRect is recent; this works everywhere). */
export function roundRect(ctx, x, y, w, h, r) {
  const rr = Math.min(r, w / 2, h / 2);
  ctx.beginPath();
  ctx.moveTo(x + rr, y);
  ctx.arcTo(x + w, y, x + w, y + h, rr);
  ctx.arcTo(x + w, y + h, x, y + h, rr);
  ctx.arcTo(x, y + h, x, y, rr);
  ctx.arcTo(x, y, x + w, y, rr);
  ctx.closePath();
}

/**
 * Greedy word wrap with the context's current font into lines no wider than `maxWidth`
 * (a single word wider than that gets a line of its own). With `maxLines`, text beyond the
 * last line is cut and that line ends in an ellipsis.
 */
export function wrapText(ctx, text, maxWidth, maxLines = Infinity) {
  const words = String(text).split(/\s+/).filter(Boolean);
  const lines = [];
  let line = '';
  for (const word of words) {
    const next = line ? `${line} ${word}` : word;
    if (!line || ctx.measureText(next).width <= maxWidth) { line = next; continue; }
    lines.push(line);
    line = word;
    if (lines.length === maxLines) {
      line = '';
      let last = lines[maxLines - 1];
      while (last.includes(' ') && ctx.measureText(`${last} …`).width > maxWidth) last = last.slice(0, last.lastIndexOf(' '));
      lines[maxLines - 1] = `${last} …`;
      break;
    }
  }
  if (line && lines.length < maxLines) lines.push(line);
  return lines;
}

/** Short number for display: integers as is, else 3 significant digits, exponent for tiny/huge. */
export function fmt(x) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  if (Number.isInteger(x) && Math.abs(x) < 1e7) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return x.toExponential(2);
  return String(Number(x.toPrecision(3)));
}

/** A probability as a percentage: whole percent from 10 %, one decimal below. */
export function formatPercent(p) {
  return `${(p * 100).toFixed(p >= 0.1 ? 0 : 1)}%`;
}

/** A copy of what a canvas shows now: the streamer's "pause" keeps it on screen while data moves on. */
export function frozenCopy(canvas) {
  const copy = document.createElement('canvas');
  copy.width = canvas.width;
  copy.height = canvas.height;
  copy.getContext('2d').drawImage(canvas, 0, 0);
  return copy;
}

/** Draws a frozen copy (if any); returns true when it did (the caller draws nothing else). */
export function drawFrozen(ctx, view, frozen) {
  if (!frozen) return false;
  ctx.clearRect(0, 0, view.width, view.height);
  ctx.drawImage(frozen, 0, 0, view.width, view.height);
  return true;
}
