/**
 * The ceiling: bare uWS publish of the same bytes on as many threads as the service runs
 * gateways. The main thread serialises each message of a tick once (as the aggregator
 * does) and posts it to the threads; each thread is a uWS app on the shared port that
 * publishes it to one topic every client joined. No rings, no per-level topics, no
 * protocol beyond the subscription message: what is left is uWS and the kernel.
 */
import { Worker } from 'node:worker_threads';
import type { FanoutServer } from './server-types.js';
import { loadTemplates, templatesNote, tickMessages } from './same-bytes.js';
import type { RawThreadJob, RawThreadMessage } from './uws-raw-thread.js';

const THREAD_URL = new URL('./uws-raw-thread.js', import.meta.url);

export async function startUwsRaw(host: string, port: number, threads: number, templatesFile?: string): Promise<FanoutServer> {
  const templates = loadTemplates(templatesFile);
  const counters = new Int32Array(new SharedArrayBuffer(4 * threads));
  const workers: Worker[] = [];
  let bound = port;
  for (let i = 0; i < threads; i++) {
    const job: RawThreadJob = { host, port: bound, index: i, counters: counters.buffer as SharedArrayBuffer };
    const w = new Worker(THREAD_URL, { workerData: job });
    workers.push(w);
    bound = await new Promise<number>((resolve, reject) => {
      w.once('message', (m: { port?: number; error?: string }) => (m.error ? reject(new Error(`uws-raw thread ${i}: ${m.error}`)) : resolve(m.port!)));
      w.once('error', reject);
    });
  }
  return {
    impl: 'uws-raw',
    note: templatesNote(`uws-raw (${threads} threads)`, templates),
    port: bound,
    tick(tick, stamp) {
      const msg: RawThreadMessage = { type: 'publish', messages: tickMessages(tick, stamp, templates) };
      for (const w of workers) w.postMessage(msg);
    },
    clients: () => counters.reduce((s, n) => s + n, 0),
    async stop() {
      // Each thread closes its sockets and ends on its own; terminate() would tear down a uWS
      // loop with open sockets, which aborts Node.
      const ended = workers.map((w) => new Promise<void>((resolve) => w.once('exit', () => resolve())));
      for (const w of workers) w.postMessage({ type: 'close' } satisfies RawThreadMessage);
      await Promise.race([Promise.all(ended), new Promise((r) => setTimeout(r, 5000))]);
    },
  };
}
