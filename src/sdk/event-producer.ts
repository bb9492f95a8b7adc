/**
 * The emit* half of TelemetryProducer, shared by the ring producer and the network
 * producer: each method encodes its input into one reused scratch buffer and hands the
 * bytes to `deliver`. Input that cannot be encoded is reported through `invalid` and never
 * thrown into the training loop; single non-finite metric values that the encoder skipped
 * are reported through `skippedMetricValues`. Where the bytes go (a ring, a send queue) and
 * how refusals are counted is the subclass's business.
 */
import {
  EncodeScratch, encodeAttentionEvent, encodeExperienceEvent, encodeGameStateEvent, encodeHeatmapEvent,
  encodeMetricsEvent, encodeMilestoneEvent, encodePredictionsEvent, type EncodeOptions,
} from './encode.js';
import type {
  EventKindName, ExperienceInput, GameStateInput, MilestoneInput, TensorInput, TopMoveInput,
} from './types.js';

export abstract class EventProducer {
  protected readonly scratch = new EncodeScratch(16 * 1024);
  private skippedSeen = 0;

  /** false (and the event counted as refused) once the producer no longer takes events. */
  protected abstract accepting(kind: EventKindName): boolean;
  /** Options for the next encode; called once per event, so return a reused object. */
  protected abstract encodeOptions(): EncodeOptions;
  /** Takes the encoded event; `critical` events (milestones, finished games) should go out at once. */
  protected abstract deliver(kind: EventKindName, bytes: Uint8Array, critical: boolean): void;
  /** The input could not be encoded: count it and keep the reason. */
  protected abstract invalid(kind: EventKindName, error: unknown): void;
  /** The encoder skipped `count` single metric values (the rest of the step went out); `lastSkip` says why. */
  protected abstract skippedMetricValues(count: number, lastSkip: string | undefined): void;

  emitPpoMetrics(metrics: Record<string, number>, globalStep: number): void {
    if (!this.accepting('metrics')) return;
    try {
      this.deliver('metrics', encodeMetricsEvent(metrics, globalStep, this.scratch, this.encodeOptions()), false);
    } catch (error) {
      this.invalid('metrics', error);
    }
    const skipped = this.scratch.skipped;
    if (skipped !== this.skippedSeen) {
      const count = skipped - this.skippedSeen;
      this.skippedSeen = skipped;
      this.skippedMetricValues(count, this.scratch.lastSkip);
    }
  }

  emitPredictions(topMoves: TopMoveInput[], position?: string, value?: number, step?: number): void {
    if (!this.accepting('policy')) return;
    try {
      this.deliver('policy', encodePredictionsEvent(topMoves, position, value, step, this.scratch, this.encodeOptions()), false);
    } catch (error) {
      this.invalid('policy', error);
    }
  }

  cacheAttentionWeights(weights: TensorInput, layerId?: number, step?: number): void {
    if (!this.accepting('se_attention')) return;
    try {
      this.deliver('se_attention', encodeAttentionEvent(weights, layerId, step, this.scratch, this.encodeOptions()), false);
    } catch (error) {
      this.invalid('se_attention', error);
    }
  }

  emitBoardHeatmap(grid: TensorInput, step?: number): void {
    if (!this.accepting('board_heatmap')) return;
    try {
      this.deliver('board_heatmap', encodeHeatmapEvent(grid, step, this.scratch, this.encodeOptions()), false);
    } catch (error) {
      this.invalid('board_heatmap', error);
    }
  }

  emitGameState(state: GameStateInput): void {
    if (!this.accepting('game_state')) return;
    try {
      // A finished game is critical: viewers should see the result at once.
      this.deliver('game_state', encodeGameStateEvent(state, this.scratch, this.encodeOptions()), state.result !== undefined && state.result !== null);
    } catch (error) {
      this.invalid('game_state', error);
    }
  }

  emitMilestone(milestone: MilestoneInput): void {
    if (!this.accepting('milestone')) return;
    try {
      this.deliver('milestone', encodeMilestoneEvent(milestone, this.scratch, this.encodeOptions()), true);
    } catch (error) {
      this.invalid('milestone', error);
    }
  }

  emitExperience(experience: ExperienceInput): void {
    if (!this.accepting('experience')) return;
    try {
      this.deliver('experience', encodeExperienceEvent(experience, this.scratch, this.encodeOptions()), false);
    } catch (error) {
      this.invalid('experience', error);
    }
  }
}
