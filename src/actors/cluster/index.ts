/**
 * Cluster relay actor: this node's overlay messages out to the other nodes through Redis, and
 * theirs in to this node's gateways.
 *
 *   aggregator ──fanout.cluster──▶ cluster ──PUBLISH ringcast:fanout──▶ other nodes
 *   other nodes ──SUBSCRIBE──▶ cluster ──cluster.gw<i>──▶ gateway-i (merged with its other rings)
 *
 * Out: every record the aggregator writes is published once, batched per ring poll (at most
 * MAX_BATCH_BYTES a publication). Retained records are also kept in Redis (retained.ts) so a
 * node that starts or reconnects later gives its viewers the whole cluster's snapshot. Critical records (milestones,
 * game results) go into the run's history stream first (cluster-history.ts), and are delivered
 * here, to this node's own gateways too, stamped with their offset and epoch: in a cluster the
 * gateways take critical messages from this actor only, so every viewer on every node sees the
 * same offsets. Experience records are not relayed (they stay on the node that received them).
 *
 * In: each batch from another node is split and written into every gateway's cluster ring; a
 * node ignores its own batches (no echo). Bad batches or records are counted and logged (first
 * few), never fatal.
 *
 * Redis away: nothing is queued for it. Publications are dropped (counted), critical records are
 * delivered locally without a history stamp, retained records wait (latest per key) and are
 * written when Redis is back; ioredis re-subscribes, and the retained state of the other nodes
 * is read again. A Redis that stops answering without closing the connection is bounded too:
 * unanswered publications past MAX_INFLIGHT_BYTES are dropped, a critical record waits at most
 * HISTORY_TIMEOUT_MS for its offset.
 */
import { readFileSync } from 'node:fs';
import { Counter, Gauge } from 'prom-client';
import type { Redis } from 'ioredis';
import { defineActor } from '../../shared/actor.js';
import { consumeLoop } from '../../shared/consume-loop.js';
import type { RecordRing } from '../../shared/record-ring.js';
import { FanoutFlag, FanoutType, encodeFanoutRecord, readFanoutRecord } from '../../shared/telemetry/ring-records.js';
import { appendHistory, runOfKey, stampBody, type HistoryVariant } from '../../shared/cluster-history.js';
import { RedisHealth, createRedis } from '../../services/cluster/redis-connection.js';
import {
  BatchBuilder, FANOUT_CHANNEL, MAX_BATCH_BYTES, checkRecord, decodeBatch, originBytes, retainedField,
} from './wire.js';
import { RetainedStore } from './retained.js';

export interface ClusterActorOptions {
  nodeId: string;
  redisUrl: string;
  /** What the aggregator writes for the other nodes (`fanout.cluster`). */
  inRing: string;
  /** One per gateway (`cluster.gw<i>`). */
  outRings: string[];
  /** How often retained records are written to Redis (default 250 ms). */
  retainedFlushMs?: number;
}

const RETAINED_FLUSH_MS = 250;
/** Unanswered publications held at most (bytes); more are dropped (counted as redis_slow). */
const MAX_INFLIGHT_BYTES = 32 * 1024 * 1024;
/** Longest a critical message waits for its history offset before it goes out without one. */
const HISTORY_TIMEOUT_MS = 1_000;
/** Longest the start waits for Redis (subscription and the other nodes' retained state). */
const START_WAIT_MS = 3_000;

interface CriticalGroup { key: string; channel: number; flags: number; stamp: number; mask: number; variants: HistoryVariant[] }

export interface ClusterRelayStats {
  nodeId: string;
  redisUp: boolean;
  published: number;
  batchesOut: number;
  received: number;
  batchesIn: number;
  echoes: number;
  dropped: Record<string, number>;
  historyAppended: number;
  retainedLoaded: number;
  /** This thread's event-loop busy time so far (ms; wall clock, so it includes time preempted on a busy machine). */
  busyMs: number;
  /** This thread's CPU time so far (ms, Linux: /proc/thread-self; NaN elsewhere), for the benchmark. */
  cpuMs: number;
}

/** CPU time of the calling thread (user + system, ms) from /proc/thread-self/stat (10 ms ticks); NaN where unavailable. */
function threadCpuMs(): number {
  try {
    const fields = readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

export default defineActor<ClusterActorOptions>({
  async start(ctx) {
    const o = ctx.options;
    const inRing = ctx.in[o.inRing] as RecordRing | undefined;
    if (!inRing) throw new Error(`cluster: ring "${o.inRing}" is not among this actor's input rings`);
    const outs = o.outRings.map((name) => {
      const ring = ctx.out[name] as RecordRing | undefined;
      if (!ring) throw new Error(`cluster: ring "${name}" is not among this actor's output rings`);
      return ring;
    });
    const origin = originBytes(o.nodeId);
    const log = ctx.log.child({ node: o.nodeId });

    const health = new RedisHealth();
    const pub = createRedis(o.redisUrl, log, 'relay', { health });
    const sub = createRedis(o.redisUrl, log, 'relay-sub', { health });

    const registers = [ctx.metrics];
    new Gauge({ name: 'ringcast_cluster_redis_up', help: '1 while every Redis connection of this thread is ready, 0 while any is down', registers, collect() { this.set(health.up ? 1 : 0); } });
    const outagesMetric = new Counter({ name: 'ringcast_cluster_redis_outages_total', help: 'Times this thread lost Redis (up → down)', registers });
    const relayed = new Counter({ name: 'ringcast_cluster_relay_messages_total', help: 'Fan-out records relayed through Redis, by direction (out: published, in: delivered to this node\'s gateways)', labelNames: ['direction'], registers });
    const batches = new Counter({ name: 'ringcast_cluster_relay_batches_total', help: 'PUB/SUB batches, by direction', labelNames: ['direction'], registers });
    const droppedMetric = new Counter({ name: 'ringcast_cluster_relay_dropped_total', help: 'Records not relayed, by reason (redis_down, publish_failed, ring_full, redis_slow, bad_batch, bad_record, history_failed, retained_full, fenced)', labelNames: ['reason'], registers });
    const echoesMetric = new Counter({ name: 'ringcast_cluster_relay_echoes_total', help: 'Own batches heard back from Redis and ignored', registers });
    for (const d of ['out', 'in']) { relayed.inc({ direction: d }, 0); batches.inc({ direction: d }, 0); }

    const stats: ClusterRelayStats = { nodeId: o.nodeId, redisUp: false, published: 0, batchesOut: 0, received: 0, batchesIn: 0, echoes: 0, dropped: {}, historyAppended: 0, retainedLoaded: 0, busyMs: 0, cpuMs: 0 };
    const logged = new Map<string, number>();
    /** The first few of each kind of trouble, then one in 1000: a flood must not flood the log. */
    const trouble = (kind: string, fields: Record<string, unknown>, message: string) => {
      const n = (logged.get(kind) ?? 0) + 1;
      logged.set(kind, n);
      if (n <= 5 || n % 1000 === 0) log.warn({ ...fields, occurrences: n }, message);
    };
    const drop = (reason: string, n = 1) => {
      stats.dropped[reason] = (stats.dropped[reason] ?? 0) + n;
      droppedMetric.inc({ reason }, n);
    };
    health.on('change', (s: { up: boolean }) => {
      stats.redisUp = s.up;
      if (!s.up) outagesMetric.inc();
    });

    // ── out ──
    const retained = new RetainedStore({ redis: pub, nodeId: o.nodeId, origin, drop, trouble });
    const builder = new BatchBuilder(origin);
    let inflightBytes = 0;
    let flushQueued = false;
    let group: CriticalGroup | undefined;
    let criticalChain: Promise<void> = Promise.resolve();
    let historyStalled = false;

    /** Into every gateway's ring; `publish` false leaves waking the gateways to the caller's flush (one per batch). */
    const deliverLocal = (record: Uint8Array, publish = true) => {
      for (const ring of outs) if (!ring.tryWrite(record, publish)) drop('ring_full');
    };
    const flushLocal = () => { for (const ring of outs) ring.flush(); };

    const publishNow = () => {
      flushQueued = false;
      if (group) closeGroup();
      if (builder.count === 0) return;
      const size = builder.bytes;
      const { message, count } = builder.take();
      if (!health.up) {
        drop('redis_down', count);
        return;
      }
      // A Redis that stops answering without closing the connection (paused, overloaded) would
      // let unanswered publications pile up here: past a bound they are dropped instead.
      if (inflightBytes + size > MAX_INFLIGHT_BYTES) {
        drop('redis_slow', count);
        trouble('slow', { inflightBytes }, 'cluster: Redis is not keeping up; publications dropped until it answers');
        return;
      }
      inflightBytes += size;
      pub.publish(FANOUT_CHANNEL, message).finally(() => { inflightBytes -= size; }).then(() => {
        stats.published += count;
        stats.batchesOut++;
        relayed.inc({ direction: 'out' }, count);
        batches.inc({ direction: 'out' });
      }, (error: Error) => {
        drop('publish_failed', count);
        trouble('publish', { err: error.message }, 'cluster: publish failed; those records reached this node\'s viewers only');
      });
    };
    /** One record into the batch; a batch that reached MAX_BATCH_BYTES goes out at once. */
    const enqueue = (data: Uint8Array, offset: number, length: number) => {
      builder.add(data, offset, length);
      if (builder.bytes >= MAX_BATCH_BYTES) publishNow();
      else queueFlush();
    };
    const queueFlush = () => {
      if (flushQueued) return;
      flushQueued = true;
      // After the ring poll that brought the records: one publication per poll batch.
      queueMicrotask(publishNow);
    };

    /** Critical variants of one message: into the history (offset, epoch), then to everybody stamped. */
    const handleCritical = async (g: CriticalGroup) => {
      const run = runOfKey(g.key);
      let stamped: Array<{ levelMask: number; body: Uint8Array }> = g.variants;
      if (run !== undefined && health.up && !historyStalled) {
        try {
          // Critical messages wait for their offset one after another: a Redis that does not
          // answer must not hold them back from this node's own viewers for long.
          let timer: NodeJS.Timeout | undefined;
          const at = await Promise.race([
            appendHistory(pub, run, g.channel, g.variants, undefined, o.nodeId),
            new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${HISTORY_TIMEOUT_MS} ms`)), HISTORY_TIMEOUT_MS); }),
          ]).finally(() => clearTimeout(timer));
          if (at.offset < 0) {
            // Another node owns the run now (this one was paused or cut off past its lease): its message is stale.
            drop('fenced');
            trouble('fenced', { key: `ringcast:lease:${run}` }, `cluster: run ${run} is owned by another node; a stale critical message was refused`);
            return;
          }
          stats.historyAppended++;
          stamped = g.variants.map((v) => ({ levelMask: v.levelMask, body: stampBody(v.body, run, at.offset, at.epoch) }));
        } catch (error) {
          if (/no answer within/.test((error as Error).message) && !historyStalled) {
            // Until Redis answers again, criticals go out at once without an offset instead of
            // queueing a second each behind this one; a PING queued behind the stuck command says when.
            historyStalled = true;
            void pub.ping().catch(() => undefined).finally(() => { historyStalled = false; });
          }
          drop('history_failed');
          trouble('history', { key: `ringcast:history:${run}`, err: (error as Error).message }, `cluster: history of run ${run} not written; the message goes out without an offset`);
        }
      }
      for (const v of stamped) {
        const record = encodeFanoutRecord({ type: FanoutType.Update, channel: g.channel, levelMask: v.levelMask, flags: g.flags, key: g.key, stamp: g.stamp, body: v.body });
        deliverLocal(record);
        builder.add(record, 0, record.byteLength);
        if (g.flags & FanoutFlag.Retain) {
          retained.put(retainedField({ channel: g.channel, levelMask: v.levelMask, key: g.key }), record);
          // A restarted gateway skips the aggregator's unstamped copy: it gets this one from the replay.
          retained.keep(record);
        }
      }
      queueFlush();
    };
    function closeGroup(): void {
      const g = group!;
      group = undefined;
      criticalChain = criticalChain.then(() => handleCritical(g)).catch((error: Error) => trouble('critical', { err: error.message }, 'cluster: a critical message failed'));
    }

    const onRecord = (data: Uint8Array, offset: number, length: number) => {
      const type = data[offset];
      if (type === FanoutType.Experience) return;
      const flags = data[offset + 3];
      if (type === FanoutType.Update && (flags & FanoutFlag.Critical) !== 0) {
        const view = readFanoutRecord(data, offset, length);
        // Level variants of one message come one after another with the same key and disjoint masks.
        if (group && (group.key !== view.key || (group.mask & view.levelMask) !== 0)) closeGroup();
        group ??= { key: view.key, channel: view.channel, flags: view.flags, stamp: view.stamp, mask: 0, variants: [] };
        group.mask |= view.levelMask;
        group.variants.push({ levelMask: view.levelMask, body: data.slice(view.bodyOffset, view.bodyOffset + view.bodyLength) });
        queueFlush();
        return;
      }
      if (group) closeGroup();
      // Only retained records need their key decoded and a copy of their own (hot path: a header byte test).
      if ((flags & FanoutFlag.Retain) !== 0 && (flags & FanoutFlag.LiveOnly) === 0) {
        const record = data.slice(offset, offset + length);
        retained.put(retainedField(readFanoutRecord(record, 0, record.byteLength)), record);
      }
      enqueue(data, offset, length);
    };

    let flushing = false;
    const retainedTimer = setInterval(() => {
      if (flushing || !health.up) return;
      flushing = true;
      void retained.flush().finally(() => { flushing = false; });
    }, o.retainedFlushMs ?? RETAINED_FLUSH_MS);

    // ── in ──
    sub.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      if (channel.toString() !== FANOUT_CHANNEL) return;
      const decoded = decodeBatch(message);
      if (decoded.origin === o.nodeId) {
        stats.echoes++;
        echoesMetric.inc();
        return;
      }
      if (decoded.error) {
        drop('bad_batch');
        trouble('bad_batch', { channel: FANOUT_CHANNEL, origin: decoded.origin, err: decoded.error }, `cluster: malformed batch on ${FANOUT_CHANNEL}`);
      }
      stats.batchesIn++;
      batches.inc({ direction: 'in' });
      let delivered = 0;
      for (const view of decoded.records) {
        const bad = checkRecord(view);
        if (bad) {
          drop('bad_record');
          trouble('bad_record', { channel: FANOUT_CHANNEL, origin: decoded.origin, err: bad }, `cluster: refused a record on ${FANOUT_CHANNEL}`);
          continue;
        }
        // Written into the rings straight from the batch buffer: no copy on the hot path.
        deliverLocal(view, false);
        retained.keep(view);
        delivered++;
      }
      flushLocal();
      stats.received += delivered;
      relayed.inc({ direction: 'in' }, delivered);
    });

    const loadRetained = async () => {
      const loaded = await retained.load((record) => deliverLocal(record));
      stats.retainedLoaded += loaded;
      if (loaded > 0) log.info({ loaded }, 'cluster: retained state of other nodes loaded');
    };
    let joined!: () => void;
    const firstJoin = new Promise<void>((resolve) => { joined = resolve; });
    const joinFanout = () => {
      // Subscribing again is harmless (ioredis also re-subscribes by itself after a reconnect);
      // it covers a first subscription that failed because Redis was not up yet.
      void sub.subscribe(FANOUT_CHANNEL).then(loadRetained, (error: Error) => trouble('subscribe', { err: error.message }, 'cluster: not subscribed yet; retrying when Redis is back')).finally(joined);
    };
    sub.on('ready', joinFanout);
    if (sub.status === 'ready') joinFanout();
    // The node is ready (and listening) once the other nodes' snapshot is in its gateways, so its
    // first viewers get the whole snapshot; a Redis that does not answer soon does not hold the start.
    let startWait: NodeJS.Timeout | undefined;
    await Promise.race([firstJoin, new Promise<void>((resolve) => { startWait = setTimeout(resolve, START_WAIT_MS); })]);
    clearTimeout(startWait);

    // Yield after every poll: each poll's records go out in one publication at once, not after a 5 ms slice.
    const loop = consumeLoop(inRing, onRecord, ctx.signal, { batch: 1024, yieldEveryMs: 0 });
    log.info({ inRing: o.inRing, outRings: o.outRings }, 'cluster relay started');

    const replayRetained = (ringName: string): number => {
      const i = o.outRings.indexOf(ringName);
      if (i < 0) throw new Error(`cluster: no ring "${ringName}"`);
      let written = 0;
      for (const record of retained.keptRecords()) if (outs[i].tryWrite(record)) written++; else drop('ring_full');
      return written;
    };

    return {
      api: { stats: () => ({ ...stats, redisUp: health.up, retainedFields: retained.fields, dropped: { ...stats.dropped }, busyMs: performance.eventLoopUtilization().active, cpuMs: threadCpuMs() }), replayRetained },
      async stop() {
        await loop;
        publishNow();
        await criticalChain;
        publishNow();
        clearInterval(retainedTimer);
        if (health.up) await retained.flush();
        const quit = (r: Redis) => r.quit().catch(() => r.disconnect());
        await Promise.all([quit(pub), quit(sub)]);
        return { ...stats };
      },
    };
  },
});
