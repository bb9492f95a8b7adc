/**
 * Ending the process when an actor thread may be stuck.
 *
 * Every ordinary way out of a Node process joins its worker threads: process.exit() (and
 * process.reallyExit) stops each worker like worker.terminate() does, and a worker torn down
 * while its event loop still holds uWS poll handles makes Node abort in uv_loop_close
 * (SIGABRT, no clean exit code, a core dump). A thread blocked in JavaScript never gets to
 * close them. So when the supervisor reports such a thread, the process ends with SIGKILL,
 * which joins nothing: by then the supervisor has stopped every other actor (they flushed)
 * and the reason is logged; systemd (Restart=on-failure) restarts the service.
 */
import type { Logger } from 'pino';

/** How long a stuck thread gets to leave by itself before the process ends without it. */
export const STUCK_EXIT_WAIT_MS = 1_000;

/** Exits with `code` unless an actor thread is stuck (see above); then by SIGKILL. */
export function exitProcess(code: number, stuckThreads: readonly string[], log?: Logger): never {
  if (stuckThreads.length > 0) {
    log?.fatal({ stuck: stuckThreads, code }, 'exiting by SIGKILL: these threads are blocked holding native handles, and any other exit would abort the process');
    process.kill(process.pid, 'SIGKILL');
  }
  process.exit(code);
}

/** exitProcess, after giving the supervisor's stuck threads STUCK_EXIT_WAIT_MS to leave by themselves. */
export async function exitAfterSupervisor(code: number, supervisor: { stuckExited(timeoutMs: number): Promise<string[]> }, log?: Logger): Promise<never> {
  exitProcess(code, await supervisor.stuckExited(STUCK_EXIT_WAIT_MS), log);
}
