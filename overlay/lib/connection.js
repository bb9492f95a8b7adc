// Overlay connection to ringcast's /ws fan-out: subscribe, reconnect with backoff, and
// report connection state so every page can show it. Plain ES module, no build step.
//
//   const conn = connect({ channels: ['metrics'], level: 'beginner', maxFps: 60,
//     onMessage: (msg) => …, onState: (state, detail) => … });
//
// Messages are `{type, timestamp, data}` objects as documented in the README (Overlay
// protocol). States: 'connecting' | 'open' | 'reconnecting' (detail: ms until retry).
// The first messages after every (re)connect are the server's snapshot.
//
// With `delta: true` the server sends each update as what changed since the last version
// this connection holds; delta-state.js rebuilds the full message, so onMessage sees the
// same full messages either way. A delta that does not follow what is held (a lost
// message) asks the server for the full state, at most once per resyncMs.
import { deltaState } from './delta-state.js';

/** Query parameters every page understands: level, channels, theme, token, max_fps, delta (0 = full messages). */
export function pageParams(defaults = {}) {
  const q = new URLSearchParams(location.search);
  const list = (v) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined);
  return {
    level: q.get('level') ?? defaults.level ?? 'intermediate',
    channels: list(q.get('channels')) ?? defaults.channels ?? ['all'],
    theme: q.get('theme') ?? defaults.theme ?? 'dark',
    // A garbled max_fps falls back to the default rather than sending NaN to the server.
    maxFps: positiveNumber(q.get('max_fps')) ?? defaults.maxFps ?? 60,
    token: q.get('token') ?? undefined,
    delta: q.get('delta') !== '0' && (defaults.delta ?? true),
    server: q.get('server') ?? undefined,
  };
}

function positiveNumber(text) {
  const n = Number(text);
  return text !== null && Number.isFinite(n) && n > 0 ? n : undefined;
}

export function connect({ channels, level, maxFps = 60, delta = false, onMessage, onState, server, minBackoffMs = 250, maxBackoffMs = 10_000, resyncMs = 1000 }) {
  const url = server ?? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  let ws;
  let attempt = 0;
  let closed = false;
  let retryTimer;
  let subscription = delta ? { channels, level, max_fps: maxFps, delta: true } : { channels, level, max_fps: maxFps };
  const held = deltaState();
  let lastResync = -Infinity;
  const state = (s, detail) => { try { onState?.(s, detail); } catch (e) { console.error(e); } };

  function open() {
    state(attempt === 0 ? 'connecting' : 'reconnecting', 0);
    ws = new WebSocket(url);
    ws.onopen = () => {
      attempt = 0;
      held.clear();
      ws.send(JSON.stringify(subscription));
      state('open');
    };
    ws.onmessage = (event) => {
      let msg;
      try { msg = JSON.parse(event.data); } catch { return; }
      if (delta) {
        const { message, resync } = held.accept(msg);
        if (resync && performance.now() - lastResync >= resyncMs) {
          lastResync = performance.now();
          ws.send('{"type":"resync"}');
        }
        if (!message) return;
        msg = message;
      }
      try { onMessage?.(msg); } catch (e) { console.error(e); }
    };
    ws.onclose = () => {
      if (closed) return;
      // Exponential backoff with full jitter, so a restarted server is not hit by every overlay at once.
      const ceiling = Math.min(maxBackoffMs, minBackoffMs * 2 ** attempt++);
      const delay = Math.round(ceiling / 2 + Math.random() * ceiling / 2);
      state('reconnecting', delay);
      retryTimer = setTimeout(open, delay);
    };
    ws.onerror = () => { /* onclose follows and schedules the retry */ };
  }
  open();

  return {
    /** Change level/channels/fps live (re-subscribes; the server answers with a fresh snapshot). */
    resubscribe(update) {
      subscription = { ...subscription, ...update };
      held.clear();
      if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify(subscription));
    },
    close() {
      closed = true;
      clearTimeout(retryTimer);
      ws?.close();
    },
  };
}

/**
 * Repaint only when something changed: pages call `invalidate()` when data arrives, and
 * `draw` runs on the next animation frame (at most once per frame). Idle pages cost nothing.
 */
export function frameScheduler(draw) {
  let pending = false;
  const frame = (t) => { pending = false; draw(t); };
  return {
    invalidate() {
      if (!pending) { pending = true; requestAnimationFrame(frame); }
    },
  };
}

/** A small status pill (connection state / "no data") the pages place in a corner. */
export function statusBadge(element) {
  return (s, detail) => {
    element.dataset.state = s;
    element.textContent = s === 'open' ? 'live' : s === 'reconnecting' ? `reconnecting${detail ? ` in ${Math.ceil(detail / 1000)} s` : '…'}` : s;
  };
}
