/**
 * Producer connections in their own process: each sends `rate` experiences per second,
 * stamped with the send time (the consumer measures latency from it).
 *
 *   node dist/bench/experience/producer-child.js <ours|baseline> <port> <firstConn> <conns> <rate>
 */
import WebSocket from 'ws';
import { createProducer, type NetworkProducer } from '../../src/sdk/index.js';
import { BENCH_TOKEN, send, type ToChild } from './ipc.js';
import { makeRecord, rng, STATE_SHAPE, toJson } from './records.js';

const TICK_MS = 10;

async function main(): Promise<void> {
  const [impl, portArg, firstArg, connsArg, rateArg] = process.argv.slice(2);
  const port = Number(portArg);
  const first = Number(firstArg);
  const conns = Number(connsArg);
  const rate = Number(rateArg);
  const rand = rng(first + 1);
  let sent = 0;
  const counters = new Array<number>(conns).fill(0);
  let tick: (() => void) | undefined;
  const closers: Array<() => void> = [];
  if (impl === 'ours') {
    const producers: NetworkProducer[] = [];
    for (let c = 0; c < conns; c++) {
      producers.push(createProducer(`ws://127.0.0.1:${port}/ingest`, { token: BENCH_TOKEN, run: 'bench', flushIntervalMs: 2, queueSize: 65_536, queueMaxBytes: 256 << 20 }));
    }
    closers.push(() => { for (const p of producers) void p.close(); });
    tick = () => {
      for (let c = 0; c < conns; c++) {
        for (let k = 0; k < (rate * TICK_MS) / 1000; k++) {
          const r = makeRecord(first + c, counters[c]++, rand);
          producers[c].emitExperience({ gameId: r.gameId, playerId: r.playerId, turn: r.turn, action: r.action, reward: r.reward, done: r.done, state: r.state, stateShape: STATE_SHAPE, legalMask: r.mask });
          sent++;
        }
      }
    };
  } else {
    const sockets: WebSocket[] = [];
    for (let c = 0; c < conns; c++) sockets.push(new WebSocket(`ws://127.0.0.1:${port}/ingest?token=${BENCH_TOKEN}`, { maxPayload: 256 << 20 }));
    await Promise.all(sockets.map((ws) => new Promise((r, j) => { ws.once('open', r); ws.once('error', j); })));
    closers.push(() => { for (const ws of sockets) ws.terminate(); });
    tick = () => {
      for (let c = 0; c < conns; c++) {
        const batch: string[] = [];
        for (let k = 0; k < (rate * TICK_MS) / 1000; k++) {
          batch.push(toJson(makeRecord(first + c, counters[c]++, rand), Date.now()));
          sent++;
        }
        if (batch.length) sockets[c].send(`[${batch.join(',')}]`);
      }
    };
  }
  const timer = setInterval(tick, TICK_MS);
  let sent0 = 0;
  process.on('message', (msg: ToChild) => {
    if (msg.type === 'begin') sent0 = sent;
    else if (msg.type === 'end') send({ type: 'window', sent: sent - sent0 });
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
