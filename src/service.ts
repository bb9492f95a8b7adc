/**
 * The ringcast service, as wiring only: config → tokens → state store → supervisor (actor
 * topology) → the main-thread services (src/services/<name>/, each registering its routes) →
 * start → systemd readiness and watchdog. `stop()` is the graceful path used for SIGTERM/SIGINT:
 * stop intake, drain rings, flush state, close.
 *
 * The main thread does not listen: the gateway threads own the port (SO_REUSEPORT) and
 * forward the HTTP routes only the main thread can answer (health, metrics, admin) here.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Counter } from 'prom-client';
import type { Config } from './shared/config.js';
import { HttpRouter } from './shared/http-router.js';
import { SqliteStateStore, type StateStore } from './shared/state-store.js';
import { resolveTokens, type Tokens } from './shared/tokens.js';
import { ensurePrivateDir } from './shared/private-files.js';
import { reservePort } from './shared/reserve-port.js';
import type { RecordRing } from './shared/record-ring.js';
import { costlyRouteGuard } from './shared/rate-limit.js';
import { Supervisor } from './supervisor/supervisor.js';
import { createSystemdNotifier, type SystemdNotifier } from './supervisor/systemd-notify.js';
import { AGGREGATOR, controlRings, gatewayCount, serviceTopology } from './topology.js';
import { adminGuard } from './services/admin-auth.js';
import { ControlRings, type PublishOverlay } from './services/control-rings.js';
import { provideActorUpcalls, replaySnapshotsOnRestart } from './services/actor-upcalls.js';
import { registerHealthService } from './services/health/service.js';
import { resolveServiceFfmpeg } from './services/health/ffmpeg-status.js';
import { registerControlService } from './services/control/service.js';
import { registerSceneService, type SceneService } from './services/scene/service.js';
import { startCapture } from './services/capture/index.js';
import { readStreamsFile } from './services/capture/streams-file.js';
import { registerRecordingsService } from './services/recordings/service.js';
import { checkReplayDir } from './services/recordings/replay-dir.js';
import { startCluster } from './services/cluster/index.js';
import { clusterTokens } from './services/cluster/cluster-tokens.js';
import { startSharedState } from './services/cluster/shared-state.js';
import { controlCluster } from './services/cluster/control-sync.js';
import { encoderPreflight } from './actors/encoder/preflight.js';
import { registerClipsService } from './services/clips/service.js';
import { startStreamAudio } from './services/stream-audio/service.js';

export interface Service {
  readonly supervisor: Supervisor;
  readonly host: string;
  readonly port: number;
  readonly tokens: Tokens;
  readonly store: StateStore;
  readonly router: HttpRouter;
  /** The main thread's overlay messages, out through every gateway's control ring. */
  readonly overlays: ControlRings;
  /** Resolves with the process exit code once the service has stopped for any reason. */
  readonly done: Promise<number>;
  stop(reason: string): Promise<number>;
}

interface StoredRuns { runs: unknown[]; stoppedAt: string }

export async function startService(config: Config, log: Logger): Promise<Service> {
  // Files the operator named are read before anything starts: a bad path is a ConfigError.
  const streamsFile = config.capture.streamsFile ? { path: config.capture.streamsFile, text: readStreamsFile(config.capture.streamsFile) } : undefined;
  if (config.recording.replayDir !== undefined) checkReplayDir(config.recording.replayDir);
  const encoder = encoderPreflight(config, process.env);
  ensurePrivateDir(config.dataDir, log);
  // Clustered, tokens left unset in config are shared through Redis (one set for every node).
  const tokens = await clusterTokens(config, resolveTokens(config, log), log);
  const port = await reservePort(config.host, config.port);
  // A producer port of 0 is resolved once here: an ingest actor restarted after a crash
  // must listen where its producers reconnect, not on a fresh random port.
  if (config.ingest.tcpPort === 0) config = { ...config, ingest: { ...config.ingest, tcpPort: await reservePort(config.host, 0) } };
  const ffmpeg = resolveServiceFfmpeg(config, log);
  const topology = serviceTopology(config, { tokens, port, ffmpeg: ffmpeg.availability, destinations: encoder.destinations });
  const supervisor = new Supervisor(topology, log);
  ffmpeg.register(supervisor.registry);
  const notifier: SystemdNotifier = createSystemdNotifier({ logger: log });
  const router = new HttpRouter(log);
  const requireAdmin = adminGuard(tokens.adminToken);
  const controls = new ControlRings(Object.fromEntries(Object.values(controlRings(config)).map((name) => [name, supervisor.ring<RecordRing>(name)])), supervisor.registry);
  const publish: PublishOverlay = (message) => controls.publish(message);
  // Anonymous routes that cost CPU (previews, thumbnails) share one budget per client address.
  const limitCostly = costlyRouteGuard({
    perMinute: config.http.rateLimitPerMin, burst: config.http.rateLimitBurst,
    refused: new Counter({ name: 'ringcast_http_rate_limited_total', help: 'Requests answered 429 because the client address spent its budget for costly routes, by route', labelNames: ['route'], registers: [supervisor.registry] }),
  });

  // Unclustered (no cluster.redis) this only answers GET /api/cluster for this node.
  const cluster = startCluster(config, { router, supervisor, log, port });
  // Clustered, the state store is shared through Redis and capture is split over the nodes.
  const shared = cluster ? await startSharedState(config, cluster, supervisor, log) : undefined;
  const store: StateStore = shared?.store ?? new SqliteStateStore(config.stateDbPath);
  const previous = store.get<StoredRuns>('telemetry', 'runs');
  const readiness = registerHealthService({
    router, supervisor, ffmpeg, rings: Object.keys(topology.rings ?? {}), demo: config.demo.enabled,
    ...(cluster ? { advisory: [{ name: 'cluster', check: () => cluster.check() }] } : {}),
  });
  registerControlService({
    router, supervisor, requireAdmin, publish, previousRuns: previous?.runs ?? [],
    ...(cluster && shared ? { cluster: controlCluster({ nodeId: cluster.nodeId, redis: cluster.redis, membership: cluster.membership, store: shared.store, leaseMs: config.cluster.leaseMs }) } : {}),
  });
  registerRecordingsService({ router, supervisor, requireAdmin });
  provideActorUpcalls({ supervisor, store, router, controls });
  replaySnapshotsOnRestart(supervisor, controls, gatewayCount(config), log);
  // Scenes bind video layers to registered streams: capture first, and a preset follows its streams.
  let sceneService: SceneService | undefined;
  const capture = startCapture({
    config, router, store, supervisor, requireAdmin, publish, ffmpeg, log, limitCostly, ...(streamsFile ? { streamsFile } : {}),
    ...(shared ? { cluster: shared.capture } : {}),
    onStreamsChanged: () => sceneService?.streamsChanged(),
  });
  // Before start: the compositor asks for the saved scene (scene.get) as it starts.
  sceneService = registerSceneService({
    router, supervisor, store, requireAdmin, publish, log, limitCostly,
    width: config.compose.width, height: config.compose.height, fps: config.compose.fps,
    previewThreads: config.http.previewThreads, previewQueue: config.http.previewQueue,
    streams: () => capture.streams(),
    ...(config.compose.scene ? { preset: config.compose.scene } : {}),
  });
  registerClipsService({ router, supervisor, requireAdmin, log, dir: join(config.dataDir, 'clips'), enabled: config.clips.enabled, bufferSeconds: config.clips.bufferSeconds });
  const streamAudio = startStreamAudio({ store, supervisor, log });

  try {
    await supervisor.start();
  } catch (error) {
    streamAudio.close();
    await supervisor.stop(2_000);
    await cluster?.close();
    readiness.close();
    capture.close();
    await sceneService.close();
    store.close();
    throw error;
  }
  readiness.resetBaseline();
  log.info({ host: config.host, port, actors: supervisor.actorNames() }, `ringcast listening on http://${config.host}:${port}`);
  await notifier.ready(`serving on ${config.host}:${port}`);
  notifier.startWatchdog(() => supervisor.health().ok);

  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((resolve) => { resolveDone = resolve; });
  let stopping: Promise<number> | undefined;

  const stop = (reason: string, exitCode = 0): Promise<number> => {
    stopping ??= (async () => {
      const started = Date.now();
      log.info({ reason }, 'stopping: intake first, then drain and flush');
      notifier.stopWatchdog();
      readiness.close();
      streamAudio.close();
      capture.stopIntake();
      await notifier.stopping(reason);
      const result = await supervisor.stop(config.shutdownDeadlineMs);
      // The aggregator stops last and drains its rings; what it returns is the state to keep.
      const final = result.finals[AGGREGATOR] as { runs?: unknown[] } | undefined;
      if (final?.runs) store.put('telemetry', 'runs', { runs: final.runs, stoppedAt: new Date().toISOString() } satisfies StoredRuns);
      capture.close();
      await cluster?.close();
      await sceneService.close();
      store.close();
      log.info({ clean: result.clean, forced: result.forced, ms: Date.now() - started }, result.clean ? 'stopped cleanly' : 'stopped; some actors had to be terminated');
      resolveDone(exitCode);
      return exitCode;
    })();
    return stopping;
  };

  supervisor.once('escalate', (reason) => {
    log.fatal({ reason }, 'giving up: the supervisor escalated; exiting non-zero so systemd can act');
    void stop(`escalation: ${reason}`, 1);
  });

  return { supervisor, host: config.host, port, tokens, store, router, overlays: controls, done, stop: (reason) => stop(reason) };
}
