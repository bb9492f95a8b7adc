/**
 * The aggregator actor: drains every ingest ring, keeps per-run state, and once per window
 * publishes ready-to-send messages into one fan-out ring per gateway.
 *
 *   ingest.* rings ──► decode ──► RunState (per run) ──window──► messages ──► fanout.gw<i> rings
 *                          └── experience events: forwarded as is, at once, no batching
 *                          └── milestones (trainer-sent and detected): written at once, critical
 *
 * Why windows: trainers emit metrics per step and tensors at whatever rate they like; an
 * overlay needs at most ~10 updates a second per channel. A window conflates everything a
 * channel received into one message, serialised once per level variant (messages.ts), so
 * the cost of the fan-out no longer depends on the producer's rate. Milestones and game
 * results are the exception: they are rare, and must never be conflated away.
 *
 * Input is at-least-once (a restarted aggregator sees its last uncommitted batch again);
 * milestone ids are stable (milestones.ts) so clients de-duplicate the replays. The event
 * handler never throws: a throwing handler would make the ring re-deliver the same batch
 * forever, so a bad record is counted and skipped instead.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import { defineActor, type ActorContext } from '../../shared/actor.js';
import { consumeLoop } from '../../shared/consume-loop.js';
import { RecordRing } from '../../shared/record-ring.js';
import { CHANNELS, channelId, type Channel } from '../../shared/telemetry/channels.js';
import { EVENT_HEADER_BYTES, EVENT_KIND_NAMES, EVENT_MAGIC, EventKind, TELEMETRY_KINDS, decodeEvent, type TelemetryEvent } from '../../shared/telemetry/event-codec.js';
import { encodeFanoutRecord, FANOUT_HEADER_BYTES, FanoutFlag, FanoutType, readIngestRecord, writeFanoutRecord, writeIngestRecord } from '../../shared/telemetry/ring-records.js';
import {
  boardHeatmapData, encode, gameStateData, metricsExplanations, milestoneData, movePredictionData, ppoMetricsData, ppoMetricsTails, seAttentionData, snapshotKey, type LevelData,
} from './messages.js';
import { BurstBudget } from './metric-window.js';
import { checkRules, type Milestone, type MilestoneRules } from './milestones.js';
import { checkThresholds, type HealthThresholds } from './ppo-health.js';
import { RunState, type DropReason, type LateOutcome, type RunSettings } from './run-state.js';
import { runSnapshot, runSummary, type RunSummary } from './snapshot.js';
import { RunOwnership, type RunOwnershipOptions } from './run-ownership.js';
import { encodeRun } from './run-persist.js';
import { runOfKey } from '../../shared/cluster-history.js';

export interface AggregatorOptions {
  /** Ingest rings (records per ring-records.ts writeIngestRecord layout). */
  inRings: string[];
  /** One fan-out ring per gateway; every message is written to each. */
  outRings: string[];
  windowMs: number;
  seriesPoints: number;
  smoothingAlpha: number;
  attentionAlpha: number;
  focusSquares: number;
  /**
   * Points beyond seriesPoints that one window may carry, over every metric of every run
   * (a burst after a stall); more are dropped and counted. Default DEFAULT_BURST_POINTS.
   */
  burstPoints?: number;
  health: HealthThresholds;
  milestones: MilestoneRules;
  /**
   * Where a copy of every accepted event goes for the recorder (an ingest-format record under
   * the event's resolved run name). Absent: nothing is recorded.
   */
  recordRing?: string;
  /**
   * Record experience events too. Off by default: experience is the bulk stream (16 KB a record
   * at thousands a second), more than a disk takes, and it would push the runs' telemetry history
   * out of the recordings' byte bounds; consumers resume from the gateways' retained window instead.
   */
  recordExperience?: boolean;
  /** Input rings whose events are not recorded (the replay ring: those are recordings already). */
  unrecordedRings?: string[];
  /**
   * Cluster mode (Redis configured): each run is aggregated by the one node that owns it;
   * the others forward its events there (run-ownership.ts). Absent: every run is local.
   */
  cluster?: RunOwnershipOptions;
  /**
   * Cluster mode: the out ring the cluster relay publishes to the other nodes. A run's records
   * go there only while this node holds the run's lease (RunOwnership.holds).
   */
  relayRing?: string;
}

/** Most runs tracked at once; the least recently seen is evicted (and counted) beyond this. */
export const MAX_RUNS = 64;
export const DEFAULT_RUN = 'default';
export const DEFAULT_BURST_POINTS = 50_000;

const KINDS = ['metrics', 'se_attention', 'board_heatmap', 'policy', 'game_state', 'milestone', 'experience', 'relay', 'other'] as const;

function validate(ctx: ActorContext<AggregatorOptions>): AggregatorOptions {
  const o = ctx.options;
  const who = `aggregator "${ctx.name}"`;
  if (o === null || typeof o !== 'object') throw new TypeError(`${who}: options object required`);
  for (const [field, rings, dir] of [['inRings', ctx.in, 'in'], ['outRings', ctx.out, 'out']] as const) {
    const names = o[field];
    if (!Array.isArray(names) || (field === 'inRings' && names.length === 0)) throw new TypeError(`${who}: options.${field} must be an array of ring names${field === 'inRings' ? ' (at least one)' : ''}`);
    for (const n of names) {
      if (!(rings[n] instanceof RecordRing)) throw new Error(`${who}: options.${field} names "${n}", which is not one of its ${dir} record rings (${Object.keys(rings).join(', ') || 'none'})`);
    }
  }
  const int = (k: 'windowMs' | 'seriesPoints' | 'focusSquares', min: number, max: number) => {
    if (!Number.isInteger(o[k]) || o[k] < min || o[k] > max) throw new RangeError(`${who}: options.${k} must be an integer ${min}..${max} (got ${String(o[k])})`);
  };
  int('windowMs', 1, 60_000);
  int('seriesPoints', 2, 100_000);
  int('focusSquares', 1, 81);
  if (o.burstPoints !== undefined && (!Number.isInteger(o.burstPoints) || o.burstPoints < 0 || o.burstPoints > 10_000_000)) {
    throw new RangeError(`${who}: options.burstPoints must be an integer 0..10000000 (got ${String(o.burstPoints)})`);
  }
  for (const k of ['smoothingAlpha', 'attentionAlpha'] as const) {
    if (!(o[k] > 0 && o[k] <= 1)) throw new RangeError(`${who}: options.${k} must be in (0, 1] (got ${String(o[k])})`);
  }
  if (o.recordRing !== undefined && !(ctx.out[o.recordRing] instanceof RecordRing)) throw new Error(`${who}: options.recordRing names "${o.recordRing}", which is not one of its out record rings`);
  if (o.relayRing !== undefined && (o.cluster === undefined || !o.outRings.includes(o.relayRing))) throw new Error(`${who}: options.relayRing ("${o.relayRing}") must be one of options.outRings, and options.cluster must be set`);
  checkThresholds(o.health);
  checkRules(o.milestones);
  if (o.cluster !== undefined) {
    const c = o.cluster;
    if (typeof c?.redis !== 'string' || !/^rediss?:\/\//.test(c.redis)) throw new TypeError(`${who}: options.cluster.redis must be a redis:// URL (got ${String(c?.redis)})`);
    if (typeof c.nodeId !== 'string' || c.nodeId === '') throw new TypeError(`${who}: options.cluster.nodeId must be a non-empty string`);
    if (!Number.isInteger(c.leaseMs) || c.leaseMs < 100) throw new RangeError(`${who}: options.cluster.leaseMs must be an integer >= 100 (got ${String(c.leaseMs)})`);
  }
  return o;
}

export default defineActor<AggregatorOptions>({
  start(ctx) {
    const opts = validate(ctx);
    const inRings = opts.inRings.map((n) => ctx.in[n] as RecordRing);
    const outRings = opts.outRings.map((n) => ({ name: n, ring: ctx.out[n] as RecordRing }));

    // ── metrics ──
    const eventsTotal = new Counter({ name: 'ringcast_aggregator_events_total', help: 'Ingest events consumed, by kind', labelNames: ['kind'], registers: [ctx.metrics] });
    const decodeFailures = new Counter({ name: 'ringcast_aggregator_decode_failures_total', help: 'Ingest records that could not be read or decoded (skipped)', registers: [ctx.metrics] });
    const messagesTotal = new Counter({ name: 'ringcast_aggregator_messages_total', help: 'Fan-out records written (per ring, per level variant), by message type', labelNames: ['type'], registers: [ctx.metrics] });
    const fanoutDrops = new Counter({ name: 'ringcast_aggregator_fanout_drops_total', help: 'Fan-out records a gateway ring refused (full or too large)', labelNames: ['ring'], registers: [ctx.metrics] });
    const recordDrops = new Counter({ name: 'ringcast_aggregator_record_drops_total', help: 'Accepted events the recorder ring refused (full: the recorder is behind); they are not recorded', registers: [ctx.metrics] });
    const dropped = new Counter({ name: 'ringcast_aggregator_dropped_total', help: 'State the aggregator discarded to stay bounded, by reason', labelNames: ['reason'], registers: [ctx.metrics] });
    const windowSeconds = new Histogram({
      name: 'ringcast_aggregator_window_seconds', help: 'Time to close one window: summarise, serialise and write every message',
      buckets: [1e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1], registers: [ctx.metrics],
    });
    const lateTotal = new Counter({
      name: 'ringcast_aggregator_late_total',
      help: 'Late events (a producer\'s offline spool draining) by outcome: live (newer than the run showed), filed (metric points filed into the history at their step), duplicate, behind (older than the kept history), hidden (old non-metric state, not shown)',
      labelNames: ['outcome'], registers: [ctx.metrics],
    });
    for (const o of ['live', 'filed', 'duplicate', 'behind', 'hidden']) lateTotal.inc({ outcome: o }, 0);
    // Same family as the relay's own drops: a dashboard sums the reasons across actors. Clustered only.
    const relayDropped = opts.relayRing === undefined ? undefined : new Counter({ name: 'ringcast_cluster_relay_dropped_total', help: 'Records not relayed, by reason (fenced: a run this node no longer holds the lease of)', labelNames: ['reason'], registers: [ctx.metrics] });
    relayDropped?.inc({ reason: 'fenced' }, 0);
    const runs = new Map<string, RunState>();
    // Set once the handlers exist, when clustered: routes each run's events to the node that owns the run.
    let ownership: RunOwnership | undefined;
    new Gauge({ name: 'ringcast_aggregator_runs', help: 'Runs currently tracked', registers: [ctx.metrics], collect() { this.set(runs.size); } });
    for (const k of KINDS) eventsTotal.inc({ kind: k }, 0);
    for (const r of outRings) fanoutDrops.inc({ ring: r.name }, 0);

    const counts = {
      events: 0, byKind: Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<string, number>,
      decodeFailures: 0, messages: 0, fanoutDrops: 0, windows: 0, evictedRuns: 0,
      dropped: {} as Record<string, number>, lastWindowMs: 0,
      late: { live: 0, filed: 0, duplicate: 0, behind: 0, hidden: 0 } as Record<LateOutcome, number>,
    };
    const drop = (reason: DropReason | 'run_evicted' | 'process_error', n = 1) => {
      counts.dropped[reason] = (counts.dropped[reason] ?? 0) + n;
      dropped.inc({ reason }, n);
    };
    const burstBudget = new BurstBudget(opts.burstPoints ?? DEFAULT_BURST_POINTS);

    const settings: RunSettings = {
      seriesPoints: opts.seriesPoints,
      smoothingAlpha: opts.smoothingAlpha,
      attentionAlpha: opts.attentionAlpha,
      health: opts.health,
      milestones: opts.milestones,
      // 20 windows (2 s at the default 100 ms): a trainer that sends heatmaps less often
      // than that is treated as not sending them, and the policy-derived one shows instead.
      heatmapFreshMs: Math.max(1000, 20 * opts.windowMs),
      burstBudget,
      onLate: (outcome, n) => { counts.late[outcome] += n; lateTotal.inc({ outcome }, n); },
    };

    function runFor(name: string, now: number): RunState {
      let r = runs.get(name);
      if (r) return r;
      if (runs.size >= MAX_RUNS) {
        let oldest: RunState | undefined;
        for (const s of runs.values()) if (!oldest || s.lastSeenMs < oldest.lastSeenMs) oldest = s;
        runs.delete(oldest!.run);
        ownership?.release(oldest!.run); // another node may take it; this one keeps no state for it
        counts.evictedRuns++;
        drop('run_evicted');
        ctx.log.warn({ evicted: oldest!.run, maxRuns: MAX_RUNS }, 'aggregator: too many runs, evicted the least recently seen');
      }
      r = new RunState(name, now, settings, drop);
      runs.set(name, r);
      return r;
    }

    // ── output ──
    // The experience stream's counters, bound once: a label look-up per record showed in profiles.
    const experienceMessages = messagesTotal.labels({ type: 'experience' });
    const experienceEvents = eventsTotal.labels({ kind: 'experience' });
    function account(ok: boolean, type: string, ring: string): void {
      if (ok) {
        counts.messages++;
        if (type === 'experience') experienceMessages.inc();
        else messagesTotal.inc({ type });
      } else {
        counts.fanoutDrops++;
        fanoutDrops.inc({ ring });
      }
    }

    // The last retained message per (key, level variant), as standalone fan-out records: when
    // a gateway restarts they are written into its fan-out ring again (replayRetained), so its
    // new clients still get a full snapshot. Bounded like the runs they belong to (MAX_RUNS × a few keys × 3 levels).
    const retained = new Map<string, Uint8Array>();
    function retain(key: string, levelMask: number, record: Uint8Array): void {
      const id = `${key}\u0000${levelMask}`;
      retained.delete(id);
      retained.set(id, record);
      if (retained.size > MAX_RUNS * 8 * 3) retained.delete(retained.keys().next().value as string);
    }

    // Per run and channel, the newest source timestamp behind its next message (the fan-out
    // record's stamp, from which the gateways measure end-to-end latency). Lives as long as its run.
    const sourceAt = new WeakMap<RunState, Partial<Record<Channel, number>>>();
    const noteSource = (run: RunState, at: number, ...channels: Channel[]) => {
      let m = sourceAt.get(run);
      if (!m) sourceAt.set(run, (m = {}));
      for (const c of channels) if (!(at <= (m[c] ?? 0))) m[c] = at;
    };
    const stampOf = (run: RunState, channel: Channel, now: number) => sourceAt.get(run)?.[channel] ?? now;

    /** `levels` limits which level variants are written (a mask of LEVEL_BIT). */
    function write(type: string, channel: Channel, key: string, flags: number, data: LevelData, now: number, stamp = now, levels = 7): void {
      const variants = encode(type, now, data)
        .map((v) => ({ ...v, levelMask: v.levelMask & levels }))
        .filter((v) => v.levelMask !== 0);
      const ch = channelId(channel);
      if (flags & FanoutFlag.Retain) {
        for (const v of variants) retain(key, v.levelMask, encodeFanoutRecord({ type: FanoutType.Update, channel: ch, levelMask: v.levelMask, flags, key, stamp, body: v.body }));
      }
      // A run this node no longer holds stays off the relay: the owner speaks for it to the other nodes.
      const run = opts.relayRing === undefined ? undefined : runOfKey(key);
      const fenced = run !== undefined && ownership !== undefined && !ownership.holds(run);
      for (const out of outRings) {
        if (fenced && out.name === opts.relayRing) { relayDropped?.inc({ reason: 'fenced' }, variants.length); continue; }
        for (const v of variants) {
          // Published by the caller's flushAll(): one atomic store per ring per window.
          account(writeFanoutRecord(out.ring, { type: FanoutType.Update, channel: ch, levelMask: v.levelMask, flags, key, stamp, body: v.body }, false), type, out.name);
        }
      }
    }
    const flushAll = () => { for (const out of outRings) out.ring.flush(); };

    function publishMilestones(run: RunState, found: Milestone[], now: number): void {
      if (found.length === 0) return;
      for (const m of found) {
        run.remember(m);
        // A late one (history from a producer's spool) goes to whoever is watching, flagged, but
        // is neither critical nor the retained "latest milestone" a new client is greeted with.
        const flags = m.late ? 0 : FanoutFlag.Critical | FanoutFlag.Retain;
        write('milestone', 'milestones', snapshotKey('milestone', run.run), flags, milestoneData(m), now, stampOf(run, 'milestones', now));
        ctx.log.debug({ milestone: m.id, message: m.message }, 'milestone'); // debug: a trainer decides how many it sends
      }
      flushAll(); // at once, not at the window
    }

    // ── input ──
    let failureLogs = 0;
    const noteFailure = (error: unknown, ring: string, what: string) => {
      // The first few, then 1 in 1000: a producer spraying garbage must not flood the log.
      if (failureLogs++ < 5 || failureLogs % 1000 === 0) ctx.log.warn({ ring, err: (error as Error)?.message ?? String(error), failures: failureLogs }, what);
    };

    // Experience sequence numbers are given here, once, so every gateway thread (whose retained
    // windows consumers resume from) agrees on them. Seeded from the clock in microseconds so a
    // restarted aggregator continues above its predecessor (below 1 M records/s on average).
    let experienceSeq = Date.now() * 1000;
    const keyEncoder = new TextEncoder();
    const ZERO = 0x30;
    const keyScratch = new Uint8Array(32);
    function forwardExperience(source: Uint8Array, offset: number, length: number, receivedAt: number): void {
      const body = source.subarray(offset, offset + length);
      const key = String(++experienceSeq);
      const digits = keyEncoder.encodeInto(key, keyScratch.subarray(8)).written;
      for (const out of outRings) {
        // The key is left-padded with zeros (the same number) so the body lands at the source's
        // offset mod 8: V8 copies between shared buffers a word at a time only when both ends
        // are equally aligned, byte by byte otherwise (several times slower for 16 KB records).
        const dst = out.ring.data.byteOffset + FANOUT_HEADER_BYTES + digits; // reserve() hands out 8-aligned offsets
        const pad = (source.byteOffset + offset - dst) & 7;
        keyScratch.fill(ZERO, 8 - pad, 8);
        const keyBytes = keyScratch.subarray(8 - pad, 8 + digits);
        // Stamped with the receipt time: experience latency is measured from the ingest edge.
        account(writeFanoutRecord(out.ring, { type: FanoutType.Experience, channel: 0, levelMask: 7, flags: 0, key, stamp: receivedAt, body }, true, keyBytes), 'experience', out.name);
      }
    }

    function apply(event: TelemetryEvent, runName: string, receivedAt: number): void {
      const now = Date.now();
      // The trainer's own timestamp; receipt time when it left it to the server (0).
      const at = 'timestamp' in event && event.timestamp > 0 ? event.timestamp : receivedAt;
      switch (event.kind) {
        case EventKind.Metrics: { const run = runFor(runName, now); noteSource(run, at, 'metrics', 'milestones'); publishMilestones(run, run.applyMetrics(event, now), now); break; }
        case EventKind.SeAttention: { const run = runFor(runName, now); noteSource(run, at, 'attention'); run.applyAttention(event, now); break; }
        case EventKind.BoardHeatmap: { const run = runFor(runName, now); noteSource(run, at, 'attention'); run.applyHeatmap(event, now); break; }
        case EventKind.Policy: { const run = runFor(runName, now); noteSource(run, at, 'predictions'); run.applyPolicy(event, now); break; }
        case EventKind.GameState: { const run = runFor(runName, now); noteSource(run, at, 'game', 'milestones'); publishMilestones(run, run.applyGame(event, now), now); break; }
        case EventKind.Milestone: { const run = runFor(runName, now); noteSource(run, at, 'milestones'); publishMilestones(run, [run.applyMilestone(event, receivedAt, now)], now); break; }
        // Overlay messages the main thread decides go through the control rings, not here.
        case EventKind.Relay: drop('process_error'); noteFailure(new Error('relay events are not aggregated'), '-', 'aggregator: ignored a relay event'); break;
        default: break; // hello/ack/error are transport events and never belong in an ingest ring: counted as "other", no run made
      }
    }

    // The recorder's copy of each accepted event. Published in batches (every RECORD_FLUSH_EVERY
    // events and at each window) so the tap costs a copy, not a wake-up per event; a full ring
    // drops the copy (counted here and by the ring), never the event.
    const recordRing = opts.recordRing === undefined ? undefined : (ctx.out[opts.recordRing] as RecordRing);
    const RECORD_FLUSH_EVERY = 256;
    let recordUnflushed = 0;
    const record = (rec: { receivedAt: number; producerId: number }, run: string, data: Uint8Array, eventOffset: number, eventLength: number) => {
      if (!writeIngestRecord(recordRing!, rec.receivedAt, rec.producerId, run, data, eventOffset, eventLength, false)) { recordDrops.inc(); return; }
      if (++recordUnflushed >= RECORD_FLUSH_EVERY) { recordRing!.flush(); recordUnflushed = 0; }
    };
    const flushRecord = () => { if (recordRing && recordUnflushed > 0) { recordRing.flush(); recordUnflushed = 0; } };

    /** `routed`: the record came from the run's owner stream, or ownership was already decided. */
    const handleRecord = (ringName: string, data: Uint8Array, offset: number, length: number, routed: boolean) => {
      const replayed = (opts.unrecordedRings ?? []).includes(ringName);
      // Recorded where it was accepted: a record routed here from the run's owner stream was
      // recorded by the node that took it from the producer.
      const recorded = recordRing !== undefined && !replayed && !routed;
      let event: TelemetryEvent | undefined;
      let runName = DEFAULT_RUN;
      let receivedAt = 0;
      let kind = 'other';
      try {
        const rec = readIngestRecord(data, offset, length);
        if (rec.eventLength < EVENT_HEADER_BYTES || data[rec.eventOffset] !== EVENT_MAGIC) throw new Error(`record of ${length} bytes holds no event (bad length or magic)`);
        receivedAt = rec.receivedAt;
        // Experience is the bulk path: forward the bytes ingest already validated, undecoded.
        if (data[rec.eventOffset + 1] === EventKind.Experience) {
          kind = 'experience';
          forwardExperience(data, rec.eventOffset, rec.eventLength, rec.receivedAt);
          if (recorded && opts.recordExperience === true) record(rec, rec.run || DEFAULT_RUN, data, rec.eventOffset, rec.eventLength);
        } else {
          event = decodeEvent(data.subarray(rec.eventOffset, rec.eventOffset + rec.eventLength));
          // A recording keeps a spooled event's `late` mark byte for byte; played back, the
          // whole recording is the live run, so the mark would file it as old history.
          if (replayed && event.late) event = { ...event, late: undefined, backlog: undefined };
          const name = EVENT_KIND_NAMES[event.kind];
          if ((KINDS as readonly string[]).includes(name)) kind = name;
          runName = rec.run || event.run || DEFAULT_RUN;
          if (recorded && TELEMETRY_KINDS.includes(event.kind)) record(rec, runName, data, rec.eventOffset, rec.eventLength);
        }
      } catch (error) {
        counts.decodeFailures++;
        decodeFailures.inc();
        noteFailure(error, ringName, 'aggregator: skipped an undecodable ingest record');
        return;
      }
      counts.events++;
      counts.byKind[kind]++;
      if (kind === 'experience') experienceEvents.inc();
      else eventsTotal.inc({ kind });
      if (event === undefined) return;
      // Transport events make no run anywhere; the rest go to the run's owner when it is another node.
      if (ownership && !routed && kind !== 'other' && !ownership.route(runName, data.subarray(offset, offset + length))) return;
      try {
        apply(event, runName, receivedAt);
        ownership?.touched(runName);
      } catch (error) {
        drop('process_error');
        noteFailure(error, ringName, 'aggregator: an event could not be applied');
      }
    };
    const handlerFor = (ringName: string) => (data: Uint8Array, offset: number, length: number) => handleRecord(ringName, data, offset, length, false);

    // ── window ──
    function closeWindow(): void {
      const t0 = performance.now();
      const now = Date.now();
      for (const run of runs.values()) {
        // Per run: one run's bad state must not keep the others' updates from going out.
        try {
          publishMilestones(run, run.closeWindow(now), now);
          const d = run.dirty;
          if (d.metrics) {
            // Full series for snapshots and conflated tiers (not sent live), then the light live update.
            const key = snapshotKey('ppo_metrics', run.run);
            const stamp = stampOf(run, 'metrics', now);
            // Points filed late (a producer's spool) are only in the full series: it goes live too
            // now and then while catching up, so open charts fill in (run.takeFullLive).
            const fullFlags = run.takeFullLive(now) ? FanoutFlag.Retain : FanoutFlag.Retain | FanoutFlag.NoLive;
            // One explanation per level for the window's messages: its numbers refresh at a reading pace.
            const said = metricsExplanations(run, opts.health);
            const texts = { beginner: run.explanations.next('beginner', said.beginner, now), intermediate: run.explanations.next('intermediate', said.intermediate, now), advanced: run.explanations.next('advanced', said.advanced, now) };
            write('ppo_metrics', 'metrics', key, fullFlags, ppoMetricsData(run, opts.health, texts), now, stamp);
            // Every point of the window, in parts of at most seriesPoints per metric. Beginner
            // views carry no points, so only the last part is written for them.
            const tails = ppoMetricsTails(run, opts.health, opts.seriesPoints, texts);
            tails.forEach((tail, i) => write('ppo_metrics', 'metrics', key, FanoutFlag.LiveOnly, tail, now, stamp, i === tails.length - 1 ? 7 : 6));
          }
          if (d.attention && run.attention.blocks > 0) write('se_attention', 'attention', snapshotKey('se_attention', run.run), FanoutFlag.Retain, seAttentionData(run), now, stampOf(run, 'attention', now));
          if (d.heatmap && run.heatmap) write('board_heatmap', 'attention', snapshotKey('board_heatmap', run.run), FanoutFlag.Retain, boardHeatmapData(run, opts.focusSquares), now, stampOf(run, 'attention', now));
          if (d.prediction && run.prediction) write('move_prediction', 'predictions', snapshotKey('move_prediction', run.run), FanoutFlag.Retain, movePredictionData(run), now, stampOf(run, 'predictions', now));
          if (d.game) {
            const key = snapshotKey('game_state', run.run);
            for (const g of run.pendingResults) write('game_state', 'game', key, FanoutFlag.Critical | FanoutFlag.Retain, gameStateData(run, g), now, stampOf(run, 'game', now));
            // The latest state, unless it is a result (already written above).
            if (run.game && run.game.result === null) write('game_state', 'game', key, FanoutFlag.Retain, gameStateData(run, run.game), now, stampOf(run, 'game', now));
          }
        } catch (error) {
          drop('process_error');
          noteFailure(error, '-', `aggregator: window failed for run "${run.run}"`);
        } finally {
          // Cleared even after a failure, so a bad state is not retried every window.
          run.clearDirty();
        }
      }
      flushAll();
      flushRecord();
      ownership?.commitWindow();
      burstBudget.refill(); // every run's overflow was released with its dirty flags
      counts.windows++;
      const ms = performance.now() - t0;
      counts.lastWindowMs = ms;
      windowSeconds.observe(ms / 1000);
    }
    const timer = setInterval(closeWindow, opts.windowMs);

    if (opts.cluster) {
      ownership = new RunOwnership(opts.cluster, {
        apply: (record) => handleRecord('cluster', record, 0, record.length, true),
        encode: (run) => { const r = runs.get(run); return r ? encodeRun(r) : undefined; },
        adopt: (run, snapshot) => {
          runs.delete(run);
          const r = runFor(run, Date.now());
          if (snapshot) r.restore(snapshot);
        },
        drop: (run) => { runs.delete(run); },
      }, ctx.log, ctx.metrics);
    }

    const loops = inRings.map((ring, i) => consumeLoop(ring, handlerFor(opts.inRings[i]), ctx.signal, { batch: 512 }));

    /** Writes every retained record into one fan-out ring again: its consumer restarted with an empty snapshot. */
    const replayRetained = (ringName: string): number => {
      const out = outRings.find((r) => r.name === ringName);
      if (!out) throw new Error(`aggregator: no fan-out ring "${ringName}" (rings: ${opts.outRings.join(', ')})`);
      let written = 0;
      for (const record of retained.values()) {
        if (out.ring.tryWrite(record, false)) written++;
        else account(false, 'replay', out.name);
      }
      out.ring.flush();
      return written;
    };
    const runList = (): RunSummary[] => [...runs.values()].map(runSummary);
    const stats = () => ({
      events: counts.events,
      eventsByKind: { ...counts.byKind },
      decodeFailures: counts.decodeFailures,
      messagesWritten: counts.messages,
      fanoutDrops: counts.fanoutDrops,
      windows: counts.windows,
      lastWindowMs: counts.lastWindowMs,
      runs: runs.size,
      evictedRuns: counts.evictedRuns,
      dropped: { ...counts.dropped },
      late: { ...counts.late },
      inRings: inRings.map((r) => r.stats()),
      outRings: outRings.map((r) => r.ring.stats()),
      ...(ownership ? { cluster: ownership.stats() } : {}),
    });
    const snapshot = () => ({
      timestamp: Date.now(),
      windowMs: opts.windowMs,
      runs: Object.fromEntries([...runs.values()].map((r) => [r.run, runSnapshot(r, opts.focusSquares)])),
    });

    ctx.log.info({ inRings: opts.inRings, outRings: opts.outRings, windowMs: opts.windowMs, incarnation: ctx.incarnation }, 'aggregator started');
    return {
      api: { snapshot, runs: runList, stats, retained: () => [...retained.values()], replayRetained },
      async stop() {
        await Promise.all(loops); // each drains its ring to empty once the signal fired
        clearInterval(timer);
        closeWindow(); // publish what the drain brought in
        await ownership?.close(); // commits and releases this node's runs for the next owner
        const final = { runs: runList(), events: counts.events };
        ctx.log.info({ events: counts.events, runs: runs.size, decodeFailures: counts.decodeFailures, fanoutDrops: counts.fanoutDrops }, 'aggregator drained');
        return final;
      },
    };
  },
});
