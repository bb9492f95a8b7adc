/**
 * Where a delta subscriber's bytes go: the real service (in this process, 1 gateway thread)
 * with one full and one delta `/ws` client on metrics, attention and predictions at
 * intermediate, max_fps 10, counting payload bytes per message type (deltas by their key's
 * type) over a window. Two feeds:
 *
 *   demo   the built-in demo trainer (`--demo`, its default rates): what the overlay pages
 *          show on a fresh ringcast;
 *   bench  the fan-out bench's feed (bench/fanout/payloads.ts tickData at 10 Hz, written into
 *          the ingest ring as the fan-out bench does): every tick a fresh random heatmap, new
 *          top-move probabilities and new metric values, the worst case for deltas.
 *
 *   node dist/bench/delta-bytes.js [demo|bench|both] [measureSeconds=10] [level=intermediate]
 *
 * Prints, as the last line of stdout, one JSON object: per feed, per type, messages per second
 * and bytes per message of the full and the delta client, and bytes_per_sec (per client).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { loadConfig } from '../src/shared/config.js';
import { createLogger } from '../src/shared/logger.js';
import { startService, type Service } from '../src/service.js';
import type { RecordRing } from '../src/shared/record-ring.js';
import { writeIngestRecord } from '../src/shared/telemetry/ring-records.js';
import { ingestEvents, tickData, SUBSCRIBED_CHANNELS, CLIENT_LEVEL, TICK_MS } from './fanout/payloads.js';
import { LEVELS, type Level } from '../src/shared/telemetry/channels.js';

type Feed = 'demo' | 'bench';

interface Tally { messages: number; bytes: number }

class Counting {
  readonly byType = new Map<string, Tally>();
  /** Message type by the version this client holds (a delta names its base version, not its key). */
  private readonly typeAt = new Map<number, string>();
  counting = false;
  constructor(readonly ws: WebSocket) {
    ws.on('message', (raw) => {
      const text = String(raw);
      const msg = JSON.parse(text) as { type: string; seq?: number; s?: number; b?: number };
      // A delta: version s, made from version s - b.
      const base = msg.type === 'delta' ? (msg.s ?? 0) - (msg.b ?? 0) : -1;
      const held = msg.type === 'delta' ? this.typeAt.get(base) : msg.type;
      this.typeAt.delete(base);
      const seq = msg.type === 'delta' ? msg.s : msg.seq;
      if (typeof seq === 'number' && held !== undefined) this.typeAt.set(seq, held);
      if (!this.counting) return;
      const type = msg.type === 'delta' ? `${held ?? 'unknown'} (delta)` : msg.type;
      const t = this.byType.get(type) ?? { messages: 0, bytes: 0 };
      t.messages++;
      t.bytes += Buffer.byteLength(text);
      this.byType.set(type, t);
    });
  }

  static async open(port: number, delta: boolean, level: Level): Promise<Counting> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const c = new Counting(ws);
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
    ws.send(JSON.stringify({ channels: [...SUBSCRIBED_CHANNELS], level, max_fps: 10, ...(delta ? { delta: true } : {}) }));
    return c;
  }

  report(seconds: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    let bytes = 0;
    for (const [type, t] of [...this.byType].sort()) {
      out[type] = { per_sec: +(t.messages / seconds).toFixed(2), bytes_per_message: Math.round(t.bytes / t.messages) };
      bytes += t.bytes;
    }
    out.bytes_per_sec = Math.round(bytes / seconds);
    return out;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function measureFeed(feed: Feed, measureSeconds: number, level: Level = CLIENT_LEVEL, warmupSeconds = 12): Promise<{ full: Record<string, unknown>; delta: Record<string, unknown> }> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ringcast-delta-bytes-'));
  const config = loadConfig([feed === 'demo' ? '--demo' : '--no-demo', '--port', '0', '--fanout-threads', '1', '--log-level', 'warn',
    '--ingest-tcp-port=-1', '--ingest-unix-path=', '--data-dir', dataDir], {});
  const service: Service = await startService(config, createLogger(config.logLevel));
  let timer: NodeJS.Timeout | undefined;
  try {
    if (feed === 'bench') {
      const ring = service.supervisor.ring<RecordRing>('ingest.main');
      let tick = 0;
      const write = () => {
        const stamp = Date.now();
        for (const e of ingestEvents(tickData(tick++), stamp)) writeIngestRecord(ring, stamp, 0xbe4c, 'bench-fanout', e, 0, e.byteLength, false);
        ring.flush();
      };
      for (let i = 0; i < config.aggregate.seriesPoints; i++) write();
      timer = setInterval(write, TICK_MS);
    }
    const full = await Counting.open(service.port, false, level);
    const delta = await Counting.open(service.port, true, level);
    // The demo's series fill in over 10 s (10 updates/s, 100 points kept): measure full-size messages.
    await sleep(warmupSeconds * 1000);
    full.counting = delta.counting = true;
    await sleep(measureSeconds * 1000);
    full.counting = delta.counting = false;
    full.ws.terminate();
    delta.ws.terminate();
    return { full: full.report(measureSeconds), delta: delta.report(measureSeconds) };
  } finally {
    if (timer) clearInterval(timer);
    await service.stop('delta-bytes done');
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (/delta-bytes\.js$/.test(process.argv[1] ?? '')) {
  const which = process.argv[2] ?? 'both';
  const seconds = Number(process.argv[3] ?? 10);
  const level = (process.argv[4] ?? CLIENT_LEVEL) as Level;
  if (!['demo', 'bench', 'both'].includes(which) || !(seconds > 0) || !LEVELS.includes(level)) {
    console.error(`usage: node dist/bench/delta-bytes.js [demo|bench|both] [measureSeconds > 0] [${LEVELS.join('|')}]`);
    process.exit(2);
  }
  const feeds: Feed[] = which === 'both' ? ['demo', 'bench'] : [which as Feed];
  const out: Record<string, unknown> = {};
  for (const f of feeds) out[f] = await measureFeed(f, seconds, level);
  // One line, last: the service's own log lines may come before it on stdout.
  console.log(JSON.stringify(out));
  process.exit(0);
}
