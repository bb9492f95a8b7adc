/**
 * Fan-out capacity: N overlay clients, each subscribed to metrics, attention and
 * predictions, with one update per channel at 10 Hz, served by
 *
 *   ours      the ringcast service (serialise once per channel and level, uWS publish
 *             from the gateway threads), or its uWS stand-in until the service serves /ws;
 *   baseline  the naive design: `ws`, JSON.stringify and send per client per message;
 *   ws-once   what a competent `ws` user writes: serialise each message once, send the same
 *             Buffer to every client (figure ratio_vs_ws_serialize_once);
 *   uws-raw   the ceiling: bare uWS publish of the same bytes on as many threads as ours
 *             runs gateways (figure ratio_vs_uws_raw).
 *
 * Every server runs in its own child process, and with RINGCAST_BENCH_FANOUT_SERVER_CPUS
 * (a taskset CPU list) each is pinned to the same cores; unset, each may use all cores,
 * which the load generator shares with it. The `ws` servers run on one thread, as `ws` does.
 *
 * Per client count: deliveries/s against expected (clients × 3 × 10/s), latency from the
 * server's stamp to client receipt (p50/p99), server CPU µs per delivered message, server
 * RSS, and the load generator's own CPU, so a saturated generator is not mistaken for a
 * saturated server.
 *
 * Layout: the server runs in a child process (bench/fanout/server-child.ts) so that its
 * process.cpuUsage() and RSS are its own; the clients are raw-TCP WebSocket clients on
 * worker threads of this process (bench/fanout/loadgen-worker.ts), plus one ordinary `ws`
 * probe client (bench/fanout/probe.ts) that sees what the server published.
 *
 * Counting: a delivery counts when its server stamp lies in the stamp window [s0, s1) and
 * it arrives by collectAt (1 s later). s0/s1 sit half a tick between the server's stamps
 * (phase seen by the probe), so exactly measureMs / 100 ticks are expected, whatever the
 * receive delays and however late a busy generator thread gets to its timers; counting
 * what arrived inside a receipt window instead would be off by a tick (3 % of a 3 s window)
 * at either edge. CPU, RSS, event-loop use and latency samples use the receipt window
 * [t0, t1] of the same length, which every process snapshots on its own timers.
 *
 * Latency is receipt (wall ms, sub-ms) minus the message's `timestamp`. The real service
 * stamps with Date.now() (whole ms), which adds up to 1 ms (0.5 ms on average).
 *
 * Env knobs: RINGCAST_BENCH_FANOUT_LOADGEN_THREADS (default 2), RINGCAST_BENCH_FANOUT_COUNTS
 * (comma list for ours and uws-raw), RINGCAST_BENCH_FANOUT_STANDIN=1 (skip the real service),
 * RINGCAST_BENCH_FANOUT_SERVER_THREADS (gateway threads, default 2), RINGCAST_BENCH_FANOUT_DELTA=compare (only
 * ours, at each count once with full and once with delta subscriptions; figures: bytes per client per second
 * and CPU µs per delivery of each; a delta client's ppo_metrics deltas replace the live tails).
 *
 * The full run measures ours twice per count, with full and with delta subscriptions
 * (variants `ours` and `ours-delta`), and at the counts in RINGCAST_BENCH_FANOUT_DEFLATE_COUNTS
 * (default 1000; empty for none) twice more with the service's fanout.compression=shared and
 * clients that offer permessage-deflate (`ours-deflate`, `ours-delta-deflate`; the generator
 * inflates each message to read it and counts its bytes on the wire). The `ws` servers run
 * at RINGCAST_BENCH_FANOUT_BASELINE_COUNTS (default 1000,2500,5000). Every point reports
 * bytes per client per second.
 *
 * The feed above is the worst case for deltas: every tick a fresh random heatmap, new top-move
 * probabilities and new values for every metric. Both modes therefore also measure the bytes
 * on the demo trainer's feed (figures `full_bytes_per_client_per_sec_demo_feed`,
 * `delta_bytes_per_client_per_sec_demo_feed`, and per message type in the notes): the real
 * service with `--demo` (slowly evolving SE attention, a new series point per update, a move
 * every third of a second, at the demo's default rates) and one full and one delta client with
 * the same subscription, in a child process after the points (bench/delta-bytes.ts; bytes per
 * client do not depend on the client count: every message is serialised once for all). It
 * waits 12 s first (the demo's series fill up) and counts for
 * RINGCAST_BENCH_FANOUT_DEMO_FEED_SECONDS (default 10; 0 = not measured).
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { percentile, sig, table } from './lib/stats.js';
import type { BenchOptions, BenchResult } from './lib/types.js';
import type { FromLoadgen, FromServer, LoadgenConnected, LoadgenJob, LoadgenResult, ServerKind, ServerReady, ServerWindowResult, ToLoadgen, ToServer } from './fanout/ipc.js';
import { MESSAGES_PER_TICK, SUBSCRIBED_CHANNELS, SUBSCRIPTION, SUBSCRIPTION_DELTA, TICK_HZ, TICK_MS, wallMs } from './fanout/payloads.js';
import { Probe, writeTemplates } from './fanout/probe.js';
import { CHANNEL_MESSAGE_TYPES } from '../src/shared/telemetry/channels.js';
import { reservePort } from '../src/shared/reserve-port.js';

const SERVER_SCRIPT = new URL('./fanout/server-child.js', import.meta.url);
const DEMO_FEED_SCRIPT = new URL('./delta-bytes.js', import.meta.url);
const DEMO_FEED_SECONDS = (() => {
  const text = process.env.RINGCAST_BENCH_FANOUT_DEMO_FEED_SECONDS ?? '10';
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 600) throw new Error(`RINGCAST_BENCH_FANOUT_DEMO_FEED_SECONDS=${JSON.stringify(text)}: expected an integer 0–600`);
  return n;
})();
const LOADGEN_SCRIPT = new URL('./fanout/loadgen-worker.js', import.meta.url);
const HOST = '127.0.0.1';
// Gateway threads of the service under test; RINGCAST_BENCH_FANOUT_SERVER_THREADS overrides (1–16).
const FANOUT_THREADS = (() => {
  const text = process.env.RINGCAST_BENCH_FANOUT_SERVER_THREADS ?? '2';
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 16) throw new Error(`RINGCAST_BENCH_FANOUT_SERVER_THREADS=${JSON.stringify(text)}: expected an integer 1–16`);
  return n;
})();
/** RINGCAST_BENCH_FANOUT_SERVER_CPUS: a taskset CPU list every server child is pinned to alike. */
const SERVER_CPUS = (() => {
  const text = process.env.RINGCAST_BENCH_FANOUT_SERVER_CPUS;
  if (text === undefined || text.trim() === '') return undefined;
  if (!/^[0-9]+([-,][0-9]+)*$/.test(text.trim())) throw new Error(`RINGCAST_BENCH_FANOUT_SERVER_CPUS=${JSON.stringify(text)}: expected a taskset CPU list such as 0 or 0-1 or 0,2`);
  return text.trim();
})();
/** Keys of the figures per server kind. */
const KEY: Record<ServerKind, string> = { ours: 'ours', baseline: 'baseline', 'ws-once': 'ws_once', 'uws-raw': 'uws_raw' };
/** A client count "holds" when at least this share of messages arrives and p99 latency stays under this. */
const HOLD_DELIVERED_PCT = 99;
const HOLD_P99_MS = 50;
/** The baseline always runs at these counts (to have a side-by-side point)... */
const BASELINE_ALWAYS = 2000;
/** ...and beyond them stops escalating once it delivers less than this. */
const BASELINE_MIN_DELIVERED_PCT = 90;
/** A generator thread this busy may be what limits the numbers. */
const GENERATOR_SATURATED_ELU = 0.9;
/** fds this process and the server need beyond one per client. */
const FD_MARGIN = 256;
/** A message stamped in the window counts if it arrives at most this long after the window. */
const COLLECT_GRACE_MS = 1000;
/** Message types that count as deliveries on the subscribed channels. */
const DELIVERY_TYPES = SUBSCRIBED_CHANNELS.flatMap((c) => [...CHANNEL_MESSAGE_TYPES[c]]);
/** What a delta subscriber's updates are: deltas, or full messages where a delta would not be smaller. */
const DELTA_DELIVERY_TYPES = ['delta', ...DELIVERY_TYPES];
const DELTA_MODE = (() => {
  const text = process.env.RINGCAST_BENCH_FANOUT_DELTA ?? '';
  if (text !== '' && text !== 'compare') throw new Error(`RINGCAST_BENCH_FANOUT_DELTA=${JSON.stringify(text)}: expected "compare" or nothing`);
  return text === 'compare';
})();

/** Shared across the points of one run: where the baseline finds the real service's messages. */
interface RunContext {
  tmpDir: string;
  templatesFile?: string;
  templateNote?: string;
}

interface Plan {
  ours: number[];
  /** Counts where ours also runs with permessage-deflate. */
  deflate: number[];
  /** Client counts for the `ws` baselines (per-client and serialise-once); uws-raw runs at ours. */
  baseline: number[];
  warmupMs: number;
  measureMs: number;
  loadgenThreads: number;
}

export interface Point {
  kind: ServerKind;
  /** kind, plus `-delta` / `-deflate` for ours with delta subscriptions / permessage-deflate. */
  variant: string;
  impl: string;
  clients: number;
  connected: number;
  connectFailed: number;
  expected: number;
  delivered: number;
  /** Deliveries stamped in the window (arriving up to COLLECT_GRACE_MS late) / expected. */
  deliveredPct: number;
  deliveriesPerSec: number;
  /** Messages that arrived inside the receipt window / expected: throughput as the clients saw it. */
  receivedPct: number;
  p50Ms: number;
  p99Ms: number;
  latencySamples: number;
  usPerDelivery: number;
  /** The user / kernel split of usPerDelivery (loopback TCP sends are kernel time). */
  userUsPerDelivery: number;
  sysUsPerDelivery: number;
  serverCpuPct: number;
  serverRssMiB: number;
  loadgenCpuPct: number;
  loadgenEluMax: number;
  /** CPU that other processes used during the window, % of one core (machine busy − server − generator). */
  otherCpuPct: number;
  generatorSaturated: boolean;
  bytesPerMessage: number;
  /** Bytes of counted deliveries per connected client per second of the window. */
  bytesPerClientPerSec?: number;
  subscription?: 'full' | 'delta';
  /** Messages per tick the probe client received (what the server published). */
  publishedPerTick: number;
  /** delivered / (clients × what the probe received): the fan-out's own delivery ratio. */
  deliveredOfPublishedPct: number;
  /** Deliveries per client per tick, by message type. */
  perClientTick: Record<string, number>;
  /** Messages of other types per client per tick (not counted as deliveries). */
  otherPerClientTick: number;
  otherTypes: Record<string, number>;
  ticksMissed: number;
  /** Deliveries counted by receipt time because their stamp was split across TCP reads. */
  unstamped: number;
  snapshotLateMs: number;
  closes: number;
  holds: boolean;
  note?: string;
  errors: string[];
}

/** A comma list of client counts from an env var: undefined when unset, [] when set empty. */
function countList(name: string): number[] | undefined {
  const text = process.env[name];
  if (text === undefined) return undefined;
  if (text.trim() === '') return [];
  const counts = text.split(',').map((s) => Number(s.trim()));
  if (counts.some((n) => !Number.isInteger(n) || n < 1 || n > 100_000)) {
    throw new Error(`${name}=${JSON.stringify(text)}: expected a comma-separated list of client counts, integers 1–100000, or nothing`);
  }
  return counts;
}

function plan(quick: boolean): Plan {
  const countsText = process.env.RINGCAST_BENCH_FANOUT_COUNTS;
  let counts: number[] | undefined;
  if (countsText !== undefined && countsText.trim() !== '') {
    counts = countsText.split(',').map((s) => Number(s.trim()));
    if (counts.some((n) => !Number.isInteger(n) || n < 1 || n > 100_000)) {
      throw new Error(`RINGCAST_BENCH_FANOUT_COUNTS=${JSON.stringify(countsText)}: expected a comma-separated list of client counts, integers 1–100000`);
    }
  }
  const threadsText = process.env.RINGCAST_BENCH_FANOUT_LOADGEN_THREADS ?? '2';
  const threads = Number(threadsText);
  if (!Number.isInteger(threads) || threads < 1 || threads > 8) {
    throw new Error(`RINGCAST_BENCH_FANOUT_LOADGEN_THREADS=${JSON.stringify(threadsText)}: expected an integer 1–8`);
  }
  const deflate = countList('RINGCAST_BENCH_FANOUT_DEFLATE_COUNTS') ?? [1000];
  return {
    ours: counts ?? (quick ? [1000, 2500, 5000, 10000] : [1000, 2500, 5000, 7500, 10000]),
    deflate,
    baseline: countList('RINGCAST_BENCH_FANOUT_BASELINE_COUNTS') ?? [1000, 2500, 5000],
    warmupMs: quick ? 1500 : 2000,
    measureMs: quick ? 3000 : 5000,
    loadgenThreads: threads,
  };
}

/**
 * The descriptor limit the processes here run with. Node raises its soft limit to the
 * hard limit at start-up, and children inherit that, so the hard limit is what counts.
 */
function fdLimit(): number {
  try {
    const out = execFileSync('/bin/sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
    return out === 'unlimited' ? Infinity : Number(out);
  } catch {
    return NaN;
  }
}

/**
 * Busy CPU time of the whole machine so far (ms, all cores), from /proc/stat; NaN where
 * unavailable. Minus the server's and the generator's own CPU it shows how much other
 * work shared the machine during a window, i.e. how far the figures can be trusted.
 */
function machineBusyMs(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait.
    const busy = f.slice(0, 8).reduce((s, x) => s + x, 0) - f[3] - f[4];
    return (busy * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
}


const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_r, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms); }),
  ]);
}

/** Resolves with the next IPC message of `type` from the child; rejects if it fails or exits first. */
function fromChild<T extends FromServer['type']>(child: ChildProcess, type: T): Promise<Extract<FromServer, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: FromServer) => {
      if (m.type === type) { off(); resolve(m as Extract<FromServer, { type: T }>); }
      else if (m.type === 'failed') { off(); reject(new Error(`server child failed: ${m.error}`)); }
    };
    const onExit = (code: number | null, signal: string | null) => { off(); reject(new Error(`server child exited (code ${code}, signal ${signal}) before "${type}"`)); };
    const off = () => { child.off('message', onMessage); child.off('exit', onExit); };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

function fromWorker<T extends FromLoadgen['type']>(worker: Worker, type: T): Promise<Extract<FromLoadgen, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: FromLoadgen) => {
      if (m.type === type) { off(); resolve(m as Extract<FromLoadgen, { type: T }>); }
      else if (m.type === 'fatal') { off(); reject(new Error(`load generator failed: ${m.error}`)); }
    };
    const onError = (err: Error) => { off(); reject(err); };
    const onExit = (code: number) => { off(); reject(new Error(`load generator exited (code ${code}) before "${type}"`)); };
    const off = () => { worker.off('message', onMessage); worker.off('error', onError); worker.off('exit', onExit); };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try { child.send({ type: 'stop' } satisfies ToServer); } catch { /* channel already closed */ }
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function stopWorkers(workers: Worker[]): Promise<void> {
  await Promise.all(workers.map(async (w) => {
    try {
      const closed = fromWorker(w, 'closed');
      w.postMessage({ type: 'close' } satisfies ToLoadgen);
      await withTimeout(closed, 5_000, 'load generator close');
    } catch { /* terminate below regardless */ }
    await w.terminate();
  }));
}

interface TypeBytes { per_sec: number; bytes_per_message: number }
type ClientBytes = Record<string, TypeBytes | number>;

/**
 * Bytes per client per second on the demo trainer's feed, full and delta subscription (a child
 * process runs the service with --demo and one client of each; see the header). Adds figures
 * and notes; a failure becomes a note, not a lost run.
 */
async function demoFeedBytes(figures: Record<string, number>, notes: string[]): Promise<void> {
  if (DEMO_FEED_SECONDS === 0) { notes.push('demo feed not measured (RINGCAST_BENCH_FANOUT_DEMO_FEED_SECONDS=0)'); return; }
  process.stderr.write(`fanout: demo feed, 1 full + 1 delta client, ${DEMO_FEED_SECONDS} s ...`);
  try {
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [fileURLToPath(DEMO_FEED_SCRIPT), 'demo', String(DEMO_FEED_SECONDS)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (b: Buffer) => { text += String(b); });
      const timer = setTimeout(() => child.kill('SIGKILL'), (DEMO_FEED_SECONDS + 90) * 1000);
      child.on('error', reject);
      child.on('exit', (code, signal) => { clearTimeout(timer); if (code === 0) resolve(text); else reject(new Error(`delta-bytes exited (code ${code}, signal ${signal})`)); });
    });
    const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{"demo":'));
    if (!line) throw new Error(`delta-bytes printed no result (${JSON.stringify(out.slice(-200))})`);
    const { demo } = JSON.parse(line) as { demo: { full: ClientBytes; delta: ClientBytes } };
    for (const mode of ['full', 'delta'] as const) {
      const r = demo[mode];
      figures[`${mode}_bytes_per_client_per_sec_demo_feed`] = r.bytes_per_sec as number;
      const types = Object.entries(r).filter((e): e is [string, TypeBytes] => typeof e[1] === 'object');
      notes.push(`demo feed, ${mode} subscription: ${f1((r.bytes_per_sec as number) / 1000)} KB/client/s; ${types.map(([t, v]) => `${t} ${v.per_sec}/s × ${v.bytes_per_message} B`).join(', ')}`);
    }
    process.stderr.write(` full ${f1(figures.full_bytes_per_client_per_sec_demo_feed / 1000)}, delta ${f1(figures.delta_bytes_per_client_per_sec_demo_feed / 1000)} KB/client/s\n`);
  } catch (error) {
    process.stderr.write(' failed\n');
    notes.push(`demo feed not measured: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** RINGCAST_BENCH_FANOUT_DELTA=compare: ours with full and with delta subscriptions, side by side at each count. */
async function compareDelta(p: Plan, ctx: RunContext, notes: string[]): Promise<BenchResult> {
  const figures: Record<string, number> = {};
  const series: Record<string, Array<[number, number]>> = {};
  const add = (k: string, n: number, v: number) => { (series[k] ??= []).push([n, sig(v)]); };
  for (const n of p.ours) {
    for (const delta of [false, true]) {
      const mode = delta ? 'delta' : 'full';
      process.stderr.write(`fanout: ours ${mode} ${n} clients ...`);
      let pt: Point;
      try { pt = await runPoint('ours', n, p, ctx, delta); } catch (error) { pt = failedPoint('ours', n, error); }
      process.stderr.write(` ${f1(pt.deliveredPct)}% delivered, p99 ${f2(pt.p99Ms)} ms, ${f1((pt.bytesPerClientPerSec ?? NaN) / 1000)} KB/client/s, ${f2(pt.usPerDelivery)} µs/delivery${pt.errors.length ? ` (${pt.errors.join('; ')})` : ''}\n`);
      figures[`${mode}_bytes_per_client_per_sec_at_${n}`] = pt.bytesPerClientPerSec ?? NaN;
      figures[`${mode}_us_per_delivery_at_${n}`] = pt.usPerDelivery;
      figures[`${mode}_delivered_pct_at_${n}`] = pt.deliveredPct;
      figures[`${mode}_p99_ms_at_${n}`] = pt.p99Ms;
      add(`${mode}_bytes_per_client_per_sec`, n, pt.bytesPerClientPerSec ?? NaN);
      add(`${mode}_us_per_delivery`, n, pt.usPerDelivery);
      add(`${mode}_p99_ms`, n, pt.p99Ms);
      notes.push(`${mode} ${n}: ${f1(pt.deliveredPct)}% delivered, ${f1(pt.bytesPerMessage)} B/message, mix ${Object.entries(pt.perClientTick).map(([t, r]) => `${t} ${r.toFixed(2)}`).join(', ')} per client per tick${pt.otherPerClientTick > 0 ? `, ${pt.otherPerClientTick.toFixed(3)} other` : ''}${pt.errors.length ? `; errors: ${pt.errors.join('; ')}` : ''}`);
    }
  }
  rmSync(ctx.tmpDir, { recursive: true, force: true });
  await demoFeedBytes(figures, notes);
  notes.push(`ours only (no ws or uws-raw baselines: they have no delta mode), level intermediate, channels ${SUBSCRIBED_CHANNELS.join(', ')}, max_fps 10; each point ${p.warmupMs} ms warm-up, ${p.measureMs} ms window; load generator on the same machine`);
  for (const k of Object.keys(figures)) figures[k] = sig(figures[k]);
  return { figures, notes, series };
}

/** The first instant ≥ `after` that lies half a tick after a tick of the server's grid. */
function midTick(after: number, origin: number): number {
  const k = Math.ceil((after - origin - TICK_MS / 2) / TICK_MS);
  return origin + k * TICK_MS + TICK_MS / 2;
}

function variantOf(kind: ServerKind, delta: boolean, deflate: boolean): string {
  return `${kind}${delta ? '-delta' : ''}${deflate ? '-deflate' : ''}`;
}

async function runPoint(kind: ServerKind, clients: number, p: Plan, ctx: RunContext, delta = false, deflate = false): Promise<Point> {
  const subscription = delta ? SUBSCRIPTION_DELTA : SUBSCRIPTION;
  const types = delta ? DELTA_DELIVERY_TYPES : DELIVERY_TYPES;
  const port = await reservePort('127.0.0.1', 0);
  const args = [kind, HOST, String(port), String(FANOUT_THREADS), kind !== 'ours' ? ctx.templatesFile ?? '' : '', deflate ? 'shared' : 'off'];
  const child = SERVER_CPUS
    ? spawn('taskset', ['-c', SERVER_CPUS, process.execPath, fileURLToPath(SERVER_SCRIPT), ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    : fork(SERVER_SCRIPT, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const workers: Worker[] = [];
  let probe: Probe | undefined;
  try {
    const ready: ServerReady = await withTimeout(fromChild(child, 'ready'), 60_000, `${kind} server start`);
    const per = Array.from({ length: p.loadgenThreads }, (_v, i) => Math.floor(clients / p.loadgenThreads) + (i < clients % p.loadgenThreads ? 1 : 0));
    const connectTimeoutMs = 20_000 + clients * 2;
    for (const n of per) {
      const job: LoadgenJob = {
        host: HOST, port: ready.port, clients: n, subscription, sampleEvery: 32,
        connectConcurrency: 128, latencyCap: 1 << 18, connectTimeoutMs, types, deflate,
      };
      workers.push(new Worker(LOADGEN_SCRIPT, { workerData: job }));
    }
    const connected: LoadgenConnected[] = await withTimeout(Promise.all(workers.map((w) => fromWorker(w, 'connected'))), connectTimeoutMs + 30_000, `${clients} clients connecting`);
    // The probe connects last, so it is the (N+1)th client, not counted in the deliveries.
    probe = new Probe(`ws://${HOST}:${ready.port}/ws`, subscription, types, TICK_MS);
    await withTimeout(probe.ready, 15_000, 'probe client subscribing');
    const ok = connected.reduce((s, c) => s + c.ok, 0);
    const failed = connected.reduce((s, c) => s + c.failed, 0);
    const errors = [...new Set(connected.flatMap((c) => c.errors))].slice(0, 5);

    const started = fromChild(child, 'started');
    child.send({ type: 'start' } satisfies ToServer);
    const { tickOrigin } = await withTimeout(started, 10_000, `${kind} server starting its ticks`);

    await sleep(p.warmupMs);
    // Receipt window on our tick grid; stamp window on the grid the server stamps on.
    const t0 = midTick(wallMs() + 200, tickOrigin);
    const t1 = t0 + p.measureMs;
    const phase = probe.stampPhase();
    const s0 = midTick(t0 - TICK_MS / 2, Number.isFinite(phase) ? phase : tickOrigin);
    const s1 = s0 + p.measureMs;
    const collectAt = Math.max(t1, s1) + COLLECT_GRACE_MS;
    const serverResult = fromChild(child, 'window-result');
    const workerResults = workers.map((w) => fromWorker(w, 'result'));
    probe.window(s0, s1);
    const window = { type: 'window', t0, t1, s0, s1, collectAt } as const;
    child.send(window satisfies ToServer);
    for (const w of workers) w.postMessage(window satisfies ToLoadgen);
    // This process is the load generator (its main thread only waits), so its CPU is the generator's.
    let cpu0: NodeJS.CpuUsage | undefined;
    let wall0 = 0;
    let busy0 = NaN;
    setTimeout(() => { cpu0 = process.cpuUsage(); wall0 = wallMs(); busy0 = machineBusyMs(); }, t0 - wallMs());
    const cpuDone = new Promise<{ cpuUs: number; wallMs: number; busyMs: number }>((resolve) => {
      setTimeout(() => { const c = process.cpuUsage(cpu0); resolve({ cpuUs: c.user + c.system, wallMs: wallMs() - wall0, busyMs: machineBusyMs() - busy0 }); }, t1 - wallMs());
    });
    const deadline = collectAt - wallMs() + 30_000;
    const [srv, gens, gen] = await withTimeout(Promise.all([serverResult, Promise.all(workerResults), cpuDone]), deadline, `${kind} ${clients}-client window`) as [ServerWindowResult, LoadgenResult[], { cpuUs: number; wallMs: number; busyMs: number }];

    probe.close();
    const published = probe.windowCounts();
    if (kind === 'ours' && ready.impl === 'service' && !delta) {
      // What the real service sent in this window is what the baseline at this count must send.
      const templates = probe.templates();
      if (templates.length > 0) {
        ctx.templatesFile = path.join(ctx.tmpDir, 'templates.json');
        writeTemplates(ctx.templatesFile, templates);
        ctx.templateNote = undefined;
      } else if (!ctx.templatesFile) {
        ctx.templateNote = 'the probe saw no messages from the real service; the baseline sends the stand-in payloads';
      }
    }
    const delivered = gens.reduce((s, g) => s + g.messages, 0);
    const bytes = gens.reduce((s, g) => s + g.bytes, 0);
    const samples = new Float64Array(gens.reduce((s, g) => s + g.latencies.length, 0));
    let at = 0;
    for (const g of gens) { samples.set(g.latencies, at); at += g.latencies.length; }
    const expected = clients * MESSAGES_PER_TICK * TICK_HZ * (p.measureMs / 1000);
    const deliveredPct = (delivered / expected) * 100;
    const p99 = percentile(samples, 99);
    const eluMax = Math.max(...gens.map((g) => g.elu));
    const loadgenCpuPct = (gen.cpuUs / 1000 / gen.wallMs / p.loadgenThreads) * 100;
    const srvCpuUs = srv.cpuUserUs + srv.cpuSystemUs;
    const ticksInWindow = p.measureMs / TICK_MS;
    const publishedTotal = Object.values(published).reduce((s, n) => s + n, 0);
    const perClientTick: Record<string, number> = {};
    types.forEach((t, i) => {
      const n = gens.reduce((s, g) => s + g.byType[i], 0);
      if (n > 0) perClientTick[t] = n / clients / ticksInWindow;
    });
    const otherTypes: Record<string, number> = {};
    for (const g of gens) for (const [t, n] of Object.entries(g.otherTypes)) otherTypes[t] = (otherTypes[t] ?? 0) + n;
    return {
      kind,
      variant: variantOf(kind, delta, deflate),
      impl: ready.impl,
      clients,
      connected: ok,
      connectFailed: failed,
      expected,
      delivered,
      deliveredPct,
      deliveriesPerSec: delivered / (p.measureMs / 1000),
      receivedPct: (gens.reduce((s, g) => s + g.received, 0) / expected) * 100,
      p50Ms: percentile(samples, 50),
      p99Ms: p99,
      latencySamples: samples.length,
      usPerDelivery: delivered > 0 ? srvCpuUs / delivered : NaN,
      userUsPerDelivery: delivered > 0 ? srv.cpuUserUs / delivered : NaN,
      sysUsPerDelivery: delivered > 0 ? srv.cpuSystemUs / delivered : NaN,
      serverCpuPct: (srvCpuUs / 1000 / srv.wallMs) * 100,
      serverRssMiB: srv.rssMaxBytes / 2 ** 20,
      loadgenCpuPct,
      loadgenEluMax: eluMax,
      otherCpuPct: ((gen.busyMs - gen.cpuUs / 1000 - srvCpuUs / 1000) / gen.wallMs) * 100,
      generatorSaturated: eluMax >= GENERATOR_SATURATED_ELU || loadgenCpuPct >= GENERATOR_SATURATED_ELU * 100,
      bytesPerMessage: delivered > 0 ? bytes / delivered : NaN,
      bytesPerClientPerSec: ok > 0 ? bytes / ok / (p.measureMs / 1000) : NaN,
      subscription: delta ? 'delta' : 'full',
      perClientTick,
      publishedPerTick: publishedTotal / ticksInWindow,
      deliveredOfPublishedPct: publishedTotal > 0 ? (delivered / (clients * publishedTotal)) * 100 : NaN,
      otherPerClientTick: gens.reduce((s, g) => s + g.otherMessages, 0) / clients / ticksInWindow,
      otherTypes,
      ticksMissed: srv.ticksMissed,
      snapshotLateMs: Math.max(...gens.map((g) => g.snapshotLateMs)),
      unstamped: gens.reduce((s, g) => s + g.unstamped, 0),
      closes: gens.reduce((s, g) => s + g.closes, 0),
      holds: deliveredPct >= HOLD_DELIVERED_PCT && p99 < HOLD_P99_MS,
      note: [...new Set([ready.note, srv.note].filter(Boolean))].join('; ') || undefined,
      errors,
    };
  } finally {
    probe?.close();
    // Server first: it closes its side, so TIME_WAIT lands on its (fresh, per-point) port.
    await stopChild(child);
    await stopWorkers(workers);
  }
}

function failedPoint(kind: ServerKind, clients: number, error: unknown, variant: string = kind): Point {
  const message = error instanceof Error ? error.message : String(error);
  return {
    kind, variant, impl: '?', clients, connected: 0, connectFailed: clients, expected: 0, delivered: 0, deliveredPct: 0, deliveriesPerSec: 0, receivedPct: 0,
    p50Ms: NaN, p99Ms: NaN, latencySamples: 0, usPerDelivery: NaN, userUsPerDelivery: NaN, sysUsPerDelivery: NaN, serverCpuPct: NaN, serverRssMiB: NaN, loadgenCpuPct: NaN,
    loadgenEluMax: NaN, otherCpuPct: NaN, generatorSaturated: false, bytesPerMessage: NaN, publishedPerTick: NaN, deliveredOfPublishedPct: NaN, perClientTick: {}, otherPerClientTick: 0, otherTypes: {}, ticksMissed: 0, unstamped: 0, snapshotLateMs: 0, closes: 0, holds: false, errors: [message],
  };
}

function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((s, x) => s + x, 0) / n;
  const my = ys.reduce((s, y) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) { sxy += (xs[i] - mx) * (ys[i] - my); sxx += (xs[i] - mx) ** 2; }
  return sxx === 0 ? NaN : sxy / sxx;
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');

function printTable(points: Point[]): void {
  const rows = [['variant', 'server', 'clients', 'conn', 'deliv/s', 'expected/s', 'deliv %', 'recv %', 'of pub %', 'pub/tick', 'p50 ms', 'p99 ms', 'µs/deliv', 'usr+sys', 'srv cpu %', 'srv RSS MiB', 'gen cpu %', 'gen ELU', 'other cpu %', 'B/msg', 'KB/client/s', 'holds']];
  for (const pt of points) {
    rows.push([
      pt.variant, pt.impl, String(pt.clients), String(pt.connected), String(Math.round(pt.deliveriesPerSec)), String(pt.clients * MESSAGES_PER_TICK * TICK_HZ),
      f1(pt.deliveredPct), f1(pt.receivedPct), f1(pt.deliveredOfPublishedPct), f2(pt.publishedPerTick), f2(pt.p50Ms), f2(pt.p99Ms), f2(pt.usPerDelivery), `${f2(pt.userUsPerDelivery)}+${f2(pt.sysUsPerDelivery)}`, f1(pt.serverCpuPct), f1(pt.serverRssMiB),
      f1(pt.loadgenCpuPct), f2(pt.loadgenEluMax), f1(pt.otherCpuPct), f1(pt.bytesPerMessage), f1((pt.bytesPerClientPerSec ?? NaN) / 1000), pt.holds ? 'yes' : 'no',
    ]);
  }
  console.log(`\nfan-out points (${MESSAGES_PER_TICK} channels × ${TICK_HZ} Hz per client):`);
  console.log(table(rows));
}

export async function run({ quick }: BenchOptions): Promise<BenchResult> {
  const p = plan(quick);
  const notes: string[] = [];
  const limit = fdLimit();
  const maxClients = Number.isFinite(limit) ? limit - FD_MARGIN : Infinity;
  if (Number.isFinite(limit)) {
    const capped = p.ours.filter((n) => n > maxClients);
    if (capped.length) notes.push(`fd hard limit ${limit}: client counts ${capped.join(', ')} skipped (each process needs one fd per client plus ${FD_MARGIN}); raise the hard limit (ulimit -Hn / LimitNOFILE) to run them`);
    p.ours = p.ours.filter((n) => n <= maxClients);
    p.baseline = p.baseline.filter((n) => n <= maxClients);
  } else {
    notes.push('could not read the fd limit; running every client count');
  }

  const points: Point[] = [];
  const ctx: RunContext = { tmpDir: mkdtempSync(path.join(os.tmpdir(), 'ringcast-bench-fanout-')) };
  if (DELTA_MODE) return compareDelta(p, ctx, notes);
  const runOne = async (kind: ServerKind, n: number, delta = false, deflate = false): Promise<Point> => {
    const variant = variantOf(kind, delta, deflate);
    process.stderr.write(`fanout: ${variant} ${n} clients ...`);
    let pt: Point;
    try { pt = await runPoint(kind, n, p, ctx, delta, deflate); } catch (error) { pt = failedPoint(kind, n, error, variant); }
    process.stderr.write(` ${pt.impl}: ${f1(pt.deliveredPct)}% delivered, p99 ${f2(pt.p99Ms)} ms, ${f2(pt.usPerDelivery)} µs/delivery, ${f1((pt.bytesPerClientPerSec ?? NaN) / 1000)} KB/client/s${pt.errors.length ? ` (${pt.errors.join('; ')})` : ''}\n`);
    points.push(pt);
    return pt;
  };

  // Side by side: at each client count the baselines run right after ours, under the same conditions
  // (and after ours, so they send the real service's messages of that count). A `ws` baseline
  // stops escalating once it falls behind; the ceiling runs wherever ours does.
  const stopped = new Set<ServerKind>();
  const counts = [...new Set([...p.ours, ...p.baseline])].sort((a, b) => a - b);
  for (const n of counts) {
    if (p.ours.includes(n)) {
      await runOne('ours', n);
      await runOne('ours', n, true);
      if (p.deflate.includes(n)) {
        await runOne('ours', n, false, true);
        await runOne('ours', n, true, true);
      }
      await runOne('uws-raw', n);
    }
    for (const kind of ['ws-once', 'baseline'] as const) {
      if (stopped.has(kind) || !p.baseline.includes(n)) continue;
      const b = await runOne(kind, n);
      if (!(b.deliveredPct >= BASELINE_MIN_DELIVERED_PCT) && n >= BASELINE_ALWAYS) {
        stopped.add(kind);
        const skipped = p.baseline.filter((c) => c > n);
        if (skipped.length) notes.push(`${kind} stopped escalating at ${n} clients: ${f1(b.deliveredPct)}% delivered (< ${BASELINE_MIN_DELIVERED_PCT}%); not run at ${skipped.join(', ')}`);
      }
    }
  }
  rmSync(ctx.tmpDir, { recursive: true, force: true });
  printTable(points);

  const ours = points.filter((x) => x.variant === 'ours');
  const base = points.filter((x) => x.kind === 'baseline');
  const figures: Record<string, number> = {};
  const baseline: Record<string, number> = {};

  // CPU per delivery compared at the largest client count where the baseline still
  // delivered ≥ 90% (beyond that its µs/delivery describes a server that is dropping work).
  // When it kept up nowhere (a loaded machine), fall back to the smallest common count and say so.
  const common = base.filter((b) => b.delivered > 0 && ours.some((o) => o.clients === b.clients && o.delivered > 0));
  const comparable = common.filter((b) => b.deliveredPct >= BASELINE_MIN_DELIVERED_PCT);
  const at = comparable.length ? comparable[comparable.length - 1] : common[0];
  if (at && !comparable.length) notes.push(`CPU per delivery compared at ${at.clients} clients although the baseline delivered only ${f1(at.deliveredPct)}% there`);
  const oursAt = at ? ours.find((o) => o.clients === at.clients) : undefined;
  if (at && oursAt) {
    figures.us_per_delivery = oursAt.usPerDelivery;
    figures.baseline_us_per_delivery = at.usPerDelivery;
    figures.ratio_vs_baseline = at.usPerDelivery / oursAt.usPerDelivery;
    figures.compared_at_clients = at.clients;
    baseline.us_per_delivery = at.usPerDelivery;
    // Kernel time (loopback TCP send of the same bytes) is a floor both pay; user time is
    // what the fan-out design itself costs.
    figures.user_us_per_delivery = oursAt.userUsPerDelivery;
    figures.baseline_user_us_per_delivery = at.userUsPerDelivery;
    figures.user_ratio_vs_baseline = at.userUsPerDelivery / oursAt.userUsPerDelivery;
    baseline.user_us_per_delivery = at.userUsPerDelivery;
  } else {
    notes.push('no client count where both servers delivered enough to compare CPU per delivery');
  }
  // The same comparison against the same-work baselines: ratio = their µs per delivery / ours.
  const compareWith = (kind: 'ws-once' | 'uws-raw', figure: string) => {
    const theirs = points.filter((x) => x.kind === kind && x.delivered > 0 && ours.some((o) => o.clients === x.clients && o.delivered > 0));
    const fair = theirs.filter((x) => x.deliveredPct >= BASELINE_MIN_DELIVERED_PCT);
    const t = fair.length ? fair[fair.length - 1] : theirs[0];
    if (!t) { notes.push(`${kind}: no client count where it and ours both delivered; ${figure} not measured`); return; }
    if (!fair.length) notes.push(`${figure} compared at ${t.clients} clients although ${kind} delivered only ${f1(t.deliveredPct)}% there`);
    const o = ours.find((x) => x.clients === t.clients)!;
    const k = KEY[kind];
    figures[figure] = t.usPerDelivery / o.usPerDelivery;
    figures[`${k}_us_per_delivery`] = t.usPerDelivery;
    figures[`${k}_compared_at_clients`] = t.clients;
    figures[`${k}_ours_us_per_delivery`] = o.usPerDelivery;
    figures[`${k}_user_ratio`] = t.userUsPerDelivery / o.userUsPerDelivery;
    figures[`${k}_loadgen_cpu_pct_at_compared`] = t.loadgenCpuPct;
    figures[`ours_loadgen_cpu_pct_at_${k}_compared`] = o.loadgenCpuPct;
    const held = points.filter((x) => x.kind === kind && x.holds);
    figures[`${k}_clients_at_p99_50ms`] = held.length ? Math.max(...held.map((x) => x.clients)) : 0;
  };
  compareWith('ws-once', 'ratio_vs_ws_serialize_once');
  compareWith('uws-raw', 'ratio_vs_uws_raw');
  // The cost of one more delivery, without the fixed per-process costs that dominate at
  // small counts: least-squares slope of server CPU (µs/s) over deliveries/s.
  const measured = ours.filter((o) => o.delivered > 0 && Number.isFinite(o.serverCpuPct));
  if (measured.length >= 2) {
    figures.marginal_us_per_delivery = slope(measured.map((o) => o.deliveriesPerSec), measured.map((o) => o.serverCpuPct * 1e4));
  }
  const holding = ours.filter((o) => o.holds);
  figures.clients_at_p99_50ms = holding.length ? Math.max(...holding.map((o) => o.clients)) : 0;
  const o5k = ours.find((o) => o.clients === 5000);
  if (o5k) {
    figures.p99_ms_at_5k = o5k.p99Ms;
    figures.delivered_pct_at_5k = o5k.deliveredPct;
  } else {
    notes.push('5k clients not measured (fd limit or plan)');
  }
  // Full vs delta subscriptions (and with permessage-deflate where run): bytes each client
  // read per second and server CPU per delivery, at the smallest count each ran (the load
  // there says least about the machine), and the largest count each held the bar at.
  for (const variant of ['ours', 'ours-delta', 'ours-deflate', 'ours-delta-deflate']) {
    const vs = points.filter((x) => x.variant === variant && x.delivered > 0);
    if (!vs.length) continue;
    const name = variant === 'ours' ? 'full' : variant.replace(/^ours-/, '').replace(/^deflate$/, 'full_deflate').replace(/-/g, '_');
    figures[`${name}_bytes_per_client_per_sec`] = vs[0].bytesPerClientPerSec ?? NaN;
    figures[`${name}_us_per_delivery`] = vs[0].usPerDelivery;
    figures[`${name}_measured_at_clients`] = vs[0].clients;
    const held = vs.filter((x) => x.holds);
    figures[`${name}_clients_at_p99_50ms`] = held.length ? Math.max(...held.map((x) => x.clients)) : 0;
  }
  await demoFeedBytes(figures, notes);
  const baseHolding = base.filter((b) => b.holds);
  figures.baseline_clients_at_p99_50ms = baseHolding.length ? Math.max(...baseHolding.map((b) => b.clients)) : 0;

  // Per kind, against clients: what the capacity report charts.
  const series: Record<string, Array<[number, number]>> = {};
  for (const pt of points) {
    if (!(pt.delivered > 0)) continue;
    const k = pt.variant.replace(/-/g, '_');
    for (const [name, v] of [['p50_ms', pt.p50Ms], ['p99_ms', pt.p99Ms], ['us_per_delivery', pt.usPerDelivery], ['delivered_pct', pt.deliveredPct], ['loadgen_cpu_pct', pt.loadgenCpuPct], ['server_cpu_pct', pt.serverCpuPct], ['bytes_per_client_per_sec', pt.bytesPerClientPerSec ?? NaN]] as const) {
      if (Number.isFinite(v)) (series[`${k}_${name}`] ??= []).push([pt.clients, sig(v)]);
    }
  }
  for (const pt of points) {
    const key = `${pt.variant.replace(/-/g, '_')}_${pt.clients}`;
    figures[`${key}_delivered_pct`] = pt.deliveredPct;
    figures[`${key}_p50_ms`] = pt.p50Ms;
    figures[`${key}_p99_ms`] = pt.p99Ms;
    figures[`${key}_us_per_delivery`] = pt.usPerDelivery;
    figures[`${key}_sys_us_per_delivery`] = pt.sysUsPerDelivery;
    figures[`${key}_server_rss_mib`] = pt.serverRssMiB;
    figures[`${key}_loadgen_cpu_pct`] = pt.loadgenCpuPct;
    figures[`${key}_other_cpu_pct`] = pt.otherCpuPct;
    figures[`${key}_bytes_per_client_per_sec`] = pt.bytesPerClientPerSec ?? NaN;
    if (pt.variant === 'ours') {
      const b = base.find((x) => x.clients === pt.clients);
      if (b) baseline[`${key}_us_per_delivery`] = b.usPerDelivery;
    }
  }

  notes.push(`fd hard limit ${Number.isFinite(limit) ? limit : 'unlimited'} (Node raises its soft limit to it; server and generator are separate processes, each needs one fd per client)`);
  const busiest = Math.max(...points.map((x) => x.otherCpuPct).filter(Number.isFinite));
  if (busiest > 20) notes.push(`other processes used up to ${f1(busiest)}% of a core during the windows (column "other cpu %"): this machine was shared, so capacity figures understate the server`);
  const impls = [...new Set(ours.map((o) => o.impl))];
  notes.push(`ours ran as: ${impls.join(', ')}${impls.includes('uws-standin') ? ' (why the stand-in: see the next note)' : ''}`);
  if (impls.includes('service')) {
    notes.push('service: fed 3 ingest events per tick (metrics, board heatmap, policy) into its main-thread ingest ring; latency runs from the aggregator\'s stamp (window close) to the client, so it covers ring hop, gateway publish and TCP, not the wait of up to one window before aggregation');
  }
  for (const n of new Set(points.map((x) => x.note).filter(Boolean))) notes.push(String(n));
  if (ctx.templateNote) notes.push(ctx.templateNote);
  const mix = (xs: Point[]) => {
    const last = xs.filter((x) => x.delivered > 0).at(-1);
    return last ? `${Object.entries(last.perClientTick).map(([t, r]) => `${t} ${r.toFixed(3)}`).join(', ')} per client per tick at ${last.clients}` : 'nothing delivered';
  };
  notes.push(`delivery mix: ours ${mix(ours)}; baseline ${mix(base)} (expected ${MESSAGES_PER_TICK} per tick in all)`);
  for (const pt of points) {
    if (pt.otherPerClientTick > 0) notes.push(`${pt.variant} ${pt.clients}: ${pt.otherPerClientTick.toFixed(3)} messages of other types per client per tick, not counted (${Object.keys(pt.otherTypes).join(', ')})`);
  }
  const saturated = points.filter((x) => x.generatorSaturated);
  notes.push(saturated.length
    ? `load generator near saturation (ELU ≥ ${GENERATOR_SATURATED_ELU} or CPU ≥ ${GENERATOR_SATURATED_ELU * 100}% of its ${p.loadgenThreads} threads) at: ${saturated.map((x) => `${x.variant} ${x.clients}`).join(', ')}; those points may understate the server`
    : `load generator never near saturation (max ELU ${f2(Math.max(...points.map((x) => x.loadgenEluMax).filter(Number.isFinite)))})`);
  for (const pt of points) {
    if (pt.connectFailed > 0 || pt.errors.length) notes.push(`${pt.variant} ${pt.clients}: ${pt.connectFailed} clients failed to connect/subscribe${pt.errors.length ? `: ${pt.errors.join('; ')}` : ''}`);
    if (pt.unstamped > pt.delivered * 0.001) notes.push(`${pt.variant} ${pt.clients}: ${pt.unstamped} deliveries had their stamp split across TCP reads and were counted by receipt time instead`);
    if (pt.closes > 0) notes.push(`${pt.variant} ${pt.clients}: ${pt.closes} connections closed during the window`);
    if (pt.snapshotLateMs > TICK_MS / 2 - 10) notes.push(`${pt.variant} ${pt.clients}: a load-generator thread took its window snapshot ${f1(pt.snapshotLateMs)} ms late (it was starved or saturated); its latency samples and "recv %" cover a shifted window`);
    if (pt.impl === 'service' && pt.ticksMissed === 0 && pt.deliveredPct < HOLD_DELIVERED_PCT && pt.deliveredOfPublishedPct >= HOLD_DELIVERED_PCT) {
      notes.push(`${pt.variant} ${pt.clients}: the shortfall is upstream of the gateways: the feed kept 10 Hz, but the probe client saw ${f2(pt.publishedPerTick)} messages per tick (not ${MESSAGES_PER_TICK}), ` +
        `so the aggregator merged ticks (windows longer than 100 ms); the clients got ${f1(pt.deliveredOfPublishedPct)}% of what was published`);
    }
    if (pt.ticksMissed > 0) notes.push(`${pt.variant} ${pt.clients}: the server's event loop was too late for ${pt.ticksMissed} tick slots, so those updates were never produced (10 Hz not kept)`);
  }
  notes.push(
    `each point: ${p.warmupMs} ms warm-up, ${p.measureMs} ms window; latency = client receipt − server stamp on 1 in 32 messages per client; ` +
      `server in a child process (CPU = its process.cpuUsage, all threads; --fanout-threads ${FANOUT_THREADS}), ${p.loadgenThreads} load-generator threads on the same machine`,
  );
  notes.push(`the service runs with --hang-timeout-ms ${process.env.RINGCAST_BENCH_FANOUT_HANG_TIMEOUT_MS ?? '30000'} (RINGCAST_BENCH_FANOUT_HANG_TIMEOUT_MS): at the default 3000 a gateway starved by a loaded machine is killed mid-point`);
  notes.push(`variants: ours = the service with full subscriptions (the default); ours-delta = the same with "delta": true; ours-deflate / ours-delta-deflate = the service with fanout.compression=shared and clients offering permessage-deflate (bytes counted on the wire; the generator inflates every message). uws-raw and ws-once send the full messages ours sent. Subscriptions: intermediate, ${SUBSCRIBED_CHANNELS.join(', ')}, max_fps 10`);
  notes.push(`servers: ours ${FANOUT_THREADS} gateway threads + aggregator; uws-raw ${FANOUT_THREADS} publishing threads + a main thread that serialises; ws-once and baseline one thread (ws has no multi-thread mode). ${SERVER_CPUS ? `Every server child pinned to CPUs ${SERVER_CPUS} (taskset).` : 'No pinning: every server child may use every core, as may the load generator.'}`);
  notes.push('ratio_vs_ws_serialize_once and ratio_vs_uws_raw = their server CPU µs per delivery / ours at the largest client count where both delivered >= 90 %: > 1 means ours costs less; ratio_vs_uws_raw < 1 is how far ours is from the bare-uWS ceiling');
  for (const k of Object.keys(figures)) figures[k] = sig(figures[k]);
  return { figures, baseline, notes, series };
}
