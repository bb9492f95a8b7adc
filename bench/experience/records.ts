/**
 * The records and consumer filters of the experience benchmark: Keisei-sized experience
 * (46×9×9 float32 state, 13,527-action legal mask) with sparse one-hot planes like real
 * input planes, and ten consumers with different filters.
 */
export const STATE_SHAPE = [46, 9, 9];
export const STATE_SIZE = 46 * 81;
export const ACTIONS = 13_527;
export const TURNS_PER_GAME = 120;

export interface BenchRecord {
  gameId: string;
  playerId: string;
  turn: number;
  action: number;
  reward: number;
  done: boolean;
  state: Float32Array;
  mask: Uint8Array; // one byte per action (0/1)
}

/** A deterministic pseudo-random generator (xorshift32): the same records every run. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 2 ** 32;
  };
}

/** Record `i` of producer connection `conn`: ~40 pieces on the board planes, a few filled planes, ~80 legal actions. */
export function makeRecord(conn: number, i: number, rand: () => number, state = new Float32Array(STATE_SIZE), mask = new Uint8Array(ACTIONS)): BenchRecord {
  state.fill(0);
  for (let k = 0; k < 40; k++) state[Math.floor(rand() * 28) * 81 + Math.floor(rand() * 81)] = 1;
  state.fill(rand() < 0.5 ? 1 : 0, 42 * 81, 43 * 81);
  state.fill((i % TURNS_PER_GAME) / 500, 43 * 81, 44 * 81);
  mask.fill(0);
  let action = 0;
  for (let k = 0; k < 80; k++) {
    action = Math.floor(rand() * ACTIONS);
    mask[action] = 1;
  }
  return { ...recordFacts(conn, i, rand), action, state, mask };
}

/** The scalar fields of record `i` of connection `conn` (what the consumers' filters look at). */
export function recordFacts(conn: number, i: number, rand: () => number): Pick<BenchRecord, 'gameId' | 'playerId' | 'turn' | 'reward' | 'done'> {
  const turn = i % TURNS_PER_GAME;
  const done = turn === TURNS_PER_GAME - 1;
  return { gameId: `c${conn}g${Math.floor(i / TURNS_PER_GAME)}`, playerId: turn % 2 === 0 ? 'sente' : 'gote', turn, reward: done ? (rand() < 0.5 ? 1 : -1) : 0, done };
}

/**
 * Tensors prepared once per producer process and cycled through: drawing fresh random planes
 * for every record cost the load generators more CPU than the service spends on the record, and
 * that is not the work under test. Every record still goes through the SDK's (or the baseline's)
 * full per-record encoding.
 */
export const POOL_SIZE = 64;
export function tensorPool(conn: number, rand: () => number): BenchRecord[] {
  return Array.from({ length: POOL_SIZE }, (_, k) => makeRecord(conn, k, rand));
}

/**
 * The ten consumers: the same filters for ringcast (query) and the baseline (its own JS filter).
 * Each also asks for timeout_ms=20 (CONSUMER_TIMEOUT_MS): a partial batch waits at most that long,
 * in both servers, so latency measures the pipeline rather than a sparse filter's batching wait.
 */
export const CONSUMER_TIMEOUT_MS = '20';
export const CONSUMER_FILTERS: Array<Record<string, string>> = [
  {},
  { min_turn: '60' },
  { players: 'sente' },
  { games: Array.from({ length: 20 }, (_, c) => `c${c}g0,c${c}g1`).join(',') },
  { reward_min: '0' },
  { max_turn: '40' },
  { sample_rate: '0.5' },
  { terminal_only: 'true' },
  { min_turn: '10', max_turn: '100', players: 'gote' },
  { batch_size: '64' },
];

export interface JsFilter {
  games?: Set<string>;
  players?: Set<string>;
  minTurn?: number;
  maxTurn?: number;
  rewardMin?: number;
  terminalOnly: boolean;
  sampleRate: number;
  batchSize: number;
  timeoutMs: number;
}

/** What a user's own server would do with the same query. */
export function jsFilter(q: Record<string, string>): JsFilter {
  return {
    games: q.games ? new Set(q.games.split(',')) : undefined,
    players: q.players ? new Set(q.players.split(',')) : undefined,
    minTurn: q.min_turn ? Number(q.min_turn) : undefined,
    maxTurn: q.max_turn ? Number(q.max_turn) : undefined,
    rewardMin: q.reward_min ? Number(q.reward_min) : undefined,
    terminalOnly: q.terminal_only === 'true',
    sampleRate: q.sample_rate ? Number(q.sample_rate) : 1,
    batchSize: q.batch_size ? Number(q.batch_size) : 32,
    timeoutMs: q.timeout_ms ? Number(q.timeout_ms) : 100,
  };
}

export function passes(f: JsFilter, r: { game_id: string; player_id: string; turn: number; reward: number; done: boolean }): boolean {
  if (f.games && !f.games.has(r.game_id)) return false;
  if (f.players && !f.players.has(r.player_id)) return false;
  if (f.minTurn !== undefined && r.turn < f.minTurn) return false;
  if (f.maxTurn !== undefined && r.turn > f.maxTurn) return false;
  if (f.rewardMin !== undefined && r.reward < f.rewardMin) return false;
  if (f.terminalOnly && !r.done) return false;
  if (f.sampleRate < 1 && Math.random() >= f.sampleRate) return false;
  return true;
}

/** The baseline's JSON form of a record (mask as base64 of the same bitset ringcast sends). */
export function toJson(r: BenchRecord, timestamp: number): string {
  return jsonHead(r, timestamp) + tensorJson(r);
}

/** The scalar part of a baseline record's JSON, up to the tensors (tensorJson's text completes it). */
export function jsonHead(r: Pick<BenchRecord, 'gameId' | 'playerId' | 'turn' | 'action' | 'reward' | 'done'>, timestamp: number): string {
  return `{"game_id":${JSON.stringify(r.gameId)},"player_id":${JSON.stringify(r.playerId)},"turn":${r.turn},"action":${r.action},"reward":${r.reward},"done":${r.done},"timestamp":${timestamp},`;
}

/** The tensor part of a baseline record's JSON (state as a number array, mask as base64 of the bitset). */
export function tensorJson(r: BenchRecord): string {
  const bits = new Uint8Array(Math.ceil(ACTIONS / 8));
  for (let i = 0; i < ACTIONS; i++) if (r.mask[i]) bits[i >> 3] |= 1 << (i & 7);
  return `"state_shape":${JSON.stringify(STATE_SHAPE)},"state":${JSON.stringify(Array.from(r.state))},"legal_mask":"${Buffer.from(bits).toString('base64')}"}`;
}
