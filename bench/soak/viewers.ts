/**
 * The soak's viewers, in a process of their own so their CPU is not the service's:
 *
 *   node dist/bench/soak/viewers.js <port> <clients>
 *
 * Opens `clients` overlay WebSockets on /ws, each subscribed to every channel at the
 * intermediate level, and counts what arrives. A socket that closes is reopened after a
 * second (counted): a soak must keep its load for the whole run. Answers `{type:'report'}`
 * over IPC with its counts and its own CPU time; exits on `{type:'stop'}`.
 */
import WebSocket from 'ws';

export interface ViewersReport {
  type: 'report';
  open: number;
  messages: number;
  bytes: number;
  reconnects: number;
  cpuUs: number;
}

const [portArg, clientsArg] = process.argv.slice(2);
const port = Number(portArg);
const clients = Number(clientsArg);
if (!Number.isInteger(port) || port <= 0 || !Number.isInteger(clients) || clients <= 0) {
  throw new Error(`usage: viewers.js <port> <clients>; got ${JSON.stringify(process.argv.slice(2))}`);
}

const SUBSCRIPTION = JSON.stringify({ channels: ['all'], level: 'intermediate', max_fps: 10 });
let open = 0;
let messages = 0;
let bytes = 0;
let reconnects = 0;
let stopping = false;
const sockets = new Set<WebSocket>();

function connect(): void {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  sockets.add(ws);
  let opened = false;
  ws.on('open', () => { opened = true; open++; ws.send(SUBSCRIPTION); });
  ws.on('message', (data: Buffer) => { messages++; bytes += data.byteLength; });
  ws.on('error', () => undefined);
  ws.on('close', () => {
    sockets.delete(ws);
    if (opened) open--;
    if (stopping) return;
    reconnects++;
    setTimeout(connect, 1_000);
  });
}

// Spread the connects over a second so the service sees arrivals, not one burst.
for (let i = 0; i < clients; i++) setTimeout(connect, Math.floor((i * 1_000) / clients));

process.on('message', (msg: { type: string }) => {
  if (msg.type === 'report') {
    const cpu = process.cpuUsage();
    process.send?.({ type: 'report', open, messages, bytes, reconnects, cpuUs: cpu.user + cpu.system } satisfies ViewersReport);
  } else if (msg.type === 'stop') {
    stopping = true;
    for (const ws of sockets) ws.terminate();
    setTimeout(() => process.exit(0), 100);
  }
});
