/**
 * A 10 Hz tick source that stays on the wall-clock grid origin + k × period.
 *
 * Each firing handles one slot. If the event loop was so late that whole slots went by,
 * those are skipped and counted, not replayed in a burst: a server that cannot keep
 * 10 Hz should show up as fewer deliveries, not as a catch-up spike.
 */
import { wallMs } from './payloads.js';

export interface Ticker {
  readonly origin: number;
  /** Ticks emitted so far, and slots skipped. */
  readonly emitted: number;
  readonly missed: number;
  stop(): void;
}

export function startTicker(periodMs: number, onTick: (tick: number, stamp: number) => void, origin = Math.ceil(wallMs() / periodMs) * periodMs): Ticker {
  let next = 0; // slot index of the next tick
  let emitted = 0;
  let missed = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(fire, Math.max(0, origin + next * periodMs - wallMs()));
  };
  const fire = () => {
    const now = wallMs();
    const due = Math.floor((now - origin) / periodMs);
    if (due > next) { missed += due - next; next = due; }
    onTick(next, now);
    emitted++;
    next++;
    schedule();
  };
  schedule();
  return {
    origin,
    get emitted() { return emitted; },
    get missed() { return missed; },
    stop() { stopped = true; clearTimeout(timer); },
  };
}
