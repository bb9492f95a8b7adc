/**
 * The overlay subscription message, parsed and checked.
 *
 * Protocol (kept as the overlays speak it): `{"channels": [...], "level": "...", "max_fps": N, "delta": B}`,
 * every field optional (defaults: every channel, intermediate, the server's maxFps, full messages). Anything
 * wrong yields one error string naming the problem; the connection stays up.
 *
 * Clustered nodes also take `"run": R, "since": N, "epoch": E` together: recover the critical
 * messages of run R after offset N of history E (what a critical message's `run`, `offset` and
 * `epoch` fields said last).
 */
import { ALL_CHANNELS, AVAILABLE_CHANNELS, CHANNELS, OPT_IN_CHANNELS, DEFAULT_LEVEL, LEVELS, type Level } from '../../shared/telemetry/channels.js';

export interface Subscription {
  /** Channel ids (indexes into CHANNELS), sorted, without duplicates. */
  channels: number[];
  level: Level;
  /** Requested rate, already capped at the server's maxFps. */
  maxFps: number;
  /** Updates as deltas against the last version the client holds (keyed, sequence-numbered). */
  delta: boolean;
  /** Recover the critical messages of `run` after `offset` in history `epoch`. */
  since?: { run: string; offset: number; epoch: string };
}

export type ParsedSubscription = { ok: true; sub: Subscription } | { ok: false; error: string };

export function parseSubscription(text: string, serverMaxFps: number): ParsedSubscription {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    return { ok: false, error: `invalid JSON: ${(error as Error).message}` };
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return { ok: false, error: 'subscription must be a JSON object like {"channels": ["all"], "level": "intermediate", "max_fps": 30}' };
  }
  const msg = raw as Record<string, unknown>;

  let channels: number[] = CHANNELS.map((_, i) => i).filter((i) => !OPT_IN_CHANNELS.has(CHANNELS[i]));
  if (msg.channels !== undefined) {
    if (!Array.isArray(msg.channels) || msg.channels.some((c) => typeof c !== 'string')) {
      return { ok: false, error: 'channels must be an array of channel names' };
    }
    const unknown = (msg.channels as string[]).filter((c) => !AVAILABLE_CHANNELS.includes(c));
    if (unknown.length > 0) {
      return { ok: false, error: `unknown channel(s) ${unknown.map((c) => JSON.stringify(c)).join(', ')}; available: ${AVAILABLE_CHANNELS.join(', ')}` };
    }
    const names = msg.channels as string[];
    if (names.length === 0) return { ok: false, error: 'channels must name at least one channel (or "all")' };
    const named = names.filter((c) => c !== ALL_CHANNELS).map((c) => CHANNELS.indexOf(c as (typeof CHANNELS)[number]));
    channels = [...new Set(names.includes(ALL_CHANNELS) ? [...channels, ...named] : named)].sort((a, b) => a - b);
  }

  let level: Level = DEFAULT_LEVEL;
  if (msg.level !== undefined) {
    if (typeof msg.level !== 'string' || !(LEVELS as readonly string[]).includes(msg.level)) {
      return { ok: false, error: `level must be one of ${LEVELS.join(', ')} (got ${JSON.stringify(msg.level)})` };
    }
    level = msg.level as Level;
  }

  let maxFps = serverMaxFps;
  if (msg.max_fps !== undefined) {
    if (typeof msg.max_fps !== 'number' || !Number.isFinite(msg.max_fps) || msg.max_fps <= 0) {
      return { ok: false, error: `max_fps must be a positive number (got ${JSON.stringify(msg.max_fps)})` };
    }
    maxFps = Math.min(msg.max_fps, serverMaxFps);
  }
  if (msg.delta !== undefined && typeof msg.delta !== 'boolean') {
    return { ok: false, error: `delta must be true or false (got ${JSON.stringify(msg.delta)})` };
  }
  const since = parseSince(msg);
  if (typeof since === 'string') return { ok: false, error: since };
  return { ok: true, sub: { channels, level, maxFps, delta: msg.delta === true, ...(since ? { since } : {}) } };
}

const RUN_RE = /^[\x21-\x7e]{1,255}$/;
const EPOCH_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** `since` with its `run` and `epoch`, absent, or the error naming what is wrong. */
function parseSince(msg: Record<string, unknown>): Subscription['since'] | string | undefined {
  if (msg.since === undefined) {
    if (msg.run !== undefined || msg.epoch !== undefined) return '"run" and "epoch" go with "since": {"run": R, "since": <offset>, "epoch": E}';
    return undefined;
  }
  if (typeof msg.since !== 'number' || !Number.isSafeInteger(msg.since) || msg.since < 0) {
    return `since must be a non-negative integer offset (got ${JSON.stringify(msg.since)})`;
  }
  if (typeof msg.run !== 'string' || !RUN_RE.test(msg.run)) return `since needs "run": the run name the offset belongs to (got ${JSON.stringify(msg.run)})`;
  if (typeof msg.epoch !== 'string' || !EPOCH_RE.test(msg.epoch)) return `since needs "epoch": the history epoch the offset belongs to (got ${JSON.stringify(msg.epoch)})`;
  return { run: msg.run, offset: msg.since, epoch: msg.epoch };
}
