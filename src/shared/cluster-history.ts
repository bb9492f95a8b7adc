/**
 * History of critical messages (milestones, game results) per run, in Redis, so a viewer that
 * reconnects (to any node) with `"since": <offset>` gets exactly what it missed.
 *
 *   ringcast:history:<run>        a Stream; entry id `<offset>-1`, fields `c` (channel id) and
 *                                 `l<levelMask>` (the message for those levels, as published)
 *   ringcast:history:<run>:meta   a Hash: `epoch` (random; a new one whenever the history was lost)
 *                                 and `seq` (the last offset given)
 *
 * Both keys expire HISTORY_TTL_MS after the run's last critical message.
 *
 * Offsets count messages of one run from 1; every level variant of one message shares its offset.
 * The epoch answers "is this still the history my offset belongs to": a Redis restarted without
 * persistence, or a meta key lost, starts a new epoch and a client holding the old one is told
 * its history is gone (and gets the current state from its snapshot instead).
 *
 * The message a viewer receives carries its place: `{"run": R, "offset": N, "epoch": E, "type": ...}`.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

export const historyKey = (run: string) => `ringcast:history:${run}`;
export const historyMetaKey = (run: string) => `ringcast:history:${run}:meta`;
/** Entries kept per run (approximately: MAXLEN ~). */
export const HISTORY_MAX_LEN = 1000;
/** A run's history outlives its last critical message by this long (then Redis drops it: bounded memory for finished runs). */
export const HISTORY_TTL_MS = 7 * 24 * 3600 * 1000;
/** Most messages one recovery sends; a client further behind is told the history is gone. */
export const MAX_RECOVERY = 1000;
const RUN_RE = /^[\x21-\x7e]{1,255}$/;

/**
 * Appends one message (its level variants) and returns [offset, epoch]. A missing meta (first
 * message, or history lost) starts a new epoch and drops whatever stream was left without one.
 */
const APPEND_LUA = `
local lease = redis.call('GET', KEYS[3])
if ARGV[5] ~= '' and lease and string.sub(lease, 1, #ARGV[5] + 1) ~= ARGV[5] .. '|' then return {-1, ''} end
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then
  epoch = ARGV[2]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'epoch', epoch, 'seq', 0)
end
local off = redis.call('HINCRBY', KEYS[2], 'seq', 1)
local args = {KEYS[1], 'MAXLEN', '~', ARGV[1], off .. '-1', 'c', ARGV[3]}
for i = 6, #ARGV do args[#args + 1] = ARGV[i] end
redis.call('XADD', unpack(args))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {off, epoch}
`;

export interface HistoryVariant { levelMask: number; body: Uint8Array }

export function newEpoch(): string {
  return Math.random().toString(36).slice(2, 10);
}

/** The run's ownership lease (services/cluster/run-lease.ts): "node|token" while a node owns the run. */
export const runLeaseKey = (run: string) => `ringcast:lease:${run}`;

/**
 * Appends one message; with `nodeId`, only while no other node holds the run's ownership lease:
 * a node that lost the run (paused past its lease, cut off) gets offset -1 and writes nothing.
 */
export async function appendHistory(redis: Redis, run: string, channel: number, variants: readonly HistoryVariant[], epoch = newEpoch(), nodeId = ''): Promise<{ offset: number; epoch: string }> {
  const fields: Array<string | Buffer> = [];
  for (const v of variants) fields.push(`l${v.levelMask}`, Buffer.from(v.body.buffer, v.body.byteOffset, v.body.byteLength));
  const reply = (await redis.eval(APPEND_LUA, 3, historyKey(run), historyMetaKey(run), runLeaseKey(run), HISTORY_MAX_LEN, epoch, channel, HISTORY_TTL_MS, nodeId, ...fields)) as [number, string];
  return { offset: Number(reply[0]), epoch: String(reply[1]) };
}

const encoder = new TextEncoder();

/** The message with its place in the history in front: `{"run":…,"offset":…,"epoch":…,` + the rest. */
export function stampBody(body: Uint8Array, run: string, offset: number, epoch: string): Uint8Array {
  if (body.byteLength < 2 || body[0] !== 0x7b) return body;
  const head = encoder.encode(`{"run":${JSON.stringify(run)},"offset":${offset},"epoch":${JSON.stringify(epoch)},`);
  const out = new Uint8Array(head.byteLength + body.byteLength - 1);
  out.set(head, 0);
  out.set(body.subarray(1), head.byteLength);
  return out;
}

/** The run a critical message belongs to, from its snapshot key (`<type>:<run>`); undefined when it has none. */
export function runOfKey(key: string): string | undefined {
  const i = key.indexOf(':');
  const run = i < 0 ? '' : key.slice(i + 1);
  return RUN_RE.test(run) ? run : undefined;
}

export interface HistoryRequest {
  run: string;
  /** The last offset the client has. */
  since: number;
  epoch: string;
  /** LEVEL_BIT of the client's level. */
  levelBit: number;
}

export interface HistoryMessage { offset: number; channel: number; body: string }

export type HistoryReply =
  | { ok: true; epoch: string; offset: number; messages: HistoryMessage[] }
  | { ok: false; gone: boolean; reason: string; epoch?: string; offset?: number };

export async function readHistory(redis: Redis, health: { up: boolean }, r: HistoryRequest, log: Logger): Promise<HistoryReply> {
  if (typeof r?.run !== 'string' || !RUN_RE.test(r.run) || !Number.isSafeInteger(r.since) || r.since < 0 || typeof r.epoch !== 'string') {
    return { ok: false, gone: false, reason: 'bad history request' };
  }
  if (!health.up) return { ok: false, gone: false, reason: 'history unavailable: this node cannot reach Redis now; retry later' };
  const metaKey = historyMetaKey(r.run);
  const key = historyKey(r.run);
  let meta: Record<string, string>;
  try {
    meta = await redis.hgetall(metaKey);
  } catch (error) {
    log.error({ key: metaKey, err: (error as Error).message }, `cluster: history meta at ${metaKey} is unreadable`);
    return { ok: false, gone: true, reason: `history of run ${JSON.stringify(r.run)} is unreadable` };
  }
  const seq = Number(meta.seq);
  if (meta.epoch === undefined || !Number.isSafeInteger(seq) || seq < 0) {
    if (meta.epoch !== undefined) log.error({ key: metaKey }, `cluster: history meta at ${metaKey} has no valid seq`);
    return { ok: false, gone: true, reason: `no history for run ${JSON.stringify(r.run)}` };
  }
  if (meta.epoch !== r.epoch) return { ok: false, gone: true, reason: `history epoch changed (${r.epoch} → ${meta.epoch}): what was kept is lost`, epoch: meta.epoch, offset: seq };
  if (r.since >= seq) return { ok: true, epoch: meta.epoch, offset: seq, messages: [] };
  if (seq - r.since > MAX_RECOVERY) return { ok: false, gone: true, reason: `${seq - r.since} messages missed; at most ${MAX_RECOVERY} are recovered`, epoch: meta.epoch, offset: seq };
  let entries: Array<[string, string[]]>;
  try {
    entries = await redis.xrange(key, `${r.since + 1}-0`, '+', 'COUNT', MAX_RECOVERY);
  } catch (error) {
    log.error({ key, err: (error as Error).message }, `cluster: history at ${key} is unreadable`);
    return { ok: false, gone: true, reason: `history of run ${JSON.stringify(r.run)} is unreadable` };
  }
  const first = entries.length > 0 ? Number.parseInt(entries[0][0], 10) : Infinity;
  if (first !== r.since + 1) return { ok: false, gone: true, reason: `history trimmed: offsets after ${r.since} are no longer kept`, epoch: meta.epoch, offset: seq };
  const messages: HistoryMessage[] = [];
  for (const [id, fields] of entries) {
    const offset = Number.parseInt(id, 10);
    let channel = -1;
    let body: string | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const name = fields[i];
      if (name === 'c') channel = Number(fields[i + 1]);
      else if (/^l\d+$/.test(name) && (Number(name.slice(1)) & r.levelBit) !== 0) body = fields[i + 1];
    }
    if (body === undefined || !Number.isInteger(channel) || channel < 0 || !body.startsWith('{')) continue;
    messages.push({ offset, channel, body: `{"run":${JSON.stringify(r.run)},"offset":${offset},"epoch":${JSON.stringify(meta.epoch)},${body.slice(1)}` });
  }
  return { ok: true, epoch: meta.epoch, offset: seq, messages };
}
