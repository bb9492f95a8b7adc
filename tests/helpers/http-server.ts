/**
 * A stand-alone HTTP/WebSocket server on one port (uWS), for tests that need a small
 * server of their own: /healthz, /metrics, routes and WebSockets, and a close that ends
 * every connection. The service itself never listens on the main thread (the gateways do).
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { TemplatedApp, WebSocket, us_listen_socket } from 'uWebSockets.js';
import { UwsRoutes, type Exchange, type SocketBehavior } from '../../src/shared/uws-routes.js';
import {
  HttpError, METRICS_CONTENT_TYPE, errorReply, loadUws, parseJsonBody,
  type HttpReply, type HttpRequestContext, type RouteHandler, type UwsModule,
} from '../../src/shared/http-server.js';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'del' | 'options' | 'head' | 'any';

export interface RouteOptions {
  /** Largest accepted request body in bytes; larger requests get 413. */
  maxBodyBytes?: number;
}

export interface RouteDefinition extends RouteOptions {
  method: HttpMethod;
  /** uWS pattern: static segments, `:name` parameters, trailing `/*`. */
  path: string;
  handler: RouteHandler;
}

export interface HealthReport {
  ok: boolean;
  actors: Record<string, string>;
}

export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port; the returned server reports the actual one. */
  port: number;
  health: () => HealthReport;
  /** Prometheus text exposition. */
  metrics: () => Promise<string>;
  routes?: RouteDefinition[];
  /** Default body limit for every route (1 MiB). */
  maxBodyBytes?: number;
  logger?: Logger;
  registry?: Registry;
  env?: NodeJS.ProcessEnv;
  /** For tests: where uWS comes from. */
  loadUws?: () => UwsModule;
}

export interface HttpServer {
  readonly app: TemplatedApp;
  readonly host: string;
  readonly port: number;
  readonly native: boolean;
  route(definition: RouteDefinition): HttpServer;
  get(path: string, handler: RouteHandler, options?: RouteOptions): HttpServer;
  post(path: string, handler: RouteHandler, options?: RouteOptions): HttpServer;
  put(path: string, handler: RouteHandler, options?: RouteOptions): HttpServer;
  patch(path: string, handler: RouteHandler, options?: RouteOptions): HttpServer;
  del(path: string, handler: RouteHandler, options?: RouteOptions): HttpServer;
  /** A WebSocket endpoint on the same port; sockets are tracked so close() can end them. */
  ws<UserData>(pattern: string, behavior: SocketBehavior<UserData>): HttpServer;
  /** Stops listening and ends every open WebSocket and HTTP connection. */
  close(): Promise<void>;
}

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';
const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const { uws, native } = loadUws({
    env: options.env,
    logger: options.logger,
    registry: options.registry,
    load: options.loadUws,
  });
  const app = uws.App();
  const log = options.logger;
  const defaultMaxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const openSockets = new Set<WebSocket<unknown>>();

  const routes = new UwsRoutes(app, { maxBodyBytes: defaultMaxBody });

  function route(definition: RouteDefinition): void {
    const paramNames = [...definition.path.matchAll(/:([^/]+)/g)].map((m) => m[1]);
    const maxBody = definition.maxBodyBytes ?? defaultMaxBody;
    routes.http(definition.method, definition.path, (exchange) => serveRequest(exchange, definition.handler, paramNames, log), { maxBodyBytes: maxBody });
  }

  route({
    method: 'get',
    path: '/healthz',
    handler: () => {
      const report = options.health();
      return { status: report.ok ? 200 : 503, json: report };
    },
  });
  route({
    method: 'get',
    path: '/metrics',
    handler: async () => ({ headers: { 'content-type': METRICS_CONTENT_TYPE }, body: await options.metrics() }),
  });
  for (const definition of options.routes ?? []) route(definition);
  // Lowest priority in uWS's router (wildcard), so routes added later still win.
  routes.any('/*', (exchange) => {
    const { method, path } = exchange.request;
    respond(exchange, { status: 404, json: { error: 'not found', method, path } });
  });

  const listenSocket = await listen(uws, app, options.host, options.port);
  const port = uws.us_socket_local_port(listenSocket as never);
  let closed = false;

  const server: HttpServer = {
    app,
    host: options.host,
    port,
    native,
    route(definition) {
      route(definition);
      return server;
    },
    get: (path, handler, o) => server.route({ ...o, method: 'get', path, handler }),
    post: (path, handler, o) => server.route({ ...o, method: 'post', path, handler }),
    put: (path, handler, o) => server.route({ ...o, method: 'put', path, handler }),
    patch: (path, handler, o) => server.route({ ...o, method: 'patch', path, handler }),
    del: (path, handler, o) => server.route({ ...o, method: 'del', path, handler }),
    ws(pattern, behavior) {
      routes.ws(pattern, {
        ...behavior,
        open: (ws) => {
          openSockets.add(ws as WebSocket<unknown>);
          return behavior.open?.(ws);
        },
        close: (ws, code, message) => {
          openSockets.delete(ws as WebSocket<unknown>);
          behavior.close?.(ws, code, message);
        },
      });
      return server;
    },
    async close() {
      if (closed) return;
      closed = true;
      uws.us_listen_socket_close(listenSocket);
      for (const socket of [...openSockets]) {
        try {
          socket.end(1001, 'server shutting down');
        } catch {
          // Already closing; nothing to do.
        }
      }
      openSockets.clear();
      // Native uWS (not in the typings) can also drop idle keep-alive HTTP
      // connections, which otherwise keep the event loop alive after shutdown.
      (app as TemplatedApp & { close?: () => void }).close?.();
    },
  };
  return server;
}

function listen(uws: UwsModule, app: TemplatedApp, host: string, port: number): Promise<us_listen_socket> {
  return new Promise((resolve, reject) => {
    // Ask for an exclusive port: some uSockets builds set SO_REUSEPORT by
    // default, and a second ringcast would then silently share the port
    // instead of failing to start. (This build already refuses; the flag keeps
    // it that way across upgrades.)
    const callback = (socket: us_listen_socket | false) => {
      if (socket) resolve(socket);
      else
        reject(
          new Error(
            `cannot listen on ${host}:${port}: the port is already in use, or ${host} is not an address of this machine`,
          ),
        );
    };
    // The 4-argument form exists natively but is missing from the typings.
    (app.listen as unknown as (h: string, p: number, o: number, cb: typeof callback) => void).call(
      app,
      host,
      port,
      (uws as { LIBUS_LISTEN_EXCLUSIVE_PORT?: number }).LIBUS_LISTEN_EXCLUSIVE_PORT ?? 0,
      callback,
    );
  });
}

async function serveRequest(exchange: Exchange, handler: RouteHandler, paramNames: string[], log: Logger | undefined): Promise<void> {
  const { method, path, headers } = exchange.request;
  const params: Record<string, string> = {};
  try {
    paramNames.forEach((name, index) => {
      params[name] = decodeURIComponent(exchange.request.params[index]);
    });
  } catch {
    respond(exchange, errorReply(new HttpError(400, 'malformed URL encoding in path')));
    return;
  }
  const read = await exchange.body();
  if (!read.ok) {
    respond(exchange, { status: 413, json: { error: `request body exceeds ${read.tooLarge} bytes` } }, true);
    return;
  }
  const body = Buffer.from(read.body.buffer, read.body.byteOffset, read.body.byteLength);
  const context: HttpRequestContext = {
    method,
    path,
    query: new URLSearchParams(exchange.request.query),
    headers: { ...headers },
    params,
    body,
    remoteAddress: exchange.request.remoteAddress,
    json: <T>() => parseJsonBody<T>(body),
    signal: exchange.signal,
  };
  let reply: HttpReply;
  try {
    reply = (await handler(context)) ?? { status: 204 };
  } catch (error) {
    if (!(error instanceof HttpError)) log?.error({ err: error, method, path }, 'HTTP handler failed');
    reply = errorReply(error);
  }
  respond(exchange, reply);
}

/** Write a reply unless the client is gone or we already answered. */
function respond(exchange: Exchange, reply: HttpReply, closeConnection = false): void {
  if (exchange.done) return;
  let encoded: EncodedReply;
  try {
    encoded = encodeReply(reply);
  } catch {
    // e.g. a handler returned something JSON.stringify cannot handle (BigInt, cycles).
    encoded = encodeReply({ status: 500, json: { error: 'internal server error' } });
  }
  exchange.reply(encoded.status, Object.fromEntries(encoded.headers), encoded.body ?? '', closeConnection);
}

interface EncodedReply {
  status: number;
  headers: Array<[string, string]>;
  /** undefined: no body at all (204/304), not even a Content-Length. */
  body: string | Uint8Array | undefined;
}

function encodeReply(reply: HttpReply): EncodedReply {
  const status = reply.status ?? 200;
  const headers = Object.entries(reply.headers ?? {});
  const hasContentType = headers.some(([key]) => key.toLowerCase() === 'content-type');
  let body: string | Uint8Array | undefined;
  if (reply.json !== undefined) {
    body = JSON.stringify(reply.json);
    if (!hasContentType) headers.push(['content-type', JSON_CONTENT_TYPE]);
  } else {
    body = reply.body ?? '';
    if (!hasContentType && body.length > 0) headers.push(['content-type', 'text/plain; charset=utf-8']);
  }
  if (status === 204 || status === 304) body = undefined;
  return { status, headers, body };
}
