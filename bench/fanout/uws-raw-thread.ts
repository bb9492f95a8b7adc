/** One thread of the bare uWS ceiling (uws-raw.ts): accept, subscribe to one topic, publish what the main thread posts. */
import { parentPort, workerData } from 'node:worker_threads';
import type { WebSocket, us_listen_socket } from 'uWebSockets.js';
import { loadUws } from '../../src/shared/http-server.js';

export interface RawThreadJob { host: string; port: number; index: number; counters: SharedArrayBuffer }
export type RawThreadMessage = { type: 'publish'; messages: string[] } | { type: 'close' };

const job = workerData as RawThreadJob;
const counters = new Int32Array(job.counters);
const TOPIC = 'all';
const { uws } = loadUws();
const app = uws.App();
// Every open socket, so that close can end them all and let this thread's loop run dry.
const open = new Set<WebSocket<{ joined?: boolean }>>();
app.ws<{ joined?: boolean }>('/ws', {
  maxPayloadLength: 16 * 1024,
  maxBackpressure: 8 * 1024 * 1024,
  closeOnBackpressureLimit: 1,
  idleTimeout: 120,
  open: (ws) => { open.add(ws); },
  message: (ws, message) => {
    const data = ws.getUserData();
    if (data.joined) return;
    data.joined = true;
    ws.subscribe(TOPIC);
    Atomics.add(counters, job.index, 1);
    ws.send(JSON.stringify({ type: 'connection_established', timestamp: Date.now(), data: JSON.parse(Buffer.from(message).toString('utf8')) }), false);
  },
  close: (ws) => {
    open.delete(ws);
    if (ws.getUserData().joined) Atomics.sub(counters, job.index, 1);
  },
});
// Listen option 0 (not exclusive): every thread binds the same port and the kernel spreads connections.
let listening: us_listen_socket | undefined;
(app.listen as unknown as (h: string, p: number, o: number, cb: (s: us_listen_socket | false) => void) => void).call(app, job.host, job.port, 0, (socket) => {
  if (!socket) { parentPort!.postMessage({ error: `cannot listen on ${job.host}:${job.port}` }); return; }
  listening = socket;
  parentPort!.postMessage({ port: uws.us_socket_local_port(socket as never) });
});
parentPort!.on('message', (m: RawThreadMessage) => {
  if (m.type === 'publish') for (const text of m.messages) app.publish(TOPIC, text, false, false);
  else if (m.type === 'close') {
    // Close everything this thread opened and stop listening for the parent: the thread then
    // ends on its own. Exiting with uWS sockets still open aborts Node.
    if (listening) uws.us_listen_socket_close(listening);
    listening = undefined;
    for (const ws of [...open]) ws.close();
    parentPort!.close();
  }
});
