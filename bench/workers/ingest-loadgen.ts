/**
 * The ingest benchmark's load generator, a process of its own so that the producers never
 * share a process (or its CPU accounting) with the ingest actor under test:
 *
 *   node dist/bench/workers/ingest-loadgen.js '<jobs JSON>'
 *
 * Runs one ingest-producer.js thread per job. Over IPC: `mark` → { type: 'cpu', us } (this
 * process's CPU so far, all threads); `stop` → the threads stop, and { type: 'done', reports }.
 */
import { Worker } from 'node:worker_threads';
import type { IngestProducerJob, ProducerReport } from './ingest-producer.js';

const PRODUCER_URL = new URL('./ingest-producer.js', import.meta.url);
const jobs = JSON.parse(process.argv[2] ?? '[]') as Omit<IngestProducerJob, 'ctl'>[];
const ctl = new SharedArrayBuffer(4);
const workers = jobs.map((job) => new Worker(PRODUCER_URL, { workerData: { ...job, ctl } }));
const results = workers.map((w) => new Promise<ProducerReport>((resolve, reject) => {
  w.once('message', (m: ProducerReport & { error?: string }) => (m.error ? reject(new Error(`bench producer: ${m.error}`)) : resolve(m)));
  w.once('error', reject);
}));
// A producer that fails before the stop must not go unnoticed until then.
void Promise.all(results).catch((err: Error) => { process.send?.({ type: 'failed', error: err.message }); process.exit(1); });

process.on('message', (m: { type: string }) => {
  if (m.type === 'mark') {
    const c = process.cpuUsage();
    process.send?.({ type: 'cpu', us: c.user + c.system });
  } else if (m.type === 'stop') {
    Atomics.store(new Int32Array(ctl), 0, 1);
    Promise.all(results).then(
      (reports) => { process.send?.({ type: 'done', reports }, () => process.exit(0)); },
      (err: Error) => { process.send?.({ type: 'failed', error: err.message }, () => process.exit(1)); },
    );
  }
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready' });
