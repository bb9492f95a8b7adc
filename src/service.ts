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
import { resolveTokens, type Tokens } from './shared/tokens.js';
import { RecordRing } from './shared/record-ring.js';
import { EventKind, encodeEvent, decodeEvent } from './shared/telemetry/event-codec.js';
import { writeIngestRecord } from './shared/telemetry/ring-records.js';
import { Supervisor } from './supervisor/supervisor.js';
import { createSystemdNotifier, type SystemdNotifier } from './supervisor/systemd-notify.js';
import { AGGREGATOR, RING_MAIN, serviceTopology } from './topology.js';
import { timingSafeEqual, createHash } from 'node:crypto';

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
  const tokens = resolveTokens(config, log);
  const port = await reservePort(config.host, config.port);
  // A producer port of 0 is resolved once here: an ingest actor restarted after a crash
  // must listen where its producers reconnect, not on a fresh random port.
  if (config.ingest.tcpPort === 0) config = { ...config, ingest: { ...config.ingest, tcpPort: await reservePort(config.host, 0) } };
  const store: StateStore = new SqliteStateStore(config.stateDbPath);
  const previous = store.get<StoredRuns>('telemetry', 'runs');

  const supervisor = new Supervisor(serviceTopology(config, { tokens, port }), log);
  const notifier: SystemdNotifier = createSystemdNotifier({ logger: log });
  const router = new HttpRouter(log);
  const adminDigest = digest(tokens.adminToken);
  const requireAdmin = (headers: Record<string, string>, query: URLSearchParams) => {
    const candidate = bearerToken(headers, query);
    if (!candidate || !timingSafeEqual(digest(candidate), adminDigest)) throw new HttpError(401, 'admin token required (Authorization: Bearer <admin token>)');
  };
  const mainRing = supervisor.ring<RecordRing>(RING_MAIN);

  router.get('/healthz', () => {
    const report = supervisor.health();
    return { status: report.ok ? 200 : 503, json: report };
  });
  router.get('/metrics', async () => ({ headers: { 'content-type': METRICS_CONTENT_TYPE }, body: await supervisor.metrics() }));
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
    const event = encodeEvent(EventKind.Milestone, { ...body, source: 'admin' });
    try {
      decodeEvent(event);
    } catch (error) {
      throw new HttpError(400, (error as Error).message);
    }
    const run = typeof body.run === 'string' ? body.run : 'default';
    if (!writeIngestRecord(mainRing, Date.now(), 0, run, event, 0, event.byteLength)) throw new HttpError(503, 'ingest ring full; try again');
    return { status: 202, json: { accepted: true } };
  });
  router.get('/api/admin/actors', async (req) => {
    requireAdmin(req.headers, req.query);
    return { json: supervisor.health() };
  });
  supervisor.provide('http', (request: ForwardedRequest) => router.dispatch(request));
  // A restarted gateway seeds its snapshot from the aggregator's retained messages.
  supervisor.provide('retained', () => supervisor.call(AGGREGATOR, 'retained'));

  try {
    await supervisor.start();
  } catch (error) {
    await supervisor.stop(2_000);
    store.close();
    throw error;
  }
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
      await notifier.stopping(reason);
      const result = await supervisor.stop(config.shutdownDeadlineMs);
      // The aggregator stops last and drains its rings; what it returns is the state to keep.
      const final = result.finals[AGGREGATOR] as { runs?: unknown[] } | undefined;
      if (final?.runs) store.put('telemetry', 'runs', { runs: final.runs, stoppedAt: new Date().toISOString() } satisfies StoredRuns);
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

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
