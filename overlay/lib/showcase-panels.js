// Panels the showcase draws itself at its own scale (instead of embedding whole 1920×1080
// pages shrunk into a corner): PPO metrics as compact cards, and the viewer prediction game.
// Plain ES module; each view follows the view contract of startViewPage (update/draw/hasData).
import { addLayer, fmt, repaintOnChange, roundRect } from './draw.js';
import { humanName, positionLine } from './labels.js';
import { Series, drawSparkline } from './sparkline.js';

const METRIC_ORDER = ['ppo/policy_loss', 'ppo/entropy', 'ppo/kl_divergence_approx', 'ppo/clip_fraction', 'win_rate'];
const ARROWS = { rising: '▲', falling: '▼', flat: '▶' };

/** "ppo/kl_divergence_approx" → "KL divergence approx": the name after its group, humanised. */
export function metricTitle(name) {
  return humanName(String(name).split('/').pop());
}

/**
 * Health and up to `count` metrics as cards (value, trend arrow, sparkline of the points this
 * panel has seen). Sizes follow the panel: at 1080p every text is at least 22 px.
 */
export function createMetricsPanelView(parent, rect, { theme, count = 4 }) {
  const layer = addLayer(parent, rect, 'metrics');
  const cards = new Map();
  let health = null;
  let step = null;
  const drawn = { cards: [], health: null, fonts: [] };

  function card(name) {
    let c = cards.get(name);
    if (!c) { c = { name, latest: null, trend: null, series: new Series(100) }; cards.set(name, c); }
    return c;
  }

  function shown() {
    const names = [...cards.keys()];
    return [...METRIC_ORDER.filter((n) => cards.has(n)), ...names.filter((n) => !METRIC_ORDER.includes(n))].slice(0, count);
  }

  function draw() {
    const ctx = layer.ctx;
    ctx.clearRect(rect.x, rect.y, rect.w, rect.h);
    drawn.cards = []; drawn.fonts = [];
    ctx.fillStyle = theme.panel;
    roundRect(ctx, rect.x, rect.y, rect.w, rect.h, 16);
    ctx.fill();
    const pad = Math.round(Math.max(12, rect.w * 0.025));
    const title = Math.round(Math.max(20, Math.min(34, rect.h * 0.075)));
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    ctx.font = `700 ${title}px ${theme.font}`;
    ctx.fillStyle = theme.fg;
    ctx.fillText('Training health', rect.x + pad, rect.y + pad);
    drawn.fonts.push(title);
    const status = health?.status ?? 'unknown';
    const chipX = rect.x + pad + ctx.measureText('Training health').width + pad;
    ctx.font = `700 ${Math.round(title * 0.8)}px ${theme.font}`;
    const chipW = ctx.measureText(status).width + title * 0.8;
    ctx.fillStyle = theme.health[status] ?? theme.fgDim;
    roundRect(ctx, chipX, rect.y + pad - 2, chipW, title + 4, (title + 4) / 2);
    ctx.fill();
    ctx.fillStyle = '#0b0d12';
    ctx.fillText(status, chipX + title * 0.4, rect.y + pad + title * 0.1);
    drawn.health = status;
    if (step !== null) {
      ctx.font = `500 ${Math.round(title * 0.75)}px ${theme.font}`;
      ctx.fillStyle = theme.fgDim;
      ctx.textAlign = 'right';
      ctx.fillText(`step ${step}`, rect.x + rect.w - pad, rect.y + pad + title * 0.15);
      ctx.textAlign = 'left';
    }
    const names = shown();
    const top = rect.y + pad * 2 + title;
    if (!names.length) {
      ctx.font = `500 ${title}px ${theme.font}`;
      ctx.fillStyle = theme.fgDim;
      ctx.fillText('no data', rect.x + pad, top);
      return;
    }
    // Two columns of cards; rows share the height that is left.
    const cols = names.length > 1 ? 2 : 1;
    const rows = Math.ceil(names.length / cols);
    const gap = pad * 0.75;
    const cw = (rect.w - pad * 2 - gap * (cols - 1)) / cols;
    const ch = (rect.y + rect.h - pad - top - gap * (rows - 1)) / rows;
    const nameFont = Math.round(Math.max(22, Math.min(28, ch * 0.14)));
    const valueFont = Math.round(Math.max(28, Math.min(44, ch * 0.22)));
    drawn.fonts.push(nameFont, valueFont);
    names.forEach((name, i) => {
      const c = cards.get(name);
      const x = rect.x + pad + (i % cols) * (cw + gap);
      const y = top + Math.floor(i / cols) * (ch + gap);
      ctx.fillStyle = theme.track;
      roundRect(ctx, x, y, cw, ch, 10);
      ctx.fill();
      const label = metricTitle(name);
      ctx.fillStyle = theme.fgDim;
      ctx.font = `600 ${nameFont}px ${theme.font}`;
      ctx.fillText(label, x + 12, y + 10, cw - 24);
      ctx.fillStyle = theme.fg;
      ctx.font = `700 ${valueFont}px ${theme.font}`;
      const value = fmt(c.latest);
      ctx.fillText(value, x + 12, y + 16 + nameFont);
      const dir = direction(c);
      if (dir) {
        ctx.fillStyle = theme.accent;
        ctx.font = `700 ${Math.round(valueFont * 0.7)}px ${theme.font}`;
        ctx.fillText(ARROWS[dir], x + 24 + ctx.measureText(value).width * (valueFont / (valueFont * 0.7)), y + 20 + nameFont);
      }
      const sparkTop = y + 26 + nameFont + valueFont;
      const geometry = drawSparkline(ctx, { x: x + 12, y: sparkTop, w: cw - 24, h: Math.max(8, y + ch - 10 - sparkTop) }, {
        raw: c.series, smoothed: null, rawColour: theme.accent, smoothColour: theme.accent, gridColour: theme.grid,
      });
      drawn.cards.push({ name, label, latest: c.latest, direction: dir, points: c.series.length, rect: { x, y, w: cw, h: ch }, spark: !!geometry });
    });
  }

  function direction(c) {
    if (!Number.isFinite(c.trend)) return null;
    const s = c.series;
    if (s.length < 2 || c.trend === 0) return 'flat';
    const span = s.steps[s.length - 1] - s.steps[0];
    const change = (c.trend * span) / Math.max(Math.abs(c.latest ?? 0), 1e-9);
    if (Math.abs(change) < 0.02) return 'flat';
    return change > 0 ? 'rising' : 'falling';
  }

  const repaint = repaintOnChange(draw);
  return {
    layer,
    drawn,
    hasData: () => cards.size > 0,
    update(type, d) {
      if (type !== 'ppo_metrics' || !d.metrics || typeof d.metrics !== 'object') return false;
      if (typeof d.step === 'number' && step !== null && d.step < step) for (const c of cards.values()) c.series.clear();
      step = typeof d.step === 'number' ? d.step : step;
      if (d.health && typeof d.health === 'object') health = d.health;
      for (const [name, m] of Object.entries(d.metrics)) {
        if (!m || typeof m !== 'object') continue;
        const c = card(name);
        c.trend = Number.isFinite(m.trend) ? m.trend : c.trend;
        // The trainer's value (intermediate messages carry no rounded `latest` beside it).
        const v = Number.isFinite(d.values?.[name]) ? d.values[name] : m.latest;
        if (Number.isFinite(v)) c.latest = v;
        // The smoothed series where the level carries one (a whole series merged, a window's
        // tail appended: a page fed deltas and one fed tails hold the same points), else the
        // trainer's value, one point per message.
        if (Array.isArray(m.steps) && Array.isArray(m.smoothed)) {
          if (d.series === 'full') c.series.merge(m.steps, m.smoothed);
          else for (let i = 0; i < m.steps.length; i++) c.series.append(m.steps[i], m.smoothed[i]);
        } else if (typeof d.step === 'number' && Number.isFinite(v)) c.series.append(d.step, v);
      }
      repaint.mark();
      return true;
    },
    draw: repaint.draw,
  };
}

/**
 * The viewer prediction game: what is asked (move number, side), the time left, the top vote
 * bars as viewers typed them, then the result. `invalidate` asks the page for a frame so the
 * countdown moves on its own.
 */
export function createGamePanelView(parent, rect, { theme, invalidate = () => {} }) {
  const layer = addLayer(parent, rect, 'game');
  let game = null;
  let ticker = null;
  const drawn = { id: null, state: null, heading: null, lines: [], bars: [], fonts: [] };

  function draw() {
    const ctx = layer.ctx;
    ctx.clearRect(rect.x, rect.y, rect.w, rect.h);
    drawn.lines = []; drawn.bars = []; drawn.fonts = [];
    ctx.fillStyle = theme.panel;
    roundRect(ctx, rect.x, rect.y, rect.w, rect.h, 16);
    ctx.fill();
    const pad = Math.round(Math.max(12, rect.w * 0.025));
    const title = Math.round(Math.max(22, Math.min(32, rect.h * 0.13)));
    const body = Math.max(22, Math.round(title * 0.8));
    drawn.fonts.push(title, body);
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    ctx.font = `700 ${title}px ${theme.font}`;
    ctx.fillStyle = theme.fg;
    const heading = !game ? 'Predict the AI\'s next move'
      : game.state === 'collecting' ? 'Predict the AI\'s move: vote with !predict'
        : game.state === 'waiting' ? 'Voting closed: waiting for the AI'
          : game.state === 'finished' ? 'Prediction result' : 'Prediction game cancelled';
    ctx.fillText(heading, rect.x + pad, rect.y + pad, rect.w - pad * 2 - title * 3);
    drawn.heading = heading;
    drawn.id = game?.id ?? null;
    drawn.state = game?.state ?? null;
    let y = rect.y + pad + title * 1.35;
    const line = (text, colour = theme.fgDim) => {
      ctx.font = `500 ${body}px ${theme.font}`;
      ctx.fillStyle = colour;
      ctx.fillText(text, rect.x + pad, y, rect.w - pad * 2);
      drawn.lines.push(text);
      y += body * 1.3;
    };
    if (!game) { line('no prediction game yet'); return; }
    if (game.state === 'collecting') {
      const left = Math.max(0, Math.ceil((game.ends_at - Date.now()) / 1000));
      ctx.font = `800 ${title}px ${theme.font}`;
      ctx.fillStyle = theme.accent;
      ctx.textAlign = 'right';
      ctx.fillText(`${left} s`, rect.x + rect.w - pad, rect.y + pad);
      ctx.textAlign = 'left';
      drawn.secondsLeft = left;
    }
    const where = positionLine(game.position);
    if (where) line(where);
    if (game.state === 'finished' && game.result) {
      const r = game.result;
      line(`played ${r.played_label || r.played_move} · AI ${r.ai_move ? (r.ai_correct ? 'was right' : 'was wrong') : 'made no prediction'} · ${r.winners_total ?? 0} winners`, theme.fg);
    }
    const labels = game.vote_labels ?? {};
    const votes = Object.entries(game.votes ?? {}).filter(([, n]) => Number.isFinite(n) && n > 0).sort((a, b) => b[1] - a[1]);
    const total = votes.reduce((a, [, n]) => a + n, 0);
    if (!total) { line('no votes yet'); return; }
    const rowH = body * 1.45;
    const maxRows = Math.max(1, Math.floor((rect.y + rect.h - pad - y) / rowH));
    const labelW = body * 5, countW = body * 3;
    const trackX = rect.x + pad + labelW, trackW = rect.w - pad * 2 - labelW - countW;
    const played = game.state === 'finished' ? game.result?.played_move : null;
    votes.slice(0, Math.min(3, maxRows)).forEach(([usi, n], i) => {
      const by = y + i * rowH;
      ctx.fillStyle = theme.track;
      ctx.fillRect(trackX, by + rowH * 0.15, trackW, rowH * 0.7);
      const w = Math.round(trackW * (n / total));
      ctx.fillStyle = usi === played ? theme.ok : theme.arrows[Math.min(i, 2)];
      ctx.fillRect(trackX, by + rowH * 0.15, w, rowH * 0.7);
      ctx.fillStyle = theme.fg;
      ctx.font = `700 ${body}px ${theme.font}`;
      ctx.textBaseline = 'middle';
      ctx.fillText(labels[usi] ?? usi, rect.x + pad, by + rowH / 2, labelW - 8);
      ctx.textAlign = 'right';
      ctx.fillText(String(n), rect.x + rect.w - pad, by + rowH / 2);
      ctx.textAlign = 'left';
      ctx.textBaseline = 'top';
      drawn.bars.push({ move: usi, label: labels[usi] ?? usi, count: n, w, trackW: Math.round(trackW) });
    });
  }

  const repaint = repaintOnChange(draw);
  return {
    layer,
    drawn,
    hasData: () => game !== null,
    update(type, d) {
      if (type !== 'prediction_game' || typeof d.id !== 'string' || typeof d.state !== 'string') return false;
      // A replay of an older game never replaces the newer one on screen.
      if (game && d.id !== game.id && Number(d.started_at) < Number(game.started_at)) return false;
      game = d;
      clearInterval(ticker);
      ticker = null;
      // The countdown ticks once a second while voting is open; a view dropped by a rebuild
      // (its canvas left the page) stops its own ticker.
      if (game.state === 'collecting') {
        ticker = setInterval(() => {
          if (!layer.canvas.isConnected || Date.now() > game.ends_at + 1000) { clearInterval(ticker); ticker = null; }
          repaint.mark();
          invalidate();
        }, 1000);
      }
      repaint.mark();
      return true;
    },
    draw: repaint.draw,
  };
}
