/**
 * Producer input on a gateway thread: the `/ingest` WebSocket (one binary message = one
 * frame) and POST `/api/ingest` (a binary frame or a JSON batch). Judging the events is
 * the IngestAcceptor's job; here we only move bytes and replies and enforce auth at the door.
 */
import type { WebSocket } from 'uWebSockets.js';
import { IngestAcceptor, type AcceptResult, type ProducerSession } from '../ingest/acceptor.js';
import { encodeEvent, EventKind } from '../../shared/telemetry/event-codec.js';
import type { UwsRoutes } from '../../shared/uws-routes.js';
import type { GatewayMetrics, DisconnectReason } from './gateway-metrics.js';
import { replyJson, requestToken } from './http-io.js';
import type { UwsHandles } from './uws-lifecycle.js';

/** Close code for a producer whose authentication failed (policy violation). */
export const CLOSE_POLICY = 1008;

export interface IngestSocketData {
  readonly endpoint: 'ingest';
  readonly token?: string;
  readonly run?: string;
  session?: ProducerSession;
  closeReason?: DisconnectReason;
}

export interface IngestEndpointOptions {
  routes: UwsRoutes;
  acceptor: IngestAcceptor;
  httpAcceptor: IngestAcceptor;
  maxFrameBytes: number;
  handles: UwsHandles;
  metrics: GatewayMetrics;
  /** True once the gateway is stopping: closes from then on count as `shutdown`. */
  stopping: () => boolean;
}

const TEXT_ERROR = encodeEvent(EventKind.Error, { error: 'text messages are not accepted on /ingest: send binary frames of events (see event-codec)' }, undefined, { timestamp: 0 });

export function registerIngestEndpoints(o: IngestEndpointOptions): void {
  const { routes, acceptor, metrics } = o;
  const sendReplies = (ws: WebSocket<IngestSocketData>, result: AcceptResult) => {
    for (const r of result.replies) ws.send(r, true);
  };

  routes.ws<IngestSocketData>('/ingest', {
    maxPayloadLength: o.maxFrameBytes,
    // Replies are small; a producer that never reads them is bounded here (uWS drops past it).
    maxBackpressure: 1024 * 1024,
    idleTimeout: 120,
    sendPingsAutomatically: true,
    upgrade(request) {
      const query = new URLSearchParams(request.query);
      const token = requestToken(request.headers.authorization || undefined, query);
      const run = query.get('run') ?? undefined;
      if (token !== undefined && !acceptor.tokenMatches(token)) {
        metrics.disconnects.inc({ endpoint: 'ingest', reason: 'auth' });
        return { refuse: { status: 401, error: 'wrong ingest token' } };
      }
      if (run !== undefined && !IngestAcceptor.validRun(run)) {
        metrics.protocolErrors.inc({ endpoint: 'ingest' });
        return { refuse: { status: 400, error: 'run must be 1-128 characters of letters, digits, "_", ".", ":" or "-", starting with a letter or digit' } };
      }
      // No token at all is allowed: the first message must then be a hello carrying it.
      return { accept: { endpoint: 'ingest', token, run } };
    },
    open(ws) {
      o.handles.add(ws as WebSocket<unknown>);
      const data = ws.getUserData();
      data.session = acceptor.openSession({ run: data.run, token: data.token });
      metrics.clients.inc({ endpoint: 'ingest' });
    },
    message(ws, message, isBinary) {
      const data = ws.getUserData();
      if (!data.session || data.closeReason) return;
      if (!isBinary) {
        metrics.protocolErrors.inc({ endpoint: 'ingest' });
        ws.send(TEXT_ERROR, true);
        return;
      }
      // The acceptor copies accepted events into the ring before returning, so a view is enough.
      const result = acceptor.acceptFrame(data.session, new Uint8Array(message));
      sendReplies(ws, result);
      if (result.fatal) {
        data.closeReason = result.fatal.includes('auth') ? 'auth' : 'fatal';
        ws.end(CLOSE_POLICY, result.fatal.slice(0, 120));
      }
    },
    close(ws) {
      o.handles.delete(ws as WebSocket<unknown>);
      const data = ws.getUserData();
      if (data.session) acceptor.closeSession(data.session);
      data.session = undefined;
      metrics.clients.dec({ endpoint: 'ingest' });
      metrics.disconnects.inc({ endpoint: 'ingest', reason: data.closeReason ?? (o.stopping() ? 'shutdown' : 'client') });
    },
  });

  routes.post('/api/ingest', async (exchange) => {
    const query = new URLSearchParams(exchange.request.query);
    const token = requestToken(exchange.request.headers.authorization || undefined, query);
    const contentType = (exchange.request.headers['content-type'] ?? '').toLowerCase();
    if (!o.httpAcceptor.tokenMatches(token)) {
      // Refused before reading the body, so the connection is closed rather than reused.
      metrics.httpRequests.inc({ route: 'ingest', outcome: 'client_error' });
      replyJson(exchange, 401, { error: 'missing or wrong ingest token (Authorization: Bearer <token>)' }, true);
      return;
    }
    const result = await exchange.body();
    if (!result.ok) {
      metrics.httpRequests.inc({ route: 'ingest', outcome: 'too_large' });
      replyJson(exchange, 413, { error: `request body exceeds ${result.tooLarge} bytes` }, true);
      return;
    }
    const body = result.body;
    const session = o.httpAcceptor.openSession({ run: query.get('run') ?? undefined, token });
    let accepted: AcceptResult;
    try {
      if (contentType.startsWith('application/json')) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
        } catch (error) {
          metrics.httpRequests.inc({ route: 'ingest', outcome: 'client_error' });
          replyJson(exchange, 400, { accepted: 0, rejected: 0, errors: [{ index: -1, error: `body is not valid JSON: ${(error as Error).message}` }] });
          return;
        }
        accepted = o.httpAcceptor.acceptJson(session, parsed);
      } else {
        accepted = o.httpAcceptor.acceptFrame(session, body);
      }
    } finally {
      o.httpAcceptor.closeSession(session);
    }
    const bad = accepted.accepted === 0 && accepted.errors.length > 0;
    metrics.httpRequests.inc({ route: 'ingest', outcome: bad ? 'client_error' : 'ok' });
    replyJson(exchange, bad ? 400 : 200, { accepted: accepted.accepted, rejected: accepted.errors.length, errors: accepted.errors });
  }, { maxBodyBytes: o.maxFrameBytes });
}
