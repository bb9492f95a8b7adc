/**
 * The recording routes that stream, served on the gateway threads rather than forwarded:
 *   GET /api/recordings/:run/events?from_step=&to_step=&from_time=&to_time=&format=ndjson|binary
 *   GET /api/recordings/:run/metrics.csv?from_step=&to_step=&from_time=&to_time=
 *
 * Why here: a recording can be far larger than any one reply should be in memory, and
 * forwarded routes answer with one whole body from the main thread. A gateway reads the
 * segment files itself in bounded chunks (shared/recording/reader.ts) and writes the
 * reply through uWS with its backpressure (Exchange.stream): a slow client slows the
 * reading, it never grows a buffer. The main thread never touches the bytes.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { RUN_NAME_RULE, isValidRunName } from '../../shared/telemetry/run-name.js';
import { binaryFrame, csvRow, metricsOf, ndjsonLine } from '../../shared/recording/export.js';
import { listSegments, runRecords, type RecordRange } from '../../shared/recording/reader.js';
import type { BodyStream, Exchange, UwsRoutes } from '../../shared/uws-routes.js';
import type { GatewayMetrics } from './gateway-metrics.js';
import { replyJson } from './http-io.js';

/** Bytes gathered before a write: big enough to amortise, small enough to bound memory. */
const CHUNK_BYTES = 64 * 1024;
/** Streams a gateway thread serves at once (each holds a read chunk and a file handle). */
const MAX_STREAMS = 8;
/** Metric columns in one CSV at most; how many more were left out is in the X-Columns-Omitted header. */
const MAX_CSV_COLUMNS = 4096;

const FORMATS = { ndjson: 'application/x-ndjson; charset=utf-8', binary: 'application/octet-stream' } as const;
type Format = keyof typeof FORMATS;

export interface RecordingsEndpointOptions {
  routes: UwsRoutes;
  dir: string;
  metrics: GatewayMetrics;
  log: Logger;
}

type Parsed = { ok: true; run: string; dir: string; range: RecordRange } | { ok: false; status: number; error: string };

function parseStep(query: URLSearchParams, name: string): number | undefined | string {
  const raw = query.get(name);
  if (raw === null || raw === '') return undefined;
  const n = Number(raw);
  return Number.isFinite(n) ? n : `${name} must be a number (got ${JSON.stringify(raw.slice(0, 40))})`;
}

/** ms since the epoch, or an ISO 8601 date-time. */
function parseTime(query: URLSearchParams, name: string): number | undefined | string {
  const raw = query.get(name);
  if (raw === null || raw === '') return undefined;
  const n = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : /^\d{4}-\d{2}-\d{2}T/.test(raw) ? Date.parse(raw) : Number.NaN;
  return Number.isFinite(n) ? n : `${name} must be ms since the epoch or an ISO 8601 date-time (got ${JSON.stringify(raw.slice(0, 40))})`;
}

async function parse(exchange: Exchange, root: string): Promise<Parsed> {
  let run: string;
  try {
    run = decodeURIComponent(exchange.request.params[0] ?? '');
  } catch {
    return { ok: false, status: 400, error: 'malformed URL encoding in the run name' };
  }
  if (!isValidRunName(run)) return { ok: false, status: 400, error: `bad run name: ${RUN_NAME_RULE}` };
  const query = new URLSearchParams(exchange.request.query);
  const fromStep = parseStep(query, 'from_step');
  const toStep = parseStep(query, 'to_step');
  if (typeof fromStep === 'string') return { ok: false, status: 400, error: fromStep };
  if (typeof toStep === 'string') return { ok: false, status: 400, error: toStep };
  if (fromStep !== undefined && toStep !== undefined && fromStep > toStep) return { ok: false, status: 400, error: `from_step (${fromStep}) is after to_step (${toStep})` };
  const fromTime = parseTime(query, 'from_time');
  const toTime = parseTime(query, 'to_time');
  if (typeof fromTime === 'string') return { ok: false, status: 400, error: fromTime };
  if (typeof toTime === 'string') return { ok: false, status: 400, error: toTime };
  if (fromTime !== undefined && toTime !== undefined && fromTime > toTime) return { ok: false, status: 400, error: 'from_time is after to_time' };
  const dir = join(root, run);
  if ((await listSegments(dir)).length === 0) return { ok: false, status: 404, error: `no recording of run ${JSON.stringify(run)}` };
  return { ok: true, run, dir, range: { fromStep, toStep, fromTime, toTime } };
}

/** `?format=` wins; else an Accept naming one of the types; else NDJSON. */
function formatOf(exchange: Exchange): Format | { error: string } {
  const asked = new URLSearchParams(exchange.request.query).get('format');
  if (asked !== null) return asked in FORMATS ? (asked as Format) : { error: `format must be one of ${Object.keys(FORMATS).join(', ')} (got ${JSON.stringify(asked.slice(0, 40))})` };
  const accept = exchange.request.headers.accept ?? '';
  if (/application\/octet-stream/i.test(accept) && !/application\/x-ndjson/i.test(accept)) return 'binary';
  return 'ndjson';
}

export function registerRecordingsEndpoint(o: RecordingsEndpointOptions): void {
  let streams = 0;
  const count = (route: string, outcome: string) => o.metrics.httpRequests.inc({ route, outcome });

  /** Runs `body` with a stream slot; answers 4xx/503 itself when it cannot start. */
  const serve = async (exchange: Exchange, route: string, body: (p: Extract<Parsed, { ok: true }>) => Promise<void>) => {
    if (streams >= MAX_STREAMS) {
      count(route, 'busy');
      exchange.reply(503, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '1' }, JSON.stringify({ error: `${MAX_STREAMS} recording streams are open on this thread; try again` }));
      return;
    }
    streams++;
    try {
      const p = await parse(exchange, o.dir);
      if (!p.ok) {
        count(route, 'client_error');
        replyJson(exchange, p.status, { error: p.error });
        return;
      }
      await body(p);
      count(route, exchange.aborted ? 'aborted' : 'ok');
    } catch (error) {
      count(route, 'error');
      o.log.warn({ err: (error as Error)?.message, route }, 'recording stream failed');
      // Unanswered: a 500. Mid-stream: the body simply ends early (the status is sent already).
      replyJson(exchange, 500, { error: 'reading the recording failed' });
    } finally {
      streams--;
    }
  };

  /** Gathers pieces into CHUNK_BYTES writes; false once the client is gone. */
  const chunker = (stream: BodyStream) => {
    let parts: Array<string | Uint8Array> = [];
    let size = 0;
    const flush = async () => {
      if (parts.length === 0) return true;
      const chunk = parts.every((p) => typeof p === 'string') ? parts.join('') : Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
      parts = [];
      size = 0;
      return stream.write(chunk);
    };
    return {
      async add(piece: string | Uint8Array): Promise<boolean> {
        parts.push(piece);
        size += piece.length;
        return size >= CHUNK_BYTES ? flush() : true;
      },
      flush,
    };
  };

  o.routes.get('/api/recordings/:run/events', (exchange) => serve(exchange, 'recording_events', async (p) => {
    const format = formatOf(exchange);
    if (typeof format !== 'string') {
      count('recording_events', 'client_error');
      replyJson(exchange, 400, { error: format.error });
      return;
    }
    const stream = exchange.stream(200, { 'content-type': FORMATS[format], 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    if (!stream) return;
    const out = chunker(stream);
    try {
      for await (const r of runRecords(p.dir, p.range, exchange.signal)) {
        if (!(await out.add(format === 'binary' ? binaryFrame(r) : ndjsonLine(p.run, r)))) return;
      }
      await out.flush();
    } finally {
      stream.end();
    }
  }));

  o.routes.get('/api/recordings/:run/metrics.csv', (exchange) => serve(exchange, 'recording_csv', async (p) => {
    // Two passes: the header needs every metric name in the range before the first row.
    const columns = new Map<string, number>();
    let omitted = 0;
    for await (const r of runRecords(p.dir, p.range, exchange.signal)) {
      const m = metricsOf(r);
      if (!m) continue;
      for (const name of m.names) {
        if (columns.has(name)) continue;
        if (columns.size < MAX_CSV_COLUMNS) columns.set(name, columns.size);
        else omitted++;
      }
    }
    if (exchange.done) return;
    const headers: Record<string, string> = {
      'content-type': 'text/csv; charset=utf-8; header=present',
      'content-disposition': `attachment; filename="${p.run}-metrics.csv"`,
      'cache-control': 'no-store',
    };
    if (omitted > 0) headers['x-columns-omitted'] = String(omitted);
    const stream = exchange.stream(200, headers);
    if (!stream) return;
    const out = chunker(stream);
    try {
      if (!(await out.add(csvRow(['step', 'time', ...columns.keys()])))) return;
      const row: string[] = new Array(columns.size + 2);
      for await (const r of runRecords(p.dir, p.range, exchange.signal)) {
        const m = metricsOf(r);
        if (!m) continue;
        row.fill('');
        row[0] = Number.isNaN(r.step) ? '' : String(r.step);
        row[1] = r.time <= 8.64e15 ? new Date(r.time).toISOString() : String(r.time);
        m.names.forEach((name, i) => {
          const c = columns.get(name);
          if (c !== undefined) row[c + 2] = String(m.values[i]);
        });
        if (!(await out.add(csvRow(row)))) return;
      }
      await out.flush();
    } finally {
      stream.end();
    }
  }));
}
