/**
 * The server under test, in its own process so that process.cpuUsage() and RSS here
 * cover the server (every thread of it) and nothing of the load generator.
 *
 *   node dist/bench/fanout/server-child.js <ours|baseline|ws-once|uws-raw> <host> <port> [fanoutThreads] [templates.json] [off|shared]
 *
 * The last argument is the real service's fanout.compression (default off).
 *
 * "ours" is the real service when it serves /ws (service-feed.ts), else the uWS stand-in;
 * "baseline" is the naive `ws` server, "ws-once" the `ws` server that serialises once,
 * "uws-raw" bare uWS publish on fanoutThreads threads (the ceiling). Talks to the parent over IPC (ipc.ts): sends
 * `ready`; on `start` begins the 10 Hz ticks and answers `started`; answers each `window`
 * request with CPU/RSS/tick deltas between t0 and t1; exits on `stop`.
 */
import { SERVER_KINDS, type FromServer, type ServerKind, type ToServer, type WindowRequest } from './ipc.js';
import { startWsOnce } from './ws-once.js';
import { startUwsRaw } from './uws-raw.js';
import type { FanoutServer } from './server-types.js';
import { startWsBaseline } from './baseline-ws.js';
import { startRealService } from './service-feed.js';
import { startUwsStandin } from './standin-uws.js';
import { TICK_MS, wallMs } from './payloads.js';
import { startTicker, type Ticker } from './ticker.js';

const RSS_SAMPLE_MS = 200;

function send(msg: FromServer): void {
  process.send?.(msg);
}

async function startServer(kind: ServerKind, host: string, port: number, threads: number, templatesFile?: string, compression: 'off' | 'shared' = 'off'): Promise<FanoutServer> {
  if (kind === 'baseline') return startWsBaseline(host, port, templatesFile);
  if (kind === 'ws-once') return startWsOnce(host, port, templatesFile);
  if (kind === 'uws-raw') return startUwsRaw(host, port, threads, templatesFile);
  if (process.env.RINGCAST_BENCH_FANOUT_STANDIN === '1') {
    const standin = await startUwsStandin(host, port);
    standin.note = 'uWS stand-in used: RINGCAST_BENCH_FANOUT_STANDIN=1';
    return standin;
  }
  const real = await startRealService(host, port, threads, compression);
  if (!('unavailable' in real)) return real;
  const standin = await startUwsStandin(host, port);
  standin.note = `uWS stand-in used: ${real.unavailable}`;
  return standin;
}

function measureWindow(server: FanoutServer, ticker: Ticker | undefined, req: WindowRequest): void {
  const ticks = () => ({ emitted: ticker?.emitted ?? 0, missed: ticker?.missed ?? 0 });
  let cpu0: NodeJS.CpuUsage | undefined;
  let wall0 = 0;
  let rss0 = 0;
  let rssMax = 0;
  let ticks0 = ticks();
  let sampler: NodeJS.Timeout | undefined;
  setTimeout(() => {
    cpu0 = process.cpuUsage();
    wall0 = wallMs();
    ticks0 = ticks();
    rss0 = rssMax = process.memoryUsage.rss();
    sampler = setInterval(() => { rssMax = Math.max(rssMax, process.memoryUsage.rss()); }, RSS_SAMPLE_MS);
  }, Math.max(0, req.t0 - wallMs()));
  setTimeout(() => {
    const cpu = process.cpuUsage(cpu0);
    const wall = wallMs() - wall0;
    const t = ticks();
    clearInterval(sampler);
    const rss1 = process.memoryUsage.rss();
    send({
      type: 'window-result',
      cpuUserUs: cpu.user,
      cpuSystemUs: cpu.system,
      wallMs: wall,
      rssStartBytes: rss0,
      rssEndBytes: rss1,
      rssMaxBytes: Math.max(rssMax, rss1),
      ticks: t.emitted - ticks0.emitted,
      ticksMissed: t.missed - ticks0.missed,
      clients: server.clients(),
      note: server.note,
    });
  }, Math.max(0, req.t1 - wallMs()));
}

async function main(): Promise<void> {
  const [kindArg, host = '127.0.0.1', portArg = '0', threadsArg = '2', templatesFile, compressionArg = 'off'] = process.argv.slice(2);
  if (compressionArg !== 'off' && compressionArg !== 'shared') throw new Error(`server-child: compression must be off or shared, got ${JSON.stringify(compressionArg)}`);
  if (!(SERVER_KINDS as readonly string[]).includes(kindArg)) throw new Error(`server-child: first argument must be one of ${SERVER_KINDS.join(', ')}, got ${JSON.stringify(kindArg)}`);
  const port = Number(portArg);
  const threads = Number(threadsArg);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`server-child: port must be an integer 0–65535, got ${JSON.stringify(portArg)}`);
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) throw new Error(`server-child: fanoutThreads must be an integer 1–64, got ${JSON.stringify(threadsArg)}`);
  const server = await startServer(kindArg as ServerKind, host, port, threads, templatesFile || undefined, compressionArg);
  let ticker: Ticker | undefined;
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    ticker?.stop();
    void server.stop().finally(() => process.exit(0));
  };
  process.on('message', (msg: ToServer) => {
    if (msg.type === 'start') {
      ticker ??= startTicker(TICK_MS, (tick, stamp) => server.tick(tick, stamp));
      send({ type: 'started', tickOrigin: ticker.origin });
    } else if (msg.type === 'window') measureWindow(server, ticker, msg);
    else if (msg.type === 'stop') stop();
  });
  // Without a parent there is nobody to stop us.
  process.on('disconnect', stop);
  send({ type: 'ready', impl: server.impl, port: server.port, note: server.note });
}

main().catch((error: unknown) => {
  send({ type: 'failed', error: error instanceof Error ? error.stack ?? error.message : String(error) });
  process.exit(1);
});
