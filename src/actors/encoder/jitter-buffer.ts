/**
 * Playout from a queue-mode frame ring with a jitter buffer of whole frames.
 *
 * "Newest frame wins" at each tick loses a frame whenever one lands on the wrong side of its
 * tick: the tick re-sends the previous frame (a duplicate) and the next tick finds two frames
 * and supersedes the older. The phase lock (phase-lock.ts) keeps the median frame half a period
 * before its tick, but render times have a long tail, so a frame more than a period late still
 * costs a duplicate and a superseded frame.
 *
 * Playout instead takes the OLDEST queued frame at each tick, one per tick, and the phase lock
 * holds the median frame `frames + 0.5` periods before the tick that sends it: each frame waits
 * in the ring's slots that much longer (with one frame, one period of latency: 33 ms at 30 fps).
 * A frame may then come up to `frames + 0.5` periods late (plus the tick's short wait) and
 * still make its tick; one that comes early just waits in its slot. The ring's slots bound the
 * buffer, and so the memory: nothing is copied.
 *
 * The price of taking frames in order is that a backlog does not clear by itself: after a
 * duplicate tick the late frame is still queued, and after ticks the encoder skipped (its
 * thread was held up) their frames are. Every later frame then waits a period longer. This
 * class says when to pass over queued frames (counted as superseded by the caller):
 *  - at once while more frames wait than the buffer plus one (a stall, the start-up backlog);
 *  - one frame when the smoothed lead has been more than half a period above the target for a
 *    while (a single early or late frame does not move it that far; a lasting backlog of one
 *    frame does, in about a dozen frames).
 * A lasting backlog is never left to the phase lock: draining it by moving the clock earlier
 * would use up the lock's 1.5 periods of room and end in a wrap anyway.
 */
export interface JitterBufferOptions {
  /** Whole frames of buffer (default 1). */
  frames?: number;
}

/** Weight of a new lead in the smoothed lead (as the phase lock's gauge: about 16 frames). */
const SMOOTHING = 1 / 16;

export class JitterBuffer {
  readonly periodMs: number;
  readonly frames: number;
  /** Where the phase lock should hold the median frame's lead (ms before its tick). */
  readonly targetLeadMs: number;
  /** Frames passed over because the queue held more than the buffer (stall, start-up). */
  passedFull = 0;
  /** Frames passed over because the smoothed lead said one frame too many was waiting. */
  passedBacklog = 0;
  private smoothedMs = Number.NaN;

  constructor(periodMs: number, o: JitterBufferOptions = {}) {
    if (!(periodMs > 0)) throw new RangeError(`JitterBuffer: periodMs must be > 0 (got ${String(periodMs)})`);
    const frames = o.frames ?? 1;
    if (!Number.isInteger(frames) || frames < 1 || frames > 8) throw new RangeError(`JitterBuffer: frames must be an integer in 1 .. 8 (got ${String(frames)})`);
    this.periodMs = periodMs;
    this.frames = frames;
    this.targetLeadMs = (frames + 0.5) * periodMs;
  }

  /**
   * The frame just taken for this tick was published `leadMs` before it; `queued` frames wait
   * behind it. Returns how many of those to pass over now, oldest first (0 almost always).
   */
  passOver(leadMs: number, queued: number): number {
    if (queued <= 0) return 0;
    const full = Math.max(0, queued - (this.frames + 1));
    const p = this.periodMs;
    // The same plausible range as the phase lock's: stamps of another clock say nothing.
    if (Number.isFinite(leadMs) && leadMs >= this.targetLeadMs - 2.5 * p && leadMs <= this.targetLeadMs + 1.5 * p) {
      this.smoothedMs = Number.isNaN(this.smoothedMs) ? leadMs : this.smoothedMs + (leadMs - this.smoothedMs) * SMOOTHING;
    }
    let n = full;
    if (full > 0) this.passedFull += full;
    else if (this.smoothedMs > this.targetLeadMs + p / 2) {
      n = 1;
      this.passedBacklog++;
    }
    // Each frame passed over makes the frame sent, and every one after it, a period younger.
    if (n > 0 && !Number.isNaN(this.smoothedMs)) this.smoothedMs -= n * p;
    return n;
  }

  /** Smoothed lead of the frames taken (ms; NaN before the first). */
  get smoothedLeadMs(): number {
    return this.smoothedMs;
  }

  stats(): { frames: number; latencyMs: number; passedFull: number; passedBacklog: number } {
    return { frames: this.frames, latencyMs: Math.round(this.frames * this.periodMs * 100) / 100, passedFull: this.passedFull, passedBacklog: this.passedBacklog };
  }
}
