/**
 * The `/experience` URL query: the filters (experience-filter.ts) plus how the stream is sent
 * (`start`, `v`, `compress`, `consumer`). Every error names the parameter.
 */
import { FilterError, parseFilter, unknownFields, type ExperienceFilter } from './experience-filter.js';

/** Query parameters that are not filters. */
const STREAM_PARAMS = ['token', 'start', 'v', 'compress', 'consumer'];

export type StartAt = 'live' | 'earliest' | number;

/** What a consumer asked for at connect time. */
export interface ConsumerSetup {
  filter: ExperienceFilter;
  start: StartAt;
  version: 1 | 2;
  deflate: boolean;
  /** Metrics label (bounded: see ConsumerLabels). */
  name?: string;
}

export type ParsedFilter = { ok: true; filter: ConsumerSetup } | { ok: false; error: string };

export function defaultFilter(defaults: { batchSize: number; timeoutMs: number }): ExperienceFilter {
  return { terminalOnly: false, sampleRate: 1, batchSize: defaults.batchSize, timeoutMs: defaults.timeoutMs };
}

/** The `/experience` URL query: filters (experience-filter.ts) plus start, v, compress, consumer. */
export function parseExperienceQuery(query: URLSearchParams, defaults: { batchSize: number; timeoutMs: number }): ParsedFilter {
  const raw: Record<string, string> = {};
  for (const [k, v] of query) raw[k] = v;
  const unknown = unknownFields(raw, STREAM_PARAMS);
  if (unknown.length > 0) return { ok: false, error: `${unknown[0]}: unknown parameter (filters: games, players, min_turn, max_turn, reward_min, reward_max, terminal_only, sample_rate, per_game_cap, batch_size, timeout_ms, max_rate; also start, v, compress, consumer)` };
  let filter: ExperienceFilter;
  try {
    filter = parseFilter(raw, defaultFilter(defaults));
  } catch (error) {
    if (error instanceof FilterError) return { ok: false, error: error.message };
    throw error;
  }
  let start: StartAt = 'live';
  const s = raw.start;
  if (s !== undefined && s !== '' && s !== 'live') {
    if (s === 'earliest') start = 'earliest';
    else if (/^\d{1,16}$/.test(s) && Number.isSafeInteger(Number(s))) start = Number(s);
    else return { ok: false, error: `start: must be live, earliest or a sequence number (got ${JSON.stringify(s)})` };
  }
  const v = raw.v ?? '1';
  if (v !== '1' && v !== '2') return { ok: false, error: `v: must be 1 or 2 (got ${JSON.stringify(v)})` };
  const c = raw.compress ?? 'none';
  if (c !== 'none' && c !== 'deflate') return { ok: false, error: `compress: must be none or deflate (got ${JSON.stringify(c)})` };
  if (c === 'deflate' && v !== '2') return { ok: false, error: 'compress: deflate needs v=2 (the v1 format has no flags)' };
  const name = raw.consumer;
  if (name !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(name)) return { ok: false, error: `consumer: must be 1–64 letters, digits, _ . - (got ${JSON.stringify(name)})` };
  return { ok: true, filter: { filter, start, version: v === '2' ? 2 : 1, deflate: c === 'deflate', name } };
}

