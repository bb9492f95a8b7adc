/**
 * Reconnect delays: exponential with "equal jitter" (half fixed, half random), so a
 * restarted OBS is not hit by every client at the same instant, yet the delay never
 * collapses to ~0 the way full jitter can.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** Injected for tests; Math.random by default. */
  random?: () => number;
}

/** Delay before reconnect attempt number `attempt` (0 = first retry). */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const random = options.random ?? Math.random;
  const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
