/**
 * Cluster relay benchmark: what carrying overlay messages between nodes through Redis costs.
 * `node dist/bench/run.js cluster [--quick]`.
 *
 * A real redis-server (started here on a free loopback port) and the real relay actor
 * (src/actors/cluster) under a real Supervisor per node, several nodes in this process. This
 * process plays each node's aggregator (writes fan-out records into node A's `fanout.cluster`
 * ring, in bursts once per 100 ms window as the aggregator does) and the receiving nodes'
 * gateways (polls their `cluster.gw0` rings). Every record is stamped with its write time, so
 *
 *   relay latency = read from node B's gateway ring − written into node A's relay ring
 *
 * which is what the relay adds: on a single node the gateway reads the aggregator's ring
 * directly (the same write → read, measured here as `single_node_*`, is the baseline).
 *
 * Rates: RUN_MESSAGES_PER_SEC messages per run (10 Hz windows × 4 messages: metrics,
 * attention, predictions, game, ~400 B each), for 10, 100 and 1,000 runs.
 *
 *   single_<runs>runs_p50_ms / _p99_ms  the same write → read on one ring (a single node's path)
 *   relay_<runs>runs_p50_ms / _p99_ms   relay latency at that rate
 *   relay_<runs>runs_added_p50/p99_ms   relay − single at the same percentile: what the relay adds
 *   relay_<runs>runs_delivered_pct      share of written records that reached node B
 *   relay_cpu_us_per_msg_<runs>runs_{send,recv}  relay thread CPU µs per message on the publishing /
 *                                       the receiving node (the thread's own CPU time, /proc/thread-self,
 *                                       10 ms ticks: its JavaScript, ioredis parsing, ring I/O)
 *   relay_busy_us_per_msg_<runs>runs_{send,recv}  the same from event-loop active time (wall clock:
 *                                       inflated when the machine is oversubscribed)
 *   redis_cpu_us_per_msg_<runs>runs     redis-server CPU per message (from /proc)
 *   relay_p99_ms                        added p99 at 1,000 runs (the bar: ≤ 20 ms)
 *   relay_cpu_us_per_msg                send + receive µs per message at 1,000 runs
 *   redis_msgs_per_s_<n>nodes           records per second one Redis delivered to each of the
 *                                       n−1 receiving nodes with the sender writing as fast as its ring takes
 *   takeover_s, capture_<n>node(s)_*    whole node processes: see bench/lib/cluster-nodes.ts
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { Supervisor } from '../src/supervisor/supervisor.js';
import type { SupervisorSpec } from '../src/supervisor/spec.js';
import type { RecordRing } from '../src/shared/record-ring.js';
import { FanoutType, readFanoutRecord, writeFanoutRecord } from '../src/shared/telemetry/ring-records.js';
import type { ClusterActorOptions, ClusterRelayStats } from '../src/actors/cluster/index.js';
import { percentile } from './lib/stats.js';
import { measureCapture, measureTakeover } from './lib/cluster-nodes.js';
import type { BenchOptions, BenchResult } from './lib/types.js';
import { reservePort } from '../src/shared/reserve-port.js';
import { procCpu } from './lib/proc.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // <root>/dist/bench
const RELAY = path.resolve(here, '..', 'src', 'actors', 'cluster', 'index.js');
const RUN_MESSAGES_PER_SEC = 40;
const WINDOW_MS = 100;
const BODY_BYTES = 400;
const MiB = 1 << 20;

const nowMs = () => performance.timeOrigin + performance.now();
const say = (s: string) => process.stderr.write(`  ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


async function startRedis(): Promise<{ url: string; child: ChildProcess; dir: string; cpuMs: () => number }> {
  const port = await reservePort('127.0.0.1', 0);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ringcast-bench-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], { stdio: 'ignore' });
  await new Promise((resolve, reject) => { child.once('error', reject); child.once('spawn', resolve); });
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
      c.once('error', () => resolve(false));
    });
    if (ok) break;
    await sleep(50);
  }
  const cpuMs = () => procCpu(child.pid!)?.cpuMs ?? NaN;
  return { url: `redis://127.0.0.1:${port}`, child, dir, cpuMs };
}

interface BenchNode { id: string; supervisor: Supervisor; in: RecordRing; out: RecordRing }

async function startNode(id: string, redisUrl: string): Promise<BenchNode> {
  const options: ClusterActorOptions = { nodeId: id, redisUrl, inRing: 'fanout.cluster', outRings: ['cluster.gw0'] };
  const spec: SupervisorSpec = {
    strategy: 'one_for_one', intensity: 5, periodMs: 10_000, backoff: { initialMs: 10, maxMs: 2_000 }, heartbeatIntervalMs: 250, hangTimeoutMs: 5_000,
    startTimeoutMs: 10_000, upcallTimeoutMs: 30_000, logLevel: 'warn',
    rings: {
      'fanout.cluster': { kind: 'record', capacityBytes: 32 * MiB, policy: 'drop-newest' },
      'cluster.gw0': { kind: 'record', capacityBytes: 32 * MiB, policy: 'drop-newest' },
    },
    actors: [{ name: 'cluster', module: RELAY, in: ['fanout.cluster'], out: ['cluster.gw0'], options, standby: false }],
  } as SupervisorSpec;
  const supervisor = new Supervisor(spec, pino({ level: 'warn' }));
  await supervisor.start();
  return { id, supervisor, in: supervisor.ring<RecordRing>('fanout.cluster'), out: supervisor.ring<RecordRing>('cluster.gw0') };
}

const relayStats = async (n: BenchNode) => (await n.supervisor.call('cluster', 'stats')) as ClusterRelayStats;

const body = new TextEncoder().encode(JSON.stringify({ type: 'ppo_metrics', timestamp: 0, data: { pad: 'x'.repeat(BODY_BYTES - 60) } }));

/** Writes `perWindow` records per window for `seconds`; the reader collects latencies from `read` rings. */
async function drive(writeInto: RecordRing, readFrom: RecordRing[], perWindow: number, seconds: number): Promise<{ written: number; latencies: number[]; received: number[] }> {
  const latencies: number[] = [];
  const received = readFrom.map(() => 0);
  let written = 0;
  let stop = false;
  const reader = (async () => {
    while (!stop || readFrom.some((r) => r.stats().recordsIn > r.stats().recordsOut)) {
      let got = 0;
      readFrom.forEach((ring, i) => {
        got += ring.poll((data, offset, length) => {
          if (data[offset] !== FanoutType.Update) return;
          const rec = readFanoutRecord(data, offset, length);
          received[i]++;
          if (i === 0) latencies.push(nowMs() - rec.stamp);
        }, 4096);
      });
      if (got === 0) {
        if (stop) await sleep(20);
        await sleep(0.5);
      }
      if (stop && got === 0) break;
    }
  })();
  const end = performance.now() + seconds * 1000;
  let key = 0;
  while (performance.now() < end) {
    const windowStart = performance.now();
    const stamp = nowMs();
    for (let i = 0; i < perWindow; i++) {
      if (writeFanoutRecord(writeInto, { type: FanoutType.Update, channel: 0, levelMask: 7, flags: 0, key: `ppo_metrics:run-${key++ % 1000}`, stamp, body }, false)) written++;
    }
    writeInto.flush();
    const spent = performance.now() - windowStart;
    await sleep(Math.max(0, WINDOW_MS - spent));
  }
  await sleep(500); // in flight
  stop = true;
  await reader;
  return { written, latencies, received };
}

/** The sender writes as fast as its ring takes for `seconds`; records per second each receiver got. */
async function saturate(sender: BenchNode, receivers: BenchNode[], seconds: number): Promise<number[]> {
  const received = receivers.map(() => 0);
  let stop = false;
  const reader = (async () => {
    while (!stop) {
      let got = 0;
      receivers.forEach((n, i) => { const k = n.out.poll(() => undefined, 8192); received[i] += k; got += k; });
      if (got === 0) await sleep(0.5);
      else await sleep(0);
    }
  })();
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) {
    const stamp = nowMs();
    for (let i = 0; i < 2000; i++) writeFanoutRecord(sender.in, { type: FanoutType.Update, channel: 0, levelMask: 7, flags: 0, key: 'k', stamp, body }, false);
    sender.in.flush();
    await sleep(1);
  }
  const elapsed = (performance.now() - start) / 1000;
  await sleep(300);
  stop = true;
  await reader;
  return received.map((r) => r / elapsed);
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;

export async function run({ quick }: BenchOptions): Promise<BenchResult> {
  const seconds = quick ? 3 : 10;
  const redis = await startRedis();
  const figures: Record<string, number> = {};
  const baseline: Record<string, number> = {};
  const notes: string[] = [
    `relay actor under a real Supervisor per node, ${quick ? 'quick' : 'full'} run (${seconds} s per rate), real redis-server on loopback, all on this machine`,
    `${RUN_MESSAGES_PER_SEC} messages per run per second (10 Hz × 4 channels), ${BODY_BYTES} B each, written in one burst per ${WINDOW_MS} ms window`,
  ];
  const nodes: BenchNode[] = [];
  try {
    for (const id of ['bench-a', 'bench-b', 'bench-c']) nodes.push(await startNode(id, redis.url));
    const [a, b, c] = nodes;
    await sleep(500); // subscriptions settled

    for (const runs of [10, 100, 1000]) {
      const perWindow = (RUN_MESSAGES_PER_SEC * runs * WINDOW_MS) / 1000;
      // Single node at the same rate: the gateway reads what the aggregator wrote, no relay (a plain ring).
      const single = await drive(b.out, [b.out], perWindow, Math.min(seconds, 3));
      figures[`single_${runs}runs_p50_ms`] = r3(percentile(single.latencies, 50));
      figures[`single_${runs}runs_p99_ms`] = r3(percentile(single.latencies, 99));
      const [sa, sb] = [await relayStats(a), await relayStats(b)];
      const redisBefore = redis.cpuMs();
      const r = await drive(a.in, [b.out, c.out], perWindow, seconds);
      const [ea, eb] = [await relayStats(a), await relayStats(b)];
      const redisMs = redis.cpuMs() - redisBefore;
      const sent = ea.published - sa.published;
      const got = eb.received - sb.received;
      figures[`relay_${runs}runs_p50_ms`] = r3(percentile(r.latencies, 50));
      figures[`relay_${runs}runs_p99_ms`] = r3(percentile(r.latencies, 99));
      figures[`relay_${runs}runs_added_p50_ms`] = r3(figures[`relay_${runs}runs_p50_ms`] - figures[`single_${runs}runs_p50_ms`]);
      figures[`relay_${runs}runs_added_p99_ms`] = r3(figures[`relay_${runs}runs_p99_ms`] - figures[`single_${runs}runs_p99_ms`]);
      figures[`relay_${runs}runs_delivered_pct`] = r3((100 * r.received[0]) / Math.max(1, r.written));
      figures[`relay_cpu_us_per_msg_${runs}runs_send`] = r3(((ea.cpuMs - sa.cpuMs) * 1000) / Math.max(1, sent));
      figures[`relay_cpu_us_per_msg_${runs}runs_recv`] = r3(((eb.cpuMs - sb.cpuMs) * 1000) / Math.max(1, got));
      figures[`relay_busy_us_per_msg_${runs}runs_send`] = r3(((ea.busyMs - sa.busyMs) * 1000) / Math.max(1, sent));
      figures[`relay_busy_us_per_msg_${runs}runs_recv`] = r3(((eb.busyMs - sb.busyMs) * 1000) / Math.max(1, got));
      figures[`redis_cpu_us_per_msg_${runs}runs`] = r3((redisMs * 1000) / Math.max(1, sent));
      say(`${runs} runs: ${r.written} written, ${r.received.join('/')} received, p50 ${figures[`relay_${runs}runs_p50_ms`]} ms, p99 ${figures[`relay_${runs}runs_p99_ms`]} ms, send ${figures[`relay_cpu_us_per_msg_${runs}runs_send`]} µs, recv ${figures[`relay_cpu_us_per_msg_${runs}runs_recv`]} µs`);
    }
    // The bar is on what the relay adds to a single node's path, at the highest rate.
    figures.relay_p99_ms = figures.relay_1000runs_added_p99_ms;
    baseline.relay_p99_ms = figures.single_1000runs_p99_ms;
    figures.relay_cpu_us_per_msg = r3(figures.relay_cpu_us_per_msg_1000runs_send + figures.relay_cpu_us_per_msg_1000runs_recv);

    // Throughput one Redis carries: 1 sender → 1 receiver, then → 2 receivers.
    const two = await saturate(a, [b], Math.min(seconds, 3));
    figures.redis_msgs_per_s_2nodes = Math.round(two[0]);
    const three = await saturate(a, [b, c], Math.min(seconds, 3));
    figures.redis_msgs_per_s_3nodes = Math.round(Math.min(...three));
    figures.redis_deliveries_per_s_3nodes = Math.round(three.reduce((x, y) => x + y, 0));
    notes.push('relay_cpu_us_per_msg = publishing node + receiving node relay thread CPU time per message at 1,000 runs; redis_msgs_per_s_<n>nodes = per receiving node, one sender writing as fast as its ring takes');

    // Whole nodes (bench/lib/cluster-nodes.ts): run takeover, and capture split over three nodes against one.
    const takeovers = await measureTakeover(redis.url, quick ? 1 : 3, say);
    figures.takeover_s = r3(Math.max(...takeovers));
    figures.takeover_mean_s = r3(takeovers.reduce((x, y) => x + y, 0) / takeovers.length);
    const captureLoad = { streams: quick ? 30 : 90, intervalS: quick ? 2 : 3, windowS: quick ? 10 : 30, say };
    const oneNode = await measureCapture({ ...captureLoad, nodes: 1 });
    const threeNodes = await measureCapture({ ...captureLoad, nodes: 3, redisUrl: redis.url });
    figures.capture_1node_missed_pct = r3(oneNode.missedPct);
    figures.capture_1node_cpu_ms_per_capture = r3(oneNode.cpuMsPerCapture);
    figures.capture_3nodes_missed_pct = r3(threeNodes.missedPct);
    figures.capture_3nodes_cpu_ms_per_capture = r3(threeNodes.cpuMsPerCapture);
    baseline.capture_3nodes_missed_pct = figures.capture_1node_missed_pct;
    baseline.capture_3nodes_cpu_ms_per_capture = figures.capture_1node_cpu_ms_per_capture;
    notes.push(`takeover_s = the slowest of ${takeovers.length} trial(s): SIGKILL of a run's owner (node process, default cluster.leaseMs) → the first state of the run made by the node that took it over (a step sent after the kill in its /api/state, polled every 25 ms); takeover_mean_s their mean`);
    notes.push(`capture: ${captureLoad.streams} loopback channels, ${captureLoad.intervalS} s interval, ${captureLoad.windowS} s window, 160x90 frames, on 1 node (no Redis) and on 3 node processes sharing one Redis; missed % = 1 − captures made / due; CPU = node processes and their ffmpeg children per capture made. All nodes share this machine's cores, so 3 nodes measure the cost of splitting, not 3 machines' capacity`);
  } finally {
    for (const n of nodes) await n.supervisor.stop(3_000).catch(() => undefined);
    redis.child.kill('SIGKILL');
    rmSync(redis.dir, { recursive: true, force: true });
  }
  return { figures, baseline, notes };
}
