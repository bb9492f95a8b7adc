/**
 * Spin-then-sleep waiting on a futex word, shared by RecordRing, SlotRing and MergedReader.
 *
 * Each waitable condition ("ring readable", "ring has space") owns two i32 words on
 * their own cache line: a waiter count and a futex generation.
 *
 *   waiter:  spin a few µs re-checking ready()            (cheap when data is imminent)
 *            Atomics.add(waiters, 1)                       (announce: "wake me")
 *            gen = Atomics.load(futex)
 *            if ready() -> done                            (re-check AFTER announcing)
 *            Atomics.wait(futex, gen, remaining)           (bounded, never Infinity)
 *            Atomics.sub(waiters, 1)
 *   waker:   <publish state with Atomics.store>
 *            if Atomics.load(waiters) != 0: Atomics.add(futex, 1); Atomics.notify(futex)
 *
 * Why this is race-free: all of these are sequentially consistent atomics. Either the
 * waker's load of `waiters` comes after the waiter's add (so it bumps the futex; if that
 * happens before Atomics.wait the generation no longer matches and the wait returns
 * at once), or it comes before, and then the waiter's re-check, which is later in the
 * total order than the waker's publishing store, sees the new state.
 *
 * Why a count and not a flag: SlotRing in 'latest' mode may have several readers
 * sleeping on the same word. Why bother at all: the waker then pays one plain load per
 * publish and makes the notify system call only when somebody actually sleeps.
 *
 * A thread terminated while asleep leaves its count behind; the only cost is that
 * wakers keep calling notify (a no-op system call) until the count drains.
 */

/** Default spin before sleeping: long enough to catch a producer mid-batch, short enough not to burn a core. */
export const DEFAULT_SPIN_US = 20;

export function wake(i32: Int32Array, waitersIndex: number, futexIndex: number): void {
  if (Atomics.load(i32, waitersIndex) !== 0) {
    Atomics.add(i32, futexIndex, 1);
    Atomics.notify(i32, futexIndex);
  }
}

/**
 * Blocks the calling thread until ready() is true or timeoutMs passes; returns ready().
 * Callers time the call themselves for their wait-time metric.
 * `ready` must be a function created once (not per call) so waiting allocates nothing.
 * On the main thread this blocks the event loop: use spinThenWaitAsync there.
 */
export function spinThenWait(i32: Int32Array, waitersIndex: number, futexIndex: number, ready: () => boolean, timeoutMs: number, spinUs: number): boolean {
  if (ready()) return true;
  const start = performance.now();
  const spinEnd = start + spinUs / 1000;
  // performance.now() costs ~30 ns, so check the clock only every 32 polls of ready().
  for (let i = 1; ; i++) {
    if (ready()) return true;
    if ((i & 31) === 0 && performance.now() >= spinEnd) break;
  }
  const deadline = start + timeoutMs;
  let ok = false;
  for (;;) {
    Atomics.add(i32, waitersIndex, 1);
    const gen = Atomics.load(i32, futexIndex);
    if (ready()) { Atomics.sub(i32, waitersIndex, 1); ok = true; break; }
    const remaining = deadline - performance.now();
    if (remaining <= 0) { Atomics.sub(i32, waitersIndex, 1); break; }
    Atomics.wait(i32, futexIndex, gen, remaining);
    Atomics.sub(i32, waitersIndex, 1);
    if (ready()) { ok = true; break; }
  }
  return ok;
}

/** The same protocol for the main thread (or any thread that must keep its event loop turning). */
export async function spinThenWaitAsync(i32: Int32Array, waitersIndex: number, futexIndex: number, ready: () => boolean, timeoutMs: number): Promise<boolean> {
  if (ready()) return true;
  const deadline = performance.now() + timeoutMs;
  let ok = false;
  for (;;) {
    Atomics.add(i32, waitersIndex, 1);
    const gen = Atomics.load(i32, futexIndex);
    if (ready()) { Atomics.sub(i32, waitersIndex, 1); ok = true; break; }
    const remaining = deadline - performance.now();
    if (remaining <= 0) { Atomics.sub(i32, waitersIndex, 1); break; }
    const res = waitAsync(i32, futexIndex, gen, remaining);
    try {
      if (res.async) await res.value;
    } finally {
      Atomics.sub(i32, waitersIndex, 1);
    }
    if (ready()) { ok = true; break; }
  }
  return ok;
}

type WaitAsyncResult = { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
// Atomics.waitAsync ships in Node >= 16 but its typings live in lib.es2024, newer than our lib setting.
const atomicsWaitAsync = (Atomics as unknown as { waitAsync?: (a: Int32Array, i: number, v: number, t: number) => WaitAsyncResult }).waitAsync;

export function waitAsync(i32: Int32Array, index: number, value: number, timeoutMs: number): WaitAsyncResult {
  if (atomicsWaitAsync === undefined) throw new Error('Atomics.waitAsync is not available in this runtime (needs Node >= 16)');
  return atomicsWaitAsync(i32, index, value, timeoutMs);
}
