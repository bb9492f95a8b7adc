/**
 * The control page's state lines: the chat and OBS actors' status objects (GET /api/control)
 * as short sentences a streamer reads at a glance while live. Pure functions, no DOM.
 */
import { humanName, positionLine } from './labels.js';

const secondsLeft = (endsAt, now) => Math.max(0, Math.round((endsAt - now) / 1000));
const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Top votes as "7g7f 5 · 2g2f 3" (their viewers' notation when known), at most three. */
function topVotes(game) {
  const votes = Object.entries(game.votes ?? {}).filter(([, n]) => Number.isFinite(n) && n > 0).sort((a, b) => b[1] - a[1]).slice(0, 3);
  return votes.map(([usi, n]) => `${game.vote_labels?.[usi] ?? usi} ${n}`).join(' · ');
}

/** One line about a prediction game, running or over. */
export function gameLine(game, now = Date.now()) {
  if (!game || typeof game !== 'object') return 'no game yet';
  const where = positionLine(game.position);
  const votes = plural(game.total_votes ?? 0, 'vote');
  const top = topVotes(game);
  switch (game.state) {
    case 'collecting':
      return `voting open, ${secondsLeft(game.ends_at, now)} s left · ${votes}${top ? ` (${top})` : ''}${where ? ` · ${where}` : ''}`;
    case 'waiting':
      return `voting closed · ${votes} · waiting for the AI's move`;
    case 'finished': {
      const r = game.result;
      if (!r) return `finished · ${votes}`;
      const ai = r.ai_move ? (r.ai_correct ? 'AI was right' : 'AI was wrong') : 'AI made no prediction';
      return `finished · played ${r.played_label || r.played_move} · ${ai} · ${plural(r.winners_total ?? 0, 'winner')} of ${votes}`;
    }
    case 'cancelled':
      return `cancelled${game.reason ? ` (${game.reason})` : ''} · ${votes}`;
    default:
      return String(game.state ?? 'unknown');
  }
}

/** Lines for the chat actor's status: connection, the game now (or the last one), the outbox. */
export function chatLines(chat, now = Date.now()) {
  if (chat === null || chat === undefined) return ['not configured'];
  if (typeof chat !== 'object') return [String(chat)];
  if (chat.error) return [`error: ${chat.error}`];
  const who = chat.username ? ` as ${chat.username}` : '';
  const lines = [`${chat.connected ? 'connected' : chat.state ?? 'not connected'} to #${chat.channel ?? '?'}${who}${chat.readOnly ? ' (read-only: no replies)' : ''}`];
  if (chat.game) lines.push(`game: ${gameLine(chat.game, now)}`);
  else if (chat.last) lines.push(`last game: ${gameLine(chat.last, now)}`);
  else lines.push('game: none yet');
  const g = chat.games ?? {};
  const q = chat.queue ?? {};
  const dropped = Object.values(q.dropped ?? {}).reduce((a, n) => a + (Number.isFinite(n) ? n : 0), 0);
  lines.push(`${plural(g.started ?? 0, 'game')} started, ${g.finished ?? 0} finished · replies: ${q.sent ?? 0} sent, ${q.length ?? 0} queued, ${dropped} dropped`);
  if (chat.node) lines.push(`runs on node ${chat.node}`);
  return lines;
}

/** Lines for the OBS actor's status. */
export function obsLines(obs) {
  if (obs === null || obs === undefined) return ['not configured'];
  if (typeof obs !== 'object') return [String(obs)];
  if (obs.error) return [`error: ${obs.error}`];
  const lines = [];
  if (obs.connected) lines.push(`connected · showing "${obs.currentScene ?? '?'}"${obs.requestedScene && obs.requestedScene !== obs.currentScene ? ` (asked for "${obs.requestedScene}")` : ''}`);
  else lines.push(`not connected${obs.reconnectInMs != null ? `, retrying in ${Math.ceil(obs.reconnectInMs / 1000)} s` : ''}${obs.lastError ? ` · ${obs.lastError}` : ''}`);
  const c = obs.celebrations;
  if (c && typeof c === 'object') lines.push(`celebrations: ${c.active ? `"${humanName(c.active.name)}" on air now` : 'none on air'}, ${c.pending ?? 0} waiting, ${c.shown ?? 0} shown${c.dropped ? `, ${c.dropped} dropped` : ''}`);
  if (obs.node) lines.push(`runs on node ${obs.node}`);
  return lines;
}

/** What a successful POST /api/control did, in one line (the server's JSON is not shown raw). */
export function responseLine(what, body, now = Date.now()) {
  const game = body?.result?.game;
  if (game && typeof game === 'object') return `${what}: done · ${gameLine(game, now)}`;
  const c = body?.control;
  if (c && typeof c === 'object') {
    const parts = [`level ${c.level ?? 'per page'}`, c.paused ? 'overlays paused' : 'overlays live'];
    if (c.scene) parts.push(`scene ${c.scene}`);
    return `${what}: done · ${parts.join(' · ')}`;
  }
  return `${what}: done`;
}
