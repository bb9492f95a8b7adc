/**
 * A monotonic microsecond clock that agrees across worker threads.
 *
 * performance.now() is cheap but each worker has its own time origin; process.hrtime
 * reads the process-wide monotonic clock but allocates (bigint or array). So each
 * thread measures the offset between the two once, at load, and then reads only
 * performance.now(). The two reads of the calibration are back to back, so threads
 * agree to well under a microsecond.
 */
function calibrate(): number {
  let best = Infinity;
  let offset = 0;
  // Take the tightest of a few back-to-back pairs.
  for (let i = 0; i < 16; i++) {
    const a = performance.now();
    const h = Number(process.hrtime.bigint()) / 1000;
    const b = performance.now();
    if (b - a < best) {
      best = b - a;
      offset = h - ((a + b) / 2) * 1000;
    }
  }
  return offset;
}

const OFFSET_US = calibrate();

/** Microseconds on the process-wide monotonic clock. */
export function nowUs(): number {
  return performance.now() * 1000 + OFFSET_US;
}
