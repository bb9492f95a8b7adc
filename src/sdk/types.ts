/**
 * The producer contract shared by the in-process ring producer (`ring-producer.ts`) and the
 * network producer (`producer.ts`), mirroring the Python client's `StreamingHook` so a trainer
 * hook looks the same in both languages.
 *
 * Every `emit*` returns immediately: it encodes the event and queues (or rings) it. It never
 * throws into the training loop and never blocks; when a queue or ring is full the event is
 * dropped and counted (lowest priority, oldest first for the network producer).
 */

/** Higher is kept longer under overflow. Milestones and game results are critical. */
export const EVENT_PRIORITY = {
  experience: 0,
  se_attention: 1,
  board_heatmap: 1,
  policy: 2,
  metrics: 3,
  game_state: 3,
  milestone: 4,
} as const;
export type EventKindName = keyof typeof EVENT_PRIORITY;

export interface TopMoveInput {
  move: string;
  prob: number;
}

/** Tensor-like input: a typed array, a plain (possibly nested) number array, or anything array-like of numbers. */
export type TensorInput = Float32Array | Float64Array | ArrayLike<number> | ArrayLike<ArrayLike<number>>;

export interface GameStateInput {
  gameId: string | number;
  sfen?: string;
  moves?: string[];
  lastMove?: string;
  result?: string;
  moveCount?: number;
  [extra: string]: unknown;
}

export interface MilestoneInput {
  name: string;
  message?: string;
  step?: number;
  value?: number;
  [extra: string]: unknown;
}

export interface ExperienceInput {
  gameId: string | number;
  playerId: string | number;
  turn: number;
  action: number;
  reward: number;
  done: boolean;
  /** float32 state tensor, flattened in row-major order of `stateShape`. */
  state: TensorInput;
  stateShape?: number[];
  /** Legal-action mask: booleans/0-1 per action (packed to bits on the wire). */
  legalMask?: ArrayLike<number | boolean>;
}

export interface ProducerStats {
  sent: number;
  dropped: Record<string, number>;
  queued: number;
  errorsFromServer: number;
  lastServerError?: string;
  state: 'closed' | 'open' | 'half-open' | 'connected' | 'disconnected';
}

export interface TelemetryProducer {
  emitPpoMetrics(metrics: Record<string, number>, globalStep: number): void;
  emitPredictions(topMoves: TopMoveInput[], position?: string, value?: number, step?: number): void;
  /** One SE block's channel weights (layerId = block index), or all blocks at once as a [blocks][channels] array. */
  cacheAttentionWeights(weights: TensorInput, layerId?: number, step?: number): void;
  emitBoardHeatmap(grid: TensorInput, step?: number): void;
  emitGameState(state: GameStateInput): void;
  emitMilestone(milestone: MilestoneInput): void;
  emitExperience(experience: ExperienceInput): void;
  stats(): ProducerStats;
  /** Flushes what is queued (bounded by timeoutMs) and releases the transport. */
  close(timeoutMs?: number): Promise<void>;
}
