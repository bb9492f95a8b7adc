/**
 * Baseline for bench/ingest.ts: the same metric events as newline-delimited JSON text
 * over TCP, each line parsed with JSON.parse and checked as little as the binary path
 * checks (a kind, a finite step, numeric values). Runs on its own worker thread like the
 * ingest actor; counts into a shared f64 (single writer) so the main thread can sample it.
 */
import net from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';

const counter = new Float64Array(workerData.counter as SharedArrayBuffer);
const NEWLINE = 0x0a;
let events = 0;
let rejected = 0;

function judge(text: string): void {
  let e: unknown;
  try {
    e = JSON.parse(text);
  } catch {
    rejected++;
    return;
  }
  const ev = e as { kind?: unknown; step?: unknown; metrics?: Record<string, unknown> };
  if (ev.kind !== 'metrics' || typeof ev.step !== 'number' || !Number.isFinite(ev.step) || typeof ev.metrics !== 'object' || ev.metrics === null) { rejected++; return; }
  for (const k in ev.metrics) if (typeof ev.metrics[k] !== 'number') { rejected++; return; }
  events++;
}

const server = net.createServer((socket) => {
  let rest: Buffer | undefined;
  socket.on('data', (chunk: Buffer) => {
    const buf = rest ? Buffer.concat([rest, chunk]) : chunk;
    let start = 0;
    for (let nl = buf.indexOf(NEWLINE, start); nl >= 0; nl = buf.indexOf(NEWLINE, start)) {
      judge(buf.toString('utf8', start, nl));
      start = nl + 1;
    }
    rest = start < buf.length ? Buffer.from(buf.subarray(start)) : undefined;
    counter[0] = events;
    counter[1] = rejected;
  });
  socket.on('error', () => {});
});
server.listen(0, '127.0.0.1', () => parentPort!.postMessage({ port: (server.address() as net.AddressInfo).port }));
parentPort!.on('message', (m: string) => { if (m === 'stop') server.close(() => process.exit(0)); });
