/**
 * sd_notify(3) for a `Type=notify` systemd service, without a native module.
 *
 * The notification protocol is a datagram on the AF_UNIX socket named by
 * NOTIFY_SOCKET, and Node cannot send unix datagrams without an addon. So we
 * run the `systemd-notify` tool instead. The datagram then comes from that
 * short-lived child, not from our main PID, and systemd drops such messages
 * unless the unit says `NotifyAccess=all` (deploy/ringcast.service does).
 * `--pid=<our pid>` tells systemd which process is the service's main PID, and
 * current systemd-notify waits until the manager has read the message, so the
 * child exiting early cannot make systemd lose track of who sent it.
 *
 * Everything here is best effort: spawns are asynchronous with a timeout, a
 * failure is logged once, and nothing ever throws into the caller.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Logger } from 'pino';

export interface SystemdNotifierOptions {
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** Path of systemd-notify; default: first on PATH, else /usr/bin/systemd-notify. */
  binary?: string;
  /** Reported as the main PID (default process.pid). */
  pid?: number;
  /** Kill a systemd-notify that has not finished after this long. */
  execTimeoutMs?: number;
}

export interface SystemdNotifier {
  /** False when NOTIFY_SOCKET is unset: every method is then a no-op. */
  readonly enabled: boolean;
  /** Ping period derived from WATCHDOG_USEC (half of it), or undefined when systemd wants no pings. */
  readonly watchdogIntervalMs: number | undefined;
  ready(status?: string): Promise<void>;
  status(text: string): Promise<void>;
  stopping(status?: string): Promise<void>;
  watchdogPing(): Promise<void>;
  /**
   * Ping WATCHDOG=1 every watchdogIntervalMs while isHealthy() is true. A
   * supervisor that is hung, or that reports itself unhealthy, stops pinging
   * and systemd restarts it after WatchdogSec.
   */
  startWatchdog(isHealthy: () => boolean): void;
  stopWatchdog(): void;
}

const DEFAULT_EXEC_TIMEOUT_MS = 2000;

export function createSystemdNotifier(options: SystemdNotifierOptions = {}): SystemdNotifier {
  const env = options.env ?? process.env;
  const pid = options.pid ?? process.pid;
  const log = options.logger;
  const enabled = Boolean(env.NOTIFY_SOCKET);
  const binary = options.binary ?? findOnPath('systemd-notify', env.PATH) ?? '/usr/bin/systemd-notify';
  const watchdogIntervalMs = enabled ? watchdogInterval(env, pid) : undefined;
  let failureLogged = false;
  let timer: NodeJS.Timeout | undefined;

  function send(...assignments: string[]): Promise<void> {
    if (!enabled) return Promise.resolve();
    return new Promise((resolve) => {
      try {
        execFile(
          binary,
          [`--pid=${pid}`, ...assignments],
          { env, timeout: options.execTimeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS },
          (error, _stdout, stderr) => {
            if (error) reportFailure(error, stderr);
            resolve();
          },
        );
      } catch (error) {
        reportFailure(error as Error, '');
        resolve();
      }
    });
  }

  function reportFailure(error: Error, stderr: string): void {
    // Once only: a broken notify path would otherwise log on every watchdog tick.
    if (failureLogged) return;
    failureLogged = true;
    log?.warn(
      { err: error.message, stderr: String(stderr).trim(), binary },
      'systemd-notify failed; further failures will not be logged',
    );
  }

  const notifier: SystemdNotifier = {
    enabled,
    watchdogIntervalMs,
    ready: (status) => send('READY=1', ...(status ? [`STATUS=${status}`] : [])),
    status: (text) => send(`STATUS=${text}`),
    stopping: (status) => send('STOPPING=1', ...(status ? [`STATUS=${status}`] : [])),
    watchdogPing: () => send('WATCHDOG=1'),
    startWatchdog(isHealthy) {
      if (watchdogIntervalMs === undefined || timer) return;
      timer = setInterval(() => {
        let healthy = false;
        try {
          healthy = isHealthy();
        } catch (error) {
          log?.warn({ err: (error as Error).message }, 'health check threw; withholding watchdog ping');
        }
        if (healthy) void notifier.watchdogPing();
      }, watchdogIntervalMs);
      // The watchdog must never be the thing keeping the process alive.
      timer.unref();
    },
    stopWatchdog() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
  return notifier;
}

/** WATCHDOG_USEC/2 in ms, if the watchdog is on and meant for this process. */
function watchdogInterval(env: NodeJS.ProcessEnv, pid: number): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return Math.max(1, Math.floor(usec / 2000));
}

function findOnPath(name: string, pathVar: string | undefined): string | undefined {
  for (const dir of (pathVar ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}
