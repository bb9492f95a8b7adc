/**
 * Keeps the encoder's frame clock in phase with the producer's frames.
 *
 * The compositor and the encoder tick at the same rate on clocks of their own, so where the
 * compositor's frames land inside the encoder's period depends on when each actor started.
 * A tick takes the newest frame published before it, or waits up to half a period for one:
 * a frame landing near the end of that wait is taken by this tick or the next depending on a
 * millisecond of render or scheduling jitter. When it slips to the next tick, this tick
 * re-sends the previous frame (a duplicate) and the next one replaces the slipped frame with
 * a newer one (superseded): one frame lost from the show each time.
 *
 * The lock measures each frame's lead (tick time minus the frame's publish stamp, so
 * negative when the frame came during the wait) and nudges the clock a fixed small step
 * towards a target lead per observation: a sign step, so the clock settles on the median
 * lead and a late outlier moves it no more than an on-time frame. With the median frame
 * published half a period before the tick, a frame may come up to a whole period late (half
 * before the tick, half during the wait) or half a period early before it is lost; render
 * times are skewed late, so that is the side with the margin. A frame taken during the wait
 * (negative lead) always moves the clock later, never earlier past the end of the wait: that
 * way lies a lost frame.
 *
 * Every shift later is a tick that comes later, so an unbounded lock would slow the cadence
 * below fps whenever the producer runs slower (an overloaded compositor, another clock) and
 * the stream would fall behind the wall clock. The net shift is therefore kept within one and
 * a half periods either way: past that, the lock moves the clock back a whole period (the
 * same phase, one tick more or fewer: the frame a slower producer never made, or one a faster
 * one made too many), counted as `wrapped`. The extra tick of a move earlier must send its
 * duplicate at once: waiting would take the next frame early, at the very end of the wait.
 *
 * Stamps are Date.now() at publish (the compositor's). A lead more than 2.5 periods below the
 * target or 1.5 above it (for the default target: two periods either way of the tick; another
 * producer's stamps, a clock step) is ignored. A consumer with a jitter buffer (jitter-buffer.ts)
 * sets the target a whole number of periods further from the tick.
 */
export interface PhaseLockOptions {
  /** Lead to settle on (default half a period). */
  targetLeadMs?: number;
  /** Clock step per observation (default 1/32 of a period: ~1 ms at 30 fps, a full period in 32 frames). */
  stepMs?: number;
}

export class PhaseLock {
  readonly periodMs: number;
  readonly targetLeadMs: number;
  readonly stepMs: number;
  /** Leads observed and used, and ignored as implausible. */
  observed = 0;
  ignored = 0;
  /** Smoothed lead of recent frames (for stats), ms. */
  leadMs = Number.NaN;
  /** Net clock movement so far, ms (negative: ticks moved earlier); within 1.5 periods either way. */
  shiftedMs = 0;
  /** Times the net shift passed a period and was brought back by one (a tick more or fewer). */
  wrapped = 0;

  constructor(periodMs: number, o: PhaseLockOptions = {}) {
    if (!(periodMs > 0)) throw new RangeError(`PhaseLock: periodMs must be > 0 (got ${String(periodMs)})`);
    this.periodMs = periodMs;
    this.targetLeadMs = o.targetLeadMs ?? periodMs / 2;
    this.stepMs = o.stepMs ?? periodMs / 32;
  }

  /**
   * The frame sent at this tick was published `leadMs` before the tick (negative: after).
   * Returns how far to move the clock (ms; negative = earlier ticks), 0 for an implausible lead;
   * a whole period earlier or later when the net shift went back (see above).
   */
  observe(leadMs: number): number {
    if (!Number.isFinite(leadMs) || leadMs < this.targetLeadMs - 2.5 * this.periodMs || leadMs > this.targetLeadMs + 1.5 * this.periodMs) {
      this.ignored++;
      return 0;
    }
    this.observed++;
    this.leadMs = Number.isNaN(this.leadMs) ? leadMs : this.leadMs + (leadMs - this.leadMs) / 16;
    const error = leadMs - this.targetLeadMs;
    if (error === 0) return 0;
    // Published too long before the tick → tick earlier; too close to (or after) it → later.
    let shift = error > 0 ? -Math.min(this.stepMs, error) : Math.min(this.stepMs, -error);
    const bound = 1.5 * this.periodMs;
    if (this.shiftedMs + shift > bound) {
      shift -= this.periodMs;
      this.wrapped++;
    } else if (this.shiftedMs + shift < -bound) {
      shift += this.periodMs;
      this.wrapped++;
    }
    this.shiftedMs += shift;
    return shift;
  }

  stats(): { targetLeadMs: number; leadMs: number | null; shiftedMs: number; wrapped: number; observed: number; ignored: number } {
    const round = (x: number) => Math.round(x * 100) / 100;
    return { targetLeadMs: round(this.targetLeadMs), leadMs: Number.isNaN(this.leadMs) ? null : round(this.leadMs), shiftedMs: round(this.shiftedMs), wrapped: this.wrapped, observed: this.observed, ignored: this.ignored };
  }
}
