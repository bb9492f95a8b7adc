/**
 * The service's one configuration schema and the loader that layers its
 * sources: schema defaults < JSON config file < RINGCAST_* env vars < CLI flags.
 *
 * Adding a section later: write a `fooSchema` next to the others, add it to
 * `configShape`, and list its leaves in `CONFIG_OPTIONS` so they get a flag and
 * an env var. Every leaf carries a `.describe()` text; that text is both the
 * "what is allowed" part of error messages and the README table column, so
 * the two cannot drift apart.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { z } from 'zod';
import { restartStrategies } from '../supervisor/spec.js';
import { RUN_NAME_PATTERN, RUN_NAME_RULE } from './telemetry/run-name.js';
import { SCENE_PRESETS } from './scene/preset-names.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Integer field with an inclusive range, described in the words error messages use. */
function intInRange(min: number, max: number, fallback: number, why?: string) {
  const allowed = `an integer ${min}–${max}${why ? ` (${why})` : ''}`;
  return z.number().int().min(min).max(max).default(fallback).describe(allowed);
}

export const restartSchema = z
  .object({
    strategy: z
      .enum(restartStrategies)
      .default('one_for_one')
      .describe(`one of ${restartStrategies.join(', ')}`),
    intensity: intInRange(0, 10_000, 5, 'restarts allowed within periodMs before the supervisor escalates'),
    periodMs: intInRange(100, 3_600_000, 10_000),
    backoffInitialMs: intInRange(0, 60_000, 10),
    backoffMaxMs: intInRange(0, 300_000, 2000),
    standby: z
      .boolean()
      .default(false)
      .describe('true or false (keep a pre-loaded spare worker per actor so restarts skip start-up)'),
  })
  .strict()
  .describe('an object with keys strategy, intensity, periodMs, backoffInitialMs, backoffMaxMs, standby');

export const demoSchema = z
  .object({
    enabled: z.boolean().default(true).describe('true or false'),
    run: z
      .string()
      .regex(RUN_NAME_PATTERN, RUN_NAME_RULE)
      .default('demo')
      .describe(`run name the demo trainer reports under (${RUN_NAME_RULE})`),
    stepsPerSec: intInRange(0, 10_000, 10, 'simulated PPO updates per second, each emitting one metrics event'),
    movesPerSec: intInRange(0, 1_000, 3, 'self-play shogi moves per second'),
    crashEveryMs: intInRange(0, 86_400_000, 0, 'chaos knob: the demo trainer crashes this often; 0 disables'),
  })
  .strict()
  .describe('an object with keys enabled, run, stepsPerSec, movesPerSec, crashEveryMs');

/** Float field with an inclusive range. */
function numberInRange(min: number, max: number, fallback: number, why?: string) {
  const allowed = `a number ${min}–${max}${why ? ` (${why})` : ''}`;
  return z.number().min(min).max(max).default(fallback).describe(allowed);
}

const optionalSecret = (what: string) =>
  z.string().min(8).optional().describe(`${what}: at least 8 characters; unset means a random one is generated and written to <dataDir>/tokens.json (mode 0600)`);

export const authSchema = z
  .object({
    ingestToken: optionalSecret('token producers (trainers, experience consumers) present'),
    adminToken: optionalSecret('token admin calls and the streamer control page present'),
  })
  .strict()
  .describe('an object with keys ingestToken, adminToken');

export const ingestSchema = z
  .object({
    tcpPort: intInRange(-1, 65535, 8081, 'TCP port for length-prefixed producer frames; 0 picks a free port below the kernel ephemeral range, -1 disables'),
    // Optional because its default depends on dataDir; filled in below.
    unixPath: z.string().optional().describe('Unix socket path for producers; "" disables (default <dataDir>/ingest.sock)'),
    maxFrameBytes: intInRange(1024, 256 * 1024 * 1024, 16 * 1024 * 1024, 'largest producer frame accepted'),
    maxConnections: intInRange(1, 100_000, 1024, 'open producer connections per transport'),
    helloTimeoutMs: intInRange(100, 600_000, 5000, 'a producer connection without a valid hello by then is closed'),
    preAuthMaxBytes: intInRange(1024, 16 * 1024 * 1024, 64 * 1024, 'largest frame / WebSocket message accepted before authentication; capped at maxFrameBytes'),
    maxPreAuthPerAddress: intInRange(1, 100_000, 64, 'unauthenticated producer connections one remote address may hold at once'),
  })
  .strict()
  .describe('an object with keys tcpPort, unixPath, maxFrameBytes, maxConnections, helloTimeoutMs, preAuthMaxBytes, maxPreAuthPerAddress');

export const fanoutSchema = z
  .object({
    threads: intInRange(0, 64, 0, 'gateway threads sharing the port; 0 means one per CPU core'),
    softLimitBytes: intInRange(1024, 1 << 30, 256 * 1024, 'buffered bytes past which a client skips conflatable updates'),
    hardLimitBytes: intInRange(4096, 1 << 30, 8 * 1024 * 1024, 'buffered bytes past which a client is disconnected'),
    maxFps: intInRange(1, 240, 60, 'ceiling on a client\'s max_fps'),
    maxClients: intInRange(1, 1_000_000, 50_000, 'overlay clients per gateway thread'),
    snapshotIntervalMs: intInRange(0, 60_000, 1000, 'least time between two snapshots to one /ws client; a re-subscription sooner gets one deferred snapshot'),
    compression: z.enum(['off', 'shared']).default('off').describe('permessage-deflate on /ws: off, or shared (one shared compressor, no context takeover; uWS deflates each send, so it costs CPU per client per message)'),
  })
  .strict()
  .describe('an object with keys threads, softLimitBytes, hardLimitBytes, maxFps, maxClients, snapshotIntervalMs, compression');

export const healthThresholdsSchema = z
  .object({
    klHealthy: numberInRange(0, 10, 0.01, 'KL below this (and clip below clipHealthy) is healthy'),
    clipHealthy: numberInRange(0, 1, 0.1),
    klLearning: numberInRange(0, 10, 0.05, 'KL below this is learning; above, exploring'),
  })
  .strict()
  .describe('an object with keys klHealthy, clipHealthy, klLearning');

export const milestoneRulesSchema = z
  .object({
    klSettledBelow: numberInRange(0, 10, 0.01, 'KL under this for klSettledWindows windows in a row is "KL settled"'),
    klSettledWindows: intInRange(1, 100_000, 30),
    entropyCollapseBelow: numberInRange(0, 100, 0.5, 'entropy under this is "entropy collapse"'),
    lossPlateauWindows: intInRange(2, 100_000, 100, 'windows of near-zero policy-loss slope that make a plateau'),
    lossPlateauSlope: numberInRange(0, 1, 1e-5, 'absolute slope per step under which the loss counts as flat'),
    gameMarks: z.array(z.number().int().positive()).default([10, 100, 1000, 10_000, 100_000]).describe('an array of positive integers (games played)'),
    bestWinRate: z.boolean().default(true).describe('true or false (announce a new best win rate)'),
  })
  .strict()
  .describe('an object with keys klSettledBelow, klSettledWindows, entropyCollapseBelow, lossPlateauWindows, lossPlateauSlope, gameMarks, bestWinRate');

export const aggregateSchema = z
  .object({
    windowMs: intInRange(10, 60_000, 100, 'aggregation window; updates go out once per window'),
    seriesPoints: intInRange(10, 10_000, 100, 'points kept per metric series'),
    smoothingAlpha: numberInRange(0.001, 1, 0.2, 'EMA factor of the smoothed series'),
    attentionAlpha: numberInRange(0.001, 1, 0.3, 'EMA factor of attention smoothing'),
    focusSquares: intInRange(1, 81, 5, 'top-k focus squares reported with the heatmap'),
    burstPoints: intInRange(0, 10_000_000, 50_000, 'points beyond seriesPoints one window may carry over all metrics (a burst after a stall); more are dropped and counted'),
    health: healthThresholdsSchema.default({}),
    milestones: milestoneRulesSchema.default({}),
  })
  .strict()
  .describe('an object with keys windowMs, seriesPoints, smoothingAlpha, attentionAlpha, focusSquares, burstPoints, health, milestones');

export const experienceSchema = z
  .object({
    batchSize: intInRange(1, 65_536, 32),
    timeoutMs: intInRange(1, 60_000, 100, 'a partial batch is sent after this long'),
    queueBatches: intInRange(1, 65_536, 64, 'batches queued per consumer before the oldest are dropped'),
    retainBytes: intInRange(0, 2 ** 40, 64 * 1024 * 1024, 'bytes of experience records each gateway thread retains for start=earliest and resume'),
    retainMs: intInRange(0, 86_400_000, 60_000, 'retained experience records older than this are dropped'),
    maxRate: intInRange(0, 10_000_000, 0, 'records per second one consumer may receive; 0 = no limit'),
    ringBytes: intInRange(1024 * 1024, 1024 * 1024 * 1024, 32 * 1024 * 1024, "bytes of each gateway thread's fan-out ring: experience records arriving while it is full are missed by that thread's consumers"),
  })
  .strict()
  .describe('an object with keys batchSize, timeoutMs, queueBatches, retainBytes, retainMs, maxRate, ringBytes');

export const twitchSchema = z
  .object({
    channel: z.string().regex(/^#?[a-z0-9_]{2,25}$/i, 'a Twitch channel name').optional().describe('Twitch channel to join (enables the chat actor); unset disables chat'),
    server: z.string().regex(/^[^:\s]+:\d{1,5}$/, 'host:port').optional().describe('host:port of a plain-ws Twitch IRC server (tests, local peers); unset means Twitch itself'),
    username: z.string().regex(/^[a-z0-9_]{3,25}$/i).default('ringcast_bot').describe('bot login name (3–25 letters, digits, _)'),
    token: z.string().min(1).optional().describe('OAuth token (with or without "oauth:"); prefer RINGCAST_TWITCH_TOKEN or credentialsFile; never logged'),
    credentialsFile: z.string().min(1).optional().describe('JSON file {"username","token"} read at start (mode 0600 recommended)'),
    predictionSeconds: intInRange(5, 600, 30, 'how long a prediction game collects votes'),
    userCooldownMs: intInRange(0, 600_000, 5000, 'per-user cooldown between replied commands'),
    moderator: z.boolean().default(false).describe('true if the bot is a moderator/broadcaster (100 messages / 30 s instead of 20)'),
    milestonePredictions: z.boolean().default(true).describe('start a prediction game when a milestone arrives'),
  })
  .strict()
  .describe('an object with keys channel, server, username, token, credentialsFile, predictionSeconds, userCooldownMs, moderator, milestonePredictions');

export const obsSchema = z
  .object({
    url: z.string().regex(/^wss?:\/\/[^\s]+$/, 'ws://host:port').optional().describe('obs-websocket v5 URL, e.g. ws://127.0.0.1:4455 (enables the OBS actor); unset disables OBS'),
    password: z.string().min(1).optional().describe('obs-websocket password; prefer RINGCAST_OBS_PASSWORD; never logged'),
    scenes: z
      .object({
        overview: z.string().min(1).default('Overview'),
        board_focus: z.string().min(1).default('Board Focus'),
        metrics_focus: z.string().min(1).default('Metrics Focus'),
        prediction: z.string().min(1).default('Prediction'),
        milestone: z.string().min(1).default('Milestone'),
      })
      .strict()
      .default({})
      .describe('an object mapping the presets overview, board_focus, metrics_focus, prediction, milestone to OBS scene names'),
    milestoneTextInput: z.string().min(1).default('ringcast-milestone').describe('OBS text input that shows the milestone'),
    performanceTextInput: z.string().min(1).default('ringcast-performance').describe('OBS text input updated with live performance figures'),
    celebrationSeconds: intInRange(1, 600, 8, 'how long the milestone scene stays before returning'),
    performanceEveryMs: intInRange(500, 600_000, 5000, 'how often the performance text is updated'),
  })
  .strict()
  .describe('an object with keys url, password, scenes, milestoneTextInput, performanceTextInput, celebrationSeconds, performanceEveryMs');

const OUTPUT_PATTERN = /^(rtmps?:\/\/\S+|srt:\/\/\S+|[^\s]+\.(mp4|mkv|flv|ts|m3u8)|twitch|youtube|x)$/i;

export const composeSchema = z
  .object({
    width: intInRange(160, 7680, 1920),
    height: intInRange(90, 4320, 1080),
    fps: intInRange(1, 120, 30),
    outputs: z
      .array(z.string().regex(OUTPUT_PATTERN, 'twitch, youtube, x, rtmp://…, or a file ending in .mp4, .mkv, .flv, .ts or .m3u8 (local HLS)'))
      .default([])
      .describe('where the composed show goes: twitch, youtube, x (stream key from RINGCAST_STREAM_KEY_<NAME>), rtmp://… URLs and/or files (.mp4, .mkv, .flv, .ts, .m3u8 for local HLS); any output turns the compositor and encoder on'),
    bitrateKbps: intInRange(100, 100_000, 4500),
    preset: z.enum(['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium']).default('veryfast').describe('x264 preset: ultrafast, superfast, veryfast, faster, fast, medium'),
    keyframeSeconds: numberInRange(0.5, 10, 2, 'keyframe interval (Twitch wants 2)'),
    encoder: z.string().regex(/^(auto|libx264|h264_nvenc|h264_vaapi|h264_qsv)$/).default('auto').describe('auto (a hardware encoder when a probe says it works, else libx264), libx264, h264_nvenc, h264_vaapi, h264_qsv'),
    audio: z
      .string()
      .regex(/^(silence|none|https?:\/\/\S+|[^\s].*)$/i, "silence, none, an audio file path or an http(s) URL")
      .default('silence')
      .describe('silence (AAC silence, what Twitch expects), none, or an audio file path / http(s) URL looped under the show (a missing file stops the start; a failing URL falls back to silence)'),
    audioVolume: numberInRange(0, 2, 1, 'gain of the --audio file or URL'),
    scene: z.enum(SCENE_PRESETS).optional().describe(`scene preset installed at start over the saved scene: ${SCENE_PRESETS.join(', ')} (unset: the saved scene, or training)`),
  })
  .strict()
  .describe('an object with keys width, height, fps, outputs, bitrateKbps, preset, keyframeSeconds, encoder, audio, audioVolume, scene');

export const clipsSchema = z
  .object({
    enabled: z.boolean().default(true).describe('keep the last bufferSeconds of the encoded show for instant-replay clips while an output runs'),
    bufferSeconds: intInRange(4, 600, 60, 'seconds of encoded segments kept for clips (on disk, in <dataDir>/clips/.buffer)'),
    maxCount: intInRange(1, 10_000, 100, 'clips kept in <dataDir>/clips; the oldest go first'),
    maxBytes: intInRange(1024 * 1024, 2 ** 40, 2 * 1024 ** 3, 'bytes of clips kept in <dataDir>/clips; the oldest go first'),
    onMilestone: z.boolean().default(false).describe('cut a clip (20 s before, 5 s after) when a milestone arrives'),
  })
  .strict()
  .describe('an object with keys enabled, bufferSeconds, maxCount, maxBytes, onMilestone');

export const captureSchema = z
  .object({
    enabled: z.boolean().default(true).describe('run the capture actor (frame capture and analysis of the registered streams)'),
    interval: z.number().int().min(1).max(3600).optional().describe('seconds between captures of a stream; when set it overrides the stored config (PUT /api/config) at start'),
    maxConcurrent: z.number().int().min(1).max(1000).optional().describe('captures in flight at once; when set it overrides the stored config at start'),
    quality: z.enum(['best', 'worst', '720p60', '720p', '480p', '360p', '160p']).optional().describe('variant to capture: best, worst, 720p60, 720p, 480p, 360p, 160p; when set it overrides the stored config at start'),
    streamsFile: z.string().min(1).optional().describe('file with one channel (or .m3u8 URL) per line, optional priority after a space, # comments; added to the registry at start'),
    width: intInRange(64, 3840, 640),
    height: intInRange(36, 2160, 360),
    decoders: intInRange(0, 64, 0, 'long-lived ffmpeg keyframe decoders (0 = one per CPU core)'),
    decoderSyncEvery: intInRange(1, 64, 8, 'a sentinel picture after this many keyframes checks frame order; 1 = exact attribution even for keyframes that decode to nothing (~2.5 ms more CPU each)'),
    analysisThreads: intInRange(0, 64, 1, 'piscina analysis workers (0 = no analysis)'),
    templatesDir: z.string().min(1).optional().describe('templates folder: regions.json + <group>/<name>.png images (see README)'),
    slots: intInRange(4, 1024, 48, 'frame slots in the capture ring (bounds memory: slots x width x height x 3 bytes)'),
    historyLength: intInRange(1, 1000, 50, 'results kept per stream'),
    fetchTimeoutMs: intInRange(100, 60_000, 5000, 'deadline for each playlist / segment request'),
    offlineRecheckMs: intInRange(100, 3_600_000, 30_000, 'how often an offline stream is checked for coming back'),
    twitchGqlUrl: z.string().url().optional().describe('Twitch GQL endpoint (default https://gql.twitch.tv/gql); tests point it at a local fake'),
    twitchUsherUrl: z.string().url().optional().describe('Twitch usher base URL (default https://usher.ttvnw.net)'),
    demoStreams: intInRange(0, 50, 3, 'with --demo and an empty registry: built-in local HLS demo streams to register'),
  })
  .strict()
  .describe('an object with keys enabled, interval, maxConcurrent, quality, streamsFile, width, height, decoders, decoderSyncEvery, analysisThreads, templatesDir, slots, historyLength, fetchTimeoutMs, offlineRecheckMs, twitchGqlUrl, twitchUsherUrl, demoStreams');

export const httpSchema = z
  .object({
    rateLimitPerMin: intInRange(1, 1_000_000, 600, 'tokens per minute each client address gets for the anonymous routes that cost CPU (a thumbnail costs 1, a scene preview 10)'),
    rateLimitBurst: intInRange(10, 1_000_000, 100, 'tokens a client address may spend at once'),
    previewThreads: intInRange(1, 16, 1, 'threads rendering /api/scene/preview.png (off the main thread)'),
    previewQueue: intInRange(0, 1000, 4, 'previews waiting for a preview thread; past it a preview is answered 503'),
  })
  .strict()
  .describe('an object with keys rateLimitPerMin, rateLimitBurst, previewThreads, previewQueue');

export const clusterSchema = z
  .object({
    redis: z
      .string()
      .regex(/^rediss?:\/\/\S+$/, 'must be a redis:// or rediss:// URL')
      .optional()
      .describe('a redis:// URL; set it to run this node as one of several sharing that Redis (unset: one node, nothing shared)'),
    nodeId: z
      .string()
      .regex(/^[A-Za-z0-9._:-]{1,64}$/, 'must be 1-64 characters of letters, digits, dot, underscore, colon or dash')
      .optional()
      .describe("this node's name in the cluster (default: host name and port)"),
    heartbeatMs: intInRange(100, 60_000, 1000, 'how often this node renews its membership heartbeat'),
    nodeTimeoutMs: intInRange(500, 600_000, 5000, 'a node that has not heartbeated for this long is gone'),
    leaseMs: intInRange(500, 600_000, 3000, 'how long a run ownership (or singleton) lease lasts without renewal'),
    captureWeight: intInRange(0, 1000, 1, 'this node\'s share of the cluster\'s captured streams (0: captures none)'),
  })
  .strict()
  .describe('an object with keys redis, nodeId, heartbeatMs, nodeTimeoutMs, leaseMs, captureWeight');

const MiB = 1024 * 1024;

export const recordingSchema = z
  .object({
    enabled: z.boolean().default(true).describe('true or false (record every accepted event under <dataDir>/recordings/<run>/)'),
    experience: z.boolean().default(false).describe('true or false (record experience events too; off: the bulk RL stream stays out of recordings)'),
    segmentBytes: intInRange(64 * 1024, 1024 * MiB, 8 * MiB, 'a segment file is closed and a new one started past this size'),
    maxBytesPerRun: intInRange(64 * 1024, 2 ** 50, 512 * MiB, "a run's oldest segments are deleted past this"),
    maxBytesTotal: intInRange(64 * 1024, 2 ** 50, 4096 * MiB, 'the oldest segments of any run are deleted past this'),
    maxAgeHours: intInRange(1, 100_000, 168, 'segments last written longer ago are deleted'),
    maxReplays: intInRange(1, 64, 4, 'replays running at once'),
    replayDir: z.string().min(1).optional().describe("a run's recording directory: start with it replaying as the only producer (turns the demo off)"),
    replaySpeed: numberInRange(0.1, 1000, 1, 'with --replay: playback speed, 1 = as recorded'),
  })
  .strict()
  .describe('an object with keys enabled, experience, segmentBytes, maxBytesPerRun, maxBytesTotal, maxAgeHours, maxReplays, replayDir, replaySpeed');

export const configShape = {
  host: z.string().min(1).default('127.0.0.1').describe('a non-empty host name or IP address'),
  port: intInRange(0, 65535, 8080, 'HTTP and WebSocket port; 0 picks a free port below the kernel ephemeral range'),
  logLevel: z.enum(LOG_LEVELS).default('info').describe(`one of ${LOG_LEVELS.join(', ')}`),
  dataDir: z.string().min(1).default('./data').describe('a non-empty directory path'),
  // Optional in the input because its default depends on dataDir; filled in below.
  stateDbPath: z.string().min(1).optional().describe('a non-empty file path'),
  shutdownDeadlineMs: intInRange(
    100,
    9999,
    8000,
    'must stay below 10000 so shutdown finishes well inside systemd TimeoutStopSec',
  ),
  heartbeatIntervalMs: intInRange(10, 60_000, 250),
  hangTimeoutMs: intInRange(50, 600_000, 3000),
  nativeHangGraceMs: intInRange(0, 600_000, 10_000),
  restart: restartSchema.default({}),
  demo: demoSchema.default({}),
  auth: authSchema.default({}),
  ingest: ingestSchema.default({}),
  fanout: fanoutSchema.default({}),
  aggregate: aggregateSchema.default({}),
  experience: experienceSchema.default({}),
  twitch: twitchSchema.default({}),
  obs: obsSchema.default({}),
  compose: composeSchema.default({}),
  clips: clipsSchema.default({}),
  capture: captureSchema.default({}),
  http: httpSchema.default({}),
  cluster: clusterSchema.default({}),
  recording: recordingSchema.default({}),
};

export const baseConfigSchema = z
  .object(configShape)
  .strict()
  .superRefine((c, ctx) => {
    if (c.heartbeatIntervalMs >= c.hangTimeoutMs) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['heartbeatIntervalMs'],
        message: 'must be less than hangTimeoutMs, otherwise every healthy actor looks hung',
        params: { related: ['hangTimeoutMs'] },
      });
    }
    if (c.fanout.softLimitBytes >= c.fanout.hardLimitBytes) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['fanout', 'softLimitBytes'],
        message: 'must be less than fanout.hardLimitBytes',
        params: { related: ['fanout', 'hardLimitBytes'] },
      });
    }
    if (c.aggregate.health.klHealthy > c.aggregate.health.klLearning) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['aggregate', 'health', 'klHealthy'],
        message: 'must not exceed aggregate.health.klLearning',
        params: { related: ['aggregate', 'health', 'klLearning'] },
      });
    }
    if (c.cluster.heartbeatMs >= c.cluster.nodeTimeoutMs) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['cluster', 'heartbeatMs'],
        message: 'must be less than cluster.nodeTimeoutMs, otherwise live nodes look gone',
        params: { related: ['cluster', 'nodeTimeoutMs'] },
      });
    }
    if (c.recording.segmentBytes > c.recording.maxBytesPerRun || c.recording.maxBytesPerRun > c.recording.maxBytesTotal) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['recording', 'maxBytesPerRun'],
        message: 'must lie between recording.segmentBytes and recording.maxBytesTotal',
        params: { related: ['recording', 'segmentBytes'] },
      });
    }
    if (c.restart.backoffInitialMs > c.restart.backoffMaxMs) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['restart', 'backoffInitialMs'],
        message: 'must not exceed restart.backoffMaxMs',
        params: { related: ['restart', 'backoffMaxMs'] },
      });
    }
  });

export const configSchema = baseConfigSchema.transform((c) => ({
  ...c,
  stateDbPath: c.stateDbPath ?? join(c.dataDir, 'ringcast.db'),
  ingest: { ...c.ingest, unixPath: c.ingest.unixPath ?? join(c.dataDir, 'ingest.sock') },
  // A replayed recording is the only producer.
  demo: c.recording.replayDir !== undefined ? { ...c.demo, enabled: false } : c.demo,
}));

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof baseConfigSchema>;

/** 'list': a repeatable flag (`--output a --output b`) or a comma-separated env var. */
type OptionKind = 'string' | 'integer' | 'number' | 'boolean' | 'list';

/** One settable leaf of the config, with its CLI flag and env var. */
export interface ConfigOption {
  path: readonly string[];
  flag: string;
  env: string;
  kind: OptionKind;
}

export const CONFIG_OPTIONS: readonly ConfigOption[] = [
  { path: ['host'], flag: 'host', env: 'RINGCAST_HOST', kind: 'string' },
  { path: ['port'], flag: 'port', env: 'RINGCAST_PORT', kind: 'integer' },
  { path: ['logLevel'], flag: 'log-level', env: 'RINGCAST_LOG_LEVEL', kind: 'string' },
  { path: ['dataDir'], flag: 'data-dir', env: 'RINGCAST_DATA_DIR', kind: 'string' },
  { path: ['stateDbPath'], flag: 'state-db-path', env: 'RINGCAST_STATE_DB_PATH', kind: 'string' },
  { path: ['shutdownDeadlineMs'], flag: 'shutdown-deadline-ms', env: 'RINGCAST_SHUTDOWN_DEADLINE_MS', kind: 'integer' },
  { path: ['heartbeatIntervalMs'], flag: 'heartbeat-interval-ms', env: 'RINGCAST_HEARTBEAT_INTERVAL_MS', kind: 'integer' },
  { path: ['hangTimeoutMs'], flag: 'hang-timeout-ms', env: 'RINGCAST_HANG_TIMEOUT_MS', kind: 'integer' },
  { path: ['nativeHangGraceMs'], flag: 'native-hang-grace-ms', env: 'RINGCAST_NATIVE_HANG_GRACE_MS', kind: 'integer' },
  { path: ['restart', 'strategy'], flag: 'restart-strategy', env: 'RINGCAST_RESTART_STRATEGY', kind: 'string' },
  { path: ['restart', 'intensity'], flag: 'restart-intensity', env: 'RINGCAST_RESTART_INTENSITY', kind: 'integer' },
  { path: ['restart', 'periodMs'], flag: 'restart-period-ms', env: 'RINGCAST_RESTART_PERIOD_MS', kind: 'integer' },
  { path: ['restart', 'backoffInitialMs'], flag: 'restart-backoff-initial-ms', env: 'RINGCAST_RESTART_BACKOFF_INITIAL_MS', kind: 'integer' },
  { path: ['restart', 'backoffMaxMs'], flag: 'restart-backoff-max-ms', env: 'RINGCAST_RESTART_BACKOFF_MAX_MS', kind: 'integer' },
  { path: ['restart', 'standby'], flag: 'restart-standby', env: 'RINGCAST_RESTART_STANDBY', kind: 'boolean' },
  // A boolean flag: `--demo` / `--no-demo`.
  { path: ['demo', 'enabled'], flag: 'demo', env: 'RINGCAST_DEMO_ENABLED', kind: 'boolean' },
  { path: ['demo', 'run'], flag: 'demo-run', env: 'RINGCAST_DEMO_RUN', kind: 'string' },
  { path: ['demo', 'stepsPerSec'], flag: 'demo-steps-per-sec', env: 'RINGCAST_DEMO_STEPS_PER_SEC', kind: 'integer' },
  { path: ['demo', 'movesPerSec'], flag: 'demo-moves-per-sec', env: 'RINGCAST_DEMO_MOVES_PER_SEC', kind: 'integer' },
  { path: ['demo', 'crashEveryMs'], flag: 'demo-crash-every-ms', env: 'RINGCAST_DEMO_CRASH_EVERY_MS', kind: 'integer' },
  { path: ['auth', 'ingestToken'], flag: 'ingest-token', env: 'RINGCAST_INGEST_TOKEN', kind: 'string' },
  { path: ['auth', 'adminToken'], flag: 'admin-token', env: 'RINGCAST_ADMIN_TOKEN', kind: 'string' },
  { path: ['ingest', 'tcpPort'], flag: 'ingest-tcp-port', env: 'RINGCAST_INGEST_TCP_PORT', kind: 'integer' },
  { path: ['ingest', 'unixPath'], flag: 'ingest-unix-path', env: 'RINGCAST_INGEST_UNIX_PATH', kind: 'string' },
  { path: ['ingest', 'maxFrameBytes'], flag: 'ingest-max-frame-bytes', env: 'RINGCAST_INGEST_MAX_FRAME_BYTES', kind: 'integer' },
  { path: ['ingest', 'maxConnections'], flag: 'ingest-max-connections', env: 'RINGCAST_INGEST_MAX_CONNECTIONS', kind: 'integer' },
  { path: ['ingest', 'helloTimeoutMs'], flag: 'ingest-hello-timeout-ms', env: 'RINGCAST_INGEST_HELLO_TIMEOUT_MS', kind: 'integer' },
  { path: ['ingest', 'preAuthMaxBytes'], flag: 'ingest-pre-auth-max-bytes', env: 'RINGCAST_INGEST_PRE_AUTH_MAX_BYTES', kind: 'integer' },
  { path: ['ingest', 'maxPreAuthPerAddress'], flag: 'ingest-max-pre-auth-per-address', env: 'RINGCAST_INGEST_MAX_PRE_AUTH_PER_ADDRESS', kind: 'integer' },
  { path: ['fanout', 'threads'], flag: 'fanout-threads', env: 'RINGCAST_FANOUT_THREADS', kind: 'integer' },
  { path: ['fanout', 'softLimitBytes'], flag: 'fanout-soft-limit-bytes', env: 'RINGCAST_FANOUT_SOFT_LIMIT_BYTES', kind: 'integer' },
  { path: ['fanout', 'hardLimitBytes'], flag: 'fanout-hard-limit-bytes', env: 'RINGCAST_FANOUT_HARD_LIMIT_BYTES', kind: 'integer' },
  { path: ['fanout', 'maxFps'], flag: 'fanout-max-fps', env: 'RINGCAST_FANOUT_MAX_FPS', kind: 'integer' },
  { path: ['fanout', 'maxClients'], flag: 'fanout-max-clients', env: 'RINGCAST_FANOUT_MAX_CLIENTS', kind: 'integer' },
  { path: ['fanout', 'snapshotIntervalMs'], flag: 'fanout-snapshot-interval-ms', env: 'RINGCAST_FANOUT_SNAPSHOT_INTERVAL_MS', kind: 'integer' },
  { path: ['fanout', 'compression'], flag: 'fanout-compression', env: 'RINGCAST_FANOUT_COMPRESSION', kind: 'string' },
  { path: ['aggregate', 'windowMs'], flag: 'window-ms', env: 'RINGCAST_WINDOW_MS', kind: 'integer' },
  { path: ['aggregate', 'seriesPoints'], flag: 'series-points', env: 'RINGCAST_SERIES_POINTS', kind: 'integer' },
  { path: ['aggregate', 'smoothingAlpha'], flag: 'smoothing-alpha', env: 'RINGCAST_SMOOTHING_ALPHA', kind: 'number' },
  { path: ['aggregate', 'health', 'klHealthy'], flag: 'health-kl-healthy', env: 'RINGCAST_HEALTH_KL_HEALTHY', kind: 'number' },
  { path: ['aggregate', 'health', 'clipHealthy'], flag: 'health-clip-healthy', env: 'RINGCAST_HEALTH_CLIP_HEALTHY', kind: 'number' },
  { path: ['aggregate', 'health', 'klLearning'], flag: 'health-kl-learning', env: 'RINGCAST_HEALTH_KL_LEARNING', kind: 'number' },
  { path: ['experience', 'batchSize'], flag: 'experience-batch-size', env: 'RINGCAST_EXPERIENCE_BATCH_SIZE', kind: 'integer' },
  { path: ['experience', 'timeoutMs'], flag: 'experience-timeout-ms', env: 'RINGCAST_EXPERIENCE_TIMEOUT_MS', kind: 'integer' },
  { path: ['experience', 'queueBatches'], flag: 'experience-queue-batches', env: 'RINGCAST_EXPERIENCE_QUEUE_BATCHES', kind: 'integer' },
  { path: ['experience', 'retainBytes'], flag: 'experience-retain-bytes', env: 'RINGCAST_EXPERIENCE_RETAIN_BYTES', kind: 'integer' },
  { path: ['experience', 'retainMs'], flag: 'experience-retain-ms', env: 'RINGCAST_EXPERIENCE_RETAIN_MS', kind: 'integer' },
  { path: ['experience', 'maxRate'], flag: 'experience-max-rate', env: 'RINGCAST_EXPERIENCE_MAX_RATE', kind: 'integer' },
  { path: ['experience', 'ringBytes'], flag: 'experience-ring-bytes', env: 'RINGCAST_EXPERIENCE_RING_BYTES', kind: 'integer' },
  { path: ['twitch', 'channel'], flag: 'twitch-channel', env: 'RINGCAST_TWITCH_CHANNEL', kind: 'string' },
  { path: ['twitch', 'server'], flag: 'twitch-server', env: 'RINGCAST_TWITCH_SERVER', kind: 'string' },
  { path: ['twitch', 'username'], flag: 'twitch-username', env: 'RINGCAST_TWITCH_USERNAME', kind: 'string' },
  { path: ['twitch', 'token'], flag: 'twitch-token', env: 'RINGCAST_TWITCH_TOKEN', kind: 'string' },
  { path: ['twitch', 'credentialsFile'], flag: 'twitch-credentials-file', env: 'RINGCAST_TWITCH_CREDENTIALS_FILE', kind: 'string' },
  { path: ['twitch', 'predictionSeconds'], flag: 'prediction-seconds', env: 'RINGCAST_PREDICTION_SECONDS', kind: 'integer' },
  { path: ['twitch', 'userCooldownMs'], flag: 'twitch-user-cooldown-ms', env: 'RINGCAST_TWITCH_USER_COOLDOWN_MS', kind: 'integer' },
  { path: ['twitch', 'moderator'], flag: 'twitch-moderator', env: 'RINGCAST_TWITCH_MODERATOR', kind: 'boolean' },
  { path: ['obs', 'url'], flag: 'obs-url', env: 'RINGCAST_OBS_URL', kind: 'string' },
  { path: ['obs', 'password'], flag: 'obs-password', env: 'RINGCAST_OBS_PASSWORD', kind: 'string' },
  { path: ['obs', 'celebrationSeconds'], flag: 'obs-celebration-seconds', env: 'RINGCAST_OBS_CELEBRATION_SECONDS', kind: 'integer' },
  { path: ['compose', 'outputs'], flag: 'output', env: 'RINGCAST_OUTPUTS', kind: 'list' },
  { path: ['compose', 'width'], flag: 'compose-width', env: 'RINGCAST_COMPOSE_WIDTH', kind: 'integer' },
  { path: ['compose', 'height'], flag: 'compose-height', env: 'RINGCAST_COMPOSE_HEIGHT', kind: 'integer' },
  { path: ['compose', 'fps'], flag: 'compose-fps', env: 'RINGCAST_COMPOSE_FPS', kind: 'integer' },
  { path: ['compose', 'bitrateKbps'], flag: 'bitrate-kbps', env: 'RINGCAST_BITRATE_KBPS', kind: 'integer' },
  { path: ['compose', 'preset'], flag: 'x264-preset', env: 'RINGCAST_X264_PRESET', kind: 'string' },
  { path: ['compose', 'keyframeSeconds'], flag: 'keyframe-seconds', env: 'RINGCAST_KEYFRAME_SECONDS', kind: 'number' },
  { path: ['compose', 'encoder'], flag: 'encoder', env: 'RINGCAST_ENCODER', kind: 'string' },
  { path: ['compose', 'audio'], flag: 'audio', env: 'RINGCAST_AUDIO', kind: 'string' },
  { path: ['compose', 'audioVolume'], flag: 'audio-volume', env: 'RINGCAST_AUDIO_VOLUME', kind: 'number' },
  { path: ['clips', 'enabled'], flag: 'clips', env: 'RINGCAST_CLIPS', kind: 'boolean' },
  { path: ['clips', 'bufferSeconds'], flag: 'clips-buffer-seconds', env: 'RINGCAST_CLIPS_BUFFER_SECONDS', kind: 'integer' },
  { path: ['clips', 'maxCount'], flag: 'clips-max-count', env: 'RINGCAST_CLIPS_MAX_COUNT', kind: 'integer' },
  { path: ['clips', 'maxBytes'], flag: 'clips-max-bytes', env: 'RINGCAST_CLIPS_MAX_BYTES', kind: 'integer' },
  { path: ['clips', 'onMilestone'], flag: 'clips-on-milestone', env: 'RINGCAST_CLIPS_ON_MILESTONE', kind: 'boolean' },
  { path: ['compose', 'scene'], flag: 'scene', env: 'RINGCAST_SCENE', kind: 'string' },
  { path: ['capture', 'enabled'], flag: 'capture', env: 'RINGCAST_CAPTURE', kind: 'boolean' },
  { path: ['capture', 'interval'], flag: 'interval', env: 'RINGCAST_CAPTURE_INTERVAL', kind: 'integer' },
  { path: ['capture', 'maxConcurrent'], flag: 'max-concurrent', env: 'RINGCAST_MAX_CONCURRENT', kind: 'integer' },
  { path: ['capture', 'quality'], flag: 'quality', env: 'RINGCAST_QUALITY', kind: 'string' },
  { path: ['capture', 'streamsFile'], flag: 'streams-file', env: 'RINGCAST_STREAMS_FILE', kind: 'string' },
  { path: ['capture', 'width'], flag: 'capture-width', env: 'RINGCAST_CAPTURE_WIDTH', kind: 'integer' },
  { path: ['capture', 'height'], flag: 'capture-height', env: 'RINGCAST_CAPTURE_HEIGHT', kind: 'integer' },
  { path: ['capture', 'decoders'], flag: 'decoders', env: 'RINGCAST_DECODERS', kind: 'integer' },
  { path: ['capture', 'decoderSyncEvery'], flag: 'decoder-sync-every', env: 'RINGCAST_DECODER_SYNC_EVERY', kind: 'integer' },
  { path: ['capture', 'analysisThreads'], flag: 'analysis-threads', env: 'RINGCAST_ANALYSIS_THREADS', kind: 'integer' },
  { path: ['capture', 'templatesDir'], flag: 'templates-dir', env: 'RINGCAST_TEMPLATES_DIR', kind: 'string' },
  { path: ['capture', 'slots'], flag: 'capture-slots', env: 'RINGCAST_CAPTURE_SLOTS', kind: 'integer' },
  { path: ['capture', 'historyLength'], flag: 'history-length', env: 'RINGCAST_HISTORY_LENGTH', kind: 'integer' },
  { path: ['capture', 'fetchTimeoutMs'], flag: 'fetch-timeout-ms', env: 'RINGCAST_FETCH_TIMEOUT_MS', kind: 'integer' },
  { path: ['capture', 'offlineRecheckMs'], flag: 'offline-recheck-ms', env: 'RINGCAST_OFFLINE_RECHECK_MS', kind: 'integer' },
  { path: ['capture', 'twitchGqlUrl'], flag: 'twitch-gql-url', env: 'RINGCAST_TWITCH_GQL_URL', kind: 'string' },
  { path: ['capture', 'twitchUsherUrl'], flag: 'twitch-usher-url', env: 'RINGCAST_TWITCH_USHER_URL', kind: 'string' },
  { path: ['capture', 'demoStreams'], flag: 'demo-streams', env: 'RINGCAST_DEMO_STREAMS', kind: 'integer' },
  { path: ['http', 'rateLimitPerMin'], flag: 'rate-limit-per-min', env: 'RINGCAST_RATE_LIMIT_PER_MIN', kind: 'integer' },
  { path: ['http', 'rateLimitBurst'], flag: 'rate-limit-burst', env: 'RINGCAST_RATE_LIMIT_BURST', kind: 'integer' },
  { path: ['http', 'previewThreads'], flag: 'preview-threads', env: 'RINGCAST_PREVIEW_THREADS', kind: 'integer' },
  { path: ['http', 'previewQueue'], flag: 'preview-queue', env: 'RINGCAST_PREVIEW_QUEUE', kind: 'integer' },
  { path: ['cluster', 'redis'], flag: 'redis', env: 'RINGCAST_REDIS_URL', kind: 'string' },
  { path: ['cluster', 'nodeId'], flag: 'node-id', env: 'RINGCAST_NODE_ID', kind: 'string' },
  { path: ['cluster', 'heartbeatMs'], flag: 'cluster-heartbeat-ms', env: 'RINGCAST_CLUSTER_HEARTBEAT_MS', kind: 'integer' },
  { path: ['cluster', 'nodeTimeoutMs'], flag: 'cluster-node-timeout-ms', env: 'RINGCAST_CLUSTER_NODE_TIMEOUT_MS', kind: 'integer' },
  { path: ['cluster', 'leaseMs'], flag: 'cluster-lease-ms', env: 'RINGCAST_CLUSTER_LEASE_MS', kind: 'integer' },
  { path: ['cluster', 'captureWeight'], flag: 'cluster-capture-weight', env: 'RINGCAST_CLUSTER_CAPTURE_WEIGHT', kind: 'integer' },
  { path: ['recording', 'enabled'], flag: 'recording', env: 'RINGCAST_RECORDING_ENABLED', kind: 'boolean' },
  { path: ['recording', 'experience'], flag: 'recording-experience', env: 'RINGCAST_RECORDING_EXPERIENCE', kind: 'boolean' },
  { path: ['recording', 'segmentBytes'], flag: 'recording-segment-bytes', env: 'RINGCAST_RECORDING_SEGMENT_BYTES', kind: 'integer' },
  { path: ['recording', 'maxBytesPerRun'], flag: 'recording-max-bytes-per-run', env: 'RINGCAST_RECORDING_MAX_BYTES_PER_RUN', kind: 'integer' },
  { path: ['recording', 'maxBytesTotal'], flag: 'recording-max-bytes-total', env: 'RINGCAST_RECORDING_MAX_BYTES_TOTAL', kind: 'integer' },
  { path: ['recording', 'maxAgeHours'], flag: 'recording-max-age-hours', env: 'RINGCAST_RECORDING_MAX_AGE_HOURS', kind: 'integer' },
  { path: ['recording', 'maxReplays'], flag: 'max-replays', env: 'RINGCAST_MAX_REPLAYS', kind: 'integer' },
  { path: ['recording', 'replayDir'], flag: 'replay', env: 'RINGCAST_REPLAY', kind: 'string' },
  { path: ['recording', 'replaySpeed'], flag: 'speed', env: 'RINGCAST_REPLAY_SPEED', kind: 'number' },
];

export const CONFIG_FILE_FLAG = 'config';
export const CONFIG_FILE_ENV = 'RINGCAST_CONFIG';

export interface ConfigIssue {
  key: string;
  value: unknown;
  source: string;
  problem: string;
}

export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];
  constructor(messageOrIssues: string | ConfigIssue[]) {
    const issues = typeof messageOrIssues === 'string' ? [] : messageOrIssues;
    const message =
      typeof messageOrIssues === 'string'
        ? `invalid config: ${messageOrIssues}`
        : issues.map(formatIssue).join('\n');
    super(message);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

function formatIssue(issue: ConfigIssue): string {
  const shown = issue.value === undefined ? '' : ` = ${showValue(issue.value)}`;
  return `invalid config: ${issue.key}${shown} (from ${issue.source}): ${issue.problem}`;
}

function showValue(value: unknown): string {
  const json = JSON.stringify(value) ?? String(value);
  return json.length > 80 ? `${json.slice(0, 77)}...` : json;
}

type Sources = Map<string, string>;
type RawObject = Record<string, unknown>;

/**
 * Load the config for this process. Pass `process.argv.slice(2)` and `process.env`.
 * Throws ConfigError naming the key, the offending value, where it came from and
 * what is allowed.
 */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Config {
  // `--debug` / `-d` are accepted as short forms of `--log-level debug`.
  const flags = parseFlags(argv.map((a) => (a === '--debug' || a === '-d' ? '--log-level=debug' : a)));
  const raw: RawObject = {};
  const sources: Sources = new Map();

  const fileFromFlag = flags[CONFIG_FILE_FLAG];
  const fileFromEnv = env[CONFIG_FILE_ENV];
  if (typeof fileFromFlag === 'string') {
    applyFile(raw, sources, fileFromFlag, `--${CONFIG_FILE_FLAG}`);
  } else if (fileFromEnv) {
    applyFile(raw, sources, fileFromEnv, CONFIG_FILE_ENV);
  }

  for (const option of CONFIG_OPTIONS) {
    const text = env[option.env];
    if (text !== undefined && text !== '') {
      setAtPath(raw, option.path, convertText(text, option.kind));
      sources.set(option.path.join('.'), option.env);
    }
  }

  for (const option of CONFIG_OPTIONS) {
    const value = flags[option.flag];
    if (value === undefined) continue;
    setAtPath(raw, option.path, typeof value === 'string' ? convertText(value, option.kind) : value);
    sources.set(option.path.join('.'), `--${option.flag}`);
  }

  const result = configSchema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((issue) => toConfigIssue(issue, raw, sources)));
  }
  return result.data;
}

/**
 * parseArgs reads `--ingest-tcp-port -1` as a flag followed by another flag; a numeric
 * option followed by a negative number means that number, so join them as `--flag=-1`.
 */
function joinNegativeValues(argv: readonly string[]): string[] {
  const numeric = new Set(CONFIG_OPTIONS.filter((o) => o.kind === 'integer' || o.kind === 'number').flatMap((o) => [`--${o.flag}`, ...(SHORT_FLAGS[o.flag] ? [`-${SHORT_FLAGS[o.flag]}`] : [])]));
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (numeric.has(argv[i]) && i + 1 < argv.length && /^-\d/.test(argv[i + 1])) {
      out.push(`${argv[i]}=${argv[i + 1]}`);
      i++;
    } else {
      out.push(argv[i]);
    }
  }
  return out;
}

/**
 * The frame processor's original one-letter flags, kept for its users (`-d` is `--debug`).
 * `-h` is host there, so help is `--help` only.
 */
export const SHORT_FLAGS: Readonly<Record<string, string>> = {
  host: 'h', port: 'p', interval: 'i', 'max-concurrent': 'm', quality: 'q', 'streams-file': 'f',
};

function parseFlags(argv: readonly string[]): Record<string, string | boolean | string[] | undefined> {
  const options: NonNullable<ParseArgsConfig['options']> = {
    [CONFIG_FILE_FLAG]: { type: 'string' },
  };
  for (const option of CONFIG_OPTIONS) {
    options[option.flag] = option.kind === 'list' ? { type: 'string', multiple: true } : { type: option.kind === 'boolean' ? 'boolean' : 'string' };
    const short = SHORT_FLAGS[option.flag];
    if (short) options[option.flag].short = short;
  }
  try {
    const { values } = parseArgs({
      args: joinNegativeValues(argv),
      options,
      strict: true,
      allowPositionals: false,
      allowNegative: true,
    });
    return values as Record<string, string | boolean | string[] | undefined>;
  } catch (error) {
    // parseArgs' messages already name the flag ("Unknown option '--prot'");
    // add the list of what would have been accepted.
    const known = Object.keys(options)
      .map((f) => (SHORT_FLAGS[f] ? `-${SHORT_FLAGS[f]}/--${f}` : `--${f}`))
      .join(', ');
    throw new ConfigError(`${(error as Error).message} (known flags: ${known})`);
  }
}

/**
 * Env vars and flags arrive as text. Convert what clearly is a number/boolean;
 * leave anything else as the original string so the schema rejects it and the
 * error shows exactly what the operator typed.
 */
function convertText(text: string, kind: OptionKind): unknown {
  if (kind === 'list') return text.split(',').map((part) => part.trim()).filter(Boolean);
  if (kind === 'integer' && /^[+-]?\d+$/.test(text.trim())) return Number(text.trim());
  if (kind === 'number' && text.trim() !== '' && Number.isFinite(Number(text.trim()))) return Number(text.trim());
  if (kind === 'boolean') {
    const lowered = text.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(lowered)) return true;
    if (['0', 'false', 'no', 'off'].includes(lowered)) return false;
  }
  return text;
}

function applyFile(raw: RawObject, sources: Sources, filePath: string, via: string): void {
  let text: string;
  try {
    text = readFileSync(filePath, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : `cannot be read (${(error as Error).message})`;
    throw new ConfigError(`config file ${JSON.stringify(filePath)} (from ${via}) ${why}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(
      `config file ${JSON.stringify(filePath)} (from ${via}) is not valid JSON: ${(error as Error).message}`,
    );
  }
  if (!isPlainObject(parsed)) {
    throw new ConfigError(`config file ${JSON.stringify(filePath)} (from ${via}) must contain a JSON object`);
  }
  Object.assign(raw, parsed);
  markSources(parsed, [], sources, `config file ${filePath}`);
}

function markSources(value: unknown, path: string[], sources: Sources, label: string): void {
  if (path.length > 0) sources.set(path.join('.'), label);
  if (isPlainObject(value)) {
    for (const [key, child] of Object.entries(value)) markSources(child, [...path, key], sources, label);
  }
}

function toConfigIssue(issue: z.ZodIssue, raw: RawObject, sources: Sources): ConfigIssue {
  const path = issue.path.map(String);
  if (issue.code === z.ZodIssueCode.unrecognized_keys) {
    const parentKey = path.join('.');
    const unknown = issue.keys.map((k) => (parentKey ? `${parentKey}.${k}` : k));
    const allowed = Object.keys(shapeAt(path) ?? {}).join(', ');
    return {
      key: unknown.join(', '),
      value: undefined,
      source: sourceOf(unknown[0].split('.'), sources),
      problem: `unknown key${unknown.length > 1 ? 's' : ''}; allowed keys${parentKey ? ` in ${parentKey}` : ''} are ${allowed}`,
    };
  }
  const problem =
    issue.code === z.ZodIssueCode.custom
      ? withRelatedKey(issue, raw, sources)
      : `expected ${describeAt(path) ?? issue.message}`;
  return {
    key: path.join('.') || '(root)',
    value: getAtPath(raw, path) ?? getAtPath(configDefaults(), path),
    source: sourceOf(path, sources),
    problem,
  };
}

/**
 * A cross-field rule involves two keys and either may be the one the operator
 * got wrong, so name the other key's value and origin too.
 */
function withRelatedKey(issue: z.ZodIssue, raw: RawObject, sources: Sources): string {
  const related = (issue as z.ZodCustomIssue).params?.related as string[] | undefined;
  if (!related) return issue.message;
  const actual = getAtPath(raw, related) ?? getAtPath(configDefaults(), related);
  return `${issue.message} (${related.join('.')} = ${showValue(actual)} from ${sourceOf(related, sources)})`;
}

let defaultsCache: Config | undefined;
function configDefaults(): Config {
  defaultsCache ??= configSchema.parse({});
  return defaultsCache;
}

function sourceOf(path: string[], sources: Sources): string {
  for (let n = path.length; n > 0; n--) {
    const source = sources.get(path.slice(0, n).join('.'));
    if (source) return source;
  }
  return 'defaults';
}

/** Peel zod wrappers (default/optional/effects) down to the schema that validates. */
function unwrap(schema: z.ZodTypeAny): { inner: z.ZodTypeAny; description?: string } {
  let description = schema.description;
  let current = schema;
  for (;;) {
    if (current instanceof z.ZodDefault) current = current._def.innerType;
    else if (current instanceof z.ZodOptional) current = current._def.innerType;
    else if (current instanceof z.ZodEffects) current = current._def.schema;
    else break;
    description ??= current.description;
  }
  return { inner: current, description };
}

function schemaAt(path: readonly string[]): { inner: z.ZodTypeAny; description?: string } | undefined {
  let node = unwrap(baseConfigSchema);
  for (const key of path) {
    if (!(node.inner instanceof z.ZodObject)) return undefined;
    const child = (node.inner.shape as Record<string, z.ZodTypeAny>)[key];
    if (!child) return undefined;
    node = unwrap(child);
  }
  return node;
}

function shapeAt(path: readonly string[]): Record<string, z.ZodTypeAny> | undefined {
  const node = schemaAt(path);
  return node?.inner instanceof z.ZodObject ? node.inner.shape : undefined;
}

function describeAt(path: readonly string[]): string | undefined {
  return schemaAt(path)?.description;
}

function getAtPath(obj: unknown, path: readonly string[]): unknown {
  let current = obj;
  for (const key of path) {
    if (Array.isArray(current)) current = current[Number(key)];
    else if (isPlainObject(current)) current = current[key];
    else return undefined;
  }
  return current;
}

function setAtPath(obj: RawObject, path: readonly string[], value: unknown): void {
  let current = obj;
  for (const key of path.slice(0, -1)) {
    // A file may have put a non-object here; the flag/env value wins over it.
    if (!isPlainObject(current[key])) current[key] = {};
    current = current[key] as RawObject;
  }
  current[path[path.length - 1]] = value;
}

function isPlainObject(value: unknown): value is RawObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export interface ConfigKeyDescription {
  key: string;
  flag: string;
  env: string;
  default: string;
  allowed: string;
}

/** Every settable key with its flag, env var, default and allowed values (for docs and --help). */
export function describeConfig(): ConfigKeyDescription[] {
  const defaults = configDefaults();
  const rows: ConfigKeyDescription[] = [
    {
      key: '(config file)',
      flag: `--${CONFIG_FILE_FLAG}`,
      env: CONFIG_FILE_ENV,
      default: '(none)',
      allowed: 'path to a JSON file holding any of the keys below (nested as shown by the dots)',
    },
  ];
  for (const option of CONFIG_OPTIONS) {
    const key = option.path.join('.');
    const defaultText = key === 'stateDbPath' ? '<dataDir>/ringcast.db' : showValue(getAtPath(defaults, option.path));
    rows.push({
      key,
      flag: option.kind === 'boolean' ? `--${option.flag} / --no-${option.flag}` : option.kind === 'list' ? `--${option.flag} (repeatable)` : `--${option.flag}`,
      env: option.env,
      default: defaultText,
      allowed: describeAt(option.path) ?? '',
    });
  }
  return rows;
}

/** describeConfig() as a Markdown table for the README. */
export function configTableMarkdown(): string {
  const header = '| key | flag | env | default | allowed |\n|---|---|---|---|---|';
  const body = describeConfig()
    .map((r) => `| \`${r.key}\` | \`${r.flag}\` | \`${r.env}\` | \`${r.default}\` | ${r.allowed} |`)
    .join('\n');
  return `${header}\n${body}`;
}

/**
 * `ringcast --help`: every flag with its environment variable, default and allowed values
 * (the same rows as the README's config table), so an operator never needs the source.
 */
export function configHelpText(): string {
  const lines = [
    'usage: ringcast [flags]        (npm start -- [flags])',
    '',
    'Every setting comes from, lowest first: built-in defaults < config file < environment < flags.',
    '--debug is --log-level debug. --help prints this, --version the version.',
    `Short flags: ${Object.entries(SHORT_FLAGS).map(([long, short]) => `-${short} --${long}`).join(', ')}, -d --debug.`,
    '',
  ];
  for (const r of describeConfig()) {
    lines.push(`  ${r.flag}`);
    lines.push(`      ${r.key} · env ${r.env} · default ${r.default}${r.allowed ? ` · ${r.allowed}` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}
