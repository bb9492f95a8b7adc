/**
 * The viewer prediction game, as pure state (no timers, no I/O): the actor feeds it votes,
 * game states and the clock, and publishes what `data()` returns.
 *
 *   collecting ──(window over / stop)──▶ waiting ──(the model's next move arrives)──▶ finished
 *        │                                  │
 *        └──(window over / stop, the model's move already seen)──────────────────────▶ finished
 *        └──────────────(game ends, another game starts, timeout, stop)──▶ cancelled
 *
 * The position is frozen at the start: a fast trainer moves several times a second, so the
 * move played from the frozen position is kept from the game-state stream when it arrives
 * (it is not shown before voting closes) and later states are ignored. Voting always lasts the
 * announced window.
 *
 * Result rules:
 *  - community_move: the plurality vote; a tie goes to the move that reached that count first.
 *  - community_accuracy: share of voters whose (last) vote was the played move; null without voters.
 *  - ai_correct: the AI's top move (latest move_prediction for this position) was the played move.
 *  - ai_justified: ai_correct and the AI gave that move at least JUSTIFIED_CONFIDENCE (0.5),
 *    i.e. it was right and said so; a lucky low-confidence hit or a confident miss is not.
 */

export type GameStateName = 'collecting' | 'waiting' | 'finished' | 'cancelled';

export interface GamePosition {
  sfen: string;
  last_move: string | null;
  game_id: string;
  run: string;
  move_count: number | null;
}

export interface AiPrediction {
  move: string;
  prob: number;
  label?: string;
}

/** A game_state message's data, as the aggregator sends it. */
export interface ObservedGameState {
  game_id: string;
  run?: string;
  sfen?: string | null;
  moves?: string[] | null;
  last_move?: string | null;
  result?: string | null;
  move_count?: number | null;
}

export interface PredictionResult {
  played_move: string;
  played_label: string;
  ai_move: string | null;
  ai_confidence: number | null;
  ai_correct: boolean;
  ai_justified: boolean;
  community_move: string | null;
  community_label: string | null;
  community_accuracy: number | null;
  winners: string[];
  winners_total: number;
  /** The model had moved before the vote window was over (voting still ran its full time). */
  closed_early: boolean;
}

export interface PredictionGameData {
  id: string;
  state: GameStateName;
  started_at: number;
  ends_at: number;
  closed_at: number | null;
  started_by: string;
  position: GamePosition;
  votes: Record<string, number>;
  vote_labels: Record<string, string>;
  total_votes: number;
  ai: AiPrediction | null;
  result?: PredictionResult;
  reason?: string;
}

export const JUSTIFIED_CONFIDENCE = 0.5;
export const MAX_WINNERS_LISTED = 20;

export type VoteOutcome = { accepted: true; changed: boolean; previous?: string } | { accepted: false; error: string };

interface Vote { usi: string; at: number; name: string }

export class PredictionGame {
  readonly id: string;
  readonly position: GamePosition;
  readonly startedAt: number;
  readonly endsAt: number;
  readonly startedBy: string;
  state: GameStateName = 'collecting';
  closedAt: number | null = null;
  ai: AiPrediction | null = null;
  result?: PredictionResult;
  reason?: string;
  /** user id → their current vote (one per user; the last one wins). */
  private readonly votes = new Map<string, Vote>();
  private readonly labels = new Map<string, string>();
  private readonly labelOf: (usi: string) => string;
  /** The move the model played from `position`, seen while votes were still open. */
  private playedEarly: { usi: string; at: number } | undefined;

  constructor(init: { id: string; position: GamePosition; startedAt: number; durationMs: number; startedBy: string; ai?: AiPrediction | null; labelOf?: (usi: string) => string }) {
    this.id = init.id;
    this.position = init.position;
    this.startedAt = init.startedAt;
    this.endsAt = init.startedAt + init.durationMs;
    this.startedBy = init.startedBy;
    this.ai = init.ai ?? null;
    this.labelOf = init.labelOf ?? ((usi) => usi);
  }

  get active(): boolean {
    return this.state === 'collecting' || this.state === 'waiting';
  }

  get voterCount(): number {
    return this.votes.size;
  }

  /** A vote already checked for legality in `position`. */
  vote(userId: string, name: string, usi: string, label: string, now: number): VoteOutcome {
    if (this.state !== 'collecting') return { accepted: false, error: this.state === 'waiting' ? 'voting has closed; waiting for the AI to move' : 'no prediction game is running' };
    if (now >= this.endsAt) return { accepted: false, error: 'voting has closed' };
    const previous = this.votes.get(userId);
    // Delete first so the map keeps users in the order of their latest vote.
    this.votes.delete(userId);
    this.votes.set(userId, { usi, at: now, name });
    this.labels.set(usi, label);
    if (!previous) return { accepted: true, changed: false };
    return { accepted: true, changed: previous.usi !== usi, previous: previous.usi };
  }

  /** The AI's view of this position, when a matching move_prediction arrives. */
  setAi(ai: AiPrediction | null): void {
    if (this.state === 'collecting' || this.state === 'waiting') this.ai = ai;
  }

  /** The model's move from the frozen position is already known (not part of `data()` until the end). */
  get moveKnown(): boolean {
    return this.playedEarly !== undefined;
  }

  /**
   * Ends collection (window over or a moderator's stop): finished at once when the model's move
   * is already known, else waiting for it. Returns true when the state changed.
   */
  close(now: number): boolean {
    if (this.state !== 'collecting') return false;
    this.state = 'waiting';
    this.closedAt = now;
    if (this.playedEarly) this.finish(this.playedEarly.usi, now);
    return true;
  }

  cancel(reason: string, now: number): boolean {
    if (!this.active) return false;
    this.state = 'cancelled';
    this.reason = reason;
    this.closedAt ??= now;
    return true;
  }

  /**
   * A new game state from the trainer. Returns true when the game changed state (finished or
   * cancelled). `isLegal` checks the played move in the game's position.
   */
  observe(g: ObservedGameState, now: number, isLegal: (usi: string) => boolean): boolean {
    if (!this.active || this.playedEarly) return false; // the answer is known; the game moving on changes nothing
    const start = this.position;
    if (g.run !== undefined && g.run !== start.run) return false; // another run's games are not ours
    if (g.game_id !== start.game_id) return this.cancel(`game ${start.game_id} was replaced by game ${g.game_id} before the AI moved`, now);
    const played = this.playedMove(g);
    if (played === 'same') {
      if (g.result) return this.cancel(`game ${start.game_id} ended (${g.result}) before the AI moved`, now);
      return false;
    }
    if (played === undefined) return this.cancel('the game moved on by more than one move at once, so the AI\'s move is unknown', now);
    if (!isLegal(played)) return this.cancel(`the reported move ${played} is not legal in the game's position`, now);
    if (this.state === 'collecting') {
      this.playedEarly = { usi: played, at: now };
      return false;
    }
    this.finish(played, now);
    return true;
  }

  /** 'same' = no move since the start; undefined = cannot tell which move was played. */
  private playedMove(g: ObservedGameState): string | 'same' | undefined {
    const startCount = this.position.move_count;
    const count = g.move_count ?? (g.moves ? g.moves.length : null);
    if (startCount !== null && count !== null) {
      if (count <= startCount) return 'same';
      if (count === startCount + 1 && g.last_move) return g.last_move;
      if (g.moves && g.moves.length > startCount) return g.moves[startCount];
      return undefined;
    }
    // No move counts: a changed position with a last move is the next move.
    if (!g.sfen || sameBoard(g.sfen, this.position.sfen)) return 'same';
    return g.last_move ?? undefined;
  }

  private finish(played: string, now: number): void {
    const closedEarly = this.playedEarly !== undefined;
    this.state = 'finished';
    this.closedAt ??= now;
    const counts = this.tally();
    let community: string | null = null;
    let best = 0;
    for (const [usi, { count }] of counts) {
      if (count > best) { best = count; community = usi; } // counts iterate in order of first reaching: a tie keeps the earlier
    }
    const voters = [...this.votes.values()];
    const right = voters.filter((v) => v.usi === played);
    const aiMove = this.ai?.move ?? null;
    const aiConfidence = this.ai?.prob ?? null;
    const aiCorrect = aiMove === played;
    this.result = {
      played_move: played,
      played_label: this.labels.get(played) ?? this.labelOf(played),
      ai_move: aiMove,
      ai_confidence: aiConfidence,
      ai_correct: aiCorrect,
      ai_justified: aiCorrect && aiConfidence !== null && aiConfidence >= JUSTIFIED_CONFIDENCE,
      community_move: community,
      community_label: community ? (this.labels.get(community) ?? community) : null,
      community_accuracy: voters.length === 0 ? null : right.length / voters.length,
      winners: right.slice(0, MAX_WINNERS_LISTED).map((v) => v.name),
      winners_total: right.length,
      closed_early: closedEarly,
    };
  }

  /** Votes per move, ordered by when each move reached its final count (for the tie rule). */
  private tally(): Map<string, { count: number; reachedAt: number }> {
    const byMove = new Map<string, { count: number; reachedAt: number }>();
    const ordered = [...this.votes.values()].sort((a, b) => a.at - b.at);
    for (const v of ordered) {
      const t = byMove.get(v.usi) ?? { count: 0, reachedAt: 0 };
      t.count++;
      t.reachedAt = v.at;
      byMove.set(v.usi, t);
    }
    return new Map([...byMove].sort((a, b) => a[1].reachedAt - b[1].reachedAt));
  }

  data(): PredictionGameData {
    const votes: Record<string, number> = {};
    const voteLabels: Record<string, string> = {};
    for (const [usi, { count }] of this.tally()) {
      votes[usi] = count;
      voteLabels[usi] = this.labels.get(usi) ?? usi;
    }
    return {
      id: this.id,
      state: this.state,
      started_at: this.startedAt,
      ends_at: this.endsAt,
      closed_at: this.closedAt,
      started_by: this.startedBy,
      position: this.position,
      votes,
      vote_labels: voteLabels,
      total_votes: this.votes.size,
      ai: this.ai,
      ...(this.result ? { result: this.result } : {}),
      ...(this.reason ? { reason: this.reason } : {}),
    };
  }
}

/** Board, side to move and hands of two SFENs (the move number is ignored). */
export function sameBoard(a: string, b: string): boolean {
  const strip = (s: string) => s.replace(/^sfen\s+/, '').trim().split(/\s+/).slice(0, 3).join(' ');
  return strip(a) === strip(b);
}
