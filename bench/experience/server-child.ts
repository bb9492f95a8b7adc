/**
 * The server under test in its own process (so cpuUsage covers the server and nothing else).
 *
 *   node dist/bench/experience/server-child.js <ours|baseline> <port>
 *
 * ours: the real service (2 gateway threads), producers on ws /ingest, consumers on /experience.
 * baseline: what a user would build: a `ws` server taking JSON records on /ingest, filtering per
 * consumer in JavaScript and sending JSON batches (the records' own JSON text, joined) on /experience.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { loadConfig } from '../../src/shared/config.js';
import { createLogger } from '../../src/shared/logger.js';
import { startService } from '../../src/service.js';
import type { RecordRing } from '../../src/shared/record-ring.js';
import { BENCH_TOKEN, send, type ToChild } from './ipc.js';
import { jsFilter, passes, type JsFilter } from './records.js';



/** Records each of the service's rings refused so far (drop-newest: the ring was full), by ring name. */
let ringDrops: () => Record<string, number> = () => ({});

async function startOurs(port: number): Promise<() => Promise<void>> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ringcast-bench-exp-'));
  const config = loadConfig(['--no-demo', '--port', String(port), '--fanout-threads', '2', '--log-level', 'warn', '--ingest-tcp-port=-1', '--ingest-unix-path=',
    '--data-dir', dataDir, '--ingest-token', BENCH_TOKEN, '--admin-token', 'bench-admin-token'], {});
  const service = await startService(config, createLogger(config.logLevel));
  ringDrops = () => {
    const out: Record<string, number> = {};
    for (const name of ['ingest.gw0', 'ingest.gw1', 'fanout.gw0', 'fanout.gw1']) {
      const drops = (service.supervisor.ring(name) as RecordRing).stats().drops;
      out[name] = Object.values(drops).reduce((a, b) => a + b, 0);
    }
    return out;
  };
  return async () => {
    await service.stop('bench done');
    rmSync(dataDir, { recursive: true, force: true });
  };
}

const MAX_CONSUMER_BUFFERED = 64 << 20;

interface BaselineConsumer { ws: WebSocket; filter: JsFilter; batch: string[]; timer?: NodeJS.Timeout }

function startBaseline(port: number): Promise<() => Promise<void>> {
  const wss = new WebSocketServer({ port, host: '127.0.0.1', maxPayload: 256 << 20 });
  const consumers = new Set<BaselineConsumer>();
  const flush = (c: BaselineConsumer) => {
    clearTimeout(c.timer);
    c.timer = undefined;
    if (c.batch.length === 0) return;
    // A consumer this far behind loses the batch (ours bounds its queue the same way): without
    // this the server buffered without limit and ran out of heap at the full load.
    if (c.ws.bufferedAmount < MAX_CONSUMER_BUFFERED) c.ws.send(`[${c.batch.join(',')}]`);
    c.batch = [];
  };
  wss.on('connection', (ws, req) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.searchParams.get('token') !== BENCH_TOKEN) return ws.close(4001, 'token');
    if (url.pathname === '/experience') {
      const c: BaselineConsumer = { ws, filter: jsFilter(Object.fromEntries(url.searchParams)), batch: [] };
      consumers.add(c);
      ws.on('close', () => { clearTimeout(c.timer); consumers.delete(c); });
      return;
    }
    // Producer: a message is a JSON array of records; each is parsed once, its text forwarded as is.
    ws.on('message', (data) => {
      const text = String(data);
      const records = JSON.parse(text) as Array<Record<string, unknown>>;
      // Recover each record's own text to forward without re-serialising it (a careful user's shortcut).
      const texts = splitTopLevel(text);
      for (let i = 0; i < records.length; i++) {
        const r = records[i] as { game_id: string; player_id: string; turn: number; reward: number; done: boolean };
        for (const c of consumers) {
          if (!passes(c.filter, r)) continue;
          c.batch.push(texts[i]);
          if (c.batch.length >= c.filter.batchSize) flush(c);
          else if (c.batch.length === 1) c.timer = setTimeout(() => flush(c), c.filter.timeoutMs);
        }
      }
    });
  });
  return new Promise((resolve) => wss.on('listening', () => resolve(async () => {
    for (const c of consumers) clearTimeout(c.timer);
    for (const ws of wss.clients) ws.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
  })));
}

/** The texts of the elements of a JSON array of objects (no strings here hold braces). */
function splitTopLevel(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = -1;
  for (let i = 1; i < text.length - 1; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 123) { if (depth++ === 0) start = i; } else if (ch === 125) { if (--depth === 0) out.push(text.slice(start, i + 1)); }
  }
  return out;
}

async function main(): Promise<void> {
  const [impl, portArg] = process.argv.slice(2);
  const port = Number(portArg);
  const stop = impl === 'ours' ? await startOurs(port) : await startBaseline(port);
  let cpu0: NodeJS.CpuUsage | undefined;
  let wall0 = 0;
  let rssMax = 0;
  let drops0: Record<string, number> = {};
  let sampler: NodeJS.Timeout | undefined;
  process.on('message', (msg: ToChild) => {
    if (msg.type === 'begin') {
      cpu0 = process.cpuUsage();
      wall0 = performance.now();
      rssMax = process.memoryUsage.rss();
      drops0 = ringDrops();
      sampler = setInterval(() => { rssMax = Math.max(rssMax, process.memoryUsage.rss()); }, 250);
    } else if (msg.type === 'end') {
      clearInterval(sampler);
      const cpu = process.cpuUsage(cpu0);
      const drops = Object.fromEntries(Object.entries(ringDrops()).map(([k, v]) => [k, v - (drops0[k] ?? 0)]));
      send({ type: 'window', cpuUserUs: cpu.user, cpuSystemUs: cpu.system, wallMs: performance.now() - wall0, rssMaxBytes: rssMax, ringDrops: drops });
    } else if (msg.type === 'stop') {
      void stop().finally(() => process.exit(0));
    }
  });
  process.on('disconnect', () => { void stop().finally(() => process.exit(0)); });
  send({ type: 'ready', port });
}

main().catch((error: unknown) => {
  send({ type: 'failed', error: error instanceof Error ? error.stack ?? error.message : String(error) });
  process.exit(1);
});
