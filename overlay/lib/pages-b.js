// Shared plumbing of the metrics, game and milestones overlay pages: connection + status
// badge, the streamer's `control` messages (level / pause), theme colours for canvas
// drawing, a HiDPI-aware canvas, frame timing, and the `window.__overlay` test hook.
// Plain ES module, no build step.
import { connect, frameScheduler, pageParams, statusBadge } from './connection.js';

export const LEVELS = ['beginner', 'intermediate', 'advanced'];

// Fallback palette, used only where theme.css (the shared overlay stylesheet) is missing a variable.
const THEMES = {
  dark: { fg: '#f4f6fb', muted: '#aab3c5', panel: 'rgba(16,20,30,0.78)', grid: 'rgba(255,255,255,0.12)', accent: '#4aa3ff', ok: '#2e9d5b', warn: '#d99a1e', bad: '#c8412f' },
  light: { fg: '#16181d', muted: '#4b5262', panel: 'rgba(250,250,247,0.86)', grid: 'rgba(0,0,0,0.10)', accent: '#4aa3ff', ok: '#2e9d5b', warn: '#d99a1e', bad: '#c8412f' },
};

/** '#rrggbb' → 'rgba(r,g,b,a)'; other colour syntaxes are returned unchanged. */
function withAlpha(colour, alpha) {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(colour);
  return m ? `rgba(${parseInt(m[1], 16)},${parseInt(m[2], 16)},${parseInt(m[3], 16)},${alpha})` : colour;
}

/**
 * Colours for canvas drawing, read once from theme.css's custom properties (body.theme-dark /
 * body.theme-light) so DOM and canvas share one palette. Health status → --ok / --warn / --bad.
 */
export function themeColors(theme) {
  const base = THEMES[theme] ?? THEMES.dark;
  const css = getComputedStyle(document.body);
  const pick = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  const accent = pick('--accent', base.accent);
  const muted = pick('--fg-dim', base.muted);
  return {
    fg: pick('--fg', base.fg),
    muted,
    panel: pick('--panel-bg', base.panel),
    grid: pick('--track', base.grid),
    accent,
    raw: withAlpha(accent, 0.35),
    // theme.css's font stack (it lists CJK fonts, so Japanese move names render where installed).
    font: pick('--font', 'system-ui, sans-serif'),
    health: { healthy: pick('--ok', base.ok), learning: pick('--warn', base.warn), exploring: pick('--bad', base.bad), unknown: muted },
  };
}

/** A canvas sized to its CSS box × devicePixelRatio; drawing uses CSS pixels. */
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
 * Bounded frame-time record (ms of work per drawn frame), so a test or a streamer can
 * check the page stays inside a 60 fps budget. Ring of the last `size` samples.
 */
export function frameStats(size = 2048) {
  const samples = new Float64Array(size);
  let n = 0;
  return {
    add(ms) { samples[n % size] = ms; n++; },
    get count() { return n; },
    reset() { n = 0; },
    values() { return Array.from(samples.subarray(0, Math.min(n, size))); },
  };
}

/**
 * A numeric query parameter clamped to [min, max]; missing, empty or not a number → fallback
 * (a typo in an OBS source URL must not break the page).
 */
export function queryNumber(name, fallback, min, max) {
  const q = new URLSearchParams(location.search);
  const raw = q.get(name);
  const v = Number(raw);
  return raw !== null && raw.trim() !== '' && Number.isFinite(v) ? Math.min(max, Math.max(min, v)) : fallback;
}

/**
 * Starts a page: parses the query, connects (always adding the `control` channel so the
 * streamer's level/pause reach the page), wires the status badge, and follows control
 * messages. `onMessage` gets every non-control message; `onLevel(level)` after a level change.
 * Returns { params, conn, stats, pinnedLevel, level(), paused(), invalidate(), serverNow() }.
 */
export function startPage({ channels, draw, onMessage, onLevel, onPause, badge, defaults = {} }) {
  const params = pageParams({ channels, ...defaults });
  const q = new URLSearchParams(location.search);
  // Only a valid ?level= pins the page; a typo falls back to intermediate and follows the control page.
  const pinnedLevel = LEVELS.includes(q.get('level'));
  let level = LEVELS.includes(params.level) ? params.level : 'intermediate';
  let paused = false;
  let offset = 0; // server clock − local clock, from connection_established
  document.body.classList.add(`theme-${params.theme === 'light' ? 'light' : 'dark'}`);
  const stats = frameStats();
  const scheduler = frameScheduler((t) => {
    const t0 = performance.now();
    draw(t);
    stats.add(performance.now() - t0);
  });
  const showState = badge ? statusBadge(badge) : () => {};
  const wanted = params.channels.includes('all') ? ['all'] : [...new Set([...params.channels, 'control'])];

  const conn = connect({
    channels: wanted,
    level,
    maxFps: Number.isFinite(params.maxFps) && params.maxFps > 0 ? params.maxFps : 60,
    server: params.server,
    onState: showState,
    onMessage: (msg) => {
      if (msg.type === 'connection_established' && typeof msg.server_time === 'number') offset = msg.server_time - Date.now();
      if (msg.type === 'control') {
        applyControl(msg.data ?? {});
        return;
      }
      onMessage(msg);
    },
  });

  function applyControl(c) {
    // A page that pinned ?level= keeps it: the streamer's level is the default for the others.
    if (!pinnedLevel && LEVELS.includes(c.level) && c.level !== level) {
      level = c.level;
      conn.resubscribe({ level });
      onLevel?.(level);
    }
    const p = c.paused === true;
    if (p !== paused) {
      paused = p;
      document.documentElement.dataset.paused = String(paused);
      // theme.css's "paused" pill (a DOM element: toggled only on change, so no layout per frame).
      const label = document.getElementById('paused');
      if (label) label.hidden = !paused;
      onPause?.(paused);
    }
    scheduler.invalidate();
  }

  return {
    params,
    conn,
    stats,
    pinnedLevel,
    level: () => level,
    paused: () => paused,
    invalidate: () => scheduler.invalidate(),
    /** Server "now" in ms (countdowns are relative to the server's clock). */
    serverNow: () => Date.now() + offset,
  };
}

/** p50/p95/max of a list of numbers (frame times). */
export function percentiles(values) {
  if (values.length === 0) return { count: 0, p50: null, p95: null, max: null };
  const s = [...values].sort((a, b) => a - b);
  const at = (p) => s[Math.min(s.length - 1, Math.floor(p * (s.length - 1)))];
  return { count: s.length, p50: at(0.5), p95: at(0.95), max: s[s.length - 1] };
}

/** Short number for display: integers as is, else 3 significant digits, exponent for tiny/huge. */
export function fmt(x) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  if (Number.isInteger(x) && Math.abs(x) < 1e7) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return x.toExponential(2);
  return String(Number(x.toPrecision(3)));
}

/** Wraps `text` into lines no wider than `maxWidth` with the context's current font. */
export function wrapText(ctx, text, maxWidth) {
  const lines = [];
  let line = '';
  for (const word of String(text).split(/\s+/)) {
    if (!word) continue;
    const next = line ? `${line} ${word}` : word;
    if (line && ctx.measureText(next).width > maxWidth) {
      lines.push(line);
      line = word;
    } else {
      line = next;
    }
  }
  if (line) lines.push(line);
  return lines;
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

/** Bounded, de-duplicated set of ids (oldest forgotten first). */
export function seenIds(limit = 512) {
  const set = new Set();
  return {
    has: (id) => set.has(id),
    add(id) {
      set.add(id);
      if (set.size > limit) set.delete(set.values().next().value);
    },
    get size() { return set.size; },
  };
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
