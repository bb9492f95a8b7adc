/**
 * Producer connections in their own process: each sends `rate` experiences per second,
 * stamped with the send time (the consumer measures latency from it).
 *
 *   node dist/bench/experience/producer-child.js <ours|baseline> <port> <firstConn> <conns> <rate>
 */
import WebSocket from 'ws';
import { createProducer, type NetworkProducer } from '../../src/sdk/index.js';
import { BENCH_TOKEN, send, type ToChild } from './ipc.js';
import { jsonHead, POOL_SIZE, recordFacts, rng, STATE_SHAPE, tensorJson, tensorPool } from './records.js';

const TICK_MS = 10;
/** Per connection, both sides: bytes a producer may hold unsent (the SDK's queue bound for ours). */
const MAX_BUFFERED = 4 << 20;

async function main(): Promise<void> {
  const [impl, portArg, firstArg, connsArg, rateArg] = process.argv.slice(2);
  const port = Number(portArg);
  const first = Number(firstArg);
  const conns = Number(connsArg);
  const rate = Number(rateArg);
  const rand = rng(first + 1);
  const pool = tensorPool(first, rand);
  let sent = 0;
  const counters = new Array<number>(conns).fill(0);
  let tick: (() => void) | undefined;
  const closers: Array<() => void> = [];
  const dropCounters: Array<() => number> = [];
  if (impl === 'ours') {
    const producers: NetworkProducer[] = [];
    for (let c = 0; c < conns; c++) {
      producers.push(createProducer(`ws://127.0.0.1:${port}/ingest`, { token: BENCH_TOKEN, run: 'bench', flushIntervalMs: 2, queueSize: 65_536, queueMaxBytes: MAX_BUFFERED }));
    }
    closers.push(() => { for (const p of producers) void p.close(); });
    dropCounters.push(() => producers.reduce((a, p) => a + Object.values(p.stats().dropped).reduce((x, y) => x + y, 0), 0));
    tick = () => {
      for (let c = 0; c < conns; c++) {
        for (let k = 0; k < (rate * TICK_MS) / 1000; k++) {
          const i = counters[c]++;
          const t = pool[i % POOL_SIZE];
          const r = recordFacts(first + c, i, rand);
          producers[c].emitExperience({ gameId: r.gameId, playerId: r.playerId, turn: r.turn, action: t.action, reward: r.reward, done: r.done, state: t.state, stateShape: STATE_SHAPE, legalMask: t.mask });
          sent++;
        }
      }
    };
  } else {
    const tensorTexts = pool.map(tensorJson);
    const sockets: WebSocket[] = [];
    for (let c = 0; c < conns; c++) sockets.push(new WebSocket(`ws://127.0.0.1:${port}/ingest?token=${BENCH_TOKEN}`, { maxPayload: 256 << 20 }));
    await Promise.all(sockets.map((ws) => new Promise((r, j) => { ws.once('open', r); ws.once('error', j); })));
    closers.push(() => { for (const ws of sockets) ws.terminate(); });
    tick = () => {
      for (let c = 0; c < conns; c++) {
        // A connection the server is not keeping up with skips this tick (the records are not
        // made or counted), as the SDK's bounded queue does for ours: unbounded buffering stalled
        // the whole process at full load.
        if (sockets[c].bufferedAmount > MAX_BUFFERED) continue;
        const batch: string[] = [];
        for (let k = 0; k < (rate * TICK_MS) / 1000; k++) {
          const i = counters[c]++;
          batch.push(jsonHead({ ...recordFacts(first + c, i, rand), action: pool[i % POOL_SIZE].action }, Date.now()) + tensorTexts[i % POOL_SIZE]);
          sent++;
        }
        if (batch.length) sockets[c].send(`[${batch.join(',')}]`);
      }
    };
  }
  const timer = setInterval(tick, TICK_MS);
  // What left the process: emitted minus what a producer's bounded queue dropped (ours).
  const droppedNow = () => dropCounters.reduce((a, f) => a + f(), 0);
  let sent0 = 0;
  let cpu0 = process.cpuUsage();
  let wall0 = performance.now();
  process.on('message', (msg: ToChild) => {
    if (msg.type === 'begin') { sent0 = sent - droppedNow(); cpu0 = process.cpuUsage(); wall0 = performance.now(); }
    else if (msg.type === 'end') { const cpu = process.cpuUsage(cpu0); send({ type: 'window', sent: sent - droppedNow() - sent0, cpuUserUs: cpu.user, cpuSystemUs: cpu.system, wallMs: performance.now() - wall0 }); }
    else if (msg.type === 'stop') {
      clearInterval(timer);
      for (const c of closers) c();
      setTimeout(() => process.exit(0), 200);
    }
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready' });
}

main().catch((error: unknown) => {
  send({ type: 'failed', error: error instanceof Error ? error.stack ?? error.message : String(error) });
  process.exit(1);
});
