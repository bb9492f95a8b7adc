/**
 * Capture scheduler: decides which streams start a capture
 * now. Pure logic: no timers, no I/O; time and randomness are injected so the
 * behaviour is testable with a fake clock and a seeded random.
 *
 * Usage: the caller ticks `due(now)`, calls `started(name)` for each name it
 * actually launches, and `finished(name, outcome)` when the capture ends.
 * `due()` does not reserve slots itself, so the caller must call `started()`
 * before the next `due()` or it will be handed the same names again.
 */

export type CaptureOutcome = 'ok' | 'offline' | { error: string };
export type StreamState = 'idle' | 'running' | 'backoff' | 'offline';

export interface SchedulerOptions {
  /** Default capture period per stream. */
  intervalMs: number;
  /** Deadlines and backoff delays are spread by ±jitterRatio of their length. */
  jitterRatio: number;
  maxConcurrent: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  offlineRecheckMs: number;
  /** Hard bound on registered streams, so a bulk add cannot grow memory unbounded. */
  maxStreams: number;
  now(): number;
  /** Uniform in [0, 1), like Math.random. */
  random(): number;
}

export interface StreamSpec {
  priority: number;
  /** Per-stream override of options.intervalMs. */
  intervalMs?: number;
}

/** What the scheduler counts per stream (kept in its entry, reported as they are in StreamStats). */
interface StreamCounters {
  attempts: number;
  failures: number;
  consecutiveFailures: number;
  lastError: string | null;
  missed: number;
  captures: number;
  offlineChecks: number;
}

export interface StreamStats extends StreamCounters {
  name: string;
  priority: number;
  intervalMs: number;
  state: StreamState;
  nextDueAt: number;
}

export interface SchedulerStats {
  streams: number;
  running: number;
  idle: number;
  backoff: number;
  offline: number;
  maxConcurrent: number;
  attempts: number;
  captures: number;
  failures: number;
  missed: number;
  /** missed / (attempts + missed) × 100: share of deadlines that produced no attempt. */
  missed_pct: number;
}

export const MAX_STREAM_NAME_LENGTH = 200;

export const DEFAULT_SCHEDULER_OPTIONS: SchedulerOptions = {
  intervalMs: 3000,
  jitterRatio: 0.1,
  maxConcurrent: 8,
  backoffInitialMs: 1000,
  backoffMaxMs: 60_000,
  offlineRecheckMs: 30_000,
  maxStreams: 1000,
  now: () => Date.now(),
  random: () => Math.random(),
};

export class SchedulerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchedulerError';
  }
}

interface Entry extends StreamCounters {
  name: string;
  priority: number;
  ownIntervalMs: number | undefined;
  /** State to return to / currently in; 'running' only between started and finished. */
  state: StreamState;
  nextDueAt: number;
  /** The deadline the running capture was started for: the next one is computed from it, so cadence doesn't drift with capture duration. */
  startedFor: number;
}

export function validateStreamName(name: unknown): string {
  if (typeof name !== 'string' || name.trim().length === 0) {
    throw new SchedulerError('stream name must be a non-empty string');
  }
  if (name.length > MAX_STREAM_NAME_LENGTH) {
    throw new SchedulerError(`stream name must be at most ${MAX_STREAM_NAME_LENGTH} characters (got ${name.length})`);
  }
  return name;
}

function checkNumber(label: string, v: unknown, min: number, integer = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
    throw new SchedulerError(`${label} must be a finite ${integer ? 'integer' : 'number'} >= ${min} (got ${String(v)})`);
  }
  return v;
}

function validateOptions(o: SchedulerOptions): void {
  checkNumber('intervalMs', o.intervalMs, 1);
  checkNumber('jitterRatio', o.jitterRatio, 0);
  if (o.jitterRatio >= 1) throw new SchedulerError(`jitterRatio must be < 1 (got ${o.jitterRatio})`);
  checkNumber('maxConcurrent', o.maxConcurrent, 1, true);
  checkNumber('backoffInitialMs', o.backoffInitialMs, 1);
  checkNumber('backoffMaxMs', o.backoffMaxMs, o.backoffInitialMs);
  checkNumber('offlineRecheckMs', o.offlineRecheckMs, 1);
  checkNumber('maxStreams', o.maxStreams, 1, true);
  if (typeof o.now !== 'function' || typeof o.random !== 'function') {
    throw new SchedulerError('now and random must be functions');
  }
}

export class CaptureScheduler {
  private opts: SchedulerOptions;
  private readonly entries = new Map<string, Entry>();
  /**
   * Captures still in flight for streams that were removed: their process is
   * still alive, so they keep holding a concurrency slot until finished().
   */
  private readonly orphans = new Map<string, number>();
  private orphanCount = 0;
  private runningCount = 0;

  constructor(options: Partial<SchedulerOptions> = {}) {
    this.opts = { ...DEFAULT_SCHEDULER_OPTIONS, ...options };
    validateOptions(this.opts);
  }

  get options(): Readonly<SchedulerOptions> {
    return this.opts;
  }

  /** Streams currently holding a slot, including orphans of removed streams. */
  get running(): number {
    return this.runningCount + this.orphanCount;
  }

  get size(): number {
    return this.entries.size;
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  add(name: string, spec: StreamSpec): void {
    validateStreamName(name);
    if (this.entries.has(name)) throw new SchedulerError(`stream "${name}" already exists`);
    if (this.entries.size >= this.opts.maxStreams) {
      throw new SchedulerError(`cannot add "${name}": limit of ${this.opts.maxStreams} streams reached (maxStreams)`);
    }
    const priority = checkNumber('priority', spec?.priority, -Infinity);
    const own = spec.intervalMs === undefined ? undefined : checkNumber('intervalMs', spec.intervalMs, 1);
    const interval = own ?? this.opts.intervalMs;
    // First deadline uniformly inside the first interval, so 500 streams added
    // at once spread their captures instead of firing together.
    const first = this.opts.now() + this.opts.random() * interval;
    this.entries.set(name, {
      name,
      priority,
      ownIntervalMs: own,
      state: 'idle',
      nextDueAt: first,
      startedFor: first,
      attempts: 0,
      failures: 0,
      consecutiveFailures: 0,
      lastError: null,
      missed: 0,
      captures: 0,
      offlineChecks: 0,
    });
  }

  /** Returns false if unknown. A running capture keeps its slot until finished(). */
  remove(name: string): boolean {
    const e = this.entries.get(name);
    if (!e) return false;
    if (e.state === 'running') {
      this.runningCount--;
      this.orphans.set(name, (this.orphans.get(name) ?? 0) + 1);
      this.orphanCount++;
    }
    this.entries.delete(name);
    return true;
  }

  setPriority(name: string, priority: number): void {
    const e = this.require(name);
    e.priority = checkNumber('priority', priority, -Infinity);
  }

  /**
   * Run-time reconfiguration. A shorter interval pulls far-away deadlines in
   * (otherwise going from 60 s to 3 s would take up to 60 s to apply); a
   * longer one takes effect from the next deadline. maxConcurrent applies to
   * the next due(); running captures are never cut. maxStreams lowered below
   * the current count refuses adds but evicts nothing.
   */
  configure(partial: Partial<SchedulerOptions>): void {
    const next = { ...this.opts, ...partial };
    validateOptions(next);
    const oldInterval = this.opts.intervalMs;
    this.opts = next;
    if (next.intervalMs < oldInterval) {
      const now = next.now();
      for (const e of this.entries.values()) {
        if (e.ownIntervalMs !== undefined || e.state !== 'idle') continue;
        const limit = now + next.intervalMs * (1 + next.jitterRatio);
        if (e.nextDueAt > limit) e.nextDueAt = now + this.opts.random() * next.intervalMs;
      }
    }
  }

  /**
   * Names to start now, at most maxConcurrent - running of them: higher
   * priority first, then the most overdue, then name (determinism). Also does
   * missed-deadline accounting: a stream whose deadline passed by a full
   * interval or more without starting gets one missed per skipped interval
   * and jumps to its latest deadline, so a stall yields one capture, not a
   * burst of catch-up captures.
   */
  due(now: number = this.opts.now()): string[] {
    const candidates: Entry[] = [];
    for (const e of this.entries.values()) {
      if (e.state === 'running' || e.nextDueAt > now) continue;
      if (e.state === 'idle') {
        const period = this.intervalOf(e);
        const k = Math.floor((now - e.nextDueAt) / period);
        if (k > 0) {
          e.missed += k;
          e.nextDueAt += k * period;
        }
      }
      candidates.push(e);
    }
    const free = this.opts.maxConcurrent - this.running;
    if (free <= 0 || candidates.length === 0) return [];
    candidates.sort(
      (a, b) => b.priority - a.priority || a.nextDueAt - b.nextDueAt || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
    );
    return candidates.slice(0, free).map((e) => e.name);
  }

  /** Marks a capture as launched. Throws if unknown, already running, or no slot is free. */
  started(name: string): void {
    const e = this.require(name);
    if (e.state === 'running') throw new SchedulerError(`stream "${name}" is already running`);
    if (this.running >= this.opts.maxConcurrent) {
      throw new SchedulerError(`cannot start "${name}": ${this.running}/${this.opts.maxConcurrent} slots in use`);
    }
    // A start ahead of the deadline (an on-demand capture) counts from now, so the next
    // regular capture is one interval after it rather than one interval after the deadline.
    e.startedFor = Math.min(e.nextDueAt, this.opts.now());
    e.state = 'running';
    e.attempts++;
    this.runningCount++;
  }

  /**
   * Records the outcome. Returns false (and only frees the slot) for a
   * stream removed while its capture ran; throws for an unknown one.
   */
  finished(name: string, outcome: CaptureOutcome): boolean {
    const e = this.entries.get(name);
    if (!e || e.state !== 'running') {
      const n = this.orphans.get(name);
      if (n) {
        if (n === 1) this.orphans.delete(name);
        else this.orphans.set(name, n - 1);
        this.orphanCount--;
        return false;
      }
      if (!e) throw new SchedulerError(`unknown stream "${name}"`);
      throw new SchedulerError(`stream "${name}" is not running`);
    }
    this.runningCount--;
    const now = this.opts.now();
    if (outcome === 'ok') {
      e.captures++;
      e.consecutiveFailures = 0;
      e.lastError = null;
      e.state = 'idle';
      // Next deadline from the one this capture was started for, not from
      // now, so a slow capture doesn't push the whole cadence back.
      e.nextDueAt = e.startedFor + this.jittered(this.intervalOf(e));
    } else if (outcome === 'offline') {
      // Offline is a valid answer from the source, not a fault: no failure,
      // no backoff growth; recheck on its own slower period.
      e.offlineChecks++;
      e.consecutiveFailures = 0;
      e.state = 'offline';
      e.nextDueAt = now + this.jittered(this.opts.offlineRecheckMs);
    } else {
      e.failures++;
      e.consecutiveFailures++;
      e.lastError = typeof outcome?.error === 'string' ? outcome.error : String(outcome);
      e.state = 'backoff';
      e.nextDueAt = now + this.backoffDelay(e.consecutiveFailures);
    }
    return true;
  }

  /** initial × 2^(n-1), capped at backoffMaxMs, jittered, and never above the cap after jitter. */
  backoffDelay(consecutiveFailures: number): number {
    const { backoffInitialMs, backoffMaxMs } = this.opts;
    const exp = Math.min(consecutiveFailures - 1, 52);
    const base = Math.min(backoffMaxMs, backoffInitialMs * 2 ** exp);
    return Math.min(backoffMaxMs, this.jittered(base));
  }

  stream(name: string): StreamStats | undefined {
    const e = this.entries.get(name);
    if (!e) return undefined;
    return {
      name: e.name,
      priority: e.priority,
      intervalMs: this.intervalOf(e),
      state: e.state,
      nextDueAt: e.nextDueAt,
      attempts: e.attempts,
      failures: e.failures,
      consecutiveFailures: e.consecutiveFailures,
      lastError: e.lastError,
      missed: e.missed,
      captures: e.captures,
      offlineChecks: e.offlineChecks,
    };
  }

  streams(): StreamStats[] {
    return [...this.entries.keys()].map((n) => this.stream(n)!);
  }

  stats(): SchedulerStats {
    const s: SchedulerStats = {
      streams: this.entries.size,
      running: this.running,
      idle: 0,
      backoff: 0,
      offline: 0,
      maxConcurrent: this.opts.maxConcurrent,
      attempts: 0,
      captures: 0,
      failures: 0,
      missed: 0,
      missed_pct: 0,
    };
    for (const e of this.entries.values()) {
      if (e.state === 'idle') s.idle++;
      else if (e.state === 'backoff') s.backoff++;
      else if (e.state === 'offline') s.offline++;
      s.attempts += e.attempts;
      s.captures += e.captures;
      s.failures += e.failures;
      s.missed += e.missed;
    }
    const deadlines = s.attempts + s.missed;
    s.missed_pct = deadlines === 0 ? 0 : (100 * s.missed) / deadlines;
    return s;
  }

  private intervalOf(e: Entry): number {
    return e.ownIntervalMs ?? this.opts.intervalMs;
  }

  /** ms × (1 ± jitterRatio), uniform. */
  private jittered(ms: number): number {
    return ms * (1 + this.opts.jitterRatio * (2 * this.opts.random() - 1));
  }

  private require(name: string): Entry {
    const e = this.entries.get(name);
    if (!e) throw new SchedulerError(`unknown stream "${name}"`);
    return e;
  }
}
