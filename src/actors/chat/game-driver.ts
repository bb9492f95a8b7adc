/**
 * Runs prediction games over time: starts them from the latest game state, closes voting when
 * the window is over, resolves them from the trainer's next game state, and publishes every
 * change (overlay message, chat announcement, state store). The rules live in prediction-game.ts.
 *
 * Publishing: a state change goes out at once as a critical, retained `prediction_game`
 * message; vote updates are coalesced to at most one per VOTE_PUBLISH_MS.
 */
import { listLegalMoves } from '../../shared/shogi/legal-moves.js';
import { moveLabel, parseViewerMove, type ViewerMoveResult } from '../../shared/shogi/notation.js';
import { positionFromSfen, STANDARD_SFEN, type Position } from '../../shared/shogi/tsshogi.js';
import { PredictionGame, sameBoard, type GamePosition, type PredictionGameData } from './prediction-game.js';
import { TelemetryView, type GameStateData, type MilestoneData, type MovePredictionData } from './telemetry-view.js';

export const VOTE_PUBLISH_MS = 250;
/** A game still waiting for the AI's move after this long is cancelled. */
export const WAIT_TIMEOUT_MS = 5 * 60_000;
/** Milestones start a game at most this often (a burst of milestones is one game). */
export const MILESTONE_GAP_MS = 60_000;

export interface DriverDeps {
  durationMs: number;
  milestoneGames: boolean;
  now(): number;
  publish(data: PredictionGameData, critical: boolean): void;
  announce(text: string): void;
  store(data: PredictionGameData): void;
  onFinished?(data: PredictionGameData): void;
}

export type StartResult = { ok: true; game: PredictionGameData } | { ok: false; error: string };

/** The position a game state describes: its SFEN, else its moves replayed from the start. */
export function positionOf(g: GameStateData): Position | undefined {
  try {
    if (g.sfen) return positionFromSfen(g.sfen);
    if (Array.isArray(g.moves)) {
      const p = positionFromSfen(STANDARD_SFEN);
      for (const usi of g.moves) {
        const m = p.createMoveByUSI(usi);
        if (!m || !p.doMove(m)) return undefined;
      }
      return p;
    }
  } catch {
    return undefined;
  }
  return undefined;
}

export class PredictionDriver {
  current: PredictionGame | undefined;
  private position: Position | undefined;
  last: PredictionGameData | undefined;
  private endTimer: NodeJS.Timeout | undefined;
  private waitTimer: NodeJS.Timeout | undefined;
  private voteTimer: NodeJS.Timeout | undefined;
  private seq = 0;
  private lastMilestoneGameAt = -Infinity;
  private readonly seenMilestones = new Set<string>();
  readonly counts = { started: 0, finished: 0, cancelled: 0 };

  constructor(private readonly view: TelemetryView, private readonly deps: DriverDeps) {}

  start(by: string): StartResult {
    const cur = this.current;
    if (cur?.active) return { ok: false, error: `a prediction game is already ${cur.state === 'collecting' ? 'collecting votes' : 'waiting for the AI\'s move'}` };
    const g = this.view.game;
    if (!g) return { ok: false, error: 'no game position has arrived from the trainer yet' };
    if (g.result) return { ok: false, error: `game ${g.game_id} is over (${g.result}); wait for the next game` };
    const position = positionOf(g);
    if (!position) return { ok: false, error: `game ${g.game_id} has no usable position (SFEN or moves)` };
    if (listLegalMoves(position).length === 0) return { ok: false, error: `game ${g.game_id} has no legal moves left` };
    const now = this.deps.now();
    const gp: GamePosition & { side_to_move: string } = {
      sfen: position.sfen,
      last_move: g.last_move ?? null,
      game_id: g.game_id,
      run: g.run ?? this.view.run ?? 'default',
      move_count: typeof g.move_count === 'number' ? g.move_count : Array.isArray(g.moves) ? g.moves.length : null,
      side_to_move: position.color,
    };
    this.seq++;
    const id = `pg-${now.toString(36)}-${this.seq}`;
    const lastMove = gp.last_move ?? undefined;
    const game = new PredictionGame({ id, position: gp, startedAt: now, durationMs: this.deps.durationMs, startedBy: by, labelOf: (usi) => moveLabel(position, usi, lastMove) });
    this.current = game;
    this.position = position;
    this.counts.started++;
    this.applyPrediction(this.view.prediction, true);
    this.clearTimers();
    this.endTimer = setTimeout(() => this.close('time'), this.deps.durationMs);
    this.endTimer.unref?.();
    this.changed();
    const example = listLegalMoves(position).find((m) => m.usi === this.current?.ai?.move) ?? listLegalMoves(position)[0];
    const ex = example ? `e.g. !predict ${moveLabel(position, example.usi, lastMove)}` : '';
    this.deps.announce(`Prediction game! What will the AI play in game ${gp.game_id}${gp.move_count !== null ? ` (move ${gp.move_count + 1}, ${position.color === 'black' ? 'black/sente' : 'white/gote'} to move)` : ''}? Vote with !predict <move> — USI, P-7f or ７六歩 — ${ex}. ${Math.round(this.deps.durationMs / 1000)} s to vote.`);
    return { ok: true, game: game.data() };
  }

  /** Close voting (`cancel`: drop the game instead). */
  stop(by: string, cancel: boolean): StartResult {
    const game = this.current;
    if (!game?.active) return { ok: false, error: 'no prediction game is running' };
    if (!cancel && game.state === 'collecting') {
      this.close(`stopped by ${by}`);
      return { ok: true, game: game.data() };
    }
    this.cancel(`stopped by ${by}`);
    return { ok: true, game: game.data() };
  }

  /** Parse and record a vote. */
  vote(userId: string, name: string, text: string): { ok: true; label: string; usi: string; changed: boolean; previous?: string } | { ok: false; error: string } {
    const game = this.current;
    if (!game || !game.active || !this.position) return { ok: false, error: 'no prediction game is running; a moderator can start one with !startpredict' };
    if (game.state !== 'collecting') return { ok: false, error: 'voting has closed; waiting for the AI\'s move' };
    const last = game.position.last_move ?? undefined;
    let parsed: ViewerMoveResult = parseViewerMove(text, this.position, last);
    // "!predict 7g7f because…": when the whole text is not a move, its first word may be.
    const first = text.trim().split(/\s+/)[0];
    if (!parsed.ok && parsed.error.startsWith('could not read') && first !== text.trim()) {
      const retry = parseViewerMove(first, this.position, last);
      if (retry.ok || !retry.error.startsWith('could not read')) parsed = retry;
    }
    if (!parsed.ok) return parsed;
    const outcome = game.vote(userId, name, parsed.usi, parsed.display, this.deps.now());
    if (!outcome.accepted) return { ok: false, error: outcome.error };
    this.scheduleVotes();
    return { ok: true, label: parsed.display, usi: parsed.usi, changed: outcome.changed, previous: outcome.previous };
  }

  onGameState(g: GameStateData): void {
    const game = this.current;
    if (!game?.active || !this.position) return;
    const position = this.position;
    const changed = game.observe(g, this.deps.now(), (usi) => {
      const m = position.createMoveByUSI(usi);
      return !!m && position.isValidMove(m);
    });
    if (changed) this.settled();
  }

  onPrediction(p: MovePredictionData): void {
    this.applyPrediction(p, false);
  }

  /** `replayed`: already seen by an earlier incarnation (remembered, starts nothing). */
  onMilestone(m: MilestoneData, replayed = false): void {
    if (!this.deps.milestoneGames) return;
    const key = m.id ?? `${m.name}:${m.step}`;
    if (this.seenMilestones.has(key)) return; // an aggregator restart replays retained milestones
    this.seenMilestones.add(key);
    if (this.seenMilestones.size > 1000) this.seenMilestones.delete(this.seenMilestones.values().next().value as string);
    if (replayed) return;
    const now = this.deps.now();
    if (this.current?.active || now - this.lastMilestoneGameAt < MILESTONE_GAP_MS) return;
    const r = this.start(`milestone ${m.name ?? ''}`.trim());
    if (r.ok) this.lastMilestoneGameAt = now;
  }

  private applyPrediction(p: MovePredictionData | undefined, starting: boolean): void {
    const game = this.current;
    if (!game?.active || !p || !this.position) return;
    if (p.run !== undefined && p.run !== game.position.run) return;
    // A prediction naming its position must be for this one; one without a position is taken
    // as the trainer's view of the latest state, which is this game's only until the model moves.
    if (p.position ? !sameBoard(p.position, game.position.sfen) : !(starting || (game.state === 'collecting' && !game.moveKnown))) return;
    const top = TelemetryView.topMove(p);
    if (!top) return;
    const m = this.position.createMoveByUSI(top.move);
    const legal = !!m && this.position.isValidMove(m);
    const usi = legal ? m!.usi : top.move;
    const label = legal ? moveLabel(this.position, usi, game.position.last_move ?? undefined) : top.move;
    if (game.ai?.move === usi && game.ai.prob === top.prob) return;
    game.setAi({ move: usi, prob: top.prob, label });
    if (!starting) this.scheduleVotes();
  }

  private close(reason: string): void {
    const game = this.current;
    if (!game || !game.close(this.deps.now())) return;
    clearTimeout(this.endTimer);
    const d0 = game.data();
    const fav0 = Object.entries(d0.votes).sort((a, b) => b[1] - a[1])[0];
    const tally = `${d0.total_votes} vote${d0.total_votes === 1 ? '' : 's'}${fav0 ? `, favourite ${d0.vote_labels[fav0[0]] ?? fav0[0]}` : ''}`;
    if (game.state === 'finished') {
      // The model moved from the frozen position while votes were open: the answer is ready.
      this.deps.announce(`Voting closed${reason === 'time' ? '' : ` (${reason})`}: ${tally}.`);
      this.settled();
      return;
    }
    this.waitTimer = setTimeout(() => this.cancel(`the AI did not move within ${WAIT_TIMEOUT_MS / 60_000} minutes`), WAIT_TIMEOUT_MS);
    this.waitTimer.unref?.();
    this.changed();
    this.deps.announce(`Voting closed${reason === 'time' ? '' : ` (${reason})`}: ${tally}. Waiting for the AI's move…`);
  }

  cancel(reason: string): void {
    const game = this.current;
    if (!game || !game.cancel(reason, this.deps.now())) return;
    this.settled();
  }

  /** Finished or cancelled: publish, announce, store. */
  private settled(): void {
    const game = this.current!;
    this.clearTimers();
    const d = game.data();
    this.last = d;
    this.deps.publish(d, true);
    this.deps.store(d);
    if (d.state === 'finished' && d.result) {
      this.counts.finished++;
      const r = d.result;
      const ai = r.ai_move === null
        ? 'The AI shared no prediction for this position.'
        : `The AI predicted ${game.ai?.label ?? r.ai_move} at ${Math.round((r.ai_confidence ?? 0) * 100)}% — ${r.ai_correct ? (r.ai_justified ? 'right, and confidently so' : 'right, but unsure') : 'wrong'}.`;
      const community = r.community_accuracy === null
        ? 'Nobody voted.'
        : `Chat's pick: ${r.community_label}; ${Math.round(r.community_accuracy * 100)}% of ${d.total_votes} voter${d.total_votes === 1 ? '' : 's'} got it right.`;
      const winners = r.winners_total === 0 ? '' : ` Winners: ${r.winners.slice(0, 10).join(', ')}${r.winners_total > 10 ? ` (+${r.winners_total - 10} more)` : ''}.`;
      this.deps.announce(`The AI played ${r.played_label}. ${ai} ${community}${winners}`);
    } else {
      this.counts.cancelled++;
      this.deps.announce(`Prediction game cancelled: ${d.reason ?? 'no reason given'}.`);
    }
    this.deps.onFinished?.(d);
  }

  private changed(): void {
    clearTimeout(this.voteTimer);
    this.voteTimer = undefined;
    if (this.current) this.deps.publish(this.current.data(), true);
  }

  private scheduleVotes(): void {
    if (this.voteTimer) return;
    this.voteTimer = setTimeout(() => {
      this.voteTimer = undefined;
      if (this.current?.active) this.deps.publish(this.current.data(), false);
    }, VOTE_PUBLISH_MS);
    this.voteTimer.unref?.();
  }

  private clearTimers(): void {
    clearTimeout(this.endTimer);
    clearTimeout(this.waitTimer);
    clearTimeout(this.voteTimer);
    this.endTimer = this.waitTimer = this.voteTimer = undefined;
  }

  dispose(): void {
    this.clearTimers();
  }
}
