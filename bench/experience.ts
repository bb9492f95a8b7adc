/**
 * Experience benchmark: producer connections × experiences/s (Keisei-sized: 46×9×9 float32
 * state + 13,527-bit mask) into the service over ws /ingest, ten consumers with different
 * filters on /experience (format v2); producers, consumers and the server each in processes
 * of their own (bench/experience/*-child.ts). Figures over a window after a warm-up:
 *
 *   experiences_per_s   records delivered per second, summed over the consumers
 *   p99_ms / p50_ms     producer → consumer latency (each record's producer timestamp)
 *   p99_to_server_send_ms  producer → the gateway sending its batch (the batch head's server_time)
 *   consumers           consumers connected
 *   dropped_per_s       records the gateway dropped for a consumer (its queue full, its rate limit), summed
 *   missed_per_s        sequence numbers a consumer skipped that its gateway thread never had (fan-out ring overrun)
 *   fanout_ring_drops_per_s  experience records the aggregator could not write into a gateway thread's full fan-out ring
 *   ingest_ring_drops_per_s  events a gateway could not write into its full ingest ring (the producer got an Error event)
 *   ingest_per_s        records the producers sent per second
 *   server_cpu_pct      server process CPU (user + sys) over the window, % of one core (read from /proc)
 *   producers_cpu_pct, consumers_cpu_pct  the load generators' processes, summed, % of one core
 *   mb_per_s            consumer bytes received per second
 *   *_cpu_us_per_*      CPU per record of the producers (per ingested), the server and the consumers
 *                       (per delivered); cores_for_100k_delivered: what those add up to at the bar
 *   deflate_*           compression of a 32-record batch, measured here (see README)
 *
 * Baseline (same run, same load, same consumers): the same records as JSON over a plain `ws`
 * server that filters per consumer in JavaScript (server-child.ts).
 * Full: 100 connections × 500/s; --quick: 20 × 100/s.
 *
 * For profiling (not for recorded figures): EXPERIENCE_BENCH_PROF=<dir> runs every child with
 * `--cpu-prof` into <dir> (one profile per thread), EXPERIENCE_BENCH_ONLY=ours|baseline runs one side,
 * EXPERIENCE_BENCH_CONNS / _RATE / _WINDOW_S override the load.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { deflateRawSync } from 'node:zlib';
import { encodeEvent, EventKind } from '../src/shared/telemetry/event-codec.js';
import { percentile, sig } from './lib/stats.js';
import type { BenchOptions, BenchResult } from './lib/types.js';
import type { FromChild, Impl, ToChild } from './experience/ipc.js';
import { ACTIONS, CONSUMER_FILTERS, makeRecord, rng, STATE_SHAPE } from './experience/records.js';
import { procCpu, procPeakRssBytes } from './lib/proc.js';

const log = (s: string) => process.stderr.write(`  ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Child {
  readonly proc: ChildProcess;
  private readonly waiting: Array<(m: FromChild) => void> = [];
  constructor(script: string, args: string[]) {
    const prof = process.env.EXPERIENCE_BENCH_PROF;
    const execArgv = prof ? ['--cpu-prof', '--cpu-prof-dir', `${prof}/${script}-${args[0]}`] : [];
    this.proc = fork(new URL(`./experience/${script}.js`, import.meta.url), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
    this.proc.on('message', (m: FromChild) => {
      if (m.type === 'failed') log(`${script} failed: ${m.error}`);
      this.waiting.shift()?.(m);
    });
  }
  next(timeoutMs = 180_000): Promise<FromChild> {
    return new Promise((resolve, reject) => {
      // Generous: at a load average of 20+ (other work on this machine) the service takes a minute to start.
      const t = setTimeout(() => reject(new Error('child did not answer')), timeoutMs);
      this.waiting.push((m) => { clearTimeout(t); m.type === 'failed' ? reject(new Error(m.error)) : resolve(m); });
    });
  }
  send(m: ToChild): void {
    if (this.proc.connected) this.proc.send(m);
  }
}

interface RunResult { delivered: number; dropped: number; missed: number; fanoutRingDrops: number; ingestRingDrops: number; ingest: number; p50: number; p99: number; serverP99: number; cpuPct: number; producersCpuPct: number; consumersCpuPct: number; mbPerS: number; rssMb: number; consumers: number; perConsumer: number[] }

async function runOnce(impl: Impl, conns: number, rate: number, warmupMs: number, windowMs: number): Promise<RunResult> {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const server = new Child('server-child', [impl, String(port)]);
  await server.next();
  const consumerProcs = [new Child('consumer-child', [impl, String(port), '0', '5']), new Child('consumer-child', [impl, String(port), '5', '5'])];
  await Promise.all(consumerProcs.map((c) => c.next()));
  const producerProcs: Child[] = [];
  const perProc = Math.ceil(conns / 4);
  for (let first = 0; first < conns; first += perProc) producerProcs.push(new Child('producer-child', [impl, String(port), String(first), String(Math.min(perProc, conns - first)), String(rate)]));
  await Promise.all(producerProcs.map((p) => p.next()));
  try {
    await sleep(warmupMs);
    // The server's CPU and peak RSS are read from /proc by this process: an overloaded server
    // (the baseline's event loop behind on JSON) could not answer in time itself.
    const load = [...consumerProcs, ...producerProcs];
    const s0 = procCpu(server.proc.pid!);
    const t0 = performance.now();
    for (const c of load) c.send({ type: 'begin' });
    server.send({ type: 'begin' });
    await sleep(windowMs);
    const answers = load.map((c) => c.next());
    for (const c of load) c.send({ type: 'end' });
    // Ring drops only (its CPU is read from /proc above): a late answer costs the figure, not the run.
    const serverAnswer = server.next(30_000).catch(() => undefined) as Promise<Extract<FromChild, { type: 'window' }> | undefined>;
    server.send({ type: 'end' });
    const s1 = procCpu(server.proc.pid!);
    const peakRss = procPeakRssBytes(server.proc.pid!);
    const serverWallMs = performance.now() - t0;
    const rest = (await Promise.all(answers)) as Array<Extract<FromChild, { type: 'window' }>>;
    const cons = rest.slice(0, consumerProcs.length);
    const prods = rest.slice(consumerProcs.length);
    // Each child's own window (a busy child may see 'end' late): counts over its own wall time.
    const perS = (n: number | undefined, w: Extract<FromChild, { type: 'window' }>) => (n ?? 0) / ((w.wallMs ?? windowMs) / 1000);
    const lat = cons.flatMap((c) => c.latenciesMs ?? []);
    const cpuPct = (w: Extract<FromChild, { type: 'window' }>) => (((w.cpuUserUs ?? 0) + (w.cpuSystemUs ?? 0)) / 1000 / (w.wallMs ?? windowMs)) * 100;
    const serverLat = cons.flatMap((c) => c.serverLatenciesMs ?? []);
    const drops = impl === 'ours' ? (await serverAnswer)?.ringDrops : undefined;
    const ringDropsPerS = (prefix: string) => (drops ? Object.entries(drops).filter(([k]) => k.startsWith(prefix)).reduce((a, [, v]) => a + v, 0) / (serverWallMs / 1000) : NaN);
    return {
      delivered: cons.reduce((a, c) => a + perS(c.records, c), 0),
      dropped: cons.reduce((a, c) => a + perS(c.dropped, c), 0),
      missed: cons.reduce((a, c) => a + perS(c.missed, c), 0),
      fanoutRingDrops: ringDropsPerS('fanout.'),
      ingestRingDrops: ringDropsPerS('ingest.'),
      ingest: prods.reduce((a, p) => a + perS(p.sent, p), 0),
      p50: lat.length ? percentile(lat, 50) : NaN,
      p99: lat.length ? percentile(lat, 99) : NaN,
      serverP99: serverLat.length ? percentile(serverLat, 99) : NaN,
      cpuPct: s0 && s1 ? ((s1.cpuMs - s0.cpuMs) / serverWallMs) * 100 : NaN,
      producersCpuPct: prods.reduce((a, p) => a + cpuPct(p), 0),
      consumersCpuPct: cons.reduce((a, c) => a + cpuPct(c), 0),
      mbPerS: cons.reduce((a, c) => a + perS(c.bytes, c), 0) / 2 ** 20,
      rssMb: (peakRss ?? 0) / 2 ** 20,
      consumers: CONSUMER_FILTERS.length,
      perConsumer: cons.flatMap((c) => (c.perConsumer ?? []).map((n) => perS(n, c))),
    };
  } finally {
    for (const c of [...producerProcs, ...consumerProcs, server]) c.send({ type: 'stop' });
    await sleep(1500);
    for (const c of [...producerProcs, ...consumerProcs, server]) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
  }
}

/** Deflate (level 1, as the server's compress=deflate) on a 32-record batch: ratio and speed. */
function measureDeflate(): Record<string, number> {
  const rand = rng(7);
  const events: Uint8Array[] = [];
  const states: Uint8Array[] = [];
  const masks: Uint8Array[] = [];
  const randomStates: Uint8Array[] = [];
  for (let i = 0; i < 32; i++) {
    const r = makeRecord(0, i, rand);
    const bits = new Uint8Array(Math.ceil(ACTIONS / 8));
    for (let a = 0; a < ACTIONS; a++) if (r.mask[a]) bits[a >> 3] |= 1 << (a & 7);
    const state = new Uint8Array(r.state.slice().buffer);
    states.push(state);
    masks.push(bits);
    const noisy = new Float32Array(r.state.length);
    for (let k = 0; k < noisy.length; k++) noisy[k] = rand() * 2 - 1;
    randomStates.push(new Uint8Array(noisy.buffer));
    const payload = new Uint8Array(state.byteLength + bits.byteLength);
    payload.set(state);
    payload.set(bits, state.byteLength);
    events.push(encodeEvent(EventKind.Experience, { game_id: r.gameId, player_id: r.playerId, turn: r.turn, action: r.action, reward: r.reward, done: r.done, state_shape: STATE_SHAPE, mask_len: ACTIONS }, payload));
  }
  const cat = (xs: Uint8Array[]) => Buffer.concat(xs);
  const ratio = (xs: Uint8Array[]) => { const b = cat(xs); return b.byteLength / deflateRawSync(b, { level: 1 }).byteLength; };
  const batch = cat(events);
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < 500) { deflateRawSync(batch, { level: 1 }); n++; }
  const mbPerS = (batch.byteLength * n) / 2 ** 20 / ((performance.now() - t0) / 1000);
  return {
    deflate_ratio_batch: ratio(events), deflate_ratio_planes: ratio(states), deflate_ratio_masks: ratio(masks),
    deflate_ratio_random_states: ratio(randomStates), deflate_mb_per_s: mbPerS,
  };
}

export async function run({ quick }: BenchOptions): Promise<BenchResult> {
  const env = process.env;
  const conns = Number(env.EXPERIENCE_BENCH_CONNS) || (quick ? 20 : 100);
  const rate = Number(env.EXPERIENCE_BENCH_RATE) || (quick ? 100 : 500);
  const warmupMs = quick ? 3_000 : 10_000;
  const windowMs = (Number(env.EXPERIENCE_BENCH_WINDOW_S) || (quick ? 6 : 30)) * 1000;
  const only = env.EXPERIENCE_BENCH_ONLY;
  log(`experience: ${conns} producers × ${rate}/s, ${CONSUMER_FILTERS.length} consumers, window ${windowMs / 1000} s`);
  const skipped: RunResult = { delivered: 0, dropped: 0, missed: 0, fanoutRingDrops: NaN, ingestRingDrops: NaN, ingest: 0, p50: NaN, p99: NaN, serverP99: NaN, cpuPct: 0, producersCpuPct: 0, consumersCpuPct: 0, mbPerS: 0, rssMb: 0, consumers: 0, perConsumer: [] };
  const ours = only === 'baseline' ? skipped : await runOnce('ours', conns, rate, warmupMs, windowMs);
  log(`ours: ${JSON.stringify(ours)}`);
  let baseFailed: string | undefined;
  const base = only === 'ours' ? skipped : await runOnce('baseline', conns, rate, warmupMs, windowMs).catch((error: unknown) => {
    // The baseline failing under the load (e.g. out of heap) is a result too: say so, keep ours.
    baseFailed = error instanceof Error ? error.message : String(error);
    return skipped;
  });
  log(`baseline: ${JSON.stringify(base)}`);
  const deflate = measureDeflate();
  log(`deflate: ${JSON.stringify(deflate)}`);
  // CPU per record, from each process's own cpuUsage: steadier than rates on a shared machine, and
  // what says how many cores the bar needs at this filter mix (delivered per ingested record).
  const perRecord = (r: RunResult) => {
    const us = (pct: number, n: number) => (n > 0 ? (pct / 100) * 1e6 / n : NaN);
    const producer = us(r.producersCpuPct, r.ingest);
    const server = us(r.cpuPct, r.delivered);
    const consumer = us(r.consumersCpuPct, r.delivered);
    const ratio = r.ingest > 0 ? r.delivered / r.ingest : NaN;
    return {
      producer_cpu_us_per_record: producer, server_cpu_us_per_delivered: server, consumer_cpu_us_per_delivered: consumer,
      cores_for_100k_delivered: ((100_000 / ratio) * producer + 100_000 * (server + consumer)) / 1e6,
    };
  };
  const figures: Record<string, number> = {
    experiences_per_s: ours.delivered, dropped_per_s: ours.dropped, missed_per_s: ours.missed, fanout_ring_drops_per_s: ours.fanoutRingDrops, ingest_ring_drops_per_s: ours.ingestRingDrops, p99_ms: ours.p99, p50_ms: ours.p50, p99_to_server_send_ms: ours.serverP99, consumers: ours.consumers, ingest_per_s: ours.ingest,
    server_cpu_pct: ours.cpuPct, producers_cpu_pct: ours.producersCpuPct, consumers_cpu_pct: ours.consumersCpuPct, mb_per_s: ours.mbPerS, server_rss_mb: ours.rssMb,
    delivered_per_ingested: ours.ingest > 0 ? ours.delivered / ours.ingest : 0, ...perRecord(ours), ...deflate,
  };
  const baseline: Record<string, number> = {
    experiences_per_s: base.delivered, p99_ms: base.p99, p50_ms: base.p50, consumers: base.consumers, ingest_per_s: base.ingest,
    server_cpu_pct: base.cpuPct, producers_cpu_pct: base.producersCpuPct, consumers_cpu_pct: base.consumersCpuPct, mb_per_s: base.mbPerS, server_rss_mb: base.rssMb,
    delivered_per_ingested: base.ingest > 0 ? base.delivered / base.ingest : 0, ...perRecord(base),
  };
  return {
    figures,
    baseline,
    notes: [
      `${conns} producer connections × ${rate} experiences/s (4 processes), ${CONSUMER_FILTERS.length} consumers (2 processes), server in its own process; window ${windowMs / 1000} s after ${warmupMs / 1000} s warm-up`,
      `per-consumer delivered/s, ours: ${ours.perConsumer.map((x) => sig(x, 3)).join(', ')}; baseline: ${base.perConsumer.map((x) => sig(x, 3)).join(', ')}`,
      'the bar (>= 100,000 delivered/s) needs the full run; --quick offers far less load',
      ...(baseFailed ? [`the baseline failed under this load: ${baseFailed}`] : []),
    ],
  };
}
