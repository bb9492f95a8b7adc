/**
 * Entry point: `node dist/src/main.js [flags]` (what `npm start` and the systemd unit run).
 * Exit codes: 0 after a graceful stop, 1 when the supervisor escalated or start failed,
 * 2 for a configuration error (the message names the key, the value and what is allowed).
 * Killed by SIGKILL (after a fatal log line) when a gateway thread hung for good: see
 * supervisor/process-exit.ts for why no exit code is possible then.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, configHelpText, loadConfig } from './shared/config.js';
import { createLogger } from './shared/logger.js';
import { projectRoot } from './shared/runtime-path.js';
import { startService } from './service.js';
import { LooseSecretFileError } from './shared/private-files.js';
import { exitAfterSupervisor, exitProcess } from './supervisor/process-exit.js';

const args = process.argv.slice(2);
// `-h` is --host (the frame processor's flag), so help is long-only.
if (args.includes('--help')) {
  process.stdout.write(configHelpText());
  process.exit(0);
}
if (args.includes('--version')) {
  const pkg = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string };
  process.stdout.write(`ringcast ${pkg.version}\n`);
  process.exit(0);
}

let config;
try {
  config = loadConfig(args, process.env);
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
let liveNativeThreads: () => string[] = () => [];
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    stopSignal ??= signal;
    // Backstop: if a bug keeps stop() from finishing, still exit inside systemd's TimeoutStopSec.
    setTimeout(() => {
      log.error({ deadlineMs }, 'graceful stop overran its deadline; exiting anyway');
      exitProcess(1, liveNativeThreads(), log);
    }, deadlineMs + 1_500).unref();
    void stopService?.(signal);
  });
}

let service;
try {
  service = await startService(config, log);
} catch (error) {
  // A file the config names that cannot be used (missing, or a secret others can read) is
  // found only at start: still the operator's to fix, so exit 2 like any config error.
  if (error instanceof ConfigError || error instanceof LooseSecretFileError) {
    process.stderr.write(`ringcast: ${error.message}\n`);
    process.exit(2);
  }
  log.fatal({ err: error }, `ringcast failed to start: ${(error as Error).message}`);
  process.exit(1);
}
stopService = service.stop;
const { supervisor } = service;
liveNativeThreads = () => supervisor.liveNativeThreads;
if (stopSignal) void service.stop(stopSignal);
// A second signal, or a stop that overruns the deadline, must not leave the process hanging.
const code = await service.done;
await exitAfterSupervisor(code, supervisor, log);
