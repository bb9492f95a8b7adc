/**
 * Fan-out channels and explanation levels: the vocabulary shared by the aggregator
 * (which produces one serialised message per channel and level), the gateways (which
 * publish them) and overlay clients (which subscribe with `{"channels": [...], "level": ...}`).
 */

/** `control` carries the streamer's control-page state (level, pause) to every overlay page. */
export const CHANNELS = ['metrics', 'attention', 'predictions', 'game', 'milestones', 'chat', 'control', 'capture'] as const;
export type Channel = (typeof CHANNELS)[number];
/** Subscribing to `all` means every channel. */
export const ALL_CHANNELS = 'all';
export const AVAILABLE_CHANNELS: readonly string[] = [ALL_CHANNELS, ...CHANNELS];
/**
 * Channels a client gets only by naming them: `all` (and the default) mean the training
 * telemetry; capture results (hundreds per second) would swamp an overlay that never asked.
 */
export const OPT_IN_CHANNELS: ReadonlySet<string> = new Set(['capture']);

export const LEVELS = ['beginner', 'intermediate', 'advanced'] as const;
export type Level = (typeof LEVELS)[number];
export const DEFAULT_LEVEL: Level = 'intermediate';

/** Bit per level; a message for every level carries LEVEL_MASK_ALL. */
export const LEVEL_BIT: Readonly<Record<Level, number>> = { beginner: 1, intermediate: 2, advanced: 4 };
export const LEVEL_MASK_ALL = 7;

export function channelId(channel: Channel): number {
  return CHANNELS.indexOf(channel);
}

export function channelName(id: number): Channel | undefined {
  return CHANNELS[id];
}

export function levelId(level: Level): number {
  return LEVELS.indexOf(level);
}

/** Message `type`s per channel (the `{type, timestamp, data}` envelope on `/ws`). */
export const CHANNEL_MESSAGE_TYPES: Readonly<Record<Channel, readonly string[]>> = {
  metrics: ['ppo_metrics'],
  attention: ['se_attention', 'board_heatmap'],
  predictions: ['move_prediction'],
  game: ['game_state', 'prediction_game'],
  milestones: ['milestone'],
  chat: ['chat_message'],
  control: ['control'],
  // Frame capture results (one per capture, ~170/s with 500 streams at 3 s).
  capture: ['capture_result'],
};
