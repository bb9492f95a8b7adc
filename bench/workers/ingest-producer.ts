/**
 * Producer thread for bench/ingest.ts. Modes:
 *   binary  pre-encoded metric events (6 metrics each), `eventsPerFrame` per length-prefixed
 *           frame, written as fast as the socket drains (the hello goes first);
 *   json    the same events as newline-delimited JSON text, the same number per write;
 *   sdk     the SDK's createProducer, emitPpoMetrics in a loop (encoding per event included).
 * Writes until the main thread sets ctl[0] = 1, then reports what it handed to the socket.
 */
import net from 'node:net';
import { setImmediate as yieldNow } from 'node:timers/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { concatFrame, encodeEvent, encodeMetrics, EventKind, lengthPrefixed } from '../../src/shared/telemetry/event-codec.js';
import { createProducer } from '../../src/sdk/producer.js';
import { jsonLine, METRICS } from './ingest-payload.js';

export interface IngestProducerJob {
  mode: 'binary' | 'json' | 'sdk';
  target: { host: string; port: number } | { path: string };
  token: string;
  eventsPerFrame: number;
  ctl: SharedArrayBuffer;
}

const job = workerData as IngestProducerJob;
const ctl = new Int32Array(job.ctl);
const stopped = () => Atomics.load(ctl, 0) !== 0;

async function raw(): Promise<number> {
  const n = job.eventsPerFrame;
  let chunk: Uint8Array;
  if (job.mode === 'binary') {
    chunk = lengthPrefixed(concatFrame(Array.from({ length: n }, (_, i) => encodeMetrics(i, METRICS(i)))));
  } else {
    chunk = Buffer.from(Array.from({ length: n }, (_, i) => jsonLine(i)).join(''));
  }
  const socket = net.connect('path' in job.target ? { path: job.target.path } : job.target);
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
  socket.setNoDelay(true);
  socket.on('data', () => { /* acks/errors: not measured here */ });
  if (job.mode === 'binary') socket.write(lengthPrefixed(encodeEvent(EventKind.Hello, { token: job.token, run: 'bench' })));
  let sent = 0;
  while (!stopped()) {
    if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
    sent += n;
  }
  socket.end();
  return sent;
}

/** What a producer thread reports: events sent, and for the SDK what its own queue dropped. */
export interface ProducerReport { sent: number; emitted: number; queueDropped: number }

async function sdk(): Promise<ProducerReport> {
  const t = job.target;
  const url = 'path' in t ? `unix://${t.path}` : `tcp://${t.host}:${t.port}`;
  const p = createProducer(url, { token: job.token, run: 'bench', queueSize: 50_000, batchMaxEvents: job.eventsPerFrame });
  const metrics = METRICS(0);
  let step = 0;
  while (!stopped()) {
    for (let i = 0; i < 1000; i++) {
      metrics['ppo/policy_loss'] = step * 1e-6;
      p.emitPpoMetrics(metrics, step++);
    }
    await yieldNow(); // let the socket write: a trainer yields between steps too
  }
  // Read before close(): close() counts what it could not flush as 'unsent', which is the stop, not the load.
  const { sent, dropped } = p.stats();
  await p.close(1000);
  const queueDropped = Object.entries(dropped).filter(([k]) => !k.startsWith('invalid_')).reduce((s, [, n]) => s + n, 0);
  return { sent, emitted: step, queueDropped };
}

(job.mode === 'sdk' ? sdk() : raw().then((sent): ProducerReport => ({ sent, emitted: sent, queueDropped: 0 }))).then(
  (report) => parentPort!.postMessage(report),
  (error: Error) => parentPort!.postMessage({ error: error.message }),
);
