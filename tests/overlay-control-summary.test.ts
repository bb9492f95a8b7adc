/**
 * The control page's state lines (overlay/lib/control-summary.js): the chat and OBS actors'
 * status objects, as GET /api/control returns them, read as short sentences.
 */
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain browser ES module without types
import { chatLines, gameLine, obsLines, responseLine } from '../overlay/lib/control-summary.js';
import type { PredictionGameData } from '../src/actors/chat/prediction-game.js';

const NOW = 1_700_000_000_000;
const game = (extra: Partial<PredictionGameData> = {}): PredictionGameData => ({
  id: 'g7', state: 'collecting', started_at: NOW - 10_000, ends_at: NOW + 20_000, closed_at: null, started_by: 'control',
  position: { sfen: 'lnsgkgsnl/1r5b1/ppppppppp/9/9/9/PPPPPPPPP/1B5R1/LNSGKGSNL w - 1', last_move: '7g7f', game_id: 'demo-1', run: 'default', move_count: 95 },
  votes: { '3c3d': 5, '8c8d': 2, '2b3c': 0 }, vote_labels: { '3c3d': 'P-3d' }, total_votes: 7, ai: null, ...extra,
});
const chat = (extra: Record<string, unknown> = {}) => ({
  connected: true, state: 'connected', channel: 'ringcast', username: 'ringbot', readOnly: false,
  game: game(), last: game({ id: 'g6', state: 'finished' }), games: { started: 7, finished: 6, cancelled: 0 },
  queue: { length: 1, queued: 1, sent: 40, merged: 2, limiterWaits: 3, dropped: { queue_full: 0, cooldown: 2, stale: 1, read_only: 0, send_failed: 0 } },
  ...extra,
});

describe('control page summaries', () => {
  it('a running game: time left, votes with the leaders, and the real move number', () => {
    expect(gameLine(game(), NOW)).toBe('voting open, 20 s left · 7 votes (P-3d 5 · 8c8d 2) · move 96 · Gote (white) to play');
  });

  it('a finished game: the played move, whether the AI was right, winners', () => {
    const done = game({ state: 'finished', result: {
      played_move: '3c3d', played_label: 'P-3d', ai_move: '3c3d', ai_confidence: 0.6, ai_correct: true, ai_justified: true,
      community_move: '3c3d', community_label: 'P-3d', community_accuracy: 0.7, winners: ['a'], winners_total: 5, closed_early: false,
    } });
    expect(gameLine(done, NOW)).toBe('finished · played P-3d · AI was right · 5 winners of 7 votes');
    expect(gameLine(game({ state: 'cancelled', reason: 'stopped by control' }), NOW)).toBe('cancelled (stopped by control) · 7 votes');
  });

  it('chat: connection, the current game once (not the last one too), counters', () => {
    const lines: string[] = chatLines(chat(), NOW);
    expect(lines).toEqual([
      'connected to #ringcast as ringbot',
      'game: voting open, 20 s left · 7 votes (P-3d 5 · 8c8d 2) · move 96 · Gote (white) to play',
      '7 games started, 6 finished · replies: 40 sent, 1 queued, 3 dropped',
    ]);
    expect(lines.join('\n')).not.toMatch(/[{}"]/);
    expect(chatLines(chat({ game: null }), NOW)[1]).toMatch(/^last game: finished/);
    expect(chatLines(null)).toEqual(['not configured']);
    expect(chatLines({ error: 'actor restarting' })).toEqual(['error: actor restarting']);
  });

  it('OBS: the scene showing, the one asked for when different, celebrations', () => {
    expect(obsLines({ connected: true, currentScene: 'Board', requestedScene: 'Overview', celebrations: { active: { id: 'm1', name: 'hc-ov', message: '' }, pending: 1, shown: 3, dropped: 0 } }))
      .toEqual(['connected · showing "Board" (asked for "Overview")', 'celebrations: "HC OV" on air now, 1 waiting, 3 shown']);
    expect(obsLines({ connected: false, reconnectInMs: 2500, lastError: 'ECONNREFUSED', celebrations: null })).toEqual(['not connected, retrying in 3 s · ECONNREFUSED']);
  });

  it('clustered: names the node the chat bot or OBS director runs on', () => {
    expect(chatLines(chat({ node: 'node-b' }), NOW).at(-1)).toBe('runs on node node-b');
    expect(obsLines({ connected: false, node: 'node-a' })).toEqual(['not connected', 'runs on node node-a']);
    expect(chatLines(chat(), NOW).some((l) => l.startsWith('runs on'))).toBe(false);
  });

  it('a response is one line, not the server JSON', () => {
    expect(responseLine('pause', { ok: true, control: { level: 'advanced', paused: true, scene: null } })).toBe('pause: done · level advanced · overlays paused');
    expect(responseLine('prediction_start', { ok: true, result: { ok: true, game: game() } }, NOW)).toMatch(/^prediction_start: done · voting open, 20 s left/);
  });
});
