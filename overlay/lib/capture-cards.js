// What the capture overlay page shows per stream, worked out from the `capture_result`
// messages (the capture actor's CaptureRecord) and the registry (GET /api/streams).
// Pure functions, no DOM: the page draws what these return, and unit tests check them in Node.

/** Screen states in the order of how bad they look on a card (worst last). */
export const STATES = ['waiting', 'ok', 'scene', 'frozen', 'black', 'offline_screen', 'offline', 'error'];

const LABELS = {
  waiting: 'waiting',
  ok: 'live',
  frozen: 'frozen',
  black: 'black screen',
  offline_screen: 'offline screen',
  offline: 'offline',
  error: 'error',
};

/**
 * One card's content from a record, or `{ error }` naming what is wrong with a malformed one
 * (the page counts those and keeps the last good state).
 */
export function describeRecord(rec) {
  if (!rec || typeof rec !== 'object') return { error: 'record is not an object' };
  if (typeof rec.stream !== 'string' || rec.stream === '') return { error: 'record has no stream name' };
  if (!['ok', 'offline', 'error'].includes(rec.status)) return { error: `record for ${rec.stream} has status ${JSON.stringify(rec.status)}` };
  if (typeof rec.at !== 'number' || !Number.isFinite(rec.at)) return { error: `record for ${rec.stream} has no capture time` };
  let state = rec.status;
  if (state === 'ok' && ['black', 'frozen', 'offline_screen'].includes(rec.screen)) state = rec.screen;
  let detail = '';
  if (rec.status === 'error') {
    // "segment: … returned HTTP 404": the stage that failed, then the service's own message.
    const msg = typeof rec.error === 'string' && rec.error !== '' ? rec.error : rec.code ?? 'failed';
    detail = rec.stage && !msg.startsWith(rec.stage) ? `${rec.stage}: ${msg}` : msg;
  }
  else if (rec.status === 'offline') detail = rec.error ?? '';
  const matches = Array.isArray(rec.matches)
    ? rec.matches
      .filter((m) => m && typeof m.template === 'string' && typeof m.score === 'number')
      .map((m) => ({ region: String(m.region), cell: Number(m.cell), template: m.template, score: m.score }))
      .sort((a, b) => (a.region === b.region ? a.cell - b.cell : a.region < b.region ? -1 : 1))
    : [];
  return {
    stream: rec.stream,
    state,
    label: LABELS[state] ?? state,
    detail,
    matches,
    frame: rec.status === 'ok' && Number.isInteger(rec.frame) ? rec.frame : null,
    at: rec.at,
    sceneChange: rec.sceneChange === true,
  };
}

/** "kite 0.99 · blaze 0.97": the templates found, in region/cell order. */
export function matchesText(matches, limit = 6) {
  const shown = matches.slice(0, limit).map((m) => `${m.template} ${m.score.toFixed(2)}`);
  if (matches.length > limit) shown.push(`+${matches.length - limit}`);
  return shown.join(' · ');
}

/**
 * What a card calls a stream: a Twitch name as is; a playlist URL or path by its last two path
 * parts ("demo1/live.m3u8"), since the host and directories rarely fit a card.
 */
export function displayName(name) {
  if (!name.includes('/')) return name;
  let path = name;
  try { path = new URL(name).pathname; } catch { /* a file path */ }
  const parts = path.split('/').filter(Boolean);
  return parts.slice(-2).join('/') || name;
}

/** "now", "12 s ago", "4 min ago", "2 h ago". */
export function ageText(ms) {
  if (!Number.isFinite(ms)) return '';
  // A result stamped a moment "in the future" (the server-clock estimate lags by the hello's
  // transit time) is simply new.
  if (ms < 0) return 'now';
  const s = Math.floor(ms / 1000);
  if (s < 2) return 'now';
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

/** States that count as a problem (the `?only=problems` view, the summary line). */
export const PROBLEM_STATES = new Set(['frozen', 'black', 'offline_screen', 'offline', 'error']);

/**
 * Every stream the wall follows, in order: the `pinned` names in the order given (when the
 * page was asked for particular streams), else the registered, enabled streams by priority
 * (highest first), then name; until the registry has been read (`registered` null) the
 * streams that report results stand in, by name.
 */
export function streamOrder({ registered, reporting, pinned }) {
  if (pinned && pinned.length > 0) return [...pinned];
  if (!registered) return [...reporting].sort();
  return registered
    .filter((s) => s.enabled !== false)
    .sort((a, b) => b.priority - a.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((s) => s.name);
}

/**
 * One page of cards from streamOrder()'s list: `problemsOnly` keeps the streams whose state
 * (`stateOf`) is a problem; pages hold `max` cards; `page` wraps, so a rotating wall can just
 * count up. Returns `{ names, page, pages, total }`.
 */
export function cardPage(all, { max, page = 0, problemsOnly = false, stateOf = () => 'waiting' }) {
  const shown = problemsOnly ? all.filter((name) => PROBLEM_STATES.has(stateOf(name))) : all;
  const pages = Math.max(1, Math.ceil(shown.length / max));
  const p = ((Math.trunc(page) % pages) + pages) % pages;
  return { names: shown.slice(p * max, (p + 1) * max), page: p, pages, total: shown.length };
}

/**
 * Thumbnail loads with at most `limit` in flight and at most one pending per stream (a newer
 * request replaces the older one), so hundreds of streams never queue hundreds of fetches.
 */
export function thumbQueue(limit, load) {
  const pending = new Map(); // stream → request, insertion order = age
  let active = 0;
  const pump = () => {
    while (active < limit && pending.size > 0) {
      const [stream, req] = pending.entries().next().value;
      pending.delete(stream);
      active++;
      Promise.resolve()
        .then(() => load(stream, req))
        .catch(() => {})
        .finally(() => { active--; pump(); });
    }
  };
  return {
    request(stream, req) { pending.delete(stream); pending.set(stream, req); pump(); },
    get pending() { return pending.size; },
    get active() { return active; },
  };
}
