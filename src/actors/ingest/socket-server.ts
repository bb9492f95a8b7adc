/**
 * One listening stream socket (TCP or Unix) for producers: framing, per-connection
 * sessions, replies, connection limits and a graceful stop. Judging the frames is the
 * acceptor's job (acceptor.ts); this module only moves bytes.
 *
 * Per connection:
 *   - the stream is split into u32-LE-length-prefixed frames (stream-framer.ts);
 *   - the first frame must authenticate with a Hello (the acceptor closes on a bad token
 *     or telemetry before the hello; a first frame that neither authenticates nor fails
 *     is closed here);
 *   - until it has, the connection lives on a small pre-auth budget, because anyone who
 *     can reach the port can open one: the hello must arrive within helloTimeoutMs, the
 *     first frame may declare at most preAuthMaxBytes (checked on its 4-byte prefix, so
 *     nothing larger is ever buffered), and one remote address may hold at most
 *     maxPreAuthPerAddress unauthenticated connections, so idle sockets from one host
 *     cannot fill maxConnections and lock every producer out. Each refusal is an Error
 *     event, then a close, counted in ringcast_ingest_rejected_total;
 *   - a length of 0 or above maxFrameBytes desynchronises the stream for good: reply an
 *     Error event, then close;
 *   - replies (Ack, Error events) are written as one length-prefixed frame per input
 *     frame, and dropped (counted) while the socket's write buffer is above a limit:
 *     a producer that does not read its replies must never make us buffer without bound,
 *     and intake never waits for a write.
 *
 * Intake is never paused: the data handler decodes and copies synchronously into the
 * ring, so "what was read" is always "what was judged", and a full ring is a counted
 * drop in the acceptor rather than backpressure that would stall every other producer.
 */
import { lstatSync, rmSync, chmodSync } from 'node:fs';
import net from 'node:net';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { concatFrame, encodeEvent, EventKind, lengthPrefixed } from '../../shared/telemetry/event-codec.js';
import type { IngestAcceptor, ProducerSession } from './acceptor.js';
import { StreamFramer } from './stream-framer.js';

export type StreamTransport = 'tcp' | 'unix';

export interface StreamServerOptions {
  transport: StreamTransport;
  acceptor: IngestAcceptor;
  maxFrameBytes: number;
  /** Open connections at once; one more is answered with an Error event and closed. */
  maxConnections: number;
  /** A connection without a valid hello this long after it opened is closed. Default 5000 ms. */
  helloTimeoutMs?: number;
  /** Largest first frame (the hello) accepted before authentication. Default 64 KiB. */
  preAuthMaxBytes?: number;
  /** Unauthenticated connections one remote address may hold at once (TCP only). Default 64. */
  maxPreAuthPerAddress?: number;
  /** Replies are dropped while a socket holds more unsent bytes than this. Default 256 KiB. */
  replyBufferBytes?: number;
  /** How long a closing connection may take to say goodbye before it is destroyed. Default 1000 ms. */
  closeGraceMs?: number;
  metrics: Registry;
  log: Logger;
}

export interface StreamServerStats {
  transport: StreamTransport;
  connections: number;
  connectionsAccepted: number;
  connectionsRefused: number;
  /** Connections still waiting for their hello. */
  preAuth: number;
  frames: number;
  bytesRead: number;
  protocolErrors: number;
  repliesDropped: number;
}

interface Connection {
  readonly socket: net.Socket;
  readonly session: ProducerSession;
  readonly framer: StreamFramer;
  readonly onFrame: (frame: Uint8Array) => void;
  /** Remote address the per-address pre-auth limit counts against (undefined on Unix sockets). */
  readonly address: string | undefined;
  /** Pending hello deadline; undefined once authenticated or closed. */
  helloTimer: NodeJS.Timeout | undefined;
  /** Input after this point is ignored: the connection is being closed for a reason. */
  closing: boolean;
}

export const DEFAULT_HELLO_TIMEOUT_MS = 5000;
export const DEFAULT_PREAUTH_MAX_BYTES = 64 * 1024;
export const DEFAULT_MAX_PREAUTH_PER_ADDRESS = 64;

const DEFAULT_REPLY_BUFFER = 256 * 1024;

export class StreamIngestServer {
  readonly transport: StreamTransport;
  private readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  /** Unauthenticated connections per remote address. */
  private readonly preAuthByAddress = new Map<string, number>();
  private preAuthCount = 0;
  private readonly opts: Required<Omit<StreamServerOptions, 'metrics' | 'log' | 'acceptor'>>;
  private readonly acceptor: IngestAcceptor;
  private readonly log: Logger;
  private readonly m: BoundMetrics;
  private readonly counts = { connectionsAccepted: 0, connectionsRefused: 0, frames: 0, bytesRead: 0, protocolErrors: 0, repliesDropped: 0 };
  private unixPath = '';
  private stopping = false;

  constructor(options: StreamServerOptions) {
    this.transport = options.transport;
    this.acceptor = options.acceptor;
    this.log = options.log.child({ transport: options.transport });
    this.opts = {
      transport: options.transport,
      maxFrameBytes: options.maxFrameBytes,
      maxConnections: options.maxConnections,
      replyBufferBytes: options.replyBufferBytes ?? DEFAULT_REPLY_BUFFER,
      closeGraceMs: options.closeGraceMs ?? 1000,
      helloTimeoutMs: options.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS,
      preAuthMaxBytes: Math.min(options.preAuthMaxBytes ?? DEFAULT_PREAUTH_MAX_BYTES, options.maxFrameBytes),
      maxPreAuthPerAddress: options.maxPreAuthPerAddress ?? DEFAULT_MAX_PREAUTH_PER_ADDRESS,
    };
    this.m = bindMetrics(options.metrics, options.transport);
    // allowHalfOpen false: when the producer ends its side we end ours, so a drained
    // connection closes by itself.
    this.server = net.createServer({ allowHalfOpen: false, noDelay: true }, (socket) => this.onConnection(socket));
    this.server.on('error', (error) => this.log.error({ err: error }, 'ingest listener error'));
  }

  /** Listens on TCP; resolves with the bound port (the actual one when `port` is 0). */
  listenTcp(host: string, port: number): Promise<number> {
    return this.listen({ host, port }).then(() => (this.server.address() as net.AddressInfo).port);
  }

  /**
   * Listens on a Unix socket. A socket file left by a crashed predecessor is removed
   * first; a live one (something answers) or a non-socket file at the path is an error,
   * because deleting either would break another service or lose a user's file.
   */
  async listenUnix(path: string): Promise<void> {
    await removeStaleSocket(path);
    await this.listen({ path });
    this.unixPath = path;
    // Producers run as the service's user or group; nobody else may inject telemetry.
    chmodSync(path, 0o660);
  }

  stats(): StreamServerStats {
    return { transport: this.transport, connections: this.connections.size, preAuth: this.preAuthCount, ...this.counts };
  }

  /**
   * Stops accepting, then ends every connection. Whatever a producer had already sent
   * keeps being read and judged until it closes its side (or `graceMs` passes and the
   * socket is destroyed), so nothing that reached us before the stop is lost. Except from a
   * producer that asked for per-frame acks: once our side is ended no ack can reach it, so it
   * sends every unacknowledged frame again on its next connection; taking them now as well
   * would deliver them twice. Its input ends here instead.
   */
  async stop(graceMs = this.opts.closeGraceMs): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const conn of this.connections) {
      if (conn.session.framesAcked !== undefined) conn.closing = true;
      conn.socket.end();
    }
    const deadline = setTimeout(() => { for (const conn of this.connections) conn.socket.destroy(); }, graceMs);
    await closed; // resolves once the listener and every connection are gone
    clearTimeout(deadline);
    if (this.unixPath) rmSync(this.unixPath, { force: true });
  }

  private listen(options: net.ListenOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(new Error(`ingest ${this.transport}: cannot listen on ${options.path ?? `${options.host}:${options.port}`}: ${error.message}`));
      this.server.once('error', onError);
      this.server.listen(options, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
  }

  private onConnection(socket: net.Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    // Unix peers have no address; the socket file's mode (0660) is their door.
    const address = this.transport === 'tcp' ? socket.remoteAddress : undefined;
    if (address !== undefined && (this.preAuthByAddress.get(address) ?? 0) >= this.opts.maxPreAuthPerAddress) {
      this.refuse(socket, 'address_limit', `too many unauthenticated connections from ${address} (limit ${this.opts.maxPreAuthPerAddress}); send the hello promptly, retry later`);
      return;
    }
    if (this.connections.size >= this.opts.maxConnections) {
      this.refuse(socket, 'connection_limit', `too many producer connections over ${this.transport} (limit ${this.opts.maxConnections}); retry later`);
      return;
    }
    const session = this.acceptor.openSession();
    const conn: Connection = {
      socket,
      session,
      framer: new StreamFramer(this.opts.maxFrameBytes, this.opts.preAuthMaxBytes),
      onFrame: (frame) => this.onFrame(conn, frame),
      address,
      helloTimer: undefined,
      closing: false,
    };
    this.enterPreAuth(conn);
    this.connections.add(conn);
    this.counts.connectionsAccepted++;
    this.m.accepted.inc();
    this.m.open.inc();
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk));
    // Resets and timeouts are a producer going away, which is normal; 'close' follows.
    socket.on('error', (error) => this.log.debug({ producerId: session.producerId, err: error.message }, 'producer connection error'));
    socket.on('close', () => {
      this.leavePreAuth(conn);
      this.connections.delete(conn);
      this.acceptor.closeSession(session);
      this.m.open.dec();
    });
  }

  private onData(conn: Connection, chunk: Buffer): void {
    if (conn.closing) return;
    this.counts.bytesRead += chunk.byteLength;
    this.m.bytes.inc(chunk.byteLength);
    let error: string | undefined;
    try {
      error = conn.framer.push(chunk, conn.onFrame);
    } catch (thrown) {
      // A bug of ours must cost this connection, not the actor and every other producer.
      this.log.error({ producerId: conn.session.producerId, err: thrown }, 'ingest failed on a producer frame');
      if (!conn.closing) this.fail(conn, 'internal', `internal error while reading this connection: ${(thrown as Error).message}`);
      return;
    }
    if (error === undefined || conn.closing) return;
    if (conn.framer.errorKind === 'first_too_large') {
      this.acceptor.countRefusal('preauth_too_large');
      this.fail(conn, 'preauth_too_large', error);
    } else {
      this.fail(conn, 'frame_length', error);
    }
  }

  private onFrame(conn: Connection, frame: Uint8Array): void {
    if (conn.closing) return;
    this.counts.frames++;
    this.m.frames.inc();
    const first = conn.framer.frames === 1;
    const result = this.acceptor.acceptFrame(conn.session, frame);
    if (result.fatal !== undefined) {
      // The acceptor's replies say why (bad token, telemetry before the hello).
      this.protocolError('auth');
      this.close(conn, result.replies, result.fatal);
      return;
    }
    if (first && !conn.session.authenticated) {
      this.fail(conn, 'no_hello', 'the first frame on a connection must contain a hello event with the ingest token', result.replies);
      return;
    }
    if (conn.helloTimer !== undefined && conn.session.authenticated) this.leavePreAuth(conn);
    if (result.replies.length > 0) this.reply(conn, result.replies);
  }

  /** Refuses a connection before it gets a session: one Error event, then close. */
  private refuse(socket: net.Socket, reason: 'address_limit' | 'connection_limit', message: string): void {
    this.counts.connectionsRefused++;
    this.m.refused.inc();
    this.acceptor.countRefusal(reason);
    socket.on('error', () => { /* the refused peer may reset; nothing to do */ });
    socket.end(lengthPrefixed(encodeEvent(EventKind.Error, { error: message })));
    setTimeout(() => socket.destroy(), this.opts.closeGraceMs).unref();
  }

  private enterPreAuth(conn: Connection): void {
    this.preAuthCount++;
    if (conn.address !== undefined) this.preAuthByAddress.set(conn.address, (this.preAuthByAddress.get(conn.address) ?? 0) + 1);
    conn.helloTimer = setTimeout(() => {
      if (conn.closing || conn.session.authenticated) return;
      this.acceptor.countRefusal('hello_timeout');
      this.fail(conn, 'hello_timeout', `no hello within ${this.opts.helloTimeoutMs} ms: the first frame on a connection must be a hello event with the ingest token`);
      this.leavePreAuth(conn);
    }, this.opts.helloTimeoutMs);
  }

  /** Authenticated, or gone: the connection no longer counts against the pre-auth budget. */
  private leavePreAuth(conn: Connection): void {
    if (conn.helloTimer === undefined) return;
    clearTimeout(conn.helloTimer);
    conn.helloTimer = undefined;
    this.preAuthCount--;
    if (conn.address === undefined) return;
    const left = (this.preAuthByAddress.get(conn.address) ?? 1) - 1;
    if (left > 0) this.preAuthByAddress.set(conn.address, left);
    else this.preAuthByAddress.delete(conn.address);
  }

  /** Unrecoverable stream error: tell the producer why, then close. */
  private fail(conn: Connection, reason: string, message: string, before: Uint8Array[] = []): void {
    this.protocolError(reason);
    this.close(conn, [...before, encodeEvent(EventKind.Error, { error: message })], message);
  }

  private protocolError(reason: string): void {
    this.counts.protocolErrors++;
    this.m.protocolErrors.inc({ reason });
  }

  /** Sends the final replies regardless of the buffer limit (one small frame), then ends. */
  private close(conn: Connection, replies: Uint8Array[], reason: string): void {
    conn.closing = true;
    this.log.info({ producerId: conn.session.producerId, reason }, 'closing producer connection');
    if (replies.length > 0) conn.socket.end(lengthPrefixed(concatFrame(replies)));
    else conn.socket.end();
    setTimeout(() => conn.socket.destroy(), this.opts.closeGraceMs).unref();
  }

  private reply(conn: Connection, replies: Uint8Array[]): void {
    const socket = conn.socket;
    if (socket.writableLength > this.opts.replyBufferBytes || !socket.writable) {
      this.counts.repliesDropped += replies.length;
      this.m.repliesDropped.inc(replies.length);
      return;
    }
    socket.write(lengthPrefixed(replies.length === 1 ? replies[0] : concatFrame(replies)));
  }
}

/** Removes a socket file nobody listens on; refuses to touch a live socket or a non-socket. */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (!isSocket) throw new Error(`ingest unix: ${path} exists and is not a socket; refusing to replace it`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ path });
    const done = (answer: boolean) => { probe.destroy(); resolve(answer); };
    probe.once('connect', () => done(true));
    probe.once('error', () => done(false));
    probe.setTimeout(500, () => done(false));
  });
  if (live) throw new Error(`ingest unix: another process is listening on ${path}`);
  rmSync(path, { force: true });
}

interface BoundMetrics {
  open: { inc(): void; dec(): void };
  accepted: { inc(): void };
  refused: { inc(): void };
  frames: { inc(): void };
  bytes: { inc(n: number): void };
  repliesDropped: { inc(n: number): void };
  protocolErrors: { inc(labels: { reason: string }): void };
}

/**
 * The TCP and Unix servers of one actor share a registry, so each family is created
 * once and the transport label is bound per server (a bound child also spares the hot
 * path the label lookup).
 */
function bindMetrics(registry: Registry, transport: StreamTransport): BoundMetrics {
  const get = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
  const labelNames = ['transport'] as const;
  const open = get('ringcast_ingest_connections', () => new Gauge({ name: 'ringcast_ingest_connections', help: 'Open producer stream connections', labelNames, registers: [registry] }));
  const conns = get('ringcast_ingest_connections_total', () => new Counter({ name: 'ringcast_ingest_connections_total', help: 'Producer stream connections, by outcome (accepted, refused at maxConnections or the per-address pre-auth limit)', labelNames: ['transport', 'outcome'], registers: [registry] }));
  const frames = get('ringcast_ingest_frames_total', () => new Counter({ name: 'ringcast_ingest_frames_total', help: 'Length-prefixed frames read from producer streams', labelNames, registers: [registry] }));
  const bytes = get('ringcast_ingest_stream_bytes_total', () => new Counter({ name: 'ringcast_ingest_stream_bytes_total', help: 'Bytes read from producer streams, length prefixes included', labelNames, registers: [registry] }));
  const dropped = get('ringcast_ingest_replies_dropped_total', () => new Counter({ name: 'ringcast_ingest_replies_dropped_total', help: 'Reply events (Ack/Error) not sent because the producer was not reading them', labelNames, registers: [registry] }));
  const errors = get('ringcast_ingest_protocol_errors_total', () => new Counter({ name: 'ringcast_ingest_protocol_errors_total', help: 'Producer stream connections closed for a protocol error, by reason (frame_length, no_hello, auth, internal, hello_timeout, preauth_too_large)', labelNames: ['transport', 'reason'], registers: [registry] }));
  return {
    open: open.labels({ transport }),
    accepted: conns.labels({ transport, outcome: 'accepted' }),
    refused: conns.labels({ transport, outcome: 'refused' }),
    frames: frames.labels({ transport }),
    bytes: bytes.labels({ transport }),
    repliesDropped: dropped.labels({ transport }),
    protocolErrors: { inc: ({ reason }) => errors.inc({ transport, reason }) },
  };
}
