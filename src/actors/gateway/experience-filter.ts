/**
 * Experience consumer filters: parsed from the `/experience` URL query or from a `configure`
 * message (the same names and rules for both), and matched against each record.
 *
 * Every error names the field it is about, so a trainer author sees which argument was wrong.
 */

/** The record fields a filter looks at (decoded once per record, shared by every consumer). */
export interface ExperienceFacts {
  gameId: string;
  playerId: string;
  turn: number;
  reward: number;
  done: boolean;
}

export interface ExperienceFilter {
  /** Only these games (empty set = all). */
  games?: ReadonlySet<string>;
  players?: ReadonlySet<string>;
  minTurn?: number;
  maxTurn?: number;
  rewardMin?: number;
  rewardMax?: number;
  terminalOnly: boolean;
  /** Probability that a record passing the other filters is kept (1 = all). */
  sampleRate: number;
  /** At most this many records per game to this consumer. */
  perGameCap?: number;
  batchSize: number;
  timeoutMs: number;
  /** Records per second this consumer may receive (live records above it are dropped and counted). */
  maxRate?: number;
}

/** A raw filter value: a query-string value (string) or a JSON value from `configure`. */
type Raw = unknown;

export class FilterError extends Error {
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
  }
}

/** The filter fields a client may set, in both the URL query and `configure`. */
export const FILTER_FIELDS = [
  'games', 'game', 'players', 'player', 'min_turn', 'max_turn', 'reward_min', 'reward_max',
  'terminal_only', 'sample_rate', 'per_game_cap', 'batch_size', 'timeout_ms', 'max_rate',
] as const;

const MAX_LIST = 1024;
const MAX_ID = 128;

function list(field: string, value: Raw): Set<string> | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const items = typeof value === 'string' ? value.split(',') : value;
  if (!Array.isArray(items)) throw new FilterError(field, `must be a list of ids (a comma-separated string or an array of strings), got ${JSON.stringify(value)}`);
  if (items.length > MAX_LIST) throw new FilterError(field, `at most ${MAX_LIST} ids (got ${items.length})`);
  const out = new Set<string>();
  for (const item of items) {
    if (typeof item !== 'string' || item.length === 0 || item.length > MAX_ID) throw new FilterError(field, `each id must be a string of 1–${MAX_ID} characters (got ${JSON.stringify(item)})`);
    out.add(item);
  }
  return out.size === 0 ? undefined : out;
}

function num(field: string, value: Raw, opts: { min?: number; max?: number; integer?: boolean } = {}): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const n = typeof value === 'string' ? Number(value) : value;
  const { min = -Infinity, max = Infinity, integer = false } = opts;
  if (typeof n !== 'number' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
    const what = integer ? 'an integer' : 'a number';
    const range = min !== -Infinity || max !== Infinity ? ` in ${min} .. ${max}` : '';
    throw new FilterError(field, `must be ${what}${range} (got ${JSON.stringify(value)})`);
  }
  return n;
}

function bool(field: string, value: Raw): boolean | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (value === true || value === 'true' || value === '1') return true;
  if (value === false || value === 'false' || value === '0') return false;
  throw new FilterError(field, `must be true or false (got ${JSON.stringify(value)})`);
}

function merged(field: string, plural: Raw, singular: Raw, singularName: string): Set<string> | undefined {
  const a = list(field, plural);
  const b = list(singularName, singular);
  if (!a) return b;
  if (b) for (const x of b) a.add(x);
  return a;
}

/**
 * Validate `raw` (field → value) into a filter. `base` supplies the values of fields that are
 * absent (the defaults for a new consumer, the current filter for `configure`); a field given as
 * `null` in `configure` clears it.
 */
export function parseFilter(raw: Record<string, Raw>, base: ExperienceFilter): ExperienceFilter {
  const has = (k: string) => Object.prototype.hasOwnProperty.call(raw, k);
  const f: ExperienceFilter = { ...base };
  if (has('games') || has('game')) f.games = merged('games', raw.games, raw.game, 'game');
  if (has('players') || has('player')) f.players = merged('players', raw.players, raw.player, 'player');
  if (has('min_turn')) f.minTurn = num('min_turn', raw.min_turn);
  if (has('max_turn')) f.maxTurn = num('max_turn', raw.max_turn);
  if (has('reward_min')) f.rewardMin = num('reward_min', raw.reward_min);
  if (has('reward_max')) f.rewardMax = num('reward_max', raw.reward_max);
  if (has('terminal_only')) f.terminalOnly = bool('terminal_only', raw.terminal_only) ?? false;
  if (has('sample_rate')) f.sampleRate = num('sample_rate', raw.sample_rate, { min: 0, max: 1 }) ?? 1;
  if (has('per_game_cap')) f.perGameCap = num('per_game_cap', raw.per_game_cap, { min: 1, max: 1_000_000, integer: true });
  if (has('batch_size')) f.batchSize = num('batch_size', raw.batch_size, { min: 1, max: 65_536, integer: true }) ?? base.batchSize;
  if (has('timeout_ms')) f.timeoutMs = num('timeout_ms', raw.timeout_ms, { min: 1, max: 60_000, integer: true }) ?? base.timeoutMs;
  if (has('max_rate')) f.maxRate = num('max_rate', raw.max_rate, { min: 1, max: 10_000_000 });
  if (f.minTurn !== undefined && f.maxTurn !== undefined && f.minTurn > f.maxTurn) throw new FilterError('max_turn', `must be >= min_turn (${f.minTurn}), got ${f.maxTurn}`);
  if (f.rewardMin !== undefined && f.rewardMax !== undefined && f.rewardMin > f.rewardMax) throw new FilterError('reward_max', `must be >= reward_min (${f.rewardMin}), got ${f.rewardMax}`);
  return f;
}

/** Names in `raw` that are not filter fields (so a typo is an error, not a silently ignored filter). */
export function unknownFields(raw: Record<string, Raw>, allowed: readonly string[]): string[] {
  return Object.keys(raw).filter((k) => !(FILTER_FIELDS as readonly string[]).includes(k) && !allowed.includes(k));
}

/** The static part of the filter (everything but sampling and the per-game cap, which hold state). */
export function matchesFilter(f: ExperienceFilter, r: ExperienceFacts): boolean {
  if (f.games && !f.games.has(r.gameId)) return false;
  if (f.players && !f.players.has(r.playerId)) return false;
  if (f.minTurn !== undefined && !(r.turn >= f.minTurn)) return false;
  if (f.maxTurn !== undefined && !(r.turn <= f.maxTurn)) return false;
  if (f.rewardMin !== undefined && !(r.reward >= f.rewardMin)) return false;
  if (f.rewardMax !== undefined && !(r.reward <= f.rewardMax)) return false;
  if (f.terminalOnly && !r.done) return false;
  return true;
}

/** The filter as the client wrote it (for `stats` and the `configured` answer). */
export function describeFilter(f: ExperienceFilter): Record<string, unknown> {
  return {
    games: f.games ? [...f.games] : null,
    players: f.players ? [...f.players] : null,
    min_turn: f.minTurn ?? null,
    max_turn: f.maxTurn ?? null,
    reward_min: f.rewardMin ?? null,
    reward_max: f.rewardMax ?? null,
    terminal_only: f.terminalOnly,
    sample_rate: f.sampleRate,
    per_game_cap: f.perGameCap ?? null,
    batch_size: f.batchSize,
    timeout_ms: f.timeoutMs,
    max_rate: f.maxRate ?? null,
  };
}

const MAX_CAPPED_GAMES = 4096;

/** Counts per game for `per_game_cap`, bounded: the oldest game is forgotten past MAX_CAPPED_GAMES. */
export class PerGameCounts {
  private readonly counts = new Map<string, number>();

  /** True when one more record of `gameId` is within `cap` (and counts it). */
  take(gameId: string, cap: number): boolean {
    const n = this.counts.get(gameId) ?? 0;
    if (n >= cap) return false;
    if (n === 0 && this.counts.size >= MAX_CAPPED_GAMES) this.counts.delete(this.counts.keys().next().value as string);
    this.counts.set(gameId, n + 1);
    return true;
  }

  clear(): void {
    this.counts.clear();
  }
}
