/**
 * Entry point: `node dist/src/main.js [flags]` (what `npm start` and the systemd unit run).
 * Exit codes: 0 after a graceful stop, 1 when the supervisor escalated or start failed,
 * 2 for a configuration error (the message names the key, the value and what is allowed).
 */
import { ConfigError, loadConfig } from './shared/config.js';
import { createLogger } from './shared/logger.js';
import { startService } from './service.js';

let config;
try {
  config = loadConfig(process.argv.slice(2), process.env);
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`ringcast: ${error.message}\n`);
    process.exit(2);
  }
  throw error;
}

const log = createLogger(config.logLevel);
const deadlineMs = config.shutdownDeadlineMs;

// Signal handlers go in before start-up: a SIGTERM that lands while actors are still
// starting (or right after the "listening" line) must mean a graceful stop, not
// Node's default instant death.
let stopSignal: NodeJS.Signals | undefined;
let stopService: ((reason: string) => Promise<number>) | undefined;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    stopSignal ??= signal;
    // Backstop: if a bug keeps stop() from finishing, still exit inside systemd's TimeoutStopSec.
    setTimeout(() => {
      log.error({ deadlineMs }, 'graceful stop overran its deadline; exiting anyway');
      process.exit(1);
    }, deadlineMs + 1_500).unref();
    void stopService?.(signal);
  });
}

let service;
try {
  service = await startService(config, log);
} catch (error) {
  log.fatal({ err: error }, `ringcast failed to start: ${(error as Error).message}`);
  process.exit(1);
}
stopService = service.stop;
if (stopSignal) void service.stop(stopSignal);
// A second signal, or a stop that overruns the deadline, must not leave the process hanging.
const code = await service.done;
process.exit(code);
