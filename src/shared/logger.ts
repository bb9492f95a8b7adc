/**
 * JSON logs to stdout, one logger per thread.
 *
 * Every thread (supervisor and each worker-thread actor) writes straight to
 * fd 1 with synchronous writes. Worker threads' `process.stdout` is relayed to
 * the main thread asynchronously, so lines logged just before a worker crashes
 * would be lost; a direct synchronous write to the shared fd is not. Lines are
 * written whole with one write(2) each, so threads do not interleave mid-line
 * for ordinary line sizes.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Field names whose values never reach the log. pino's redaction works on
 * paths, so each name is listed at the top level and one and two levels deep
 * (`{ headers: { authorization } }`, `{ req: { headers: { authorization } } }`).
 */
export const REDACTED_FIELDS = [
  'token',
  'accessToken',
  'refreshToken',
  'password',
  'secret',
  'clientSecret',
  'authorization',
  'cookie',
  'oauth',
  'ingestToken',
  'adminToken',
] as const;

const REDACT_PATHS = REDACTED_FIELDS.flatMap((field) => [field, `*.${field}`, `*.*.${field}`]);

let threadLogger: Logger | undefined;

/**
 * Create this thread's root logger (and remember it for childLoggerFor).
 * `level` is a pino level name: fatal|error|warn|info|debug|trace|silent.
 * `destination` exists for tests; production always logs to fd 1.
 */
export function createLogger(level: string = 'info', destination?: DestinationStream): Logger {
  const logger = pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
  threadLogger = logger;
  return logger;
}

/** This thread's root logger, created at `info` if nothing created one yet. */
export function rootLogger(): Logger {
  return threadLogger ?? createLogger('info');
}

/**
 * A child logger whose every line carries `{ actor }`. In a worker thread the
 * first call creates the thread's root logger at `level`; a given `level`
 * also applies to the child so an actor can be more or less verbose than its
 * parent.
 */
export function childLoggerFor(actorName: string, level?: string): Logger {
  const root = threadLogger ?? createLogger(level ?? 'info');
  return level ? root.child({ actor: actorName }, { level }) : root.child({ actor: actorName });
}
