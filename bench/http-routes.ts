/**
 * Main-thread cost of each HTTP route: the whole service runs in this process (so this
 * thread is the service's main thread, the one that also runs the supervisor, the upcalls
 * and the systemd watchdog), and a separate process requests one route at a time from 8
 * concurrent loops. Per route:
 *
 *   <route>_rps                 requests answered per second
 *   <route>_main_ms_per_req     main-thread busy time (event-loop utilisation) per request
 *   <route>_loop_p99_ms / _max  main-thread event-loop delay while it ran
 *
 * Routes that cost the main thread much per request are either moved off it (previews) or
 * need a limit. The demo trainer runs (so /api/state has real content); capture is off.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import pino from 'pino';
import { loadConfig } from '../src/shared/config.js';
import { startService } from '../src/service.js';
import { sig } from './lib/stats.js';
import type { BenchOptions, BenchResult } from './lib/types.js';

const ROUTES: Array<[string, string]> = [
  ['healthz', '/healthz'],
  ['metrics', '/metrics'],
  ['state', '/api/state'],
  ['runs', '/api/runs'],
  ['streams', '/api/streams'],
  ['scene', '/api/scene'],
  ['snapshot', '/api/snapshot'],
  ['overlay_missing', '/overlay/nope'],
  ['preview_1920', '/api/scene/preview.png?width=1920'],
];
const CONCURRENCY = 8;

/** Runs `CONCURRENCY` request loops against `url` for `ms` in a child process; resolves with the count. */
function load(url: string, ms: number): Promise<number> {
  const script = `const url = ${JSON.stringify(url)}; let n = 0; const end = Date.now() + ${ms};
    Promise.all(Array.from({ length: ${CONCURRENCY} }, async () => { while (Date.now() < end) { const r = await fetch(url); await r.arrayBuffer(); n++; } })).then(() => console.log(n));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => { out += String(d); });
  return new Promise((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`load generator exited ${code}`)))));
}

export async function run({ quick }: BenchOptions): Promise<BenchResult> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'ringcast-bench-http-'));
  const config = loadConfig([
    '--port', '0', '--data-dir', dataDir, '--ingest-tcp-port', '0', '--fanout-threads', '2', '--log-level', 'error', '--no-capture',
    '--ingest-token', 'bench-ingest-token', '--admin-token', 'bench-admin-token',
    // Measure the cost itself, not the per-client limits.
    '--rate-limit-per-min', '1000000', '--rate-limit-burst', '1000000', '--preview-queue', '64',
  ], {});
  const service = await startService(config, pino({ level: 'error' }));
  const figures: Record<string, number> = {};
  const ms = quick ? 1500 : 5000;
  try {
    await new Promise((r) => setTimeout(r, 2000)); // demo data to report on
    for (const [name, route] of ROUTES) {
      const delay = monitorEventLoopDelay({ resolution: 5 });
      delay.enable();
      const elu0 = performance.eventLoopUtilization();
      const t0 = performance.now();
      const n = await load(`http://127.0.0.1:${service.port}${route}`, ms);
      const elu = performance.eventLoopUtilization(elu0);
      delay.disable();
      const seconds = (performance.now() - t0) / 1000;
      figures[`${name}_rps`] = sig(n / seconds);
      figures[`${name}_main_ms_per_req`] = sig(elu.active / Math.max(1, n));
      figures[`${name}_loop_p99_ms`] = sig(delay.percentile(99) / 1e6);
      figures[`${name}_loop_max_ms`] = sig(delay.max / 1e6);
      process.stderr.write(`  ${route}: ${figures[`${name}_rps`]} req/s, main ${figures[`${name}_main_ms_per_req`]} ms/req, loop p99 ${figures[`${name}_loop_p99_ms`]} ms\n`);
    }
  } finally {
    await service.stop('bench done');
    rmSync(dataDir, { recursive: true, force: true });
  }
  return {
    figures,
    notes: [`${CONCURRENCY} concurrent request loops per route for ${ms} ms from a separate process; the service runs in the bench process (its main thread measured).`],
  };
}
