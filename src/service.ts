/**
 * The ringcast service: config → state store → supervisor (actor topology) → one
 * HTTP/WebSocket port → systemd readiness and watchdog. `stop()` is the graceful path
 * used for SIGTERM/SIGINT: stop intake, drain rings, flush state, close.
 */
import type { Logger } from 'pino';
import type { Config } from './shared/config.js';
import { startHttpServer, type HttpServer } from './shared/http-server.js';
import { SqliteStateStore, type StateStore } from './shared/state-store.js';
import { Supervisor } from './supervisor/supervisor.js';
import { createSystemdNotifier, type SystemdNotifier } from './supervisor/systemd-notify.js';
import { demoTopology, DEMO_AGGREGATOR } from './topology.js';
import type { DemoSummary } from './actors/demo-aggregator/index.js';

export interface Service {
  readonly supervisor: Supervisor;
  readonly http: HttpServer;
  readonly store: StateStore;
  /** Resolves with the process exit code once the service has stopped for any reason. */
  readonly done: Promise<number>;
  stop(reason: string): Promise<number>;
}

interface DemoTotals { runs: number; records: number; lastSeq: number; stoppedAt: string | null }

export async function startService(config: Config, log: Logger): Promise<Service> {
  const store: StateStore = new SqliteStateStore(config.stateDbPath);
  const previous = store.get<DemoTotals>('demo', 'totals');
  if (previous) log.info({ previous }, 'demo totals from the previous run');

  const supervisor = new Supervisor(demoTopology(config), log);
  const notifier: SystemdNotifier = createSystemdNotifier({ logger: log });
  let http: HttpServer | undefined;
  try {
    await supervisor.start();
    http = await startHttpServer({
      host: config.host,
      port: config.port,
      health: () => supervisor.health(),
      metrics: () => supervisor.metrics(),
      registry: supervisor.registry,
      logger: log,
    });
  } catch (error) {
    await supervisor.stop(2_000);
    store.close();
    throw error;
  }
  const server = http;
  if (config.demo.enabled) {
    server.get('/api/demo', async () => ({ json: await supervisor.call(DEMO_AGGREGATOR, 'summary') }));
  }
  log.info({ host: server.host, port: server.port, actors: supervisor.actorNames() }, `ringcast listening on http://${server.host}:${server.port}`);
  await notifier.ready(`serving on ${server.host}:${server.port}`);
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
      await server.close();
      // The aggregator's stop() drained its ring; what it returns is the state to flush.
      const summary = result.finals[DEMO_AGGREGATOR] as DemoSummary | undefined;
      if (summary) {
        store.put('demo', 'totals', {
          runs: (previous?.runs ?? 0) + 1,
          records: (previous?.records ?? 0) + summary.records,
          lastSeq: summary.lastSeq,
          stoppedAt: new Date().toISOString(),
        } satisfies DemoTotals);
      }
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

  return { supervisor, http: server, store, done, stop: (reason) => stop(reason) };
}
