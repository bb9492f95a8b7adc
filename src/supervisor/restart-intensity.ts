/**
 * OTP-style restart intensity: at most `intensity` restarts within a sliding `periodMs`
 * window. One more means the fault is not transient, and the supervisor escalates
 * (stops everything, exits non-zero) instead of restarting in a tight loop.
 */
export class RestartIntensity {
  private readonly times: number[] = [];

  constructor(private readonly intensity: number, private readonly periodMs: number) {}

  /** Records a restart at `now`; returns false when this one exceeds the limit. */
  allow(now: number): boolean {
    const cutoff = now - this.periodMs;
    while (this.times.length > 0 && this.times[0] <= cutoff) this.times.shift();
    this.times.push(now);
    return this.times.length <= this.intensity;
  }
}

/**
 * Exponential backoff per actor: consecutive failures double the delay up to `maxMs`.
 * An actor that stayed up for a whole intensity period is considered healthy again.
 */
export class Backoff {
  private consecutive = 0;

  constructor(private readonly initialMs: number, private readonly maxMs: number) {}

  next(): number {
    const delay = this.consecutive === 0 ? 0 : Math.min(this.initialMs * 2 ** (this.consecutive - 1), this.maxMs);
    this.consecutive += 1;
    return delay;
  }

  reset(): void {
    this.consecutive = 0;
  }
}
