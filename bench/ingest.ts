/**
 * Ingest benchmark: metric events per second from producer threads over TCP / a Unix
 * socket, through the ingest actor, into the `ingest.net` ring and out to a consumer actor.
 *
 * A Supervisor runs the real ingest actor (src/actors/ingest) and a counting consumer
 * (bench/workers/ingest-counter.ts) on the ring. Producer threads (bench/workers/
 * ingest-producer.ts) write pre-encoded frames of metric events (6 metrics each, the
 * shape of a PPO step) as fast as the socket drains. Figures, each over a `durationMs`
 * window after a warm-up, from the ring's own counters:
 *
 *   events_per_s              TCP, 1 producer: events accepted into the ring per second
 *   tcp_2p_events_per_s       TCP, 2 producers
 *   unix_events_per_s         Unix socket, 1 producer
 *   sdk_events_per_s          TCP, 1 producer using createProducer (per-event encoding included)
 *   *_consumed_per_s          what the consumer read in the same window
 *   *_drops                   events lost in the window (ring full)
 *
 * Baseline (ratio printed by the harness): the same events as newline-delimited JSON over
 * TCP into a worker thread that JSON.parses and checks each (bench/workers/ingest-json-server.ts),
 * same producer count. The bar: events_per_s >= 500k.
 */
import { fork } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Supervisor } from '../src/supervisor/supervisor.js';
import type { RecordRing } from '../src/shared/record-ring.js';
import type { IngestAddress, IngestOptions } from '../src/actors/ingest/index.js';
import { encodeMetrics } from '../src/shared/telemetry/event-codec.js';
import { sig } from './lib/stats.js';
import type { BenchOptions, BenchResult } from './lib/types.js';
import type { IngestProducerJob, ProducerReport } from './workers/ingest-producer.js';
import type { IngestCount } from './workers/ingest-counter.js';
import { jsonLine, METRICS } from './workers/ingest-payload.js';

const TOKEN = 'bench-ingest-token';
const EVENTS_PER_FRAME = 256;
const LOADGEN_URL = new URL('./workers/ingest-loadgen.js', import.meta.url);
const JSON_SERVER_URL = new URL('./workers/ingest-json-server.js', import.meta.url);

interface Window { events: number; consumed: number; drops: number; seconds: number; sent: number; emitted: number; queueDropped: number; loadgenCpuPct: number }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (s: string) => process.stderr.write(`  ${s}\n`);

/** Starts the producers in their own process, waits out the warm-up, samples `read()` over the window, stops them. */
async function drive(
  jobs: Omit<IngestProducerJob, 'ctl'>[],
  warmupMs: number,
  durationMs: number,
  read: () => { in: number; out: number; drops: number },
): Promise<Window> {
  const child = fork(LOADGEN_URL, [JSON.stringify(jobs)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = <T>(type: string) => new Promise<T>((resolve, reject) => {
    const onMessage = (m: { type: string; error?: string }) => {
      if (m.type === type) { off(); resolve(m as T); } else if (m.type === 'failed') { off(); reject(new Error(`bench load generator: ${m.error}`)); }
    };
    const onExit = (code: number | null) => { off(); reject(new Error(`bench load generator exited (${code}) before "${type}"`)); };
    const off = () => { child.off('message', onMessage); child.off('exit', onExit); };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
  const cpu = async () => { const r = next<{ us: number }>('cpu'); child.send({ type: 'mark' }); return (await r).us; };
  try {
    await next('ready');
    await sleep(warmupMs);
    const a = read();
    const cpu0 = await cpu();
    const t0 = performance.now();
    await sleep(durationMs);
    const b = read();
    const cpu1 = await cpu();
    const seconds = (performance.now() - t0) / 1000;
    const done = next<{ reports: ProducerReport[] }>('done');
    child.send({ type: 'stop' });
    const { reports } = await done;
    const sum = (k: keyof ProducerReport) => reports.reduce((s, r) => s + r[k], 0);
    return {
      events: (b.in - a.in) / seconds, consumed: (b.out - a.out) / seconds, drops: b.drops - a.drops, seconds,
      sent: sum('sent'), emitted: sum('emitted'), queueDropped: sum('queueDropped'), loadgenCpuPct: ((cpu1 - cpu0) / 1e6 / seconds) * 100,
    };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

async function withIngest<T>(fn: (address: IngestAddress, read: () => { in: number; out: number; drops: number }, supervisor: Supervisor) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ringcast-bench-ingest-'));
  const options: IngestOptions = {
    ring: 'ingest.net', host: '127.0.0.1', tcpPort: 0, unixPath: path.join(dir, 'ingest.sock'),
    token: TOKEN, maxFrameBytes: 16 << 20, maxConnections: 16,
  };
  const supervisor = new Supervisor({
    logLevel: 'warn',
    rings: { 'ingest.net': { kind: 'record', capacityBytes: 16 << 20, policy: 'drop-newest' } },
    actors: [
      { name: 'ingest', module: new URL('../src/actors/ingest/index.js', import.meta.url), out: ['ingest.net'], options },
      { name: 'counter', module: new URL('./workers/ingest-counter.js', import.meta.url), in: ['ingest.net'], options: { ring: 'ingest.net' } },
    ],
  }, pino({ level: 'warn' }));
  await supervisor.start();
  try {
    const ring = supervisor.ring<RecordRing>('ingest.net');
    const read = () => {
      const s = ring.stats();
      return { in: s.recordsIn, out: s.recordsOut, drops: s.drops['drop-newest'] ?? 0 };
    };
    const address = (await supervisor.call('ingest', 'address')) as IngestAddress;
    return await fn(address, read, supervisor);
  } finally {
    await supervisor.stop(5_000);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function jsonBaseline(producers: number, warmupMs: number, durationMs: number): Promise<Window & { rejected: number }> {
  const counterSab = new SharedArrayBuffer(16);
  const counter = new Float64Array(counterSab);
  const server = new Worker(JSON_SERVER_URL, { workerData: { counter: counterSab } });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      server.once('message', (m: { port: number }) => resolve(m.port));
      server.once('error', reject);
    });
    const jobs = Array.from({ length: producers }, () => ({ mode: 'json' as const, target: { host: '127.0.0.1', port }, token: TOKEN, eventsPerFrame: EVENTS_PER_FRAME }));
    const w = await drive(jobs, warmupMs, durationMs, () => ({ in: counter[0], out: counter[0], drops: 0 }));
    return { ...w, rejected: counter[1] };
  } finally {
    await server.terminate();
  }
}

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const warmupMs = opts.quick ? 500 : 1000;
  const durationMs = opts.quick ? 2000 : 5000;
  const figures: Record<string, number> = {};
  const baseline: Record<string, number> = {};
  const notes: string[] = [];

  await withIngest(async (address, read, supervisor) => {
    const tcp = { host: '127.0.0.1', port: address.tcpPort };
    const runs: Array<[string, Omit<IngestProducerJob, 'ctl'>[]]> = [
      ['tcp', [{ mode: 'binary', target: tcp, token: TOKEN, eventsPerFrame: EVENTS_PER_FRAME }]],
      ['tcp_2p', [0, 1].map(() => ({ mode: 'binary' as const, target: tcp, token: TOKEN, eventsPerFrame: EVENTS_PER_FRAME }))],
      ['unix', [{ mode: 'binary', target: { path: address.unixPath }, token: TOKEN, eventsPerFrame: EVENTS_PER_FRAME }]],
      ['sdk', [{ mode: 'sdk', target: tcp, token: TOKEN, eventsPerFrame: EVENTS_PER_FRAME }]],
    ];
    for (const [name, jobs] of runs) {
      const w = await drive(jobs, warmupMs, durationMs, read);
      const key = name === 'tcp' ? 'events_per_s' : `${name}_events_per_s`;
      figures[key] = w.events;
      figures[`${name}_consumed_per_s`] = w.consumed;
      figures[`${name}_loadgen_cpu_pct`] = w.loadgenCpuPct;
      // The SDK drops in its own bounded queue before anything reaches the socket: those count too.
      figures[`${name}_drops`] = w.drops + w.queueDropped;
      if (name === 'sdk') {
        figures.sdk_queue_drops = w.queueDropped;
        figures.sdk_emitted = w.emitted;
        figures.sdk_queue_drop_pct = w.emitted > 0 ? (w.queueDropped / w.emitted) * 100 : 0;
      }
      log(`${name}: ${sig(w.events / 1e3, 4)} k events/s into the ring, ${sig(w.consumed / 1e3, 4)} k/s consumed, ${w.drops} dropped (ring full)${name === 'sdk' ? `, ${w.queueDropped} of ${w.emitted} emitted dropped in the SDK's queue` : ''}`);
      // Let the consumer finish the backlog so the next run starts from an empty ring.
      for (let i = 0; i < 200 && read().in !== read().out; i++) await sleep(10);
    }
    const count = (await supervisor.call('counter', 'count')) as IngestCount;
    if (count.badHeaders > 0) throw new Error(`bench ingest: the consumer saw ${count.badHeaders} records without a whole event`);
    notes.push(`consumer read ${count.records} records in all, ${count.badHeaders} malformed`);
  });

  const json = await jsonBaseline(1, warmupMs, durationMs);
  if (json.rejected > 0) throw new Error(`bench ingest: the JSON baseline rejected ${json.rejected} lines`);
  log(`json baseline: ${sig(json.events / 1e3, 4)} k events/s parsed`);
  figures.json_events_per_s = json.events;
  figures.json_loadgen_cpu_pct = json.loadgenCpuPct;
  baseline.events_per_s = json.events;

  notes.push(`${EVENTS_PER_FRAME} events per frame, 6 metrics per event (${encodeMetrics(1, METRICS(1)).byteLength} bytes binary, ~${jsonLine(1).length} bytes JSON); window ${durationMs} ms after ${warmupMs} ms warm-up`);
  notes.push('sdk_drops = ring drops in the window + events the SDK\'s own queue dropped over the whole run (warm-up included; sdk_queue_drops, sdk_queue_drop_pct of sdk_emitted): an SDK that keeps its rate by dropping does not count as delivering it');
  notes.push('producers run in a load-generator process of their own (bench/workers/ingest-loadgen.ts); *_loadgen_cpu_pct is its CPU over the window, % of one core');
  notes.push('events_per_s: TCP, 1 producer thread; baseline: the same events as NDJSON over TCP, JSON.parse per line on a worker thread');
  notes.push(`bar: events_per_s >= 500000 (${figures.events_per_s >= 500_000 ? 'met' : 'NOT met'})`);
  return { figures, baseline, notes };
}

