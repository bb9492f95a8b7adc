/**
 * A small stand-in for ringcast's ingest side, for benchmarks and tests that need a real
 * producer endpoint without starting the whole service: TCP and Unix listeners speaking
 * the u32-LE length-prefixed framing, the same hello/token rule as the real acceptor
 * (the first event on a stream must be a hello carrying the token), every frame decoded
 * with the real `decodeFrame`, and Ack / Error events sent back the way the server does.
 *
 * It only counts (and optionally hands events to a callback); it lands nothing in rings.
 * Transports other than TCP/Unix (WebSocket) reuse `openSession`/`acceptFrame`.
 */
import net from 'node:net';
import { rmSync } from 'node:fs';
import {
  decodeFrame,
  encodeEvent,
  EventKind,
  EVENT_KIND_NAMES,
  lengthPrefixed,
  concatFrame,
  type EventError,
  type TelemetryEvent,
} from '../../src/shared/telemetry/event-codec.js';
import { StreamFramer } from '../../src/actors/ingest/stream-framer.js';

export type ReceiverTransport = 'tcp' | 'unix' | 'ws';

export interface ReceiverSession {
  readonly id: number;
  readonly transport: ReceiverTransport;
  authenticated: boolean;
  run?: string;
  client?: string;
  /** Sends one frame of server events (the transport adds its own framing). */
  send(frame: Uint8Array): void;
  close(): void;
}

export interface IngestReceiverOptions {
  /** When set, producers must present this token (hello event, or the transport's own auth). */
  token?: string;
  host?: string;
  /** 0 picks a free port; leave undefined for no TCP listener. */
  tcpPort?: number;
  unixPath?: string;
  /** Largest frame accepted; a larger length prefix closes the connection (default 16 MiB). */
  maxFrameBytes?: number;
  /** `frame` is only valid during the call (it may be a view of a socket chunk): copy to keep. */
  onEvent?: (event: TelemetryEvent, session: ReceiverSession, frame: Uint8Array) => void;
  onReject?: (error: EventError, session: ReceiverSession) => void;
}

export interface ReceiverCounts {
  frames: number;
  bytes: number;
  events: number;
  rejected: number;
  connections: number;
  byKind: Record<string, number>;
}

const DEFAULT_MAX_FRAME = 16 * 1024 * 1024;

export class IngestReceiver {
  readonly counts: ReceiverCounts = { frames: 0, bytes: 0, events: 0, rejected: 0, connections: 0, byKind: {} };
  tcpPort = -1;
  unixPath?: string;
  private readonly servers: net.Server[] = [];
  private readonly sockets = new Set<net.Socket>();
  private nextId = 0;

  private constructor(private readonly options: IngestReceiverOptions) {}

  static async start(options: IngestReceiverOptions = {}): Promise<IngestReceiver> {
    const receiver = new IngestReceiver(options);
    if (options.tcpPort !== undefined) {
      const server = receiver.streamServer('tcp');
      await listen(server, { port: options.tcpPort, host: options.host ?? '127.0.0.1' });
      receiver.tcpPort = (server.address() as net.AddressInfo).port;
    }
    if (options.unixPath) {
      rmSync(options.unixPath, { force: true }); // a stale socket file from a crashed run
      await listen(receiver.streamServer('unix'), { path: options.unixPath });
      receiver.unixPath = options.unixPath;
    }
    return receiver;
  }

  tokenMatches(token: string | undefined): boolean {
    return this.options.token === undefined || token === this.options.token;
  }

  openSession(transport: ReceiverTransport, send: (frame: Uint8Array) => void, close: () => void, authenticated = false): ReceiverSession {
    this.counts.connections++;
    return { id: ++this.nextId, transport, authenticated, send, close };
  }

  /** Decode one frame from `session`: hello/auth, counting, Ack and Error replies. */
  acceptFrame(session: ReceiverSession, frame: Uint8Array): void {
    this.counts.frames++;
    this.counts.bytes += frame.byteLength;
    const replies: Uint8Array[] = [];
    let fatal = false;
    const reject = (error: EventError) => {
      this.counts.rejected++;
      this.options.onReject?.(error, session);
      replies.push(encodeEvent(EventKind.Error, { error: error.error, kind: error.kind, index: error.index >= 0 ? error.index : undefined }));
    };
    let index = -1;
    decodeFrame(
      frame,
      (event) => {
        index++;
        if (fatal) return;
        if (event.kind === EventKind.Hello) {
          if (!this.tokenMatches(event.token) && !(session.authenticated && event.token === undefined)) {
            reject({ index, kind: 'hello', error: event.token === undefined ? 'hello without a token' : 'invalid ingest token' });
            fatal = true;
            return;
          }
          session.authenticated = true;
          session.run = event.run ?? session.run;
          session.client = event.client;
          replies.push(encodeEvent(EventKind.Ack, { ok: true, run: session.run ?? 'default', producer_id: session.id }));
          return;
        }
        if (!session.authenticated) {
          reject({ index, kind: EVENT_KIND_NAMES[event.kind], error: 'not authenticated: send a hello event with the ingest token first' });
          fatal = true;
          return;
        }
        if (event.kind === EventKind.Error || event.kind === EventKind.Ack) {
          reject({ index, kind: EVENT_KIND_NAMES[event.kind], error: 'error/ack events flow from the server to producers' });
          return;
        }
        const name = EVENT_KIND_NAMES[event.kind];
        this.counts.events++;
        this.counts.byKind[name] = (this.counts.byKind[name] ?? 0) + 1;
        this.options.onEvent?.(event, session, frame);
      },
      (error) => {
        index = error.index;
        reject(error);
      },
    );
    if (replies.length) session.send(concatFrame(replies));
    if (fatal) session.close();
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    if (this.unixPath) rmSync(this.unixPath, { force: true });
  }

  private streamServer(transport: 'tcp' | 'unix'): net.Server {
    const maxFrame = this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME;
    const server = net.createServer((socket) => {
      this.sockets.add(socket);
      socket.setNoDelay(true);
      const framer = new StreamFramer(maxFrame);
      const session = this.openSession(
        transport,
        (frame) => { if (!socket.destroyed) socket.write(lengthPrefixed(frame)); },
        () => socket.end(),
      );
      socket.on('data', (chunk: Buffer) => {
        const error = framer.push(chunk, (frame) => this.acceptFrame(session, frame));
        if (error !== undefined && !socket.writableEnded) {
          // The stream cannot be resynchronised after a bad prefix: say why, then hang up.
          session.send(encodeEvent(EventKind.Error, { error }));
          socket.end();
        }
      });
      socket.on('error', () => socket.destroy());
      socket.on('close', () => this.sockets.delete(socket));
    });
    this.servers.push(server);
    return server;
  }
}

function listen(server: net.Server, options: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
