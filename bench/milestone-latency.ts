/**
 * Milestone latency benchmark: Python client emit → `/ws` receipt, through the real service
 * on this machine. `node dist/bench/run.js milestone-latency [--quick]`.
 *
 * The service runs in this process (startService, demo off, two gateway threads); the load
 * generator is the stdlib Python client in its own process (bench/python/milestone_emitter.py,
 * default client settings, so ordinary events linger 50 ms), emitting one PPO metrics event
 * and one milestone every INTERVAL_MS. A `/ws` client in this process subscribed to the
 * milestones channel notes each milestone's arrival. Latency = arrival − emit, both read
 * from the wall clock (CLOCK_REALTIME) of the same machine. Once per ingest transport:
 *
 *   <tcp|ws>_p50_ms / _p99_ms / _max_ms   milestone end to end
 *   <tcp|ws>_n                            milestones received (of <tcp|ws>_emitted)
 *   <tcp|ws>_over_20ms_pct                share of milestones slower than 20 ms
 *   <tcp|ws>_to_aggregator_p50/p99_ms     emit → the aggregator writing the message (its `timestamp`,
 *                                         whole ms): client, transport, ingest, ring
 *   <tcp|ws>_aggregator_to_ws_p50/p99_ms  that → receipt: fan-out ring, gateway, /ws
 *   p99_ms                                the worse transport's p99 (the bar: < 20 ms)
 *   n                                     milestones measured in all
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { loadConfig } from '../src/shared/config.js';
import { createLogger } from '../src/shared/logger.js';
import { startService } from '../src/service.js';
import { percentile } from './lib/stats.js';
import type { BenchOptions, BenchResult } from './lib/types.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // <root>/dist/bench
const projectRoot = path.resolve(here, '..', '..');
const EMITTER = path.join(projectRoot, 'bench', 'python', 'milestone_emitter.py');
const TOKEN = 'bench-milestone-token';
const INTERVAL_MS = 20;
const P99_BAR_MS = 20;

const nowMs = () => performance.timeOrigin + performance.now();
const log = (s: string) => process.stderr.write(`  ${s}\n`);

/** Runs the emitter against `url`; resolves with emit times by step once it is done. */
function emitter(url: string, run: string, count: number): { ready: Promise<void>; go: () => void; done: Promise<{ emitted: Record<string, number>; stats: Record<string, unknown> }> } {
  const child = spawn('python3', [EMITTER, url, TOKEN, run, String(count), String(INTERVAL_MS)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: child.stdout }).on('line', (l) => { lines.push(l); waiters.splice(0).forEach((w) => w()); });
  const nextLine = (i: number) => new Promise<string>((resolve, reject) => {
    const check = () => { if (lines.length > i) resolve(lines[i]); else waiters.push(check); };
    child.once('exit', (code) => { if (lines.length <= i) reject(new Error(`milestone emitter exited ${code}: ${stderr}`)); });
    check();
  });
  return {
    ready: nextLine(0).then((l) => { if (l !== 'ready') throw new Error(`milestone emitter: expected "ready", got ${l}`); }),
    go: () => child.stdin.write('go\n'),
    done: nextLine(1).then((l) => JSON.parse(l) as { emitted: Record<string, number>; stats: Record<string, unknown> }),
  };
}

interface Measured { latencies: number[]; toAggregator: number[]; aggregatorToWs: number[]; emitted: number; stats: Record<string, unknown> }

async function measure(port: number, transport: 'tcp' | 'ws', url: string, count: number): Promise<Measured> {
  const run = `bench-milestone-${transport}`;
  const arrivals = new Map<number, { at: number; written: number }>();
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  ws.on('message', (data) => {
    const at = nowMs();
    const m = JSON.parse(String(data)) as { type: string; timestamp: number; data?: { run?: string; step?: number } };
    if (m.type === 'milestone' && m.data?.run === run && typeof m.data.step === 'number' && !arrivals.has(m.data.step)) arrivals.set(m.data.step, { at, written: m.timestamp });
  });
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  ws.send(JSON.stringify({ channels: ['milestones'], level: 'advanced', max_fps: 60 }));
  const py = emitter(url, run, count);
  await py.ready;
  await new Promise((r) => setTimeout(r, 300)); // subscription settled
  py.go();
  const { emitted, stats } = await py.done;
  await new Promise((r) => setTimeout(r, 500)); // the last ones in flight
  ws.terminate();
  const latencies: number[] = [];
  const toAggregator: number[] = [];
  const aggregatorToWs: number[] = [];
  for (const [step, { at, written }] of arrivals) {
    const sent = emitted[String(step)];
    if (sent === undefined) continue;
    latencies.push(at - sent);
    toAggregator.push(written - sent);
    aggregatorToWs.push(at - written);
  }
  return { latencies, toAggregator, aggregatorToWs, emitted: Object.keys(emitted).length, stats };
}

export async function run({ quick }: BenchOptions): Promise<BenchResult> {
  const count = quick ? 300 : 1500;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ringcast-bench-milestone-'));
  const config = loadConfig(['--no-demo', '--port', '0', '--fanout-threads', '2', '--log-level', 'warn', '--ingest-tcp-port', '0',
    '--ingest-unix-path=', '--data-dir', dataDir, '--ingest-token', TOKEN], {});
  const service = await startService(config, createLogger(config.logLevel));
  const figures: Record<string, number> = {};
  const notes: string[] = [];
  try {
    const { tcpPort } = (await service.supervisor.call('ingest', 'address')) as { tcpPort: number };
    const urls = { tcp: `tcp://127.0.0.1:${tcpPort}`, ws: `ws://127.0.0.1:${service.port}/ingest` } as const;
    let worst = 0;
    let n = 0;
    for (const transport of ['tcp', 'ws'] as const) {
      log(`${transport}: ${count} milestones, one every ${INTERVAL_MS} ms, with a metrics event beside each`);
      const r = await measure(service.port, transport, urls[transport], count);
      const p99 = percentile(r.latencies, 99);
      figures[`${transport}_p50_ms`] = percentile(r.latencies, 50);
      figures[`${transport}_p99_ms`] = p99;
      figures[`${transport}_max_ms`] = percentile(r.latencies, 100);
      figures[`${transport}_n`] = r.latencies.length;
      figures[`${transport}_emitted`] = r.emitted;
      figures[`${transport}_over_20ms_pct`] = (100 * r.latencies.filter((x) => x > 20).length) / Math.max(1, r.latencies.length);
      figures[`${transport}_to_aggregator_p50_ms`] = percentile(r.toAggregator, 50);
      figures[`${transport}_to_aggregator_p99_ms`] = percentile(r.toAggregator, 99);
      figures[`${transport}_aggregator_to_ws_p50_ms`] = percentile(r.aggregatorToWs, 50);
      figures[`${transport}_aggregator_to_ws_p99_ms`] = percentile(r.aggregatorToWs, 99);
      worst = Math.max(worst, p99);
      n += r.latencies.length;
      notes.push(`${transport}: client stats sent=${String(r.stats.sent)} delivered=${String(r.stats.delivered)} lost=${String(r.stats.lost)} resent=${String(r.stats.resent)}`);
    }
    figures.p99_ms = worst;
    figures.n = n;
    notes.push(`bar: p99 < ${P99_BAR_MS} ms: ${worst < P99_BAR_MS ? 'met' : 'NOT met'}`);
    notes.push(`load average at the end: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} on ${os.cpus().length} cpus`);
  } finally {
    await service.stop('bench done');
    rmSync(dataDir, { recursive: true, force: true });
  }
  return { figures, notes };
}
