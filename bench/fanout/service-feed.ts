/**
 * "Ours" as the real ringcast service: startService() with the demo off and the gateways
 * on 2 threads, fed through its real pipeline. Every tick this process writes one
 * metrics, one board-heatmap and one policy ingest event into the `ingest.demo` ring,
 * exactly where the demo trainer would, so the aggregator windows, serialises and
 * writes to the gateways' fan-out rings, and the gateways publish to the clients.
 *
 * Returns a reason instead of a server while the service does not yet run an
 * aggregator and gateways (the caller then falls back to the uWS stand-in and says so).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../../src/shared/config.js';
import { createLogger } from '../../src/shared/logger.js';
import type { RecordRing } from '../../src/shared/record-ring.js';
import { writeIngestRecord } from '../../src/shared/telemetry/ring-records.js';
import { startService, type Service } from '../../src/service.js';
import type { FanoutServer } from './server-types.js';
import { ingestEvents, tickData } from './payloads.js';
import { exitProcess, STUCK_EXIT_WAIT_MS } from '../../src/supervisor/process-exit.js';

/**
 * Rings this process may write as the single producer: `ingest.demo` exists only with the
 * demo on (and then the demo trainer owns it); `ingest.main` is the main thread's own
 * ring (admin injections), and this code runs on that same main thread.
 */
export const INGEST_RINGS = ['ingest.demo', 'ingest.main'] as const;
const PRODUCER_ID = 0xbe4c;
/**
 * The service's hang detector, raised: on a shared 2-core machine a gateway thread can go
 * unscheduled for over the default 3 s while thousands of clients connect, and a killed
 * gateway ends the point. The figures then show the stall (late deliveries) instead.
 * RINGCAST_BENCH_FANOUT_HANG_TIMEOUT_MS overrides (3000 = the service's default).
 */
const BENCH_HANG_TIMEOUT_MS = (() => {
  const text = process.env.RINGCAST_BENCH_FANOUT_HANG_TIMEOUT_MS ?? '30000';
  const n = Number(text);
  if (!Number.isInteger(n) || n < 50 || n > 600_000) throw new Error(`RINGCAST_BENCH_FANOUT_HANG_TIMEOUT_MS=${JSON.stringify(text)}: expected an integer 50–600000`);
  return n;
})();
const RUN = 'bench-fanout';

export async function startRealService(host: string, port: number, fanoutThreads: number, compression: 'off' | 'shared' = 'off'): Promise<FanoutServer | { unavailable: string }> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ringcast-bench-fanout-'));
  const cleanup = () => rmSync(dataDir, { recursive: true, force: true });
  const argv = ['--no-demo', '--host', host, '--port', String(port), '--fanout-threads', String(fanoutThreads),
    '--log-level', 'warn', '--fanout-compression', compression, '--hang-timeout-ms', String(BENCH_HANG_TIMEOUT_MS), '--ingest-tcp-port=-1', '--ingest-unix-path=', '--data-dir', dataDir];
  let config: Config;
  let service: Service;
  try {
    // An empty environment: RINGCAST_* variables of the calling shell must not change what is measured.
    config = loadConfig(argv, {});
    service = await startService(config, createLogger(config.logLevel));
  } catch (error) {
    cleanup();
    throw error;
  }
  const actors = service.supervisor.actorNames();
  let ring: RecordRing | undefined;
  let ringName = '';
  let why: string | undefined;
  if (!actors.includes('aggregator') || !actors.some((a) => a.startsWith('gateway-'))) {
    why = `the service runs [${actors.join(', ')}] with --no-demo: no aggregator and gateway actors yet`;
  } else {
    for (const name of INGEST_RINGS) {
      try { ring = service.supervisor.ring<RecordRing>(name); ringName = name; break; } catch { /* try the next */ }
    }
    if (!ring) why = `the service has none of the rings ${INGEST_RINGS.join(', ')} to feed`;
  }
  if (!ring || why) {
    await service.stop('bench: falling back to the stand-in');
    cleanup();
    return { unavailable: why ?? 'unknown' };
  }
  const ingest = ring;

  let refused = 0;
  const feed = (tick: number, stamp: number) => {
    for (const event of ingestEvents(tickData(tick), stamp)) {
      if (!writeIngestRecord(ingest, stamp, PRODUCER_ID, RUN, event, 0, event.byteLength, false)) refused++;
    }
    ingest.flush();
  };
  // Steady state: the aggregator keeps seriesPoints values per metric and a ppo_metrics
  // message grows until they are full. Fill them now, before any client connects, so every
  // point measures full-size messages rather than a service a few seconds old.
  const prefill = config.aggregate.seriesPoints;
  for (let t = 0; t < prefill; t++) feed(t, Date.now());
  return {
    impl: 'service',
    port,
    get note() { return refused > 0 ? `${refused} ingest records refused by a full ${ringName} ring` : undefined; },
    tick: (tick, stamp) => feed(prefill + tick, stamp),
    // The gateways count their clients in their own threads; -1 = not known here.
    clients: () => -1,
    async stop() {
      await service.stop('bench done');
      cleanup();
      // A gateway thread still blocked under the load would abort this process on exit.
      const stuck = await service.supervisor.stuckExited(STUCK_EXIT_WAIT_MS);
      if (stuck.length > 0) exitProcess(0, stuck);
    },
  };
}
