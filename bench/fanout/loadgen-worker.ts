/**
 * One load-generator thread: `job.clients` raw-TCP WebSocket clients (ws-wire.ts).
 *
 * Cheap by construction, because it shares the machine with the server it measures:
 * sockets read into ONE static buffer per thread (net `onread`, no Buffer per read),
 * frames are followed by their headers only, and of each message only the opening
 * `{"type":"<name>","timestamp":<ms>` is looked at, in place, to classify and count it by
 * its stamp. One message in `sampleEvery` per client becomes a latency sample. The
 * receipt time is taken once per TCP read, not per frame.
 *
 * Protocol with the orchestrator: see ipc.ts (connected → window → result → close → closed).
 */
import net from 'node:net';
import { constants as zlibConstants, inflateRawSync } from 'node:zlib';
import { parentPort, workerData } from 'node:worker_threads';
import type { FromLoadgen, LoadgenJob, ToLoadgen, WindowRequest } from './ipc.js';
import { wallMs } from './payloads.js';
import { clientPongFrame, clientTextFrame, endOfHttpHead, FrameScanner, isSwitchingProtocols, readTimestamp, timestampAfterType, upgradeRequest } from './ws-wire.js';

const job = workerData as LoadgenJob;
const port = parentPort!;
const post = (m: FromLoadgen, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);
const MAX_HTTP_HEAD = 8 * 1024;
const upgrade = upgradeRequest(job.host, job.port, undefined, job.deflate === true);
/** What permessage-deflate strips from the end of each message (RFC 7692 §7.2.1). */
const DEFLATE_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
/** A message ends in a sync flush, not a final block: inflate what is there without asking for an end. */
const INFLATE_OPTIONS = { finishFlush: zlibConstants.Z_SYNC_FLUSH };
const subscribeFrame = clientTextFrame(job.subscription);
const pong = clientPongFrame();

// Deliveries are classified by the `type` that opens the envelope, `{"type":"<name>"`, so
// extra message kinds a server may send (status, milestones) do not pass for deliveries.
const TYPE_AT = Buffer.byteLength('{"type":"');
const typeNames = job.types.map((t) => Buffer.from(`${t}"`));
const UNREADABLE = -1;
const OTHER = -2;
const MAX_OTHER_NAMES = 32;
function classify(buf: Buffer, start: number, end: number): number {
  const p = start + TYPE_AT;
  if (p + 2 > end) return UNREADABLE;
  for (let i = 0; i < typeNames.length; i++) {
    const n = typeNames[i];
    if (buf[p] === n[0] && p + n.length <= end && buf.compare(n, 0, n.length, p, p + n.length) === 0) return i;
  }
  return closingQuote(buf, p, end) >= 0 ? OTHER : UNREADABLE;
}

/** Index of the quote ending a type name that starts at p, looking at most 64 bytes and not past end. */
function closingQuote(buf: Buffer, p: number, end: number): number {
  const limit = Math.min(end, p + 64);
  for (let i = p; i < limit; i++) if (buf[i] === 0x22) return i;
  return -1;
}

// Deliveries are counted directly into these while a stamp window is set (see runWindow).
let messages = 0;
let bytes = 0;
let unstamped = 0;
let received = 0;
let stampFrom = Infinity;
let stampTo = -Infinity;
const byType = new Float64Array(job.types.length);
let otherMessages = 0;
const otherTypes: Record<string, number> = {};
let closes = 0;
let protocolErrors = 0;
let inWindow = false;
const latencies = new Float64Array(job.latencyCap);
let latencyCount = 0;
let latenciesDropped = 0;
let readTime = 0; // wall ms of the TCP read being processed

const sockets: net.Socket[] = [];
let ok = 0;
let failed = 0;
let subscribed = 0;
const errors: string[] = [];
let closing = false;

function noteError(what: string): void {
  if (errors.length < 5) errors.push(what);
}

class Client {
  socket!: net.Socket;
  upgraded = false;
  gotFirst = false;
  head: Buffer | undefined;
  sinceSample: number;
  readonly scanner: FrameScanner;

  constructor(private readonly index: number, private readonly settle: (ok: boolean) => void) {
    // Stagger the sample phase so clients do not all sample the same tick's message.
    this.sinceSample = index % job.sampleEvery;
    this.scanner = new FrameScanner({
      onCompressed: (payload) => {
        let text: Buffer;
        try { text = inflateRawSync(Buffer.concat([payload, DEFLATE_TAIL]), INFLATE_OPTIONS); } catch (error) { protocolErrors++; noteError(`inflate: ${String(error)}`); return; }
        // Counted as any message, by what it cost on the wire.
        this.onData(text, 0, text.byteLength, payload.byteLength);
      },
      onMessage: (buf, start, end, length) => this.onData(buf, start, end, length),
      onPing: () => { this.socket.write(pong); },
      onClose: () => { this.socket.end(); },
      onProtocolError: (why) => { protocolErrors++; noteError(why); this.socket.destroy(); },
    });
  }

  /** One data message: `buf[start, end)` is (at least the head of) its text, `length` its bytes on the wire. */
  onData(buf: Buffer, start: number, end: number, length: number): void {
    if (!this.gotFirst) {
      // connection_established (or a snapshot): the subscription is live.
      this.gotFirst = true;
      subscribed++;
      this.settle(true);
      return;
    }
    const kind = classify(buf, start, end);
    if (kind === OTHER) {
      otherMessages++;
      if (this.index === 0 && inWindow) {
        const p = start + TYPE_AT;
        const name = buf.toString('latin1', p, closingQuote(buf, p, end));
        if (name in otherTypes || Object.keys(otherTypes).length < MAX_OTHER_NAMES) otherTypes[name] = (otherTypes[name] ?? 0) + 1;
      }
      return;
    }
    let ts = kind >= 0 ? timestampAfterType(buf, start + TYPE_AT + typeNames[kind].length, end) : NaN;
    if (ts !== ts) ts = readTimestamp(buf, start, end);
    if (ts === ts) {
      // Counted by the server's stamp: what was produced in the window and arrived by
      // collection time, however late this thread got to read it.
      if (ts >= stampFrom && ts < stampTo) {
        if (kind >= 0) byType[kind]++;
        messages++;
        bytes += length;
      }
    } else if (inWindow) {
      // Header or stamp cut off by the read boundary (rare): fall back to the receipt window.
      if (kind >= 0) byType[kind]++;
      messages++;
      bytes += length;
      unstamped++;
    }
    if (inWindow) received++;
    if (++this.sinceSample >= job.sampleEvery) {
      // NaN: stamp cut off by the read boundary; the next message is sampled instead.
      if (ts === ts) {
        this.sinceSample = 0;
        if (inWindow) {
          if (latencyCount < latencies.length) latencies[latencyCount++] = readTime - ts;
          else latenciesDropped++;
        }
      }
    }
  }

  onRead(nread: number, buf: Buffer): void {
    readTime = wallMs();
    if (this.upgraded) { this.scanner.push(buf, 0, nread); return; }
    // Handshake: collect the response head (it may span reads), then hand what follows to the scanner.
    const chunk = Buffer.from(buf.subarray(0, nread)); // the static buffer is reused: copy
    this.head = this.head ? Buffer.concat([this.head, chunk]) : chunk;
    const end = endOfHttpHead(this.head);
    if (end < 0) {
      if (this.head.byteLength > MAX_HTTP_HEAD) this.fail('upgrade response head too large');
      return;
    }
    if (!isSwitchingProtocols(this.head)) {
      this.fail(`upgrade refused: ${this.head.subarray(0, Math.min(end, 80)).toString('latin1').split('\r\n')[0]}`);
      return;
    }
    const rest = this.head;
    this.head = undefined;
    this.upgraded = true;
    this.socket.write(subscribeFrame);
    if (end < rest.byteLength) this.scanner.push(rest, end, rest.byteLength);
  }

  fail(why: string): void {
    noteError(why);
    this.socket.destroy();
    this.settle(false);
  }
}

function connectOne(index: number): Promise<boolean> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (good: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(good);
    };
    const client = new Client(index, settle);
    const socket = net.connect({
      host: job.host,
      port: job.port,
      noDelay: true,
      onread: { buffer: READ_BUFFER, callback: (n: number, buf: Uint8Array) => { client.onRead(n, buf as Buffer); return true; } },
    });
    client.socket = socket;
    sockets.push(socket);
    const timer = setTimeout(() => { noteError('no connection_established within the connect timeout'); socket.destroy(); settle(false); }, job.connectTimeoutMs);
    socket.once('connect', () => socket.write(upgrade));
    socket.on('error', (err) => { noteError(err.message); settle(false); });
    socket.on('close', () => {
      settle(false);
      if (!closing && client.gotFirst && inWindow) closes++;
    });
  });
}

async function connectAll(): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < job.clients) {
      const i = next++;
      if (await connectOne(i)) ok++;
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(job.connectConcurrency, job.clients) }, lane));
}

function runWindow(w: WindowRequest): void {
  // Stamp-window counters start now (nothing stamped that late has been sent yet).
  messages = 0; bytes = 0; unstamped = 0; byType.fill(0);
  stampFrom = w.s0; stampTo = w.s1;
  let o0 = 0;
  let elu = NaN;
  let elu0: ReturnType<typeof performance.eventLoopUtilization> | undefined;
  let late = 0;
  setTimeout(() => {
    o0 = otherMessages;
    received = 0;
    for (const k of Object.keys(otherTypes)) delete otherTypes[k];
    closes = 0;
    latencyCount = 0;
    latenciesDropped = 0;
    elu0 = performance.eventLoopUtilization();
    inWindow = true;
    late = wallMs() - w.t0;
  }, Math.max(0, w.t0 - wallMs()));
  setTimeout(() => {
    inWindow = false;
    late = Math.max(late, wallMs() - w.t1);
    elu = performance.eventLoopUtilization(elu0).utilization;
  }, Math.max(0, w.t1 - wallMs()));
  setTimeout(() => {
    stampFrom = Infinity; stampTo = -Infinity;
    const samples = latencies.slice(0, latencyCount);
    post({
      type: 'result',
      messages,
      bytes,
      unstamped,
      received,
      byType: [...byType],
      otherMessages: otherMessages - o0,
      otherTypes: { ...otherTypes },
      latencies: samples,
      latenciesDropped,
      closes,
      protocolErrors,
      elu,
      snapshotLateMs: late,
    }, [samples.buffer]);
  }, Math.max(0, w.collectAt - wallMs()));
}

port.on('message', (msg: ToLoadgen) => {
  if (msg.type === 'window') runWindow(msg);
  else if (msg.type === 'close') {
    closing = true;
    for (const s of sockets) s.destroy();
    post({ type: 'closed' });
  }
});

connectAll().then(
  () => post({ type: 'connected', ok, failed, subscribed, errors }),
  (error: unknown) => post({ type: 'fatal', error: String(error) }),
);
