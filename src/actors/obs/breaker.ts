/**
 * Circuit breaker around everything the OBS actor asks of OBS (connects and requests).
 *
 * closed ─(failureThreshold consecutive failures)─▶ open ─(openMs elapsed)─▶ half-open
 * half-open lets exactly one trial through: success → closed, failure → open again.
 *
 * Why: a hung or flapping OBS must cost ringcast nothing. While open, callers are told
 * at once ("circuit open") instead of each waiting for a timeout, and reconnects are
 * spaced out by the cool-down.
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  failureThreshold: number;
  openMs: number;
  now?: () => number;
  onChange?: (state: BreakerState) => void;
}

export const BREAKER_STATE_VALUE: Readonly<Record<BreakerState, number>> = { closed: 0, 'half-open': 1, open: 2 };

export class CircuitBreaker {
  private current: BreakerState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private trialInFlight = false;
  private readonly now: () => number;

  constructor(private readonly options: BreakerOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The state, moving open → half-open once the cool-down has passed. */
  get state(): BreakerState {
    if (this.current === 'open' && this.now() - this.openedAt >= this.options.openMs) this.set('half-open');
    return this.current;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  /** Milliseconds until an open breaker lets a trial through (0 when not open). */
  remainingOpenMs(): number {
    return this.state === 'open' ? Math.max(0, this.options.openMs - (this.now() - this.openedAt)) : 0;
  }

  /** May an attempt go ahead now? In half-open, only one at a time (the trial). */
  tryAcquire(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.trialInFlight) return false;
    this.trialInFlight = true;
    return true;
  }

  success(): void {
    this.failures = 0;
    this.trialInFlight = false;
    if (this.current !== 'closed') this.set('closed');
  }

  failure(): void {
    this.failures++;
    this.trialInFlight = false;
    if (this.current === 'half-open' || (this.current === 'closed' && this.failures >= this.options.failureThreshold)) {
      this.openedAt = this.now();
      this.set('open');
    }
  }

  private set(state: BreakerState): void {
    this.current = state;
    this.options.onChange?.(state);
  }
}
