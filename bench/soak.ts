/**
 * Soak: does the service hold its memory over a long run under a realistic load?
 *
 *   npm run bench -- soak [--minutes N] [--quick]
 *
 * Runs the full service as an operator would (the compiled entry point in its own process:
 * demo trainer, demo HLS streams under capture, the compositor and encoder writing an
 * `--output` file), 200 overlay viewers on /ws in a load-generator process of their own,
 * and a Prometheus-style `/metrics` scrape every second from this process. Each scrape
 * gives every thread's heap (`nodejs_heap_size_used_bytes{actor}`) and the process RSS;
 * the table printed every minute and the figures are:
 *
 *   rss_slope_mb_per_h    growth of the process RSS (all threads share one RSS), MB/hour
 *   heap_slope_mb_per_h   the worst thread's heap growth, MB/hour
 *   heap_slope_mb_per_h_<actor>  each thread's
 *
 * Slopes are measured after warm-up (the first quarter of the run, at least 30 s) as the rise
 * of the floor (lowest value) from the first half to the second: heap is a saw-tooth between
 * collections, and its floor is what grows when something leaks. The viewers' and the service's CPU are reported
 * so a reader can see whether the load generator kept up. Default 30 minutes (--quick: 2).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sig, table } from './lib/stats.js';
import type { BenchOptions, BenchResult } from './lib/types.js';
import type { ViewersReport } from './soak/viewers.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // <root>/dist/bench
const mainJs = path.resolve(here, '..', 'src', 'main.js');
const VIEWERS_JS = path.join(here, 'soak', 'viewers.js');
const VIEWERS = 200;
const SCRAPE_MS = 1_000;
const BUCKET_MS = 15_000;
const MB = 1024 * 1024;
const ADMIN_TOKEN = 'soak-admin-token';
const INGEST_TOKEN = 'soak-ingest-token';

interface Sample { t: number; rss: number; heap: Record<string, number>; cpuSeconds: number; capturesOk: number; scrapeMs: number }

/** Values of one metric by its `actor` label, from a Prometheus text exposition. */
export function byActor(exposition: string, metric: string): Record<string, number> {
  const out: Record<string, number> = {};
  const re = new RegExp(`^${metric}\\{[^}]*actor="([^"]+)"[^}]*\\} ([0-9.eE+-]+)$`, 'gm');
  for (const m of exposition.matchAll(re)) out[m[1]] = Number(m[2]);
  return out;
}

function sumOf(exposition: string, metric: string, labelFilter: string): number {
  let total = 0;
  const re = new RegExp(`^${metric}\\{([^}]*)\\} ([0-9.eE+-]+)$`, 'gm');
  for (const m of exposition.matchAll(re)) if (m[1].includes(labelFilter)) total += Number(m[2]);
  return total;
}

/**
 * Growth of the floor, in units per hour: the lowest value in the second half of the steady
 * samples minus the lowest in the first half, over the time between the halves' centres. Heap
 * is a saw-tooth whose major collections can be many minutes apart; its floor only rises
 * between the halves when something is kept. A least-squares fit (also reported) reads the
 * climb between two major collections as growth when the run spans only one or two of them.
 */
export function floorSlopePerHour(points: Array<[number, number]>): number {
  if (points.length < 4) return NaN;
  const mid = Math.floor(points.length / 2);
  const floor = (xs: Array<[number, number]>) => Math.min(...xs.map((p) => p[1]));
  const span = (points[points.length - 1][0] - points[0][0]) / 2;
  return span > 0 ? ((floor(points.slice(mid)) - floor(points.slice(0, mid))) / span) * 3_600_000 : NaN;
}

/** Least-squares slope of the per-bucket minima, in units per hour. */
export function fittedSlopePerHour(points: Array<[number, number]>, bucketMs = BUCKET_MS): number {
  const buckets = new Map<number, [number, number]>();
  for (const [t, v] of points) {
    const b = Math.floor(t / bucketMs);
    const cur = buckets.get(b);
    if (!cur || v < cur[1]) buckets.set(b, [t, v]);
  }
  const xs = [...buckets.values()];
  if (xs.length < 2) return NaN;
  const n = xs.length;
  const mt = xs.reduce((acc, p) => acc + p[0], 0) / n;
  const mv = xs.reduce((acc, p) => acc + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [t, v] of xs) { num += (t - mt) * (v - mv); den += (t - mt) ** 2; }
  return den === 0 ? NaN : (num / den) * 3_600_000;
}

function startService(dataDir: string): Promise<{ child: ChildProcess; port: number; log: string[] }> {
  const output = path.join(dataDir, 'soak.mp4');
  const child = spawn(process.execPath, [
    mainJs, '--port', '0', '--ingest-tcp-port', '0', '--data-dir', dataDir, '--output', output,
    '--admin-token', ADMIN_TOKEN, '--ingest-token', INGEST_TOKEN, '--log-level', 'info',
  ], { env: { ...process.env, NOTIFY_SOCKET: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  // Keep only the last lines: the soak must not grow its own memory with the service's log.
  const log: string[] = [];
  const keep = (d: Buffer) => { for (const line of String(d).split('\n')) if (line) { log.push(line); if (log.length > 200) log.shift(); } };
  child.stderr!.on('data', keep);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`service did not listen within 60 s:\n${log.join('\n')}`)), 60_000);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`service exited ${code} before listening:\n${log.join('\n')}`)); });
    child.stdout!.on('data', (d: Buffer) => {
      keep(d);
      const m = /"port":(\d+)[^\n]*ringcast listening/.exec(String(d));
      if (m) { clearTimeout(timer); child.removeAllListeners('exit'); resolve({ child, port: Number(m[1]), log }); }
    });
  });
}

function startViewers(port: number): ChildProcess {
  return fork(VIEWERS_JS, [String(port), String(VIEWERS)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function askViewers(viewers: ChildProcess): Promise<ViewersReport> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('viewer process did not report within 5 s')), 5_000);
    viewers.once('message', (msg: ViewersReport) => { clearTimeout(timer); resolve(msg); });
    viewers.send({ type: 'report' });
  });
}

function minutesOf(opts: BenchOptions): number {
  const minutes = opts.minutes ?? (opts.quick ? 2 : 30);
  if (!Number.isFinite(minutes) || minutes < 1 || minutes > 24 * 60) throw new Error(`--minutes must be between 1 and 1440, got ${minutes}`);
  return minutes;
}

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const minutes = minutesOf(opts);
  const durationMs = minutes * 60_000;
  const warmupMs = Math.max(30_000, durationMs / 4);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ringcast-soak-'));
  const { child: service, port, log } = await startService(dataDir);
  const serviceExit = new Promise<number | null>((resolve) => service.once('exit', (code) => resolve(code)));
  const viewers = startViewers(port);
  const samples: Sample[] = [];
  const started = Date.now();
  let scrapeErrors = 0;
  let lastPrint = started;
  console.error(`soak: ${minutes} min, ${VIEWERS} viewers, /metrics every ${SCRAPE_MS} ms, service on :${port} (data ${dataDir})`);
  try {
    while (Date.now() - started < durationMs) {
      if (service.exitCode !== null) throw new Error(`service exited ${service.exitCode} during the soak:\n${log.join('\n')}`);
      const t0 = performance.now();
      try {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
        const rss = byActor(text, 'process_resident_memory_bytes').supervisor;
        const cpu = byActor(text, 'process_cpu_seconds_total');
        samples.push({
          t: Date.now() - started, rss, heap: byActor(text, 'nodejs_heap_size_used_bytes'),
          cpuSeconds: Object.values(cpu).reduce((a, b) => a + b, 0) / Math.max(1, Object.keys(cpu).length),
          capturesOk: sumOf(text, 'ringcast_capture_captures_total', 'status="ok"'),
          scrapeMs: performance.now() - t0,
        });
      } catch {
        scrapeErrors++;
      }
      if (Date.now() - lastPrint >= 60_000 && samples.length) {
        lastPrint = Date.now();
        const s = samples[samples.length - 1];
        console.error(`soak: ${(s.t / 60_000).toFixed(1)} min  rss ${(s.rss / MB).toFixed(0)} MB  ` +
          Object.entries(s.heap).map(([a, v]) => `${a} ${(v / MB).toFixed(1)}`).join('  '));
      }
      await new Promise((r) => setTimeout(r, Math.max(0, SCRAPE_MS - (performance.now() - t0))));
    }
    const load = await askViewers(viewers);
    const steady = samples.filter((s) => s.t >= warmupMs);
    if (steady.length < 10) throw new Error(`only ${steady.length} scrapes after warm-up (${scrapeErrors} failed)`);
    const actors = Object.keys(steady[steady.length - 1].heap);
    const heapSlopes: Record<string, number> = {};
    const heapFits: Record<string, number> = {};
    for (const a of actors) {
      const points = steady.filter((s) => a in s.heap).map((s): [number, number] => [s.t, s.heap[a] / MB]);
      heapSlopes[a] = floorSlopePerHour(points);
      heapFits[a] = fittedSlopePerHour(points);
    }
    const rssPoints = steady.map((s): [number, number] => [s.t, s.rss / MB]);
    const rssSlope = floorSlopePerHour(rssPoints);
    const worst = actors.reduce((w, a) => (heapSlopes[a] > heapSlopes[w] ? a : w), actors[0]);
    const first = samples[0];
    const last = samples[samples.length - 1];
    const elapsedS = (last.t - first.t) / 1000;
    const serviceCpuPct = ((last.cpuSeconds - first.cpuSeconds) / elapsedS) * 100;
    const viewersCpuPct = (load.cpuUs / 1e6 / ((Date.now() - started) / 1000)) * 100;
    const scrapeP99 = [...samples.map((s) => s.scrapeMs)].sort((a, b) => a - b)[Math.min(samples.length - 1, Math.ceil(samples.length * 0.99) - 1)];

    const rows = [['thread', 'heap at warm-up MB', 'heap at end MB', 'floor slope MB/h']];
    const atWarm = steady[0];
    for (const a of actors) rows.push([a, (atWarm.heap[a] / MB).toFixed(1), (last.heap[a] / MB).toFixed(1), sig(heapSlopes[a], 3).toString()]);
    rows.push(['process RSS', (atWarm.rss / MB).toFixed(0), (last.rss / MB).toFixed(0), sig(rssSlope, 3).toString()]);
    console.error(table(rows));

    const figures: Record<string, number> = {
      minutes,
      rss_slope_mb_per_h: rssSlope,
      heap_slope_mb_per_h: heapSlopes[worst],
      rss_end_mb: last.rss / MB,
      viewers_open_at_end: load.open,
      viewer_reconnects: load.reconnects,
      viewer_messages_per_s: load.messages / ((Date.now() - started) / 1000),
      captures_ok: last.capturesOk,
      scrapes: samples.length,
      scrape_errors: scrapeErrors,
      scrape_p99_ms: scrapeP99,
      service_cpu_pct_of_one_core: serviceCpuPct,
      loadgen_cpu_pct_of_one_core: viewersCpuPct,
    };
    figures.rss_fit_slope_mb_per_h = fittedSlopePerHour(rssPoints);
    for (const a of actors) figures[`heap_slope_mb_per_h_${a}`] = heapSlopes[a];
    for (const a of actors) figures[`heap_fit_slope_mb_per_h_${a}`] = heapFits[a];
    // Memory over time for the capacity report: one point per 10 s.
    const series: Record<string, Array<[number, number]>> = { rss_mb: [] };
    for (const a of actors) series[`heap_mb_${a}`] = [];
    for (const s of samples.filter((_, i) => i % 10 === 0)) {
      series.rss_mb.push([Math.round(s.t / 1000), sig(s.rss / MB, 4)]);
      for (const a of actors) if (a in s.heap) series[`heap_mb_${a}`].push([Math.round(s.t / 1000), sig(s.heap[a] / MB, 4)]);
    }
    return {
      figures,
      series,
      notes: [
        `${minutes} min soak: demo trainer, 3 demo HLS streams captured, encoder writing an --output file, ${VIEWERS} /ws viewers (own process), /metrics every ${SCRAPE_MS / 1000} s`,
        `after ${Math.round(warmupMs / 1000)} s of warm-up: slope = rise of the floor (lowest value) from the first half to the second; *_fit_* = least squares over the floor of each ${BUCKET_MS / 1000} s bucket; worst heap: ${worst}`,
        `the process RSS is shared by every thread; heap is per thread`,
      ],
    };
  } finally {
    viewers.send({ type: 'stop' });
    if (service.exitCode === null) service.kill('SIGTERM');
    const code = await Promise.race([serviceExit, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 15_000))]);
    if (code === 'timeout') service.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
}
