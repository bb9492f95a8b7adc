/**
 * Ingest actor: trainers and other producers on the same machine (or network) connect
 * over TCP or a Unix socket and stream length-prefixed binary frames (event-codec.ts);
 * accepted events go into the `ingest.net` ring for the aggregator.
 *
 * Why a dedicated thread and not the gateways: stream producers are few and long-lived
 * but heavy (hundreds of thousands of metric events per second), and their decode cost
 * must not delay WebSocket fan-out to viewers. One thread owns both listeners, so the ring
 * keeps its single producer.
 *
 * RPC: `address()` → `{ tcpPort, unixPath }` (the bound port when tcpPort was 0; -1 / ''
 * when that listener is off), `stats()` → per-transport counters plus the ring's stats.
 */
import { defineActor } from '../../shared/actor.js';
import type { RecordRing } from '../../shared/record-ring.js';
import type { DecodeLimits } from '../../shared/telemetry/event-codec.js';
import { IngestAcceptor } from './acceptor.js';
import { StreamIngestServer, type StreamServerStats } from './socket-server.js';

export interface IngestOptions {
  /** Ring the accepted events go to (`ingest.net`). */
  ring: string;
  /** TCP listen address, e.g. '127.0.0.1' or '0.0.0.0'. */
  host: string;
  /** -1 disables TCP, 0 picks a free port (see address()). */
  tcpPort: number;
  /** '' disables the Unix socket. */
  unixPath: string;
  /** Ingest token producers present in their hello (at least 8 characters). */
  token: string;
  maxFrameBytes: number;
  /** Per transport. */
  maxConnections: number;
  /** Pre-auth budget (socket-server.ts): hello deadline, first-frame cap, unauthenticated connections per address. */
  helloTimeoutMs?: number;
  preAuthMaxBytes?: number;
  maxPreAuthPerAddress?: number;
  limits?: DecodeLimits;
  /**
   * First producer id of this actor; TCP sessions number from here, Unix sessions from
   * here + 2^24, so ids stay unique across the threads writing ingest rings. Default 2^28.
   */
  producerIdBase?: number;
}

export interface IngestAddress {
  tcpPort: number;
  unixPath: string;
}

export interface IngestStats {
  transports: StreamServerStats[];
  ring: ReturnType<RecordRing['stats']>;
}

const DEFAULT_PRODUCER_ID_BASE = 1 << 28;

export default defineActor<IngestOptions>({
  async start(ctx) {
    const o = ctx.options;
    const ring = ctx.out[o.ring] as RecordRing | undefined;
    if (!ring) throw new Error(`ingest: ring "${o.ring}" is not among this actor's out rings (${Object.keys(ctx.out).join(', ') || 'none'})`);
    if (typeof o.token !== 'string' || o.token.length < 8) {
      throw new Error('ingest: a token of at least 8 characters is required (auth.ingestToken); without one every producer would be refused');
    }
    const base = o.producerIdBase ?? DEFAULT_PRODUCER_ID_BASE;
    const make = (transport: 'tcp' | 'unix', producerIdBase: number) => new StreamIngestServer({
      transport,
      acceptor: new IngestAcceptor({ ring, token: o.token, transport, producerIdBase, metrics: ctx.metrics, limits: o.limits }),
      maxFrameBytes: o.maxFrameBytes,
      maxConnections: o.maxConnections,
      helloTimeoutMs: o.helloTimeoutMs,
      preAuthMaxBytes: o.preAuthMaxBytes,
      maxPreAuthPerAddress: o.maxPreAuthPerAddress,
      metrics: ctx.metrics,
      log: ctx.log,
    });

    const servers: StreamIngestServer[] = [];
    const address: IngestAddress = { tcpPort: -1, unixPath: '' };
    try {
      if (o.tcpPort >= 0) {
        const tcp = make('tcp', base);
        servers.push(tcp);
        address.tcpPort = await tcp.listenTcp(o.host, o.tcpPort);
      }
      if (o.unixPath) {
        const unix = make('unix', base + (1 << 24));
        servers.push(unix);
        await unix.listenUnix(o.unixPath);
        address.unixPath = o.unixPath;
      }
    } catch (error) {
      await Promise.all(servers.map((s) => s.stop(0)));
      throw error;
    }
    if (servers.length === 0) ctx.log.warn('ingest: both TCP and Unix listeners are disabled; this actor accepts nothing');
    ctx.log.info({ ...address, host: o.host }, 'ingest listening');

    const stats = (): IngestStats => ({ transports: servers.map((s) => s.stats()), ring: ring.stats() });
    return {
      api: {
        address: (): IngestAddress => ({ ...address }),
        stats,
      },
      async stop() {
        await Promise.all(servers.map((s) => s.stop()));
        ring.flush(); // the acceptor publishes per frame; this is only a safety net
        const final = stats();
        ctx.log.info(final, 'ingest stopped');
        return final;
      },
    };
  },
});
