// The one start-up every overlay page shares: query parameters, theme class, the status and
// "paused" pills, the connection (always with the `control` channel, so the streamer's
// level and pause reach the page), one frame scheduler with frame-time statistics, and the
// `window.__overlay` test hook, which exists only when the page is opened with `?test=1`.
// Plain ES module, no build step.
import { connect, frameScheduler, pageParams, statusBadge } from './connection.js';
import { drawFrozen, frozenCopy, readTheme, setupCanvas } from './draw.js';

export const LEVELS = ['beginner', 'intermediate', 'advanced'];

/** Whether the page was opened by a test (`?test=1`): only then does it publish `window.__overlay`. */
export const testMode = new URLSearchParams(location.search).get('test') === '1';

function deepFreeze(o) {
  if (o && typeof o === 'object') { Object.values(o).forEach(deepFreeze); Object.freeze(o); }
  return o;
}

/**
 * Publishes `window.__overlay` in test mode only (production pages carry no test hook).
 * `hook` is either an object (published as is, not replaceable) or a function returning a
 * snapshot, published as a getter that hands out a frozen deep copy (read-only for tests).
 */
export function exposeTestHook(hook) {
  if (!testMode) return;
  const get = typeof hook === 'function' ? () => deepFreeze(structuredClone(hook())) : () => hook;
  Object.defineProperty(window, '__overlay', { configurable: false, enumerable: true, get });
}

/**
 * Draw time per painted frame (ms of work, so a test or a streamer can check the page stays
 * inside a 60 fps budget) with its animation-frame timestamp; the last `limit` frames, oldest first.
 */
export function frameStats(limit = 2000) {
  const frames = [];
  const stamps = [];
  return {
    frames,
    stamps,
    add(ms, stamp = performance.now()) {
      frames.push(Number(ms.toFixed(3)));
      stamps.push(Number(stamp.toFixed(3)));
      if (frames.length > limit) { frames.shift(); stamps.shift(); }
    },
    reset() { frames.length = 0; stamps.length = 0; },
    values: () => [...frames],
  };
}

/** p50/p95/max of a list of numbers (frame times). */
export function percentiles(values) {
  if (values.length === 0) return { count: 0, p50: null, p95: null, max: null };
  const s = [...values].sort((a, b) => a - b);
  const at = (p) => s[Math.min(s.length - 1, Math.floor(p * (s.length - 1)))];
  return { count: s.length, p50: at(0.5), p95: at(0.95), max: s[s.length - 1] };
}

/**
 * A numeric query parameter clamped to [min, max]; missing, empty or not a number → fallback
 * (a typo in an OBS source URL must not break the page).
 */
export function queryNumber(name, fallback, min, max) {
  const raw = new URLSearchParams(location.search).get(name);
  const v = Number(raw);
  return raw !== null && raw.trim() !== '' && Number.isFinite(v) ? Math.min(max, Math.max(min, v)) : fallback;
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

/**
 * Which run a page shows. `?run=` pins one. Otherwise the page follows the run of the first
 * `follows` message (a game on the board pages, metrics on the metrics page) it sees and stays
 * with it while that run keeps sending them (switching only after `quietMs` without one), so
 * two trainers' data never mix or flicker on one page.
 * Returns `accept(type, data)`; `following()` names the run.
 */
export function runFilter(quietMs = 30_000, follows = 'game_state') {
  const pinned = new URLSearchParams(location.search).get('run');
  let current = null;
  let lastGameAt = 0;
  const accept = (type, data) => {
    // A prediction game names its run inside its position.
    if (pinned) return (data?.run ?? data?.position?.run) === pinned;
    if (type === follows && typeof data.run === 'string') {
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

/** The page's element `id`, created (appended to <body>) when the page does not declare it. */
function chrome(id, className, text = '', hidden = false) {
  let el = document.getElementById(id);
  if (!el) {
    el = document.createElement('div');
    el.id = id;
    el.className = className;
    el.textContent = text;
    el.hidden = hidden;
    if (id === 'status') el.dataset.state = 'connecting';
    document.body.appendChild(el);
  }
  return el;
}

/**
 * The "catching up" pill: shown while any run's ppo_metrics says its producer is sending the
 * history it spooled during an outage (`catching_up`, `backlog` = events still to come), so
 * viewers know the charts are filling in rather than jumping. Returns the message handler.
 */
function catchingUpBadge(el) {
  const backlog = new Map(); // run → backlog, only while catching up (so bounded by the runs doing it)
  return (data) => {
    const run = String(data.run ?? '');
    const was = backlog.get(run);
    if (data.catching_up === true) backlog.set(run, Number.isFinite(data.backlog) ? data.backlog : 0);
    else backlog.delete(run);
    if (was === backlog.get(run)) return; // unchanged: no DOM write
    let total = 0;
    for (const n of backlog.values()) total += n;
    el.textContent = `catching up · ${total} to go`;
    el.hidden = backlog.size === 0;
  };
}

/**
 * Starts a page. `draw(t)` paints on the next animation frame after `invalidate()` and returns
 * false when it painted nothing (not counted as a frame); `onMessage(msg)` gets every message
 * but `control`, which is handled here: the level (unless the URL pins a valid `?level=`; a
 * typo follows the control page) → `onLevel(level)`, pause → the "paused" pill and `onPause(p)`.
 * `subscribe(channels)` maps the `channels` parameter to the socket's channels (default: as is).
 * `followControl: false` (the control page itself) hands `control` messages to `onMessage` instead.
 * Returns { params, conn, stats, pinnedLevel, level(), paused(), connection(), invalidate(), serverNow(), exposeTestHook() }.
 */
export function startPage({ channels, defaults = {}, subscribe = (list) => list, draw = () => false, onMessage, onLevel, onPause, followControl = true }) {
  const params = pageParams({ channels, ...defaults });
  const pinnedLevel = LEVELS.includes(new URLSearchParams(location.search).get('level'));
  let level = LEVELS.includes(params.level) ? params.level : 'intermediate';
  params.level = level;
  let paused = false;
  let connection = 'connecting';
  let offset = 0; // server clock − local clock, from connection_established
  document.body.classList.add(`theme-${params.theme === 'light' ? 'light' : 'dark'}`);
  const statusEl = chrome('status', 'status', 'connecting', false);
  // ?badge=0: a page embedded in another (the showcase) leaves the one badge to its host.
  if (new URLSearchParams(location.search).get('badge') === '0') statusEl.style.display = 'none';
  const badge = statusBadge(statusEl);
  const pausedLabel = followControl ? chrome('paused', 'paused-label', 'paused', true) : null;
  const catchingUp = catchingUpBadge(chrome('catching-up', 'catching-up', 'catching up', true));
  const stats = frameStats();
  const scheduler = frameScheduler((t) => {
    const t0 = performance.now();
    if (draw(t) !== false) stats.add(performance.now() - t0, t);
  });

  function applyControl(c) {
    if (!pinnedLevel && LEVELS.includes(c.level) && c.level !== level) {
      level = c.level;
      params.level = level;
      conn.resubscribe({ level });
      onLevel?.(level);
    }
    const p = c.paused === true;
    if (p !== paused) {
      paused = p;
      document.documentElement.dataset.paused = String(paused);
      // A DOM element toggled only on a change, so live updates never cause a layout.
      pausedLabel.hidden = !paused;
      onPause?.(paused);
    }
    scheduler.invalidate();
  }

  const asked = subscribe(params.channels);
  const wanted = asked.includes('all') ? ['all'] : [...new Set([...asked, 'control'])];
  const conn = connect({
    channels: wanted,
    level,
    maxFps: Number.isFinite(params.maxFps) && params.maxFps > 0 ? params.maxFps : 60,
    // Updates as deltas (far fewer bytes per viewer); `?delta=0` asks for full messages.
    delta: params.delta,
    server: params.server,
    onState: (s, detail) => { connection = s; badge(s, detail); },
    onMessage: (msg) => {
      if (msg?.type === 'connection_established' && typeof msg.server_time === 'number') offset = msg.server_time - Date.now();
      if (msg?.type === 'control' && followControl) {
        if (msg.data && typeof msg.data === 'object') applyControl(msg.data);
        return;
      }
      if (msg?.type === 'ppo_metrics' && msg.data && typeof msg.data === 'object') catchingUp(msg.data);
      onMessage(msg);
    },
  });

  return {
    params,
    conn,
    stats,
    pinnedLevel,
    level: () => level,
    paused: () => paused,
    connection: () => connection,
    invalidate: () => scheduler.invalidate(),
    /** Server "now" in ms (countdowns are relative to the server's clock). */
    serverNow: () => Date.now() + offset,
    /** The page's test hook (test mode only) with its frame times: `frames()` → percentiles, `resetFrames()`. */
    exposeTestHook: (hook) => exposeTestHook({ ...hook, frames: () => percentiles(stats.values()), resetFrames: () => stats.reset() }),
  };
}

/**
 * A page drawn on one 1920×1080 canvas (`#view`, created when the page has none): startPage
 * plus that canvas as `view` ({ctx, width, height}) and the palette as `colours`. With `freeze`, a pause
 * keeps the picture on screen as it was while data goes on being applied underneath, so
 * nothing is missing on resume.
 */
export function startCanvasPage({ draw, onPause, freeze = false, ...options }) {
  let canvas = document.getElementById('view');
  if (!canvas) {
    canvas = document.createElement('canvas');
    canvas.id = 'view';
    canvas.className = 'layer';
    document.body.prepend(canvas);
  }
  const view = setupCanvas(canvas);
  let frozen = null;
  const page = startPage({
    ...options,
    draw: (t) => drawFrozen(view.ctx, view, frozen) || draw(t),
    onPause(p) {
      if (freeze) frozen = p ? frozenCopy(canvas) : null;
      onPause?.(p);
    },
  });
  // Read after startPage put the theme class on <body>.
  return { ...page, canvas, view, colours: readTheme() };
}

/**
 * A page made of views (the board-style pages): "no data" until a view has data, a repaint
 * only after a message changed a view, a rebuild on resize and level change, a frozen picture
 * while paused (the newest data is shown on resume), and `window.__overlay` in test mode.
 * `build(stage, ctx)` creates the views for a width × height and returns `{views, snapshot()}`;
 * each view has update(type, data) → changed, draw() → painted, and hasData(). `context` (the
 * board pages: their piece glyphs) is handed to `build` and shown in the test hook.
 */
export function startViewPage({ name, channels, build, subscribe, context = {} }) {
  const stage = chrome('stage', 'stage');
  const nodata = chrome('nodata', 'nodata', 'no data');
  const accept = runFilter();
  // Latest message per type: replayed into fresh views after a resize, a level change or a pause.
  const latest = new Map();
  let view = null;
  let messages = 0;
  let ignored = 0;
  let draws = 0;

  function showNoData() {
    const empty = view.views.length > 0 && !view.views.some((v) => v.hasData?.());
    // Touch the DOM only on a change, so live updates never cause style recalculation.
    if (nodata.hidden === empty) nodata.hidden = !empty;
  }

  function draw() {
    let painted = false;
    for (const v of view.views) painted = v.draw() || painted;
    if (painted) draws++;
    return painted;
  }

  function onMessage(msg) {
    if (!msg || typeof msg.type !== 'string' || !msg.data || typeof msg.data !== 'object') return;
    if (!accept(msg.type, msg.data)) { ignored++; return; }
    messages++;
    if (page.paused()) { latest.set(msg.type, msg.data); return; }
    let changed = false;
    for (const v of view.views) changed = v.update(msg.type, msg.data) || changed;
    if (!changed) { ignored++; return; }
    latest.set(msg.type, msg.data);
    showNoData();
    page.invalidate();
  }

  const page = startPage({
    channels, subscribe, draw, onMessage,
    onLevel: () => rebuild(),
    // Resuming shows the newest data at once (kept while paused), not the stale picture.
    onPause: (p) => { if (!p) rebuild(); },
  });
  // Read after startPage put the theme class on <body>.
  const theme = readTheme();

  function rebuild() {
    stage.replaceChildren();
    view = build(stage, { width: window.innerWidth, height: window.innerHeight, level: page.level(), theme, params: page.params, invalidate: () => page.invalidate(), ...context });
    for (const [type, data] of latest) for (const v of view.views) v.update(type, data);
    showNoData();
    page.invalidate();
  }

  rebuild();
  let resizeTimer;
  window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(rebuild, 100); });
  exposeTestHook(() => ({
    page: name, level: page.level(), theme: page.params.theme, connection: page.connection(), paused: page.paused(),
    ...context, run: accept.following(), noData: !nodata.hidden, messages, ignored, draws,
    frames: page.stats.frames, frameStamps: page.stats.stamps,
    ...view.snapshot(),
  }));
  return page;
}
