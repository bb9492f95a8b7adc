/**
 * The ringcast service: config → tokens → state store → supervisor (actor topology) →
 * gateways listening on one port → systemd readiness and watchdog. `stop()` is the
 * graceful path used for SIGTERM/SIGINT: stop intake, drain rings, flush state, close.
 *
 * The main thread does not listen: the gateway threads own the port (SO_REUSEPORT) and
 * forward the HTTP routes only the main thread can answer (health, metrics, admin) here.
 */
import { createServer } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from './shared/config.js';
import { HttpError, METRICS_CONTENT_TYPE } from './shared/http-server.js';
import { HttpRouter, bearerToken, type ForwardedRequest } from './shared/http-router.js';
import { SqliteStateStore, type StateStore } from './shared/state-store.js';
import { resolveTokens, tokenMatcher, type Tokens } from './shared/tokens.js';
import { ensurePrivateDir } from './shared/private-files.js';
import { RecordRing } from './shared/record-ring.js';
import { EventKind, encodeEvent, decodeEvent } from './shared/telemetry/event-codec.js';
import { writeIngestRecord } from './shared/telemetry/ring-records.js';
import { Supervisor } from './supervisor/supervisor.js';
import { createSystemdNotifier, type SystemdNotifier } from './supervisor/systemd-notify.js';
import { AGGREGATOR, CAPTURE, CHAT, DEMO_TRAINER, INGEST, OBS, RING_DEMO, RING_MAIN, RING_NET, serviceTopology } from './topology.js';
import { Readiness } from './services/health/readiness.js';
import type { IngestStats } from './actors/ingest/index.js';
import { registerCaptureService } from './services/capture/service.js';
import { readStreamsFile } from './services/capture/streams-file.js';
import { startDemoStreams, type DemoStreams } from './services/capture/demo-streams.js';
import { resolveServiceFfmpeg } from './services/health/ffmpeg-status.js';
import path from 'node:path';
import { LEVELS, type Level } from './shared/telemetry/channels.js';
import { runNameProblem } from './shared/telemetry/run-name.js';
import { registerSceneService } from './services/scene/service.js';
import { Counter } from 'prom-client';
import { costlyRouteGuard } from './shared/rate-limit.js';

export interface Service {
  readonly supervisor: Supervisor;
  readonly host: string;
  readonly port: number;
  readonly tokens: Tokens;
  readonly store: StateStore;
  readonly router: HttpRouter;
  /** Resolves with the process exit code once the service has stopped for any reason. */
  readonly done: Promise<number>;
  stop(reason: string): Promise<number>;
}

interface StoredRuns { runs: unknown[]; stoppedAt: string }

/**
 * Bind the port once, exclusively, and let it go: this both resolves port 0 to a real port
 * and refuses to start when anything (another ringcast included) already listens there —
 * gateways bind with SO_REUSEPORT, which would otherwise quietly share the port.
 */
export function reservePort(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => {
      reject(new Error(error.code === 'EADDRINUSE'
        ? `cannot listen on ${host}:${port}: the port is already in use`
        : `cannot listen on ${host}:${port}: ${error.code === 'EADDRNOTAVAIL' ? `${host} is not an address of this machine` : error.message}`));
    });
    probe.listen({ host, port, exclusive: true }, () => {
      const actual = (probe.address() as { port: number }).port;
      probe.close(() => resolve(actual));
    });
  });
}

export async function startService(config: Config, log: Logger): Promise<Service> {
  // Files the operator named are read before anything starts: a bad path is a ConfigError.
  const streamsFile = config.capture.streamsFile ? { path: config.capture.streamsFile, text: readStreamsFile(config.capture.streamsFile) } : undefined;
  ensurePrivateDir(config.dataDir, log);
  const tokens = resolveTokens(config, log);
  const port = await reservePort(config.host, config.port);
  // A producer port of 0 is resolved once here: an ingest actor restarted after a crash
  // must listen where its producers reconnect, not on a fresh random port.
  if (config.ingest.tcpPort === 0) config = { ...config, ingest: { ...config.ingest, tcpPort: await reservePort(config.host, 0) } };
  const store: StateStore = new SqliteStateStore(config.stateDbPath);
  const previous = store.get<StoredRuns>('telemetry', 'runs');

  const ffmpeg = resolveServiceFfmpeg(config, log);
  const topology = serviceTopology(config, { tokens, port, ffmpeg: ffmpeg.availability });
  const supervisor = new Supervisor(topology, log);
  ffmpeg.register(supervisor.registry);
  const notifier: SystemdNotifier = createSystemdNotifier({ logger: log });
  const router = new HttpRouter(log);
  const isAdminToken = tokenMatcher(tokens.adminToken);
  const requireAdmin = (headers: Record<string, string>, query: URLSearchParams) => {
    const candidate = bearerToken(headers, query);
    if (!isAdminToken(candidate)) throw new HttpError(401, 'admin token required (Authorization: Bearer <admin token>)');
  };
  const mainRing = supervisor.ring<RecordRing>(RING_MAIN);

  const fireMilestone = (body: Record<string, unknown>) => {
    // The same run-name rule producers are held to: the name reaches metric labels and overlays.
    const runProblem = body.run === undefined ? undefined : runNameProblem(body.run);
    if (runProblem !== undefined) throw new HttpError(400, `"run": ${runProblem}`);
    let event: Uint8Array;
    try {
      // Both throw on what the client sent (meta over 65,535 bytes, a field of the wrong type).
      event = encodeEvent(EventKind.Milestone, { ...body, source: 'admin' });
      decodeEvent(event);
    } catch (error) {
      throw new HttpError(400, `milestone: ${(error as Error).message}`);
    }
    const run = typeof body.run === 'string' ? body.run : 'default';
    if (!writeIngestRecord(mainRing, Date.now(), 0, run, event, 0, event.byteLength)) throw new HttpError(503, 'ingest ring full; try again');
  };

  // Liveness: the actors run. A part degraded for want of ffmpeg is named, not fatal.
  router.get('/healthz', () => {
    const report = supervisor.health();
    const details = ffmpeg.details();
    return { status: report.ok ? 200 : 503, json: Object.keys(details).length > 0 ? { ...report, details } : report };
  });
  const readiness = new Readiness({
    supervisor, ffmpeg, rings: Object.keys(topology.rings ?? {}),
    producers: [
      { ring: RING_NET, connected: async () => (supervisor.actorNames().includes(INGEST) ? ((await supervisor.call(INGEST, 'stats', [], 1_000)) as IngestStats).transports.reduce((n, t) => n + t.connections, 0) : 0) },
      ...(config.demo.enabled ? [{ ring: RING_DEMO, connected: async () => (supervisor.health().actors[DEMO_TRAINER] === 'running' ? 1 : 0) }] : []),
    ],
  });
  // Readiness: doing its job now (actors up, ffmpeg where needed, no ring dropping, data fresh).
  router.get('/readyz', async () => {
    const report = await readiness.check();
    return { status: report.ready ? 200 : 503, json: report };
  });
  // Merging every thread's metrics costs the main thread tens of ms: scrapes that arrive
  // while one is being merged share its result instead of each paying for their own.
  let scrape: Promise<string> | undefined;
  const metrics = async () => {
    scrape ??= supervisor.metrics().finally(() => { scrape = undefined; });
    return { headers: { 'content-type': METRICS_CONTENT_TYPE }, body: await scrape };
  };
  router.get('/metrics', metrics);
  // The frame processor's scrapers asked for /api/metrics.
  router.get('/api/metrics', metrics);
  router.get('/api/runs', async () => ({
    json: { runs: await supervisor.call(AGGREGATOR, 'runs'), previous: previous?.runs ?? [] },
  }));
  router.get('/api/state', async () => ({ json: await supervisor.call(AGGREGATOR, 'snapshot') }));
  // Admin: inject a milestone as if a trainer had sent it (the overlay/OBS test-fire button).
  router.post('/api/admin/milestone', (req) => {
    requireAdmin(req.headers, req.query);
    const body = req.json<Record<string, unknown>>();
    if (body === null || typeof body !== 'object' || typeof body.name !== 'string' || body.name.length === 0) {
      throw new HttpError(400, 'body must be a JSON object with "name" (and optionally "message", "run", "value")');
    }
    fireMilestone(body);
    return { status: 202, json: { accepted: true } };
  });
  router.get('/api/admin/actors', async (req) => {
    requireAdmin(req.headers, req.query);
    return { json: supervisor.health() };
  });
  // The streamer's control state, relayed to every overlay page on the `control` channel.
  const control: ControlState = { level: null, paused: false, scene: null, updated_at: Date.now() };
  const relayControl = () => relayToOverlays(mainRing, { type: 'control', channel: 'control', key: 'control', retain: true, critical: true, data: control });
  const actorStatus = async (name: string) => (supervisor.actorNames().includes(name) ? supervisor.call(name, 'status').catch((error: Error) => ({ error: error.message })) : null);
  const requireActor = (name: string, what: string) => {
    if (!supervisor.actorNames().includes(name)) throw new HttpError(503, `${what} is not configured (${name === CHAT ? 'set --twitch-channel' : 'set --obs-url'})`);
  };
  const callActor = async (name: string, method: string, args: unknown[]) => {
    try {
      return await supervisor.call(name, method, args);
    } catch (error) {
      throw new HttpError(409, (error as Error).message);
    }
  };
  router.get('/api/control', async (req) => {
    requireAdmin(req.headers, req.query);
    return { json: { ...control, chat: await actorStatus(CHAT), obs: await actorStatus(OBS) } };
  });
  router.post('/api/control', async (req) => {
    requireAdmin(req.headers, req.query);
    const body = req.json<Record<string, unknown>>();
    if (body === null || typeof body !== 'object' || typeof body.action !== 'string') throw new HttpError(400, 'body must be {"action": …}; actions: level, pause, resume, scene, prediction_start, prediction_stop, milestone');
    switch (body.action) {
      case 'level':
        if (!(LEVELS as readonly unknown[]).includes(body.level)) throw new HttpError(400, `level must be one of ${LEVELS.join(', ')}`);
        control.level = body.level as Level;
        break;
      case 'pause':
      case 'resume':
        control.paused = body.action === 'pause';
        break;
      case 'scene': {
        requireActor(OBS, 'OBS');
        const result = await callActor(OBS, 'setScene', [body.preset]);
        control.scene = String(body.preset);
        control.updated_at = Date.now();
        relayControl();
        return { json: { ok: true, control, result } };
      }
      case 'prediction_start':
      case 'prediction_stop': {
        requireActor(CHAT, 'Twitch chat');
        const method = body.action === 'prediction_start' ? 'startPrediction' : 'stopPrediction';
        const result = (await callActor(CHAT, method, [{ by: 'control', cancel: body.cancel === true }])) as { ok: boolean; error?: string };
        // The game refused (one already running, nothing to stop): a conflict, not a success.
        if (!result?.ok) throw new HttpError(409, result?.error ?? `${method} refused`);
        return { json: { ok: true, result } };
      }
      case 'milestone': {
        if (typeof body.name !== 'string' || body.name.length === 0) throw new HttpError(400, 'milestone needs "name"');
        fireMilestone({ name: body.name, message: body.message, run: body.run });
        return { status: 202, json: { ok: true } };
      }
      default:
        throw new HttpError(400, `unknown action ${JSON.stringify(body.action)}; actions: level, pause, resume, scene, prediction_start, prediction_stop, milestone`);
    }
    control.updated_at = Date.now();
    relayControl();
    return { json: { ok: true, control } };
  });

  // State store access for actors (prediction games and the like), namespaced by the caller.
  supervisor.provide('state.get', (ns: string, key: string) => store.get(ns, key));
  supervisor.provide('state.put', (ns: string, key: string, value: unknown) => { store.put(ns, key, value); return true; });
  supervisor.provide('state.list', (ns: string) => store.list(ns));
  supervisor.provide('http', (request: ForwardedRequest) => router.dispatch(request));
  // A restarted gateway seeds its snapshot from the aggregator's retained messages.
  supervisor.provide('retained', () => supervisor.call(AGGREGATOR, 'retained'));

  // Anonymous routes that cost CPU (previews, thumbnails) share one budget per client address.
  const limitCostly = costlyRouteGuard({
    perMinute: config.http.rateLimitPerMin, burst: config.http.rateLimitBurst,
    refused: new Counter({ name: 'ringcast_http_rate_limited_total', help: 'Requests answered 429 because the client address spent its budget for costly routes, by route', labelNames: ['route'], registers: [supervisor.registry] }),
  });

  // Before start: the compositor asks for the saved scene (scene.get) as it starts.
  const sceneService = registerSceneService({
    router, supervisor, store, requireAdmin, log, limitCostly,
    width: config.compose.width, height: config.compose.height, fps: config.compose.fps,
    previewThreads: config.http.previewThreads, previewQueue: config.http.previewQueue,
  });

  // Frame capture: registry routes work with or without the capture actor (--no-capture).
  const configOverrides: Record<string, unknown> = {};
  if (config.capture.interval !== undefined) configOverrides.capture_interval = config.capture.interval;
  if (config.capture.maxConcurrent !== undefined) configOverrides.max_concurrent = config.capture.maxConcurrent;
  if (config.capture.quality !== undefined) configOverrides.quality = config.capture.quality;
  const capture = registerCaptureService({
    router, store, supervisor, actor: CAPTURE, requireAdmin, log, limitCostly,
    relay: (rec) => { relayToOverlays(mainRing, { type: 'capture_result', channel: 'capture', key: rec.stream, data: rec }); },
    historyLength: config.capture.historyLength,
    ...(streamsFile ? { streamsFile } : {}),
    configOverrides,
    extraStatus: () => {
      const unavailable = ffmpeg.details();
      return Object.keys(unavailable).length > 0 ? { unavailable } : {};
    },
  });

  // `npm start` demo: local live HLS streams to capture (no Twitch needed), made in the
  // background so start-up does not wait for ffmpeg.
  let demoStreams: DemoStreams | null = null;
  let stopped = false;
  const demoDir = path.resolve(config.dataDir, 'demo-hls');
  const registryIsDemo = capture.registry.count() === 0 || capture.registry.list().some((s) => s.name.startsWith(demoDir));
  const media = ffmpeg.availability;
  const wantDemoStreams = config.demo.enabled && config.capture.enabled && config.capture.demoStreams > 0 && registryIsDemo;
  if (wantDemoStreams && !media.ok) {
    log.warn({ reason: media.reason }, 'demo streams not made: they need ffmpeg');
  } else if (wantDemoStreams && media.ok) {
    startDemoStreams({ dir: demoDir, count: config.capture.demoStreams, ffmpegPath: media.ffmpeg.path })
      .then((d) => {
        if (stopped) return d.stop();
        demoStreams = d;
        capture.addStreams(d.playlists);
        log.info({ streams: d.playlists.length }, 'demo streams registered for capture');
      })
      .catch((err: Error) => log.warn({ err }, 'demo streams not available (capture still works for registered streams)'));
  }

  try {
    await supervisor.start();
  } catch (error) {
    await supervisor.stop(2_000);
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
      stopped = true;
      (demoStreams as DemoStreams | null)?.stop();
      await notifier.stopping(reason);
      const result = await supervisor.stop(config.shutdownDeadlineMs);
      // The aggregator stops last and drains its rings; what it returns is the state to keep.
      const final = result.finals[AGGREGATOR] as { runs?: unknown[] } | undefined;
      if (final?.runs) store.put('telemetry', 'runs', { runs: final.runs, stoppedAt: new Date().toISOString() } satisfies StoredRuns);
      capture.close();
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

  return { supervisor, host: config.host, port, tokens, store, router, done, stop: (reason) => stop(reason) };
}

interface ControlState { level: Level | null; paused: boolean; scene: string | null; updated_at: number }

/** Write an overlay message into a ring the aggregator reads; it relays it to every gateway. */
export function relayToOverlays(ring: RecordRing, message: { type: string; channel: string; key?: string; retain?: boolean; critical?: boolean; data: unknown }): boolean {
  const event = encodeEvent(EventKind.Relay, message);
  return writeIngestRecord(ring, Date.now(), 0, 'default', event, 0, event.byteLength);
}
