/**
 * The demo trainer's behaviour, free of timers: the actor (index.ts) calls `trainStep`,
 * `emitAttention` and `playMove` at its configured rates; tests can call them directly.
 *
 * Per training update: Keisei gen-1 PPO metrics (ppo-curves.ts) plus `win_rate` (learner
 * vs. baseline over the last WIN_WINDOW finished games; omitted until a game has finished,
 * never invented) and `games_played`.
 * Per move: `policy` (top 5 of the mover's softmax, value, SFEN before the move),
 * `board_heatmap` (policy mass per destination square), `game_state` (SFEN after the move,
 * USI move list, result when the move ended the game) and, when enabled, `experience`.
 * Milestones: the learner's first win by checkmate, and every MILESTONE_EVERY games.
 */
import { KEISEI_V1_ACTIONS, actionIndexOfMove, legalActionMask } from '../../shared/shogi/keisei-actions.js';
import { KEISEI_STATE_SHAPE, KEISEI_STATE_SIZE, keiseiPlanes } from '../../shared/shogi/keisei-planes.js';
import type { TelemetryProducer } from '../../sdk/types.js';
import { AttentionField } from './attention.js';
import { destinationHeatmap, learnerTemperature, topMoves } from './policy.js';
import { PpoCurves } from './ppo-curves.js';
import { Rng } from './rng.js';
import { SelfPlayGame, type GameResult, type MoveReport, type Side } from './self-play.js';

export const WIN_WINDOW = 50;
export const MILESTONE_EVERY = 50;
export const TOP_MOVES = 5;

export interface TrainerCoreOptions {
  seed: number;
  /** Emit experience records (real planes, action index, legal mask). */
  experience: boolean;
  /** Move cap: a game reaching it is a draw (default 256). */
  maxMoves?: number;
  /** Prefix of game ids, e.g. "r2-" after the second restart. */
  gameIdPrefix?: string;
  /** Progress of an earlier incarnation to continue from: step, games and moves never go back. */
  resume?: TrainerProgress;
}

/** What a restarted trainer continues from. */
export interface TrainerProgress extends TrainerSummary {
  /** The first-checkmate milestone was already sent. */
  firstMateSeen: boolean;
}

export interface TrainerSummary {
  games: number;
  moves: number;
  steps: number;
}

/** A player's latest transition, held until we know whether it was their last. */
interface Pending {
  active: boolean;
  gameId: string;
  turn: number;
  action: number;
  state: Float32Array;
  mask: Uint8Array;
}

export class DemoTrainerCore {
  games = 0;
  moves = 0;
  steps = 0;
  private readonly curves: PpoCurves;
  private readonly attention: AttentionField;
  private readonly rng: Rng;
  private readonly maxMoves: number;
  private readonly prefix: string;
  private game: SelfPlayGame | undefined;
  private readonly results: number[] = []; // learner score per finished game: 1, 0.5, 0
  private firstMateSeen = false;
  private readonly heatmap = new Float32Array(81);
  private readonly pending: Record<Side, Pending>;

  constructor(private readonly producer: TelemetryProducer, private readonly options: TrainerCoreOptions) {
    const resume = options.resume;
    this.curves = new PpoCurves({ seed: options.seed, startStep: resume?.steps ?? 0 });
    this.steps = this.curves.step;
    this.games = resume?.games ?? 0;
    this.moves = resume?.moves ?? 0;
    this.firstMateSeen = resume?.firstMateSeen ?? false;
    this.attention = new AttentionField(options.seed);
    this.rng = new Rng(options.seed ^ 0x9e3779b9);
    this.maxMoves = options.maxMoves ?? 256;
    this.prefix = options.gameIdPrefix ?? '';
    const slot = (): Pending => ({ active: false, gameId: '', turn: 0, action: 0, state: new Float32Array(KEISEI_STATE_SIZE), mask: new Uint8Array(KEISEI_V1_ACTIONS) });
    this.pending = { sente: slot(), gote: slot() };
  }

  /** One PPO update's metrics. */
  trainStep(): void {
    const metrics: Record<string, number> = this.curves.next();
    this.steps = this.curves.step;
    if (this.results.length > 0) metrics.win_rate = this.winRate();
    metrics.games_played = this.games;
    this.producer.emitPpoMetrics(metrics, this.steps);
  }

  /** SE attention of the current update (all 9 blocks in one event). */
  emitAttention(): void {
    this.attention.at(this.steps);
    this.producer.cacheAttentionWeights(this.attention.rows, undefined, this.steps);
  }

  /** Play one move of the current game (starting a new game first when needed). */
  playMove(): MoveReport {
    if (!this.game || this.game.over) this.startGame();
    const game = this.game!;
    const temperature = learnerTemperature(this.steps);
    const slot = this.options.experience ? this.captureBefore(game) : undefined;
    const report = game.play(temperature);
    this.moves++;
    const step = this.steps;

    const top = topMoves(report.policy, TOP_MOVES).map((m) => ({ move: m.usi, prob: m.prob }));
    this.producer.emitPredictions(top, report.sfenBefore, report.value, step);
    this.producer.emitBoardHeatmap(destinationHeatmap(report.policy, this.heatmap), step);
    this.producer.emitGameState({
      gameId: game.id,
      sfen: game.position.sfen,
      moves: game.moves,
      lastMove: report.usi,
      moveCount: report.ply,
      learner: game.learner,
      ...(report.result ? { result: report.result, reason: report.reason } : {}),
    });
    if (slot) this.completeCapture(slot, report);
    if (report.result) this.finishGame(game, report);
    return report;
  }

  summary(): TrainerSummary {
    return { games: this.games, moves: this.moves, steps: this.steps };
  }

  progress(): TrainerProgress {
    return { ...this.summary(), firstMateSeen: this.firstMateSeen };
  }

  /** Learner's score over the last WIN_WINDOW games (win 1, draw ½, loss 0). */
  winRate(): number {
    if (this.results.length === 0) return 0;
    return this.results.reduce((a, b) => a + b, 0) / this.results.length;
  }

  private startGame(): void {
    const n = this.games + 1;
    // Alternate colours so the win rate does not measure the first-move advantage.
    this.game = new SelfPlayGame(`${this.prefix}g${n}`, n % 2 === 1 ? 'sente' : 'gote', this.rng, this.maxMoves);
    this.producer.emitGameState({ gameId: this.game.id, sfen: this.game.position.sfen, moves: [], moveCount: 0, learner: this.game.learner });
  }

  private finishGame(game: SelfPlayGame, report: MoveReport): void {
    this.games++;
    const learnerScore = scoreFor(game.learner, report.result!);
    this.results.push(learnerScore);
    if (this.results.length > WIN_WINDOW) this.results.shift();
    if (!this.firstMateSeen && learnerScore === 1 && report.reason === 'checkmate') {
      this.firstMateSeen = true;
      this.producer.emitMilestone({
        name: 'first_checkmate',
        message: `First win by checkmate: game ${game.id}, ${report.ply} moves (${report.usi})`,
        step: this.steps,
        value: this.games,
        gameId: game.id,
      });
    }
    if (this.games % MILESTONE_EVERY === 0) {
      this.producer.emitMilestone({
        name: 'games_played',
        message: `${this.games} self-play games; win rate vs. baseline ${(100 * this.winRate()).toFixed(0)}% over the last ${this.results.length}`,
        step: this.steps,
        value: this.games,
      });
    }
    if (this.options.experience) this.flushPending(report.result!);
  }

  /**
   * Planes of the position about to be played, from the mover's view. The mover's previous
   * transition was not their last (they are moving again), so it goes out first, reward 0.
   */
  private captureBefore(game: SelfPlayGame): Pending {
    const side = game.sideToMove;
    const slot = this.pending[side];
    if (slot.active) this.emitPending(slot, side, 0, false);
    keiseiPlanes(game.position, { moveCount: game.moves.length, out: slot.state });
    slot.gameId = game.id;
    slot.turn = game.moves.length;
    return slot;
  }

  /** Action and legal mask once the move is chosen; the transition waits for the player's next move or the game's end. */
  private completeCapture(slot: Pending, report: MoveReport): void {
    legalActionMask(report.legal, slot.mask);
    slot.action = actionIndexOfMove(report.played);
    slot.active = true;
  }

  private flushPending(result: GameResult): void {
    for (const side of ['sente', 'gote'] as const) {
      const slot = this.pending[side];
      if (slot.active) this.emitPending(slot, side, scoreFor(side, result) * 2 - 1, true);
    }
  }

  private emitPending(slot: Pending, side: Side, reward: number, done: boolean): void {
    this.producer.emitExperience({
      gameId: slot.gameId,
      playerId: side,
      turn: slot.turn,
      action: slot.action,
      reward,
      done,
      state: slot.state,
      stateShape: KEISEI_STATE_SHAPE as unknown as number[],
      legalMask: slot.mask,
    });
    slot.active = false;
  }
}

function scoreFor(side: Side, result: GameResult): number {
  if (result === 'draw') return 0.5;
  return (result === 'sente_win') === (side === 'sente') ? 1 : 0;
}
