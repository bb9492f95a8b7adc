/**
 * The service's actor topology.
 *
 *   demo-trainer ──ingest.demo──┐
 *   ingest (TCP/Unix) ─ingest.net─┤
 *   gateway-i (WS/HTTP) ─ingest.gw<i>─┼─▶ aggregator ──fanout.gw<i>──┐
 *   main thread (admin) ─ingest.main─┤                              ├─▶ gateway-i ──▶ /ws clients
 *   recorder (replays) ─ingest.replay─┘  │                           │
 *   main thread (control, scene, capture, chat) ──control.gw<i>─────┘
 *                                        └──record.events──▶ recorder ──▶ <dataDir>/recordings/
 *
 * Every ring has one producer and one consumer; the aggregator writes each message into
 * every gateway's ring (fan-out rings are cheap: 10 Hz × a few channels). What the main
 * thread decides (not what a trainer measured) goes to the gateways (and OBS) through a
 * control ring per consumer, which the consumer merges with its fan-out ring.
 *
 * Order matters for a graceful stop, which runs in spec order: producers first (intake
 * stops), then the aggregator, so it drains what is already in its rings, and the recorder
 * after it, so what that drain copied for recording is still written.
 */
import { availableParallelism, hostname } from 'node:os';
import { join } from 'node:path';
import type { Config } from './shared/config.js';
import type { SupervisorSpec } from './supervisor/spec.js';
import type { Tokens } from './shared/tokens.js';
import type { AggregatorOptions } from './actors/aggregator/index.js';
import type { GatewayOptions } from './actors/gateway/index.js';
import type { IngestOptions } from './actors/ingest/index.js';
import type { DemoTrainerOptions } from './actors/demo-trainer/index.js';
import type { ChatOptions } from './actors/chat/index.js';
import type { ObsOptions } from './actors/obs/index.js';
import type { CompositorOptions } from './actors/compositor/index.js';
import type { EncoderOptions } from './actors/encoder/index.js';
import type { ResolvedDestination } from './actors/encoder/destinations.js';
import type { CaptureActorOptions } from './actors/capture/index.js';
import type { RecorderOptions } from './actors/recorder/index.js';
import type { ClusterActorOptions } from './actors/cluster/index.js';
import type { FfmpegAvailability, ResolvedBinary } from './shared/ffmpeg.js';

export const AGGREGATOR = 'aggregator';
export const INGEST = 'ingest';
export const DEMO_TRAINER = 'demo-trainer';
export const gatewayName = (i: number) => `gateway-${i}`;
export const RING_DEMO = 'ingest.demo';
export const RING_NET = 'ingest.net';
export const RING_MAIN = 'ingest.main';
export const RECORDER = 'recorder';
/** Accepted events, copied by the aggregator for the recorder. */
export const RING_RECORD = 'record.events';
/** Replayed recordings, written by the recorder, read (not recorded) by the aggregator. */
export const RING_REPLAY = 'ingest.replay';
export const CHAT = 'chat';
export const OBS = 'obs';
export const RING_CHAT_IN = 'fanout.chat';
export const RING_OBS_IN = 'fanout.obs';
/** Overlay messages for the encoder's milestone clips (only with clips.onMilestone). */
export const RING_ENCODER_IN = 'fanout.encoder';
export const RING_OBS_CONTROL = 'control.obs';
export const COMPOSITOR = 'compositor';
export const ENCODER = 'encoder';
export const RING_COMPOSITOR_IN = 'fanout.compositor';
export const RING_FRAMES = 'frames.composite';
/** The main thread's capture results for the compositor (each shown stream's state). */
export const RING_COMPOSITOR_CONTROL = 'control.compositor';
export const CAPTURE = 'capture';
export const RING_CAPTURE_FRAMES = 'frames.capture';
export const ingestRing = (i: number) => `ingest.gw${i}`;
export const fanoutRing = (i: number) => `fanout.gw${i}`;
/** Written by the main thread only: control state, scene changes, capture results, chat messages. */
export const controlRing = (i: number) => `control.gw${i}`;
/** Clustered: what this node's aggregator produces, for the cluster relay to publish. */
export const CLUSTER = 'cluster';
export const RING_CLUSTER_OUT = 'fanout.cluster';
/** Clustered: what other nodes produced (and this node's critical messages, stamped), into gateway i. */
export const clusterRing = (i: number) => `cluster.gw${i}`;

/** The control rings the main thread writes, by the actor that reads each. */
export function controlRings(config: Config): Record<string, string> {
  const byActor: Record<string, string> = {};
  for (let i = 0; i < gatewayCount(config); i++) byActor[gatewayName(i)] = controlRing(i);
  if (config.obs.url !== undefined) byActor[OBS] = RING_OBS_CONTROL;
  if (config.compose.outputs.length > 0) byActor[COMPOSITOR] = RING_COMPOSITOR_CONTROL;
  return byActor;
}

/** This node's name in a cluster: `cluster.nodeId`, or the host name and the port it serves. */
export function clusterNodeId(config: Config, port: number): string {
  return config.cluster.nodeId ?? `${hostname().replace(/[^A-Za-z0-9._:-]/g, '-').slice(0, 58)}:${port}`;
}

/** Gateway threads: one per core unless configured (they share the port via SO_REUSEPORT). */
export function gatewayCount(config: Config): number {
  return config.fanout.threads > 0 ? config.fanout.threads : Math.max(1, Math.min(16, availableParallelism()));
}

export interface TopologyInputs {
  tokens: Tokens;
  /** The port the gateways listen on (already resolved when config.port was 0). */
  port: number;
  /** The service's one ffmpeg decision; actors resolve their own when absent (tests). */
  ffmpeg?: FfmpegAvailability;
  /** Named streaming destinations resolved with their stream keys (encoder preflight). */
  destinations?: Record<string, ResolvedDestination>;
}

/** What the ffmpeg-using actors are told: the binary to run, or why there is none. */
function ffmpegOptions(a: FfmpegAvailability | undefined): { ffmpeg?: ResolvedBinary; unavailable?: string } {
  if (a === undefined) return {};
  return a.ok ? { ffmpeg: a.ffmpeg } : { unavailable: a.reason };
}

const MiB = 1 << 20;

/** Clustered: what an actor that runs once per cluster (chat bot, OBS director) needs to contest its lease. */
function singleton(config: Config, port: number): { cluster?: { redis: string; nodeId: string; leaseMs: number } } {
  return config.cluster.redis ? { cluster: { redis: config.cluster.redis, nodeId: clusterNodeId(config, port), leaseMs: config.cluster.leaseMs } } : {};
}

export function serviceTopology(config: Config, inputs: TopologyInputs): SupervisorSpec {
  const gateways = gatewayCount(config);
  const rings: NonNullable<SupervisorSpec['rings']> = {
    // Producers hear about a full ring (Error event) and the ring counts the drop.
    [RING_NET]: { kind: 'record', capacityBytes: 16 * MiB, policy: 'drop-newest' },
    [RING_MAIN]: { kind: 'record', capacityBytes: 1 * MiB, policy: 'drop-newest' },
  };
  const ingestRings = [RING_NET, RING_MAIN];
  for (let i = 0; i < gateways; i++) {
    rings[ingestRing(i)] = { kind: 'record', capacityBytes: 8 * MiB, policy: 'drop-newest' };
    // Sized for the experience stream (16 KB records at thousands a second): a gateway thread
    // the OS leaves unscheduled for a moment must not miss what arrived meanwhile.
    rings[fanoutRing(i)] = { kind: 'record', capacityBytes: config.experience.ringBytes, policy: 'drop-newest' };
    rings[controlRing(i)] = { kind: 'record', capacityBytes: 1 * MiB, policy: 'drop-newest' };
    ingestRings.push(ingestRing(i));
  }
  if (config.demo.enabled) {
    rings[RING_DEMO] = { kind: 'record', capacityBytes: 8 * MiB, policy: 'drop-newest' };
    ingestRings.push(RING_DEMO);
  }
  // Replays (and --replay) write here; the recorder's copy of accepted events goes out on RING_RECORD.
  rings[RING_REPLAY] = { kind: 'record', capacityBytes: 4 * MiB, policy: 'drop-newest' };
  ingestRings.push(RING_REPLAY);
  const recording = config.recording.enabled;
  if (recording) rings[RING_RECORD] = { kind: 'record', capacityBytes: 16 * MiB, policy: 'drop-newest' };
  const recordingsDir = join(config.dataDir, 'recordings');
  const fanoutRings = Array.from({ length: gateways }, (_, i) => fanoutRing(i));
  // Chat and OBS follow the overlay stream too (game states, milestones) through their own fan-out rings.
  const chatEnabled = config.twitch.channel !== undefined;
  const obsEnabled = config.obs.url !== undefined;
  if (chatEnabled) {
    rings[RING_CHAT_IN] = { kind: 'record', capacityBytes: 4 * MiB, policy: 'drop-newest' };
    fanoutRings.push(RING_CHAT_IN);
  }
  if (obsEnabled) {
    rings[RING_OBS_IN] = { kind: 'record', capacityBytes: 4 * MiB, policy: 'drop-newest' };
    rings[RING_OBS_CONTROL] = { kind: 'record', capacityBytes: 1 * MiB, policy: 'drop-newest' };
    fanoutRings.push(RING_OBS_IN);
  }
  // Any output turns the compositor (scene → RGBA frames) and the encoder (frames → ffmpeg) on.
  const composeEnabled = config.compose.outputs.length > 0;
  if (composeEnabled) {
    rings[RING_COMPOSITOR_IN] = { kind: 'record', capacityBytes: 4 * MiB, policy: 'drop-newest' };
    // A few whole frames: the encoder reads them in place; a full ring drops the newest frame (counted).
    // Five: the encoder's jitter buffer keeps a frame queued, so a slot comes round to the
    // compositor a frame sooner after the encoder took it; the fifth keeps the margin a frame
    // has to be read by ffmpeg before its slot is rewritten (counted as torn risk) what it was.
    rings[RING_FRAMES] = { kind: 'slot', slots: 5, slotBytes: config.compose.width * config.compose.height * 4, mode: 'queue', policy: 'drop-newest' };
    rings[RING_COMPOSITOR_CONTROL] = { kind: 'record', capacityBytes: 1 * MiB, policy: 'drop-newest' };
    fanoutRings.push(RING_COMPOSITOR_IN);
    if (config.clips.enabled && config.clips.onMilestone) {
      rings[RING_ENCODER_IN] = { kind: 'record', capacityBytes: 1 * MiB, policy: 'drop-newest' };
      fanoutRings.push(RING_ENCODER_IN);
    }
  }
  // Frame capture: decoded RGB frames in a 'latest' slot ring the analysis workers read in place.
  const captureEnabled = config.capture.enabled;
  if (captureEnabled) {
    rings[RING_CAPTURE_FRAMES] = { kind: 'slot', slots: config.capture.slots, slotBytes: config.capture.width * config.capture.height * 3, mode: 'latest' };
  }
  // Clustered: the relay actor between this node's rings and Redis.
  const clustered = config.cluster.redis !== undefined;
  if (clustered) {
    rings[RING_CLUSTER_OUT] = { kind: 'record', capacityBytes: 8 * MiB, policy: 'drop-newest' };
    fanoutRings.push(RING_CLUSTER_OUT);
    for (let i = 0; i < gateways; i++) rings[clusterRing(i)] = { kind: 'record', capacityBytes: 8 * MiB, policy: 'drop-newest' };
  }
  const standby = config.restart.standby;

  const aggregator: AggregatorOptions = {
    inRings: ingestRings,
    outRings: fanoutRings,
    windowMs: config.aggregate.windowMs,
    seriesPoints: config.aggregate.seriesPoints,
    smoothingAlpha: config.aggregate.smoothingAlpha,
    attentionAlpha: config.aggregate.attentionAlpha,
    focusSquares: config.aggregate.focusSquares,
    burstPoints: config.aggregate.burstPoints,
    health: config.aggregate.health,
    milestones: config.aggregate.milestones,
    ...(recording ? { recordRing: RING_RECORD, recordExperience: config.recording.experience } : {}),
    unrecordedRings: [RING_REPLAY],
    ...(config.cluster.redis ? { cluster: { redis: config.cluster.redis, nodeId: clusterNodeId(config, inputs.port), leaseMs: config.cluster.leaseMs }, relayRing: RING_CLUSTER_OUT } : {}),
  };
  const ingest: IngestOptions = {
    ring: RING_NET,
    host: config.host,
    tcpPort: config.ingest.tcpPort,
    unixPath: config.ingest.unixPath,
    token: inputs.tokens.ingestToken,
    maxFrameBytes: config.ingest.maxFrameBytes,
    maxConnections: config.ingest.maxConnections,
    helloTimeoutMs: config.ingest.helloTimeoutMs,
    preAuthMaxBytes: config.ingest.preAuthMaxBytes,
    maxPreAuthPerAddress: config.ingest.maxPreAuthPerAddress,
  };
  const actors: SupervisorSpec['actors'] = [];
  if (config.demo.enabled) {
    const demo: DemoTrainerOptions = {
      ring: RING_DEMO,
      run: config.demo.run,
      stepsPerSec: config.demo.stepsPerSec,
      movesPerSec: config.demo.movesPerSec,
      crashEveryMs: config.demo.crashEveryMs,
      experience: true,
    };
    actors.push({ name: DEMO_TRAINER, module: new URL('./actors/demo-trainer/index.js', import.meta.url), out: [RING_DEMO], options: demo, standby });
  }
  if (config.ingest.tcpPort >= 0 || config.ingest.unixPath !== '') {
    actors.push({ name: INGEST, module: new URL('./actors/ingest/index.js', import.meta.url), out: [RING_NET], options: ingest, standby });
  }
  for (let i = 0; i < gateways; i++) {
    const gateway: GatewayOptions = {
      index: i,
      host: config.host,
      port: inputs.port,
      inRing: fanoutRing(i),
      controlRing: controlRing(i),
      ...(clustered ? { clusterRing: clusterRing(i) } : {}),
      outRing: ingestRing(i),
      ingestToken: inputs.tokens.ingestToken,
      adminToken: inputs.tokens.adminToken,
      softLimitBytes: config.fanout.softLimitBytes,
      hardLimitBytes: config.fanout.hardLimitBytes,
      maxFps: config.fanout.maxFps,
      maxClients: config.fanout.maxClients,
      snapshotIntervalMs: config.fanout.snapshotIntervalMs,
      compression: config.fanout.compression,
      maxFrameBytes: config.ingest.maxFrameBytes,
      preAuth: { helloTimeoutMs: config.ingest.helloTimeoutMs, maxBytes: config.ingest.preAuthMaxBytes, maxPerAddress: config.ingest.maxPreAuthPerAddress },
      tickMs: config.aggregate.windowMs,
      experience: config.experience,
      recordingsDir,
      clipsDir: join(config.dataDir, 'clips'),
    };
    actors.push({ name: gatewayName(i), module: new URL('./actors/gateway/index.js', import.meta.url), in: [fanoutRing(i), controlRing(i), ...(clustered ? [clusterRing(i)] : [])], out: [ingestRing(i)], options: gateway, standby, nativeHandles: true });
  }
  if (chatEnabled) {
    const chat: ChatOptions = {
      inRing: RING_CHAT_IN,
      channel: config.twitch.channel!.replace(/^#/, '').toLowerCase(),
      server: config.twitch.server,
      username: config.twitch.username,
      token: config.twitch.token,
      credentialsFile: config.twitch.credentialsFile,
      predictionSeconds: config.twitch.predictionSeconds,
      userCooldownMs: config.twitch.userCooldownMs,
      moderator: config.twitch.moderator,
      milestonePredictions: config.twitch.milestonePredictions,
      ...singleton(config, inputs.port),
    };
    actors.push({ name: CHAT, module: new URL('./actors/chat/index.js', import.meta.url), in: [RING_CHAT_IN], options: chat, standby });
  }
  if (obsEnabled) {
    const obs: ObsOptions = {
      inRing: RING_OBS_IN,
      controlRing: RING_OBS_CONTROL,
      url: config.obs.url!,
      password: config.obs.password,
      scenes: config.obs.scenes,
      milestoneTextInput: config.obs.milestoneTextInput,
      performanceTextInput: config.obs.performanceTextInput,
      celebrationSeconds: config.obs.celebrationSeconds,
      performanceEveryMs: config.obs.performanceEveryMs,
      ...singleton(config, inputs.port),
    };
    actors.push({ name: OBS, module: new URL('./actors/obs/index.js', import.meta.url), in: [RING_OBS_IN, RING_OBS_CONTROL], options: obs, standby });
  }
  if (composeEnabled) {
    const { width, height, fps } = config.compose;
    // Captured streams reach the compositor straight from the capture ring (latest mode: any
    // number of readers, in place); their states come with the main thread's capture results.
    const compositor: CompositorOptions = {
      inRing: RING_COMPOSITOR_IN, outRing: RING_FRAMES, width, height, fps, controlRing: RING_COMPOSITOR_CONTROL,
      ...(captureEnabled ? { captureRing: RING_CAPTURE_FRAMES, captureWidth: config.capture.width, captureHeight: config.capture.height } : {}),
    };
    const encoder: EncoderOptions = {
      inRing: RING_FRAMES,
      width,
      height,
      fps,
      outputs: config.compose.outputs,
      bitrateKbps: config.compose.bitrateKbps,
      preset: config.compose.preset,
      keyframeSeconds: config.compose.keyframeSeconds,
      encoder: config.compose.encoder,
      audio: config.compose.audio,
      audioVolume: config.compose.audioVolume,
      ...(inputs.destinations ? { destinations: inputs.destinations } : {}),
      ...(config.clips.enabled ? { clips: { dir: join(config.dataDir, 'clips'), bufferSeconds: config.clips.bufferSeconds, maxCount: config.clips.maxCount, maxBytes: config.clips.maxBytes } } : {}),
      ...ffmpegOptions(inputs.ffmpeg),
    };
    const compositorIn = [RING_COMPOSITOR_IN, RING_COMPOSITOR_CONTROL, ...(captureEnabled ? [RING_CAPTURE_FRAMES] : [])];
    actors.push({ name: COMPOSITOR, module: new URL('./actors/compositor/index.js', import.meta.url), in: compositorIn, out: [RING_FRAMES], options: compositor, standby });
    const milestoneClips = config.clips.enabled && config.clips.onMilestone;
    if (milestoneClips) encoder.milestoneRing = RING_ENCODER_IN;
    actors.push({ name: ENCODER, module: new URL('./actors/encoder/index.js', import.meta.url), in: milestoneClips ? [RING_FRAMES, RING_ENCODER_IN] : [RING_FRAMES], options: encoder, standby });
  }
  if (captureEnabled) {
    const c = config.capture;
    const capture: CaptureActorOptions = {
      outRing: RING_CAPTURE_FRAMES,
      width: c.width,
      height: c.height,
      decoders: c.decoders > 0 ? c.decoders : Math.max(1, availableParallelism()),
      decoderSyncEvery: c.decoderSyncEvery,
      analysisThreads: c.analysisThreads,
      ...(c.templatesDir ? { templatesDir: c.templatesDir } : {}),
      ...(c.twitchGqlUrl ? { gqlUrl: c.twitchGqlUrl } : {}),
      ...(c.twitchUsherUrl ? { usherUrl: c.twitchUsherUrl } : {}),
      fetchTimeoutMs: c.fetchTimeoutMs,
      offlineRecheckMs: c.offlineRecheckMs,
      intervalSec: c.interval ?? 3,
      maxConcurrent: c.maxConcurrent ?? 32,
      quality: c.quality ?? '480p',
      ...ffmpegOptions(inputs.ffmpeg),
      ...(config.cluster.redis ? { cluster: { redis: config.cluster.redis, nodeId: clusterNodeId(config, inputs.port) } } : {}),
    };
    actors.push({ name: CAPTURE, module: new URL('./actors/capture/index.js', import.meta.url), out: [RING_CAPTURE_FRAMES], options: capture });
  }
  actors.push({ name: AGGREGATOR, module: new URL('./actors/aggregator/index.js', import.meta.url), in: ingestRings, out: recording ? [...fanoutRings, RING_RECORD] : fanoutRings, options: aggregator, standby });
  // After the aggregator: a graceful stop then records what the aggregator's final drain copied.
  const r = config.recording;
  const recorder: RecorderOptions = {
    ...(recording ? { inRing: RING_RECORD } : {}),
    replayRing: RING_REPLAY,
    root: recordingsDir,
    bounds: { segmentBytes: r.segmentBytes, maxBytesPerRun: r.maxBytesPerRun, maxBytesTotal: r.maxBytesTotal, maxAgeHours: r.maxAgeHours },
    maxReplays: r.maxReplays,
    ...(r.replayDir !== undefined ? { startReplay: { dir: r.replayDir, speed: r.replaySpeed } } : {}),
  };
  actors.push({ name: RECORDER, module: new URL('./actors/recorder/index.js', import.meta.url), in: recording ? [RING_RECORD] : [], out: [RING_REPLAY], options: recorder, standby });

  if (clustered) {
    const cluster: ClusterActorOptions = {
      nodeId: clusterNodeId(config, inputs.port),
      redisUrl: config.cluster.redis!,
      inRing: RING_CLUSTER_OUT,
      outRings: Array.from({ length: gateways }, (_, i) => clusterRing(i)),
    };
    // After the aggregator: a graceful stop runs in spec order, so the relay publishes what the
    // aggregator wrote last. No standby: a pre-started copy would hold Redis connections for nothing.
    actors.push({ name: CLUSTER, module: new URL('./actors/cluster/index.js', import.meta.url), in: [RING_CLUSTER_OUT], out: cluster.outRings, options: cluster });
  }
  return {
    strategy: config.restart.strategy,
    intensity: config.restart.intensity,
    periodMs: config.restart.periodMs,
    backoff: { initialMs: config.restart.backoffInitialMs, maxMs: config.restart.backoffMaxMs },
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    hangTimeoutMs: config.hangTimeoutMs,
    nativeHangGraceMs: config.nativeHangGraceMs,
    logLevel: config.logLevel,
    rings,
    actors,
  };
}
