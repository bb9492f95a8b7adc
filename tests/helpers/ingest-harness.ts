/** Shared set-up for the ingest actor and SDK tests: a Supervisor running only the ingest actor, and ring readers. */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Supervisor } from '../../src/supervisor/supervisor.js';
import type { RecordRing } from '../../src/shared/record-ring.js';
import { decodeEvent, decodeFrame, type TelemetryEvent } from '../../src/shared/telemetry/event-codec.js';
import { readIngestRecord } from '../../src/shared/telemetry/ring-records.js';
import { StreamFramer } from '../../src/actors/ingest/stream-framer.js';
import type { IngestAddress, IngestOptions } from '../../src/actors/ingest/index.js';
import { capturingLogger } from './supervisor-harness.js';

export const TOKEN = 'test-ingest-token';
export const ingestModule = new URL('../../src/actors/ingest/index.ts', import.meta.url);

export interface IngestRig {
  supervisor: Supervisor;
  ring: RecordRing;
  address: IngestAddress;
  dir: string;
  /** Every record read from the ring so far, decoded. */
  records: Array<{ run: string; producerId: number; event: TelemetryEvent }>;
  drain(): void;
  stop(): Promise<void>;
}

export async function startIngest(overrides: Partial<IngestOptions> = {}, unix = true): Promise<IngestRig> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ringcast-ingest-'));
  const options: IngestOptions = {
    ring: 'ingest.net', host: '127.0.0.1', tcpPort: 0, unixPath: unix ? path.join(dir, 'ingest.sock') : '',
    token: TOKEN, maxFrameBytes: 1 << 20, maxConnections: 8, ...overrides,
  };
  const supervisor = new Supervisor({
    strategy: 'one_for_one', intensity: 20, periodMs: 10_000, backoff: { initialMs: 10, maxMs: 100 },
    heartbeatIntervalMs: 50, hangTimeoutMs: 2_000, logLevel: 'warn',
    rings: { 'ingest.net': { kind: 'record', capacityBytes: 1 << 20, policy: 'drop-newest' } },
    actors: [{ name: 'ingest', module: ingestModule, out: ['ingest.net'], options }],
  }, capturingLogger().logger);
  await supervisor.start();
  const ring = supervisor.ring<RecordRing>('ingest.net');
  const address = (await supervisor.call('ingest', 'address')) as IngestAddress;
  const records: IngestRig['records'] = [];
  const drain = () => {
    ring.poll((data, offset, length) => {
      const r = readIngestRecord(data, offset, length);
      records.push({ run: r.run, producerId: r.producerId, event: decodeEvent(data.slice(r.eventOffset, r.eventOffset + r.eventLength)) });
    });
  };
  return {
    supervisor, ring, address, dir, records, drain,
    async stop() {
      await supervisor.stop(3_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A raw stream client: sends length-prefixed frames, collects the server's reply events and whether it closed. */
export interface RawClient {
  socket: net.Socket;
  replies: TelemetryEvent[];
  closed: boolean;
  send(bytes: Uint8Array): void;
}

export function rawClient(target: { port: number } | { path: string }): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = net.connect('port' in target ? { host: '127.0.0.1', port: target.port } : { path: target.path });
    const framer = new StreamFramer(1 << 20);
    const client: RawClient = {
      socket, replies: [], closed: false,
      send: (bytes) => { socket.write(bytes); },
    };
    socket.on('data', (chunk) => framer.push(chunk, (frame) => decodeFrame(frame.slice(), (e) => client.replies.push(e), () => {})));
    socket.on('error', () => { /* resets after a refusal are expected */ });
    socket.on('close', () => { client.closed = true; });
    socket.once('connect', () => resolve(client));
    socket.once('error', reject);
  });
}
