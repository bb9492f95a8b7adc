/**
 * Broadcast panels drawn from live data: the game line (move number, side to move), the viewer
 * prediction game, the milestone banner and the captured-stream badge. Each has a pure layout
 * (text boxes in layer space, from the layer size only) that its drawing uses, so a test can
 * check every preset's text geometry (size ≥ 24 px at 1080p, no overlap, inside the frame)
 * without rendering.
 *
 * Fonts follow the layer height; the presets size layers so that the smallest text is at least
 * 24 px at 1080p.
 */
import type { SKRSContext2D } from '@napi-rs/canvas';

export interface TextBox {
  x: number;
  y: number;
  w: number;
  h: number;
  /** Font size in px (layer space). */
  font: number;
}

export const FONT = '"DejaVu Sans"';
export const PANEL_FILL = 'rgba(12,18,28,0.86)';
export const FG = '#f2f5f8';
export const FG_DIM = '#b8c2cc';
export const HEALTH_COLORS: Record<string, string> = { healthy: '#2ecc71', learning: '#f1c40f', exploring: '#e67e22', unknown: '#8a96a3' };

/** A box with text drawn vertically centred, clipped to its width (never cut off at the edges). */
export function fillBox(ctx: SKRSContext2D, b: TextBox, text: string, opts: { bold?: boolean; color?: string; align?: 'left' | 'center' | 'right' } = {}): void {
  ctx.font = `${opts.bold ? 'bold ' : ''}${Math.round(b.font)}px ${FONT}`;
  ctx.fillStyle = opts.color ?? FG;
  ctx.textBaseline = 'middle';
  const align = opts.align ?? 'left';
  ctx.textAlign = align;
  const x = align === 'left' ? b.x : align === 'center' ? b.x + b.w / 2 : b.x + b.w;
  ctx.fillText(text, x, b.y + b.h / 2, b.w);
}

// -- game line ----------------------------------------------------------------------------------

/** One row: "Move 96" on the left, "Sente (black) to play" on the right. */
export function gameLayout(w: number, h: number): { move: TextBox; side: TextBox } {
  const pad = Math.min(h * 0.2, w * 0.03);
  const font = Math.min(h * 0.5, w * 0.045);
  const inner = w - pad * 2;
  return {
    move: { x: pad, y: (h - font * 1.25) / 2, w: inner * 0.36, h: font * 1.25, font },
    side: { x: pad + inner * 0.4, y: (h - font * 1.25) / 2, w: inner * 0.6, h: font * 1.25, font },
  };
}

/** The move being played (1-based) and whose turn it is, from a game_state message's data. */
export function gameLine(data: unknown): { move: string; side: string } {
  const g = (data ?? {}) as { move_count?: unknown; sfen?: unknown; turn?: unknown; result?: unknown };
  const parts = typeof g.sfen === 'string' ? g.sfen.trim().split(/\s+/) : [];
  const turn = g.turn === 'b' || g.turn === 'w' ? g.turn : parts[1];
  const count = typeof g.move_count === 'number' && Number.isFinite(g.move_count) && g.move_count >= 0 ? g.move_count + 1 : Number(parts[3]);
  const move = Number.isFinite(count) && count > 0 ? `Move ${count}` : 'Move –';
  const side = typeof g.result === 'string' && g.result ? `Game over: ${g.result}` : turn === 'b' ? 'Sente (black) to play' : turn === 'w' ? 'Gote (white) to play' : 'waiting for the game';
  return { move, side };
}

export function drawGamePanel(ctx: SKRSContext2D, w: number, h: number, data: unknown): void {
  ctx.fillStyle = PANEL_FILL;
  ctx.beginPath();
  ctx.roundRect(0, 0, w, h, Math.min(16, h / 4));
  ctx.fill();
  const l = gameLayout(w, h);
  const line = gameLine(data);
  fillBox(ctx, l.move, line.move, { bold: true });
  fillBox(ctx, l.side, line.side, { color: FG_DIM, align: 'right' });
}

// -- prediction game ------------------------------------------------------------------------------

export const PREDICTION_ROWS = 3;

export function predictionLayout(w: number, h: number): { heading: TextBox; status: TextBox; rows: TextBox[]; counts: TextBox[] } {
  const pad = Math.min(w, h) * 0.06;
  const inner = w - pad * 2;
  const lineH = (h - pad * 2) / (2 + PREDICTION_ROWS);
  const font = lineH * 0.56;
  const box = (i: number, x: number, bw: number): TextBox => ({ x, y: pad + i * lineH + (lineH - font * 1.25) / 2, w: bw, h: font * 1.25, font });
  return {
    heading: box(0, pad, inner),
    status: box(1, pad, inner),
    rows: Array.from({ length: PREDICTION_ROWS }, (_, i) => box(2 + i, pad, inner * 0.7)),
    counts: Array.from({ length: PREDICTION_ROWS }, (_, i) => box(2 + i, pad + inner * 0.74, inner * 0.26)),
  };
}

export function drawPredictionPanel(ctx: SKRSContext2D, w: number, h: number, data: unknown, now: number): void {
  ctx.fillStyle = PANEL_FILL;
  ctx.beginPath();
  ctx.roundRect(0, 0, w, h, 16);
  ctx.fill();
  const l = predictionLayout(w, h);
  const g = (data ?? null) as { state?: unknown; ends_at?: unknown; votes?: unknown; vote_labels?: unknown; result?: { played_label?: unknown; played_move?: unknown; winners_total?: unknown } } | null;
  fillBox(ctx, l.heading, 'Predict the AI\'s move', { bold: true });
  if (!g || typeof g.state !== 'string') {
    fillBox(ctx, l.status, 'vote in chat: !predict <move>', { color: FG_DIM });
    return;
  }
  let status: string;
  if (g.state === 'collecting') {
    const left = typeof g.ends_at === 'number' ? Math.max(0, Math.ceil((g.ends_at - now) / 1000)) : null;
    status = left === null ? 'voting open: !predict <move>' : `voting open: ${left} s left`;
  } else if (g.state === 'waiting') status = 'voting closed: waiting for the AI';
  else if (g.state === 'finished') {
    const r = g.result ?? {};
    const played = typeof r.played_label === 'string' ? r.played_label : typeof r.played_move === 'string' ? r.played_move : '?';
    status = `AI played ${played} · ${typeof r.winners_total === 'number' ? r.winners_total : 0} right`;
  } else status = 'game cancelled';
  fillBox(ctx, l.status, status, { color: g.state === 'collecting' ? '#ffd166' : FG_DIM });
  const labels = (g.vote_labels && typeof g.vote_labels === 'object' ? g.vote_labels : {}) as Record<string, unknown>;
  const votes = Object.entries((g.votes && typeof g.votes === 'object' ? g.votes : {}) as Record<string, unknown>)
    .filter((e): e is [string, number] => typeof e[1] === 'number' && e[1] > 0)
    .sort((a, b) => b[1] - a[1])
    .slice(0, PREDICTION_ROWS);
  const total = votes.reduce((a, [, n]) => a + n, 0);
  if (votes.length === 0) {
    fillBox(ctx, l.rows[0], 'no votes yet', { color: FG_DIM });
    return;
  }
  votes.forEach(([move, n], i) => {
    const row = l.rows[i];
    ctx.fillStyle = 'rgba(76,201,240,0.35)';
    ctx.fillRect(row.x, row.y, row.w * (n / total), row.h);
    fillBox(ctx, { ...row, x: row.x + row.font * 0.3, w: row.w - row.font * 0.3 }, typeof labels[move] === 'string' ? (labels[move] as string) : move, { bold: true });
    fillBox(ctx, l.counts[i], `${n} vote${n === 1 ? '' : 's'}`, { color: FG_DIM, align: 'right' });
  });
}

// -- milestone banner -----------------------------------------------------------------------------

/** How long a milestone stays on the banner after it arrives. */
export const MILESTONE_SHOW_MS = 15_000;

export function milestoneLayout(w: number, h: number): { title: TextBox; message: TextBox } {
  const pad = h * 0.2;
  const font = h * 0.46;
  const y = (h - font * 1.25) / 2;
  const inner = w - pad * 2;
  return {
    title: { x: pad, y, w: inner * 0.34, h: font * 1.25, font },
    message: { x: pad + inner * 0.36, y, w: inner * 0.64, h: font * 1.25, font },
  };
}

/** "loss_below_1" → "Loss below 1"; short tokens read as abbreviations ("hc-ov" → "HC OV", "kl" → "KL"). */
export function readableName(name: string): string {
  const words = name.split(/[_/.\-\s]+/).filter(Boolean);
  return words.map((word, i) => {
    if (/^[a-z]{1,3}$/i.test(word) && !SHORT_WORDS.has(word.toLowerCase())) return word.toUpperCase();
    return i === 0 ? word.charAt(0).toUpperCase() + word.slice(1) : word;
  }).join(' ');
}
const SHORT_WORDS = new Set(['a', 'an', 'the', 'of', 'to', 'in', 'on', 'at', 'by', 'for', 'and', 'or', 'is', 'up', 'new', 'top', 'win', 'won', 'low', 'max', 'min', 'avg', 'per', 'all', 'run', 'end', 'one', 'two', 'no', 'not']);

/** True when the banner has something to show at `now` (a milestone that arrived recently). */
export function milestoneShown(msg: { timestamp: number; data: unknown } | undefined, now: number): boolean {
  return msg !== undefined && now - msg.timestamp >= 0 && now - msg.timestamp < MILESTONE_SHOW_MS;
}

export function drawMilestoneBanner(ctx: SKRSContext2D, w: number, h: number, data: unknown): void {
  const m = (data ?? {}) as { name?: unknown; message?: unknown };
  ctx.fillStyle = 'rgba(122,40,203,0.92)';
  ctx.beginPath();
  ctx.roundRect(0, 0, w, h, h / 4);
  ctx.fill();
  const l = milestoneLayout(w, h);
  fillBox(ctx, l.title, `★ ${typeof m.name === 'string' ? readableName(m.name) : 'Milestone'}`, { bold: true });
  fillBox(ctx, l.message, typeof m.message === 'string' ? m.message : '', { color: '#efe3ff' });
}

// -- captured-stream badge ------------------------------------------------------------------------

/** Badge along the bottom of a video tile: stream name left, "live · 4 s ago" right; "offline" centred. */
export function videoLayout(w: number, h: number, minFont = 0): { badge: { x: number; y: number; w: number; h: number }; name: TextBox; state: TextBox; offline: TextBox } {
  const font = Math.max(minFont, Math.min(h * 0.1, w * 0.045));
  const bh = font * 1.6;
  const pad = font * 0.4;
  const inner = w - pad * 2;
  const by = h - bh;
  const big = Math.min(h * 0.2, w * 0.1);
  return {
    badge: { x: 0, y: by, w, h: bh },
    name: { x: pad, y: by + (bh - font * 1.25) / 2, w: inner * 0.46, h: font * 1.25, font },
    state: { x: pad + inner * 0.48, y: by + (bh - font * 1.25) / 2, w: inner * 0.52, h: font * 1.25, font },
    offline: { x: pad, y: (by - big * 1.25) / 2, w: inner, h: big * 1.25, font: big },
  };
}

/** The analysis label as a viewer reads it. */
export function screenLabel(status: string | undefined, screen: string | null | undefined): string {
  if (status === 'error') return 'capture error';
  if (status === 'offline') return 'offline';
  switch (screen) {
    case 'ok': return 'live';
    case 'black': return 'black screen';
    case 'frozen': return 'frozen';
    case 'offline_screen': return 'offline card';
    default: return 'live';
  }
}

/** "just now", "4 s ago", "2 min ago". */
export function freshness(ageMs: number): string {
  const s = Math.max(0, Math.round(ageMs / 1000));
  if (s < 1) return 'just now';
  if (s < 120) return `${s} s ago`;
  return `${Math.round(s / 60)} min ago`;
}
