/**
 * Missed capture deadlines, counted from outside the pipeline under test: only from the times
 * good frames arrived for each channel, so retries after a failure, captures that overran their
 * interval, errors and wrong frames all count, whatever the pipeline's own scheduler believes.
 *
 * A channel is due a frame every `intervalMs`. Between two good frames `g` ms apart,
 * round(g / interval) - 1 deadlines went without a frame (a frame up to half an interval late
 * still meets its deadline); after the last frame, the deadlines that passed by the end of the
 * window by more than half an interval are missed too. The channel's last good frame before
 * the window anchors its first gap; a channel with none is taken to have been on time at
 * window start - interval.
 */
export class DeadlineTracker {
  private readonly frames = new Map<string, number[]>();

  constructor(private readonly intervalMs: number) {
    if (!(intervalMs > 0)) throw new Error(`DeadlineTracker: intervalMs must be > 0, got ${intervalMs}`);
  }

  /** A good frame for `stream` arrived at `t` (ms, any monotonic clock shared with missed()). */
  frame(stream: string, t: number): void {
    let list = this.frames.get(stream);
    if (!list) this.frames.set(stream, (list = []));
    list.push(t);
  }

  /** Deadlines in [t0, t1) of every stream in `streams` that got no frame, and how many were due. */
  missed(streams: readonly string[], t0: number, t1: number): { missed: number; due: number; pct: number } {
    const I = this.intervalMs;
    const due = streams.length * Math.floor((t1 - t0) / I);
    let missed = 0;
    for (const s of streams) {
      const times = (this.frames.get(s) ?? []).slice().sort((a, b) => a - b);
      let prev = t0 - I;
      for (const t of times) if (t < t0) prev = t;
      for (const t of times) {
        if (t < t0 || t >= t1) continue;
        missed += Math.max(0, Math.round((t - prev) / I) - 1);
        prev = t;
      }
      missed += Math.max(0, Math.floor((t1 - prev) / I - 0.5));
    }
    missed = Math.min(missed, due);
    return { missed, due, pct: due > 0 ? (missed / due) * 100 : 0 };
  }
}
