/**
 * Which node aggregates which run, when several nodes share a Redis (cluster mode only).
 *
 * A run has one owner: the node holding its lease (run-lease.ts). The owner applies the
 * events its own producers send; every other node forwards the run's accepted events to
 * the owner through the run's stream (run-forward.ts). A node that sees events of a run
 * nobody owns takes the lease and becomes the owner; so does a forwarder once the owner's
 * lease has run out (the owner died or was cut off).
 *
 * Taking a run over: acquire → restore the last snapshot the previous owner committed →
 * claim and apply what it had read but not committed → apply what is still unread in the
 * stream (this node's own earlier forwards among it) → apply the node's own events that
 * arrived meanwhile, which were held back (bounded) rather than forwarded. Only then do its
 * events go straight to the aggregator: an event must never overtake an earlier one of the
 * same run still on its way through Redis.
 *
 * The owner commits once per window (and at least every leaseMs/3): snapshot + the stream
 * entries it includes acknowledged + lease extended, in one fenced script. Locally applied
 * events since the last commit are what a takeover can lose (at most one window); claimed
 * entries already in a snapshot's window are what it can repeat: both counted.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { FencedWriter, Leases, type LeaseGrant } from '../../services/cluster/run-lease.js';
import { RunStreams, type ForwardedEntry } from '../../services/cluster/run-forward.js';
import { decodeRun } from './run-persist.js';
import type { PersistedRun } from './run-state.js';

export interface RunOwnershipOptions {
  redis: string;
  nodeId: string;
  leaseMs: number;
  /** Unconsumed events one run's stream may hold before forwarders refuse more. */
  streamMaxLen?: number;
  /** Forwards waiting for Redis beyond this are dropped (counted): Redis is slow or away. */
  maxInFlight?: number;
  prefix?: string;
}

/** What the ownership needs from the aggregator. */
export interface RunOwnershipHooks {
  /** Applies an ingest record of a run this node owns (bytes as the ring held them). */
  apply(record: Uint8Array): void;
  /** The run's state as text for its snapshot, or undefined when it is not tracked. */
  encode(run: string): string | undefined;
  /** Starts the run over from a snapshot (or empty when there is none). */
  adopt(run: string, snapshot: PersistedRun | undefined): void;
  /** Forgets a run this node no longer owns. */
  drop(run: string): void;
}

type RunEntry =
  | { state: 'remote'; lastForwardAt: number; lastTryAt: number }
  | { state: 'acquiring'; lastForwardAt: number; held: Buffer[]; heldBytes: number }
  | { state: 'owned'; grant: LeaseGrant; ids: string[]; dirty: boolean; committing: boolean; failing: boolean; lastCommitAt: number; validUntil: number; lastForwardAt: number };

export const DEFAULT_STREAM_MAX_LEN = 100_000;
const DEFAULT_MAX_IN_FLIGHT = 20_000;
/** Own events held back while a run is being acquired (a few ms, or a Redis timeout at worst). */
const MAX_HELD_EVENTS = 20_000;
const MAX_HELD_BYTES = 64 * 2 ** 20;
/** A forwarder keeps contesting a silent owner's lease this long after it last forwarded an event. */
const CONTEST_FOR_LEASES = 10;

export class RunOwnership {
  private readonly redis: Redis;
  private readonly reader: Redis;
  private readonly leases: Leases;
  private readonly streams: RunStreams;
  private readonly fenced: FencedWriter;
  private readonly runs = new Map<string, RunEntry>();
  /** Per run, the last forward this node issued (settles, never rejects): a new owner waits for it. */
  private readonly lastForwards = new Map<string, Promise<void>>();
  private inFlight = 0;
  private closed = false;
  private readonly tick: NodeJS.Timeout;
  private readonly readLoop: Promise<void>;
  private readonly maxInFlight: number;
  private readonly m: {
    forwarded: Counter; forwardDrops: Counter<'reason'>; takeovers: Counter; lost: Counter<'reason'>;
    refused: Counter; replayed: Counter; gap: Histogram; commitFailures: Counter;
  };
  private logs = 0;

  constructor(private readonly opts: RunOwnershipOptions, private readonly hooks: RunOwnershipHooks, private readonly log: Logger, registry: Registry) {
    const connection = { maxRetriesPerRequest: 2, retryStrategy: (n: number) => Math.min(2000, 50 * 2 ** Math.min(n, 6)), lazyConnect: false };
    // A Redis that stops answering (paused, partitioned) fails commands after a lease instead of holding them forever.
    this.redis = new Redis(opts.redis, { ...connection, commandTimeout: opts.leaseMs, connectionName: `${opts.nodeId}:runs` });
    this.reader = new Redis(opts.redis, { ...connection, commandTimeout: opts.leaseMs + READ_BLOCK_MS, connectionName: `${opts.nodeId}:runs-reader` });
    for (const c of [this.redis, this.reader]) c.on('error', (error: Error) => this.warn({ err: error.message }, 'run ownership: Redis connection error'));
    const prefix = opts.prefix ?? 'ringcast';
    this.leases = new Leases(this.redis, opts.nodeId, opts.leaseMs, prefix);
    this.streams = new RunStreams(this.redis, opts.nodeId, opts.streamMaxLen ?? DEFAULT_STREAM_MAX_LEN, prefix);
    this.fenced = new FencedWriter(this.redis, (grant, what) => {
      this.m.refused.inc();
      this.log.warn({ run: grant.name, token: grant.token, what }, 'run ownership: a write was refused: this node\'s lease on the run has passed to another node');
    });
    this.maxInFlight = opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.m = {
      forwarded: new Counter({ name: 'ringcast_cluster_run_forwarded_total', help: 'Events of runs another node owns, forwarded to it through the run\'s Redis stream', registers: [registry] }),
      forwardDrops: new Counter({ name: 'ringcast_cluster_run_forward_drops_total', help: 'Events that could not be forwarded to a run\'s owner, by reason (stream_full, backlog, error)', labelNames: ['reason'], registers: [registry] }),
      takeovers: new Counter({ name: 'ringcast_cluster_run_takeovers_total', help: 'Runs this node became the owner of', registers: [registry] }),
      lost: new Counter({ name: 'ringcast_cluster_run_leases_lost_total', help: 'Runs this node stopped owning, by reason (refused: the lease passed to another node; expired: not renewed in time)', labelNames: ['reason'], registers: [registry] }),
      refused: new Counter({ name: 'ringcast_cluster_fenced_writes_refused_total', help: 'Writes to shared run state refused because this node\'s lease token is no longer current', registers: [registry] }),
      replayed: new Counter({ name: 'ringcast_cluster_run_replayed_total', help: 'Forwarded events applied again after a takeover (read by the previous owner, not in its last snapshot)', registers: [registry] }),
      gap: new Histogram({ name: 'ringcast_cluster_run_takeover_gap_seconds', help: 'At a takeover, the time between the previous owner\'s last snapshot and the takeover (its locally applied events in that time are lost)', buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30], registers: [registry] }),
      commitFailures: new Counter({ name: 'ringcast_cluster_run_commit_failures_total', help: 'Run snapshot commits that failed for a Redis error (retried at the next window)', registers: [registry] }),
    };
    for (const reason of ['stream_full', 'backlog', 'error']) this.m.forwardDrops.inc({ reason }, 0);
    for (const reason of ['refused', 'expired']) this.m.lost.inc({ reason }, 0);
    const owned = () => this.owned().length;
    new Gauge({ name: 'ringcast_cluster_runs_owned', help: 'Runs this node owns (aggregates) in the cluster', registers: [registry], collect() { this.set(owned()); } });
    this.tick = setInterval(() => this.onTick(), Math.max(50, Math.floor(opts.leaseMs / 3)));
    this.readLoop = this.readForever();
  }

  private warn(fields: Record<string, unknown>, message: string): void {
    // The first few, then 1 in 100: a Redis outage must not flood the log.
    if (this.logs++ < 10 || this.logs % 100 === 0) this.log.warn(fields, message);
  }

  /** Runs this node owns now. */
  owned(): string[] {
    return [...this.runs].filter(([, e]) => e.state === 'owned').map(([run]) => run);
  }

  /**
   * True while this node may speak for the run: it owns it and its lease has not run out by
   * this node's clock. A node that was paused past its lease still thinks it owns the run
   * until its next commit is refused; what it aggregated meanwhile must not reach other nodes.
   */
  holds(run: string): boolean {
    const e = this.runs.get(run);
    return e?.state === 'owned' && Date.now() <= e.validUntil;
  }

  stats(): Record<string, unknown> {
    return { owned: this.owned(), forwarded: this.streams.forwarded, refusedFull: this.streams.refusedFull, fencedRefused: this.fenced.refused, inFlight: this.inFlight };
  }

  /**
   * True when this node owns the run and the caller applies the record now; false when it
   * went (or is going) to the owner through the run's stream. The record is copied.
   */
  route(run: string, record: Uint8Array): boolean {
    const now = Date.now();
    let entry = this.runs.get(run);
    if (entry?.state === 'owned') return true;
    if (!entry) {
      // First sight: try to take the run at once, holding its events until that is decided.
      this.runs.set(run, { state: 'remote', lastForwardAt: now, lastTryAt: 0 });
      this.tryAcquire(run);
      entry = this.runs.get(run)!;
    }
    entry.lastForwardAt = now;
    if (entry.state === 'acquiring') {
      this.hold(entry, record);
      return false;
    }
    this.forward(run, record);
    if (entry.state === 'remote' && now - entry.lastTryAt >= this.opts.leaseMs / 4) this.tryAcquire(run);
    return false;
  }

  private hold(entry: Extract<RunEntry, { state: 'acquiring' }>, record: Uint8Array): void {
    if (entry.held.length >= MAX_HELD_EVENTS || entry.heldBytes + record.byteLength > MAX_HELD_BYTES) {
      this.m.forwardDrops.inc({ reason: 'backlog' });
      return;
    }
    entry.held.push(Buffer.from(record)); // the ring's memory is reused once the handler returns
    entry.heldBytes += record.byteLength;
  }

  private forward(run: string, record: Uint8Array): void {
    if (this.inFlight >= this.maxInFlight) { this.m.forwardDrops.inc({ reason: 'backlog' }); return; }
    this.inFlight++;
    const copy = Buffer.from(record); // the ring's memory is reused once the handler returns
    const settled: Promise<void> = this.streams.forward(run, copy).then(
      (ok) => { if (ok) this.m.forwarded.inc(); else this.m.forwardDrops.inc({ reason: 'stream_full' }); },
      (error: Error) => { this.m.forwardDrops.inc({ reason: 'error' }); this.warn({ run, err: error.message }, 'run ownership: could not forward an event to the run\'s owner'); },
    ).finally(() => {
      this.inFlight--;
      if (this.lastForwards.get(run) === settled) this.lastForwards.delete(run);
    });
    this.lastForwards.set(run, settled);
  }

  private tryAcquire(run: string): void {
    const entry = this.runs.get(run);
    if (!entry || entry.state !== 'remote' || this.closed) return;
    entry.lastTryAt = Date.now();
    this.runs.set(run, { state: 'acquiring', lastForwardAt: entry.lastForwardAt, held: [], heldBytes: 0 });
    void this.acquire(run).catch((error: Error) => {
      this.warn({ run, err: error.message }, 'run ownership: taking the run failed; will retry');
      this.backToRemote(run);
    });
  }

  /** Not the owner after all: what was held back goes to the owner, in order, after what went before. */
  private backToRemote(run: string): void {
    const e = this.runs.get(run);
    if (e?.state !== 'acquiring') return;
    this.runs.set(run, { state: 'remote', lastForwardAt: e.lastForwardAt, lastTryAt: Date.now() });
    for (const record of e.held) this.forward(run, record);
  }

  private async acquire(run: string): Promise<void> {
    const grant = await this.leases.acquire(run);
    if (!grant || this.closed) {
      this.backToRemote(run);
      if (grant) await this.leases.release(grant);
      return;
    }
    const acquiredAt = Date.now();
    try {
      // This node's earlier forwards must be in the stream before it reads the stream dry.
      await this.lastForwards.get(run);
      await this.streams.ensureGroup(run);
      const text = await this.streams.snapshot(run);
      let snapshot: PersistedRun | undefined;
      if (text !== undefined) {
        try {
          snapshot = decodeRun(text, run);
        } catch (error) {
          this.log.warn({ run, key: this.streams.snapshotKey(run), err: (error as Error).message }, 'run ownership: refused the stored run snapshot; starting the run empty');
        }
      }
      this.hooks.adopt(run, snapshot);
      if (snapshot) this.m.gap.observe(Math.max(0, acquiredAt - snapshot.lastSeenMs) / 1000);
      // Oldest first: what the previous owner had read, then what nobody has read yet.
      const claimed = await this.streams.claimPending(run);
      const unread = await this.streams.readNow(run);
      const entry = this.runs.get(run);
      if (entry?.state !== 'acquiring' || this.closed) throw new Error('the run was released or the node is stopping');
      const owned: RunEntry = { state: 'owned', grant, ids: [], dirty: true, committing: false, failing: false, lastCommitAt: acquiredAt, validUntil: acquiredAt + this.opts.leaseMs, lastForwardAt: entry.lastForwardAt };
      this.runs.set(run, owned);
      this.applyEntries(owned, claimed);
      this.applyEntries(owned, unread);
      for (const record of entry.held) this.hooks.apply(record);
      this.m.replayed.inc(claimed.length);
      this.m.takeovers.inc();
      this.log.info({ run, token: grant.token, restored: snapshot !== undefined, claimed: claimed.length, unread: unread.length, held: entry.held.length, ms: Date.now() - acquiredAt }, 'run ownership: this node now owns the run');
    } catch (error) {
      this.backToRemote(run);
      this.hooks.drop(run);
      await this.leases.release(grant).catch(() => undefined);
      throw error;
    }
  }

  private applyEntries(owned: Extract<RunEntry, { state: 'owned' }>, entries: readonly ForwardedEntry[]): void {
    for (const e of entries) {
      if (owned.ids.includes(e.id)) continue; // already applied, not yet committed
      this.hooks.apply(e.record);
      owned.ids.push(e.id);
      owned.dirty = true;
    }
  }

  /** An owned run had events applied locally: its next commit carries a snapshot. */
  touched(run: string): void {
    const e = this.runs.get(run);
    if (e?.state === 'owned') e.dirty = true;
  }

  private async readForever(): Promise<void> {
    while (!this.closed) {
      const runs = this.owned();
      if (runs.length === 0) { await sleep(100); continue; }
      try {
        const entries = await this.streams.read(this.reader, runs, READ_BLOCK_MS);
        const now = Date.now();
        for (const e of entries) {
          const owned = this.runs.get(e.run);
          // Past its lease (this process was paused, or Redis was away) a node must not act
          // as owner: the entries stay pending for whoever owns the run now to claim.
          if (owned?.state !== 'owned' || now > owned.validUntil) continue;
          this.applyEntries(owned, [e]);
        }
      } catch (error) {
        if (this.closed) return;
        this.warn({ err: (error as Error).message }, 'run ownership: reading forwarded events failed; retrying');
        await sleep(500);
      }
    }
  }

  /** After a window: commits owned runs with news (all of them at least every leaseMs/3). */
  commitWindow(): void {
    const now = Date.now();
    for (const [run, e] of this.runs) {
      if (e.state !== 'owned' || e.committing) continue;
      if (!e.dirty && e.ids.length === 0 && now - e.lastCommitAt < this.opts.leaseMs / 3) continue;
      this.commit(run, e, now);
    }
  }

  private commit(run: string, e: Extract<RunEntry, { state: 'owned' }>, now: number): void {
    const text = e.dirty ? this.hooks.encode(run) ?? '' : '';
    const ids = e.ids.splice(0);
    e.dirty = false;
    e.committing = true;
    this.streams.commit(this.fenced, e.grant, this.opts.leaseMs, run, text, ids).then(
      (ok) => {
        e.committing = false;
        e.failing = false;
        if (ok) {
          e.lastCommitAt = now;
          e.validUntil = now + this.opts.leaseMs;
        } else {
          void this.reacquireOrLose(run, e);
        }
      },
      (error: Error) => {
        e.committing = false;
        e.failing = true;
        e.ids.unshift(...ids);
        e.dirty ||= text !== '';
        this.m.commitFailures.inc();
        this.warn({ run, err: error.message }, 'run ownership: committing the run snapshot failed; retrying at the next window');
      },
    );
  }

  /**
   * A refused commit: when nobody holds the lease (Redis restarted empty, or this node's lease
   * ran out with no one waiting) this node takes it again and keeps its state, which is then
   * newer than anything Redis has; when another node holds it, the run is lost.
   */
  private async reacquireOrLose(run: string, e: Extract<RunEntry, { state: 'owned' }>): Promise<void> {
    if (this.runs.get(run) !== e) return;
    try {
      if ((await this.leases.holder(run)) === undefined) {
        const grant = await this.leases.acquire(run);
        if (grant && this.runs.get(run) === e) {
          await this.streams.ensureGroup(run);
          e.grant = grant;
          e.dirty = true;
          e.validUntil = Date.now() + this.opts.leaseMs;
          this.log.info({ run, token: grant.token }, 'run ownership: the run\'s lease was gone from Redis; this node took it again and keeps its state');
          return;
        }
        if (grant) await this.leases.release(grant);
      }
    } catch (error) {
      this.warn({ run, err: (error as Error).message }, 'run ownership: could not check the run\'s lease after a refused commit');
    }
    this.lose(run, e, 'refused');
  }

  private lose(run: string, e: Extract<RunEntry, { state: 'owned' }>, reason: 'refused' | 'expired'): void {
    if (this.runs.get(run) !== e) return;
    this.runs.set(run, { state: 'remote', lastForwardAt: e.lastForwardAt, lastTryAt: Date.now() });
    this.hooks.drop(run);
    this.m.lost.inc({ reason });
    this.log.warn({ run, token: e.grant.token, reason }, 'run ownership: this node no longer owns the run');
  }

  private onTick(): void {
    const now = Date.now();
    for (const [run, e] of this.runs) {
      if (e.state === 'owned') {
        // Commits failing past the lease (Redis away or cut off): another node may own the run
        // by now. A node that was merely paused still tries its commit, and the fence refuses it.
        if (e.failing && !e.committing && now > e.validUntil) this.lose(run, e, 'expired');
        else if (!e.committing) this.claimStray(run, e);
      } else if (e.state === 'remote') {
        if (now - e.lastForwardAt > CONTEST_FOR_LEASES * this.opts.leaseMs) this.runs.delete(run);
        else if (now - e.lastTryAt >= this.opts.leaseMs / 4) this.tryAcquire(run);
      }
    }
    this.commitWindow();
  }

  /** Entries a paused previous owner read after waking sit pending on it: take them once they are a lease old. */
  private claimStray(run: string, e: Extract<RunEntry, { state: 'owned' }>): void {
    this.streams.claimIdle(run, this.opts.leaseMs).then(
      (entries) => {
        if (this.runs.get(run) !== e || entries.length === 0) return;
        const fresh = entries.filter((x) => !e.ids.includes(x.id));
        this.applyEntries(e, fresh);
        this.m.replayed.inc(fresh.length);
      },
      (error: Error) => this.warn({ run, err: error.message }, 'run ownership: claiming stray entries failed'),
    );
  }

  /** Gives up a run this node owns (evicted: too many runs): its lease is released, its entry forgotten. */
  release(run: string): void {
    const e = this.runs.get(run);
    this.backToRemote(run); // held events still reach whoever owns the run
    this.runs.delete(run);
    if (e?.state !== 'owned') return;
    this.leases.release(e.grant).catch((error: Error) => this.warn({ run, err: error.message }, 'run ownership: releasing an evicted run failed; its lease will expire'));
  }

  /** Releases every lease (a clean stop: the next owner need not wait for them to expire). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.tick);
    const owned = [...this.runs.values()].filter((e): e is Extract<RunEntry, { state: 'owned' }> => e.state === 'owned');
    await Promise.allSettled(owned.map(async (e) => {
      const text = this.hooks.encode(e.grant.name) ?? '';
      await this.streams.commit(this.fenced, e.grant, this.opts.leaseMs, e.grant.name, text, e.ids.splice(0));
      await this.leases.release(e.grant);
    }));
    this.reader.disconnect();
    await this.readLoop.catch(() => undefined);
    this.redis.disconnect();
  }
}

const READ_BLOCK_MS = 200;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
