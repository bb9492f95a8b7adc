import { afterEach, describe, expect, it, vi } from 'vitest';
import { PredictionGame, sameBoard, type GamePosition } from '../src/actors/chat/prediction-game.js';
import { PredictionDriver, positionOf } from '../src/actors/chat/game-driver.js';
import { TelemetryView } from '../src/actors/chat/telemetry-view.js';
import { STANDARD_SFEN } from '../src/shared/shogi/tsshogi.js';
import type { PredictionGameData } from '../src/actors/chat/prediction-game.js';

const POS: GamePosition = { sfen: STANDARD_SFEN, last_move: null, game_id: 'g1', run: 'r', move_count: 0 };
const legal = () => true;

function game(durationMs = 30_000): PredictionGame {
  return new PredictionGame({ id: 'pg-1', position: POS, startedAt: 1_000, durationMs, startedBy: 'mod', ai: { move: '7g7f', prob: 0.6 } });
}

describe('PredictionGame', () => {
  it('keeps one vote per user and the last vote wins', () => {
    const g = game();
    expect(g.vote('u1', 'Alice', '2g2f', 'P-2f', 1_100)).toEqual({ accepted: true, changed: false });
    expect(g.vote('u2', 'Bob', '7g7f', 'P-7f', 1_200)).toEqual({ accepted: true, changed: false });
    expect(g.vote('u1', 'Alice', '7g7f', 'P-7f', 1_300)).toEqual({ accepted: true, changed: true, previous: '2g2f' });
    expect(g.vote('u1', 'Alice', '7g7f', 'P-7f', 1_400)).toEqual({ accepted: true, changed: false, previous: '7g7f' });
    const d = g.data();
    expect(d.total_votes).toBe(2);
    expect(d.votes).toEqual({ '7g7f': 2 });
    expect(d.vote_labels).toEqual({ '7g7f': 'P-7f' });
  });

  it('refuses votes after the window and once closed', () => {
    const g = game(1_000);
    expect(g.vote('u1', 'A', '7g7f', 'P-7f', 2_000)).toEqual({ accepted: false, error: 'voting has closed' });
    g.close(2_000);
    expect(g.state).toBe('waiting');
    expect(g.vote('u1', 'A', '7g7f', 'P-7f', 2_001)).toMatchObject({ accepted: false, error: expect.stringMatching(/waiting for the AI/) });
  });

  it('computes the result from the played move', () => {
    const g = game();
    g.vote('u1', 'Alice', '7g7f', 'P-7f', 1_100);
    g.vote('u2', 'Bob', '2g2f', 'P-2f', 1_200);
    g.vote('u3', 'Carol', '7g7f', 'P-7f', 1_300);
    g.vote('u4', 'Dave', '5g5f', 'P-5f', 1_400);
    g.close(31_000);
    expect(g.observe({ game_id: 'g1', run: 'r', move_count: 0, sfen: STANDARD_SFEN }, 31_100, legal)).toBe(false); // same state again
    expect(g.observe({ game_id: 'g1', run: 'other', move_count: 1, last_move: '2g2f' }, 31_150, legal)).toBe(false); // another run
    expect(g.observe({ game_id: 'g1', run: 'r', move_count: 1, last_move: '7g7f' }, 31_200, legal)).toBe(true);
    expect(g.state).toBe('finished');
    expect(g.data().result).toEqual({
      played_move: '7g7f', played_label: 'P-7f', ai_move: '7g7f', ai_confidence: 0.6, ai_correct: true, ai_justified: true,
      community_move: '7g7f', community_label: 'P-7f', community_accuracy: 0.5, winners: ['Alice', 'Carol'], winners_total: 2, closed_early: false,
    });
  });

  it('is not justified when the AI was right but unsure, or wrong', () => {
    const unsure = new PredictionGame({ id: 'a', position: POS, startedAt: 0, durationMs: 10, startedBy: 'm', ai: { move: '7g7f', prob: 0.3 } });
    expect(unsure.observe({ game_id: 'g1', move_count: 1, last_move: '7g7f' }, 5, legal)).toBe(false); // kept, not shown yet
    expect(unsure.data()).toMatchObject({ state: 'collecting' });
    expect(unsure.data().result).toBeUndefined();
    expect(unsure.close(10)).toBe(true);
    expect(unsure.result).toMatchObject({ ai_correct: true, ai_justified: false, closed_early: true, community_move: null, community_accuracy: null, winners: [] });
    const wrong = new PredictionGame({ id: 'b', position: POS, startedAt: 0, durationMs: 10, startedBy: 'm', ai: { move: '2g2f', prob: 0.9 } });
    wrong.observe({ game_id: 'g1', move_count: 1, last_move: '7g7f' }, 5, legal);
    wrong.close(10);
    expect(wrong.result).toMatchObject({ ai_correct: false, ai_justified: false });
    const none = new PredictionGame({ id: 'c', position: POS, startedAt: 0, durationMs: 10, startedBy: 'm' });
    none.observe({ game_id: 'g1', move_count: 1, last_move: '7g7f' }, 5, legal);
    none.close(10);
    expect(none.result).toMatchObject({ ai_move: null, ai_confidence: null, ai_correct: false, ai_justified: false });
  });

  it('breaks a plurality tie in favour of the move that got there first', () => {
    const g = game();
    g.vote('u1', 'A', '2g2f', 'P-2f', 1_100);
    g.vote('u2', 'B', '7g7f', 'P-7f', 1_200);
    g.vote('u3', 'C', '7g7f', 'P-7f', 1_300);
    g.vote('u4', 'D', '2g2f', 'P-2f', 1_400);
    g.observe({ game_id: 'g1', move_count: 1, last_move: '5g5f' }, 1_500, legal);
    g.close(31_000);
    expect(g.result?.community_move).toBe('7g7f'); // 7g7f reached 2 at 1300, 2g2f at 1400
    expect(g.result?.community_accuracy).toBe(0);
  });

  it('uses the moves list when several moves arrive at once, and cancels when it cannot tell', () => {
    const g = game();
    g.observe({ game_id: 'g1', move_count: 3, moves: ['7g7f', '3c3d', '2g2f'] }, 2_000, legal);
    g.close(31_000);
    expect(g.result?.played_move).toBe('7g7f');
    const h = game();
    h.observe({ game_id: 'g1', move_count: 3, last_move: '2g2f' }, 2_000, legal);
    expect(h.state).toBe('cancelled');
    expect(h.data().reason).toMatch(/more than one move/);
  });

  it('cancels when the game ends or changes first, or the move is not legal', () => {
    const ended = game();
    ended.observe({ game_id: 'g1', move_count: 0, result: 'black_win' }, 2_000, legal);
    expect(ended.data()).toMatchObject({ state: 'cancelled', reason: expect.stringMatching(/ended \(black_win\)/) });
    const replaced = game();
    replaced.observe({ game_id: 'g2', move_count: 0 }, 2_000, legal);
    expect(replaced.data()).toMatchObject({ state: 'cancelled', reason: expect.stringMatching(/replaced by game g2/) });
    const illegal = game();
    illegal.observe({ game_id: 'g1', move_count: 1, last_move: '1a1b' }, 2_000, () => false);
    expect(illegal.data()).toMatchObject({ state: 'cancelled', reason: expect.stringMatching(/not legal/) });
    expect(illegal.cancel('again', 3_000)).toBe(false);
  });

  it('without move counts, reads a changed board as the next move', () => {
    const g = new PredictionGame({ id: 'x', position: { ...POS, move_count: null }, startedAt: 0, durationMs: 10, startedBy: 'm' });
    g.observe({ game_id: 'g1', sfen: STANDARD_SFEN.replace(/ 1$/, ' 7') }, 1, legal);
    expect(g.state).toBe('collecting'); // same board, other move number
    g.observe({ game_id: 'g1', sfen: 'lnsgkgsnl/1r5b1/ppppppppp/9/9/2P6/PP1PPPPPP/1B5R1/LNSGKGSNL w - 2', last_move: '7g7f' }, 2, legal);
    g.close(10);
    expect(g.result?.played_move).toBe('7g7f');
  });

  it('compares SFENs without the move number or prefix', () => {
    expect(sameBoard(`sfen ${STANDARD_SFEN}`, STANDARD_SFEN.replace(/ 1$/, ' 9'))).toBe(true);
    expect(positionOf({ game_id: 'g', moves: ['7g7f'] })?.sfen).toMatch(/^lnsgkgsnl\/1r5b1\/ppppppppp\/9\/9\/2P6/);
    expect(positionOf({ game_id: 'g', moves: ['7g7e'] })).toBeUndefined();
  });
});

describe('PredictionDriver', () => {
  afterEach(() => vi.useRealTimers());

  it('runs a game over time: collect, close, resolve, publish coalesced votes', () => {
    vi.useFakeTimers();
    const view = new TelemetryView();
    view.game = { game_id: 'g1', run: 'r', sfen: STANDARD_SFEN, move_count: 0, last_move: null };
    view.prediction = { run: 'r', top_moves: [{ move: '2g2f', prob: 0.2 }, { move: '7g7f', prob: 0.7 }], position: STANDARD_SFEN };
    const published: { data: PredictionGameData; critical: boolean }[] = [];
    const said: string[] = [];
    const stored: PredictionGameData[] = [];
    const driver = new PredictionDriver(view, {
      durationMs: 5_000, milestoneGames: true, now: () => Date.now(),
      publish: (data, critical) => published.push({ data, critical }), announce: (t) => said.push(t), store: (d) => stored.push(d),
    });
    expect(driver.vote('u1', 'A', '7g7f')).toMatchObject({ ok: false, error: expect.stringMatching(/no prediction game/) });
    const r = driver.start('Mod');
    expect(r.ok).toBe(true);
    expect(driver.start('Mod')).toMatchObject({ ok: false, error: expect.stringMatching(/already/) });
    expect(published.at(-1)).toMatchObject({ critical: true, data: { state: 'collecting', ai: { move: '7g7f', prob: 0.7, label: 'P-7f' }, position: { side_to_move: 'black' } } });
    expect(said[0]).toMatch(/Prediction game!.*!predict P-7f/);
    expect(driver.vote('u0', 'U0', '2g2f  surely')).toMatchObject({ ok: true, usi: '2g2f' });
    for (let i = 0; i < 20; i++) expect(driver.vote(`u${i}`, `U${i}`, i % 2 ? 'P-7f' : '2g2f')).toMatchObject({ ok: true });
    expect(driver.vote('bad', 'B', 'P-7e')).toMatchObject({ ok: false, error: expect.stringMatching(/no legal move matches/) });
    expect(driver.vote('bad', 'B', 'P-7e is best')).toMatchObject({ ok: false, error: expect.stringMatching(/no legal move matches "P-7e"/) });
    expect(driver.vote('bad', 'B', 'what is this')).toMatchObject({ ok: false, error: expect.stringMatching(/could not read "whatisthis"/) });
    expect(driver.vote('u0', 'U0', '同　歩')).toMatchObject({ ok: false, error: expect.stringMatching(/no previous move/) });
    const before = published.length;
    vi.advanceTimersByTime(300);
    expect(published.length).toBe(before + 1); // 20 votes → one coalesced update
    expect(published.at(-1)).toMatchObject({ critical: false, data: { total_votes: 20, votes: { '7g7f': 10, '2g2f': 10 } } });
    vi.advanceTimersByTime(5_000);
    expect(published.at(-1)?.data.state).toBe('waiting');
    expect(said.at(-1)).toMatch(/Voting closed: 20 votes/);
    driver.onGameState({ game_id: 'g1', run: 'r', move_count: 1, last_move: '7g7f', sfen: 'x' });
    expect(published.at(-1)).toMatchObject({ critical: true, data: { state: 'finished', result: { played_move: '7g7f', community_accuracy: 0.5, ai_justified: true } } });
    expect(stored).toHaveLength(1);
    expect(said.at(-1)).toBe("The AI played P-7f. The AI predicted P-7f at 70% — right, and confidently so. Chat's pick: P-2f; 50% of 20 voters got it right. Winners: U1, U3, U5, U7, U9, U11, U13, U15, U17, U19.");
    expect(driver.counts).toEqual({ started: 1, finished: 1, cancelled: 0 });
  });

  it('a fast trainer (a move every 100 ms): votes open for the whole announced window on the frozen position, the answer is the move played from it', () => {
    vi.useFakeTimers();
    const view = new TelemetryView();
    view.game = { game_id: 'g1', run: 'r', sfen: STANDARD_SFEN, move_count: 0, last_move: null };
    view.prediction = { run: 'r', top_moves: [{ move: '7g7f', prob: 0.7 }] };
    const published: PredictionGameData[] = [];
    const said: string[] = [];
    const driver = new PredictionDriver(view, {
      durationMs: 5_000, milestoneGames: false, now: () => Date.now(),
      publish: (data) => published.push(data), announce: (t) => said.push(t), store: () => undefined,
    });
    expect(driver.start('Mod').ok).toBe(true);
    expect(said[0]).toMatch(/5 s to vote\.$/);
    // The trainer plays on: 7g7f from the frozen position, then more moves, then a new game.
    const line = ['7g7f', '3c3d', '2g2f', '8c8d', '2f2e', '8d8e'];
    for (let i = 0; i < 49; i++) {
      vi.advanceTimersByTime(100);
      const n = Math.min(i + 1, line.length);
      driver.onGameState(i < 30 ? { game_id: 'g1', run: 'r', move_count: n, moves: line.slice(0, n), last_move: line[n - 1] } : { game_id: 'g2', run: 'r', move_count: 0, sfen: STANDARD_SFEN });
      // A position-less prediction now describes a later position: not the AI's view of the frozen one.
      if (i === 3) driver.onPrediction({ run: 'r', top_moves: [{ move: '8c8d', prob: 0.9 }] });
      expect(driver.vote(`u${i}`, `U${i}`, i % 2 ? '7g7f' : '2g2f')).toMatchObject({ ok: true });
    }
    for (const d of published) {
      expect(d.state).toBe('collecting');
      expect(d.position).toMatchObject({ sfen: STANDARD_SFEN, move_count: 0, game_id: 'g1' });
      expect(d.result).toBeUndefined();
      expect(d.ai?.move).toBe('7g7f');
    }
    vi.advanceTimersByTime(200); // 5 s after the start
    expect(driver.vote('late', 'L', '7g7f')).toMatchObject({ ok: false });
    const last = published.at(-1)!;
    expect(last).toMatchObject({ state: 'finished', closed_at: last.started_at + 5_000, result: { played_move: '7g7f', ai_correct: true, winners_total: 24 } });
    expect(said.slice(1)).toEqual([
      'Voting closed: 49 votes, favourite P-2f.',
      expect.stringMatching(/^The AI played P-7f\. The AI predicted P-7f at 70%/),
    ]);
    expect(driver.counts).toEqual({ started: 1, finished: 1, cancelled: 0 });
  });

  it('refuses to start without a usable position, and stops or cancels on request', () => {
    vi.useFakeTimers();
    const view = new TelemetryView();
    const said: string[] = [];
    const driver = new PredictionDriver(view, { durationMs: 5_000, milestoneGames: true, now: () => Date.now(), publish: () => {}, announce: (t) => said.push(t), store: () => {} });
    expect(driver.start('m')).toMatchObject({ ok: false, error: expect.stringMatching(/no game position/) });
    view.game = { game_id: 'g1', sfen: STANDARD_SFEN, move_count: 0, result: 'draw' };
    expect(driver.start('m')).toMatchObject({ ok: false, error: expect.stringMatching(/is over/) });
    view.game = { game_id: 'g1', sfen: STANDARD_SFEN, move_count: 0 };
    expect(driver.stop('m', false)).toMatchObject({ ok: false });
    driver.start('m');
    expect(driver.stop('Mod', false)).toMatchObject({ ok: true, game: { state: 'waiting' } });
    expect(driver.stop('Mod', false)).toMatchObject({ ok: true, game: { state: 'cancelled', reason: 'stopped by Mod' } });
    expect(said.at(-1)).toMatch(/cancelled: stopped by Mod/);
  });

  it('starts one game per milestone burst, ignoring replayed milestones', () => {
    vi.useFakeTimers();
    const view = new TelemetryView();
    view.game = { game_id: 'g1', sfen: STANDARD_SFEN, move_count: 0 };
    const driver = new PredictionDriver(view, { durationMs: 5_000, milestoneGames: true, now: () => Date.now(), publish: () => {}, announce: () => {}, store: () => {} });
    driver.onMilestone({ id: 'm1', name: 'kl_settled' });
    expect(driver.current?.startedBy).toBe('milestone kl_settled');
    driver.cancel('test');
    driver.onMilestone({ id: 'm2', name: 'x' });
    expect(driver.current?.state).toBe('cancelled'); // within the gap
    vi.advanceTimersByTime(61_000);
    driver.onMilestone({ id: 'm1', name: 'kl_settled' });
    expect(driver.current?.state).toBe('cancelled'); // replay
    driver.onMilestone({ id: 'm4', name: 'seeded after a restart' }, true);
    expect(driver.current?.state).toBe('cancelled');
    driver.onMilestone({ id: 'm3', name: 'best_win_rate' });
    expect(driver.current?.state).toBe('collecting');
  });
});
