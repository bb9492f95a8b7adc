/**
 * Consumers in their own process, one WebSocket each with its filters; counts records and
 * bytes and samples producer → consumer latency (from each record's producer timestamp)
 * between `begin` and `end`.
 *
 *   node dist/bench/experience/consumer-child.js <ours|baseline> <port> <firstFilter> <count>
 */
import WebSocket from 'ws';
import { BENCH_TOKEN, send, type ToChild } from './ipc.js';
import { CONSUMER_FILTERS, CONSUMER_TIMEOUT_MS } from './records.js';

const MAX_SAMPLES = 200_000;

async function main(): Promise<void> {
  const [impl, portArg, firstArg, countArg] = process.argv.slice(2);
  const port = Number(portArg);
  const first = Number(firstArg);
  const count = Number(countArg);
  let measuring = false;
  let records = 0;
  let bytes = 0;
  // ours only: what the gateway told each batch this consumer lost (its queue or rate limit; sequence gaps)
  let dropped = 0;
  let missed = 0;
  const perConsumer = new Array<number>(count).fill(0);
  const latencies: number[] = [];
  // ours only: producer timestamp → the gateway sending the batch (its head's server_time)
  const serverLatencies: number[] = [];
  const note = (ts: number, now: number) => {
    if (latencies.length < MAX_SAMPLES) latencies.push(now - ts);
  };
  const sockets: WebSocket[] = [];
  for (let i = 0; i < count; i++) {
    const q = new URLSearchParams({ timeout_ms: CONSUMER_TIMEOUT_MS, ...CONSUMER_FILTERS[(first + i) % CONSUMER_FILTERS.length], token: BENCH_TOKEN });
    if (impl === 'ours') { q.set('v', '2'); q.set('consumer', `bench${first + i}`); }
    const ws = new WebSocket(`ws://127.0.0.1:${port}/experience?${q}`, { maxPayload: 512 << 20 });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!measuring) return;
      const now = Date.now();
      if (impl === 'ours') {
        if (!isBinary) return;
        // v2 batch: head, then per record f64 seq, u32 length, event (its f64 producer timestamp at offset 8).
        const headLen = data.readUInt32LE(4);
        const head = JSON.parse(data.toString('utf8', 8, 8 + headLen)) as { server_time: number; dropped: number; missed: number };
        const serverTime = head.server_time;
        dropped += head.dropped;
        missed += head.missed;
        let p = 8 + headLen;
        let n = 0;
        while (p < data.length) {
          const len = data.readUInt32LE(p + 8);
          const ts = data.readDoubleLE(p + 12 + 8);
          note(ts, now);
          if (serverLatencies.length < MAX_SAMPLES) serverLatencies.push(serverTime - ts);
          p += 12 + len;
          n++;
        }
        records += n;
        perConsumer[i] += n;
      } else {
        const batch = JSON.parse(String(data)) as Array<{ timestamp: number }>;
        for (const r of batch) note(r.timestamp, now);
        records += batch.length;
        perConsumer[i] += batch.length;
      }
      bytes += data.length;
    });
    sockets.push(ws);
  }
  await Promise.all(sockets.map((ws) => new Promise((r, j) => { ws.once('open', r); ws.once('error', j); })));
  let cpu0 = process.cpuUsage();
  let wall0 = performance.now();
  process.on('message', (msg: ToChild) => {
    if (msg.type === 'begin') { measuring = true; records = 0; bytes = 0; dropped = 0; missed = 0; perConsumer.fill(0); latencies.length = 0; serverLatencies.length = 0; cpu0 = process.cpuUsage(); wall0 = performance.now(); }
    else if (msg.type === 'end') {
      measuring = false;
      const cpu = process.cpuUsage(cpu0);
      send({ type: 'window', records, bytes, dropped, missed, latenciesMs: latencies, serverLatenciesMs: serverLatencies, perConsumer, cpuUserUs: cpu.user, cpuSystemUs: cpu.system, wallMs: performance.now() - wall0 });
    }
    else if (msg.type === 'stop') { for (const ws of sockets) ws.terminate(); setTimeout(() => process.exit(0), 100); }
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready' });
}

main().catch((error: unknown) => {
  send({ type: 'failed', error: error instanceof Error ? error.stack ?? error.message : String(error) });
  process.exit(1);
});
