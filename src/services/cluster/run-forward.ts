/**
 * A Redis Stream per run that carries accepted events from the nodes a producer reached to
 * the run's owner (consumer group "owner", one consumer per node).
 *
 * At-least-once: an entry stays pending until the owner acknowledges it, and the owner
 * acknowledges only together with the aggregate snapshot that includes it (one fenced
 * script, `commit`), so a new owner that restores the snapshot and claims what is still
 * pending neither loses an event nor applies one twice, beyond the window in flight.
 * Acknowledged entries are deleted at once: the stream then holds only undelivered and
 * pending entries, and a forwarder refuses (and counts) an event once it holds maxLen of
 * them, rather than trimming away entries nobody has read.
 */
import type { Redis } from 'ioredis';
import { FENCE_CHECK, RedisScript, type FencedWriter, type LeaseGrant } from './run-lease.js';

export const OWNER_GROUP = 'owner';

const FORWARD = new RedisScript(`
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('XADD', KEYS[1], '*', 'e', ARGV[2])
return 1`);

/**
 * KEYS: lease, snapshot, stream, snapshot's writer; ARGV: holder, leaseMs, snapshot ('' keeps the
 * stored one), ids… The commit also extends the lease: an owner's periodic write and its renewal are one step.
 */
const COMMIT = new RedisScript(`${FENCE_CHECK}
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[2], ARGV[3])
  redis.call('SET', KEYS[4], ARGV[1])
end
if #ARGV > 3 then
  local ids = {}
  for i = 4, #ARGV do ids[#ids + 1] = ARGV[i] end
  redis.call('XACK', KEYS[3], '${OWNER_GROUP}', unpack(ids))
  redis.call('XDEL', KEYS[3], unpack(ids))
end
return 1`);

export interface ForwardedEntry {
  id: string;
  run: string;
  /** The ingest record as the forwarding node's ring held it. */
  record: Buffer;
}

export class RunStreams {
  forwarded = 0;
  /** Events refused because the run's stream was full (its owner is not keeping up, or gone). */
  refusedFull = 0;

  constructor(
    private readonly redis: Redis,
    private readonly nodeId: string,
    readonly maxLen: number,
    private readonly prefix = 'ringcast',
  ) {}

  streamKey(run: string): string {
    return `${this.prefix}:run:${run}:in`;
  }

  snapshotKey(run: string): string {
    return `${this.prefix}:run:${run}:snapshot`;
  }

  private runOf(key: string): string {
    return key.slice(this.prefix.length + 5, -3);
  }

  /** Appends one accepted event for the owner; false (counted) when the stream is full. */
  async forward(run: string, record: Uint8Array): Promise<boolean> {
    const ok = Number(await FORWARD.run(this.redis, [this.streamKey(run)], [this.maxLen, Buffer.from(record.buffer, record.byteOffset, record.byteLength)])) === 1;
    if (ok) this.forwarded++;
    else this.refusedFull++;
    return ok;
  }

  /** Creates the owners' group (from the stream's start) unless it exists. */
  async ensureGroup(run: string): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', this.streamKey(run), OWNER_GROUP, '0', 'MKSTREAM');
    } catch (error) {
      if (!String((error as Error)?.message).startsWith('BUSYGROUP')) throw error;
    }
  }

  /**
   * Takes over every entry pending on any consumer (a previous owner) of a run just acquired.
   * Their idle time does not matter: the lease says the previous owner is gone.
   */
  async claimPending(run: string, count = 1000): Promise<ForwardedEntry[]> {
    const out: ForwardedEntry[] = [];
    let cursor = '0-0';
    for (let rounds = 0; rounds < 100; rounds++) {
      const reply = (await this.redis.callBuffer('XAUTOCLAIM', this.streamKey(run), OWNER_GROUP, this.nodeId, 0, cursor, 'COUNT', count)) as unknown as [Buffer, Array<[Buffer, Buffer[]] | null>];
      for (const entry of reply[1]) {
        const parsed = entry && parseEntry(run, entry);
        if (parsed) out.push(parsed);
      }
      cursor = String(reply[0]);
      if (cursor === '0-0') break;
    }
    return out;
  }

  /**
   * New entries of the given runs' streams, waiting at most blockMs for the first. Uses
   * the connection it is given: a blocking read needs one of its own.
   */
  async read(reader: Redis, runs: readonly string[], blockMs: number, count = 512): Promise<ForwardedEntry[]> {
    if (runs.length === 0) return [];
    const keys = runs.map((r) => this.streamKey(r));
    const reply = (await reader.callBuffer(
      'XREADGROUP', 'GROUP', OWNER_GROUP, this.nodeId, 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', ...keys, ...keys.map(() => '>'),
    )) as Array<[Buffer, Array<[Buffer, Buffer[]] | null>]> | null;
    const out: ForwardedEntry[] = [];
    for (const [key, entries] of reply ?? []) {
      const run = this.runOf(String(key));
      for (const entry of entries) {
        const parsed = entry && parseEntry(run, entry);
        if (parsed) out.push(parsed);
      }
    }
    return out;
  }

  /** Every entry of one run's stream not yet read by any owner, oldest first, without waiting. */
  async readNow(run: string, count = 1000, maxRounds = 1000): Promise<ForwardedEntry[]> {
    const key = this.streamKey(run);
    const out: ForwardedEntry[] = [];
    for (let round = 0; round < maxRounds; round++) {
      const reply = (await this.redis.callBuffer('XREADGROUP', 'GROUP', OWNER_GROUP, this.nodeId, 'COUNT', count, 'STREAMS', key, '>')) as Array<[Buffer, Array<[Buffer, Buffer[]] | null>]> | null;
      const entries = reply?.[0]?.[1] ?? [];
      for (const entry of entries) {
        const parsed = entry && parseEntry(run, entry);
        if (parsed) out.push(parsed);
      }
      if (entries.length < count) break;
    }
    return out;
  }

  /** The last aggregate snapshot of a run (JSON text), or undefined. */
  async snapshot(run: string): Promise<string | undefined> {
    return (await this.redis.get(this.snapshotKey(run))) ?? undefined;
  }

  /** Who wrote the stored snapshot ("node|token"), or undefined. */
  async snapshotWriter(run: string): Promise<string | undefined> {
    return (await this.redis.get(`${this.snapshotKey(run)}:writer`)) ?? undefined;
  }

  /**
   * In one fenced step: extends the lease, stores the run's snapshot ('' leaves it) and
   * acknowledges (and deletes) the entries it includes. False when the lease is no longer
   * this grant's: the caller has lost the run.
   */
  async commit(fenced: FencedWriter, grant: LeaseGrant, leaseMs: number, run: string, snapshot: string, ids: readonly string[]): Promise<boolean> {
    const key = this.snapshotKey(run);
    return fenced.script(grant, `commit ${key}`, COMMIT, [key, this.streamKey(run), `${key}:writer`], [leaseMs, snapshot, ...ids]);
  }

  /** Entries of a run pending on other consumers for at least minIdleMs (a previous owner that woke up and read some). */
  async claimIdle(run: string, minIdleMs: number, count = 1000): Promise<ForwardedEntry[]> {
    const reply = (await this.redis.callBuffer('XAUTOCLAIM', this.streamKey(run), OWNER_GROUP, this.nodeId, minIdleMs, '0-0', 'COUNT', count)) as unknown as [Buffer, Array<[Buffer, Buffer[]] | null>];
    const out: ForwardedEntry[] = [];
    for (const entry of reply[1]) {
      const parsed = entry && parseEntry(run, entry);
      if (parsed) out.push(parsed);
    }
    return out;
  }
}

function parseEntry(run: string, [id, fields]: [Buffer, Buffer[]]): ForwardedEntry | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (String(fields[i]) === 'e') return { id: String(id), run, record: fields[i + 1] };
  }
  return undefined; // a foreign entry: nothing of ours to apply
}
