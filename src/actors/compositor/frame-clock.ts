/**
 * A frame clock: frame N is due at start + N / fps, computed from the start every time,
 * so timer lateness never accumulates into drift. When the caller is more than a whole
 * frame late it skips ahead to the newest due frame and counts what it skipped, instead
 * of rendering a burst of stale frames to catch up. A caller whose consumer buffers frames
 * (the compositor feeding the encoder's jitter buffer) may allow `catchUpFrames` more: frames
 * up to that many periods past due are still handed out, back to back, and only older ones
 * are skipped, since a late frame the buffer absorbs is better than a frame never made.
 *
 * Used by the compositor (render cadence) and the encoder (feed cadence).
 */
import { setImmediate as yieldToEventLoop, setTimeout as sleep } from 'node:timers/promises';

export class FrameClock {
  readonly fps: number;
  readonly periodMs: number;
  /** Time of frame 0; moved only by shift(). */
  startMs: number;
  /** Index of the next frame to hand out. */
  next = 0;
  /** Frames whose time passed while the caller was busy or late. */
  skipped = 0;
  /** Frames past due that take() still hands out before it skips (0: skip as soon as a whole frame late). */
  readonly catchUpFrames: number;
  private readonly now: () => number;

  constructor(fps: number, now: () => number = () => performance.now(), catchUpFrames = 0) {
    if (!(fps > 0 && fps <= 240)) throw new RangeError(`FrameClock: fps must be in (0, 240] (got ${String(fps)})`);
    if (!Number.isInteger(catchUpFrames) || catchUpFrames < 0) throw new RangeError(`FrameClock: catchUpFrames must be an integer >= 0 (got ${String(catchUpFrames)})`);
    this.catchUpFrames = catchUpFrames;
    this.fps = fps;
    this.periodMs = 1000 / fps;
    this.now = now;
    this.startMs = now();
  }

  /** Milliseconds until the next frame is due (<= 0: due now). */
  delayMs(): number {
    return this.startMs + this.next * this.periodMs - this.now();
  }

  /** Takes the frame to produce now, skipping ahead (counted) if a whole frame late (plus catchUpFrames). */
  take(): number {
    const due = Math.floor((this.now() - this.startMs) / this.periodMs) - this.catchUpFrames;
    if (due > this.next) {
      this.skipped += due - this.next;
      this.next = due;
    }
    return this.next++;
  }

  /**
   * Moves the whole schedule by `ms` (positive: later). For a consumer that keeps its ticks
   * in phase with another clock's frames; small steps, or a step earlier can count a skip.
   */
  shift(ms: number): void {
    this.startMs += ms;
  }

  /** Presentation time of frame `n` in seconds from the clock's start. */
  timeOf(n: number): number {
    return n / this.fps;
  }
}

/**
 * Runs `tick(frame)` on the clock until `signal` aborts. Waits with timers (the actor's
 * event loop keeps serving RPC, ring consumers and heartbeats in between). A throwing
 * tick is reported to `onError` and the loop goes on: one bad frame must not stop a show.
 */
export async function runFrameLoop(clock: FrameClock, signal: AbortSignal, tick: (frame: number) => void, onError: (error: unknown) => void): Promise<void> {
  while (!signal.aborted) {
    const wait = clock.delayMs();
    try {
      if (wait > 0) await sleep(Math.max(1, Math.ceil(wait)), undefined, { signal });
      // Behind schedule: still yield to the event loop every frame, or RPC, ring consumers
      // and heartbeats would starve while frames take longer than their period.
      else await yieldToEventLoop(undefined, { signal });
    } catch {
      break; // aborted
    }
    if (signal.aborted) break;
    try {
      tick(clock.take());
    } catch (error) {
      onError(error);
    }
  }
}
