/**
 * Producer input on a gateway thread: the `/ingest` WebSocket (one binary message = one
 * frame) and POST `/api/ingest` (a binary frame or a JSON batch). Judging the events is
 * the IngestAcceptor's job; here we only move bytes and replies and enforce auth at the door.
 *
 * Pre-auth budget on `/ingest`: uWS buffers a whole message (up to the route's
 * maxPayloadLength) before we see any of it, and that limit is fixed per route, not per
 * socket. So `/ingest` is served by two behaviours: an upgrade that presents the token
 * (Authorization: Bearer or ?token=) is checked at the door and gets maxFrameBytes; one
 * without a token is passed on to a second behaviour whose messages are capped at
 * preAuth.maxBytes — uWS refuses a larger declared length on the frame header, before
 * buffering it. Those connections must also send a valid hello within preAuth.helloTimeoutMs,
 * and one remote address may hold at most preAuth.maxPerAddress of them on this thread.
 * POST /api/ingest checks the token before reading the body, so it needs no more.
 */
import type { WebSocket } from 'uWebSockets.js';
import type { AcceptResult, IngestAcceptor, ProducerSession } from '../ingest/acceptor.js';
import { encodeEvent, EventKind } from '../../shared/telemetry/event-codec.js';
import { runNameProblem } from '../../shared/telemetry/run-name.js';
import type { RequestHead, SocketBehavior, UpgradeDecision, UwsRoutes } from '../../shared/uws-routes.js';
import type { GatewayMetrics, DisconnectReason } from './gateway-metrics.js';
import { readBodyOr413, replyJson, requestToken } from './http-io.js';
import type { PreAuthOptions } from './options.js';
import type { UwsHandles } from './uws-lifecycle.js';

/** Close code for a producer whose authentication failed (policy violation). */
export const CLOSE_POLICY = 1008;

export const DEFAULT_PREAUTH: PreAuthOptions = { helloTimeoutMs: 5000, maxBytes: 64 * 1024, maxPerAddress: 64 };

/** What uWS says when it closes a socket whose message exceeded maxPayloadLength. */
const TOO_BIG_MESSAGE = 'Received too big message';

export interface IngestSocketData {
  readonly endpoint: 'ingest';
  readonly token?: string;
  readonly run?: string;
  /** Remote address of a connection that has not authenticated yet (pre-auth route only). */
  readonly preAuthAddress?: string;
  session?: ProducerSession;
  closeReason?: DisconnectReason;
  /** Pending hello deadline; undefined once authenticated or closed. */
  helloTimer?: NodeJS.Timeout;
  /** Counted against the per-address pre-auth budget until authenticated or closed. */
  countedPreAuth?: boolean;
  closed?: boolean;
}

export interface IngestEndpointOptions {
  routes: UwsRoutes;
  acceptor: IngestAcceptor;
  httpAcceptor: IngestAcceptor;
  maxFrameBytes: number;
  preAuth?: PreAuthOptions;
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

  const preAuth: PreAuthOptions = { ...DEFAULT_PREAUTH, ...o.preAuth };
  const preAuthMaxBytes = Math.min(preAuth.maxBytes, o.maxFrameBytes);
  const preAuthByAddress = new Map<string, number>();

  /** Authenticated or gone: the socket stops counting against the pre-auth budget. */
  const leavePreAuth = (data: IngestSocketData) => {
    if (data.helloTimer !== undefined) clearTimeout(data.helloTimer);
    data.helloTimer = undefined;
    if (!data.countedPreAuth || data.preAuthAddress === undefined) return;
    data.countedPreAuth = false;
    const left = (preAuthByAddress.get(data.preAuthAddress) ?? 1) - 1;
    if (left > 0) preAuthByAddress.set(data.preAuthAddress, left);
    else preAuthByAddress.delete(data.preAuthAddress);
  };

  const refuse = (status: number, error: string, reason: string): UpgradeDecision<IngestSocketData> => {
    acceptor.countRefusal(reason);
    if (reason === 'auth') metrics.disconnects.inc({ endpoint: 'ingest', reason: 'auth' });
    else metrics.protocolErrors.inc({ endpoint: 'ingest' });
    return { refuse: { status, error } };
  };

  /** The token and run an upgrade presents; a bad run name is refused here. */
  const readUpgrade = (request: RequestHead): { token?: string; run?: string } | UpgradeDecision<IngestSocketData> => {
    const query = new URLSearchParams(request.query);
    const run = query.get('run') ?? undefined;
    const problem = run === undefined ? undefined : runNameProblem(run);
    if (problem !== undefined) return refuse(400, `run: ${problem}`, 'malformed');
    return { token: requestToken(request.headers.authorization || undefined, query), run };
  };
  const isDecision = (x: object): x is UpgradeDecision<IngestSocketData> => 'refuse' in x || 'accept' in x || 'pass' in x;

  const behaviour = (maxPayloadLength: number, upgrade: SocketBehavior<IngestSocketData>['upgrade']): SocketBehavior<IngestSocketData> => ({
    maxPayloadLength,
    // Replies are small; a producer that never reads them is bounded here (uWS drops past it).
    maxBackpressure: 1024 * 1024,
    idleTimeout: 120,
    sendPingsAutomatically: true,
    upgrade,
    open(ws) {
      o.handles.add(ws as WebSocket<unknown>);
      const data = ws.getUserData();
      data.session = acceptor.openSession({ run: data.run, token: data.token });
      metrics.clients.inc({ endpoint: 'ingest' });
      if (data.session.authenticated) return;
      if (data.preAuthAddress !== undefined) {
        preAuthByAddress.set(data.preAuthAddress, (preAuthByAddress.get(data.preAuthAddress) ?? 0) + 1);
        data.countedPreAuth = true;
      }
      data.helloTimer = setTimeout(() => {
        data.helloTimer = undefined;
        if (data.closed || data.closeReason || data.session?.authenticated) return;
        acceptor.countRefusal('hello_timeout');
        data.closeReason = 'auth';
        ws.send(encodeEvent(EventKind.Error, { error: `no hello within ${preAuth.helloTimeoutMs} ms: send a hello event with the ingest token first (or connect with Authorization: Bearer <token>)` }), true);
        ws.end(CLOSE_POLICY, 'no hello in time');
      }, preAuth.helloTimeoutMs);
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
      if (data.session.authenticated && data.helloTimer !== undefined) leavePreAuth(data);
      sendReplies(ws, result);
      if (result.fatal) {
        data.closeReason = result.fatal.includes('auth') ? 'auth' : 'fatal';
        ws.end(CLOSE_POLICY, result.fatal.slice(0, 120));
      }
    },
    close(ws, code, message) {
      o.handles.delete(ws as WebSocket<unknown>);
      const data = ws.getUserData();
      data.closed = true;
      if (code === 1006 && Buffer.from(message).toString() === TOO_BIG_MESSAGE) {
        // uWS refused the message on its declared length; nothing of it was buffered.
        acceptor.countRefusal(data.session?.authenticated ? 'too_large' : 'preauth_too_large');
        data.closeReason ??= 'fatal';
      }
      leavePreAuth(data);
      if (data.session) acceptor.closeSession(data.session);
      data.session = undefined;
      metrics.clients.dec({ endpoint: 'ingest' });
      metrics.disconnects.inc({ endpoint: 'ingest', reason: data.closeReason ?? (o.stopping() ? 'shutdown' : 'client') });
    },
  });

  // Token at the upgrade: checked at the door, full frame size from the first message.
  routes.ws<IngestSocketData>('/ingest', behaviour(o.maxFrameBytes, (request) => {
    const upgrade = readUpgrade(request);
    if (isDecision(upgrade)) return upgrade;
    // No token: the pre-auth behaviour below takes this upgrade.
    if (upgrade.token === undefined) return { pass: true };
    if (!acceptor.tokenMatches(upgrade.token)) return refuse(401, 'wrong ingest token', 'auth');
    return { accept: { endpoint: 'ingest', token: upgrade.token, run: upgrade.run } };
  }));

  // No token at the upgrade: the first message must be a hello carrying it. uWS fixes the
  // message limit per route, so these connections keep the pre-auth cap for their life.
  // A parameter route ranks below every static one, so it only sees what was passed on.
  routes.ws<IngestSocketData>('/:endpoint', behaviour(preAuthMaxBytes, (request) => {
    if (request.params[0] !== 'ingest') return { pass: true };
    const upgrade = readUpgrade(request);
    if (isDecision(upgrade)) return upgrade;
    const address = request.remoteAddress;
    if ((preAuthByAddress.get(address) ?? 0) >= preAuth.maxPerAddress) {
      return refuse(429, `too many unauthenticated /ingest connections from ${address} (limit ${preAuth.maxPerAddress}); send the hello promptly, or present the token at the upgrade`, 'address_limit');
    }
    return { accept: { endpoint: 'ingest', run: upgrade.run, preAuthAddress: address } };
  }));

  routes.post('/api/ingest', async (exchange) => {
    const query = new URLSearchParams(exchange.request.query);
    const token = requestToken(exchange.request.headers.authorization || undefined, query);
    const contentType = (exchange.request.headers['content-type'] ?? '').toLowerCase();
    const run = query.get('run') ?? undefined;
    const refuseEarly = (status: number, error: string, reason: string) => {
      // Refused before reading the body, so the connection is closed rather than reused.
      o.httpAcceptor.countRefusal(reason);
      metrics.httpRequests.inc({ route: 'ingest', outcome: 'client_error' });
      replyJson(exchange, status, { error }, true);
    };
    if (!o.httpAcceptor.tokenMatches(token)) {
      refuseEarly(401, 'missing or wrong ingest token (Authorization: Bearer <token>)', 'auth');
      return;
    }
    const runProblem = run === undefined ? undefined : runNameProblem(run);
    if (runProblem !== undefined) {
      refuseEarly(400, `run: ${runProblem}`, 'malformed');
      return;
    }
    const body = await readBodyOr413(exchange, metrics, 'ingest');
    if (body === undefined) return;
    const session = o.httpAcceptor.openSession({ run, token });
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
