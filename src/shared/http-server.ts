/**
 * One port for HTTP and WebSocket, served by uWebSockets.js, plus loading uWS itself.
 *
 * uWS hands us a response object that dies the moment the client goes away, and a
 * request object that is only valid during the synchronous part of the callback. Both
 * rules are kept in one place, shared/uws-routes.ts: routes here are registered through
 * it, so handlers only ever see a copied request and an abort-safe reply.
 */
import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import type { TemplatedApp, WebSocket, us_listen_socket } from 'uWebSockets.js';
import { UwsRoutes, type Exchange, type SocketBehavior } from './uws-routes.js';

export type UwsModule = typeof import('uWebSockets.js');

export const ALLOW_UWS_FALLBACK_ENV = 'RINGCAST_ALLOW_UWS_FALLBACK';

export interface LoadUwsOptions {
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** Receives the `ringcast_uws_native` gauge. */
  registry?: Registry;
  /** How to obtain the module; tests inject fakes. Defaults to require('uWebSockets.js'). */
  load?: () => UwsModule;
}

const requireFromHere = createRequire(import.meta.url);

/**
 * Load uWebSockets.js and insist on the native addon. When the prebuilt binary
 * does not match this Node ABI, the package merely prints a warning and hands
 * back a pure-JS imitation with different performance and semantics; running
 * on that by accident would be a silent production regression. Native exports
 * are C++ functions, so `App.toString()` contains "[native code]".
 */
export function loadUws(options: LoadUwsOptions = {}): { uws: UwsModule; native: boolean } {
  const env = options.env ?? process.env;
  const uws = (options.load ?? (() => requireFromHere('uWebSockets.js') as UwsModule))();
  const native = String(uws.App).includes('[native code]');
  if (!native) {
    if (env[ALLOW_UWS_FALLBACK_ENV] !== '1') {
      throw new Error(
        `uWebSockets.js native addon failed to load for Node ${process.version} (ABI ${process.versions.modules}, ${process.platform}-${process.arch}); ` +
          `the package fell back to its JavaScript implementation. Refusing to start. ` +
          `Use a Node version the package ships binaries for, or set ${ALLOW_UWS_FALLBACK_ENV}=1 to run on the fallback anyway.`,
      );
    }
    options.logger?.error(
      { uwsNative: false },
      `RUNNING ON THE uWebSockets.js JAVASCRIPT FALLBACK (${ALLOW_UWS_FALLBACK_ENV}=1): native addon did not load; expect lower throughput`,
    );
  }
  if (options.registry) setUwsNativeGauge(options.registry, native);
  return { uws, native };
}

function setUwsNativeGauge(registry: Registry, native: boolean): void {
  const name = 'ringcast_uws_native';
  const gauge =
    (registry.getSingleMetric(name) as Gauge | undefined) ??
    new Gauge({ name, help: '1 when uWebSockets.js runs its native addon, 0 on the JS fallback', registers: [registry] });
  gauge.set(native ? 1 : 0);
}

/** A request as handlers see it: everything copied out of uWS's short-lived request. */
export interface HttpRequestContext {
  /** Upper-case, e.g. "GET". */
  method: string;
  /** Path without the query string, e.g. "/streams/42". */
  path: string;
  query: URLSearchParams;
  /** Lower-case header names. */
  headers: Record<string, string>;
  /** Values of the route's `:name` segments, URL-decoded. */
  params: Record<string, string>;
  /** Raw request body (empty for GET/HEAD and friends). */
  body: Buffer;
  /** The client's IP address ("" when unknown). */
  remoteAddress: string;
  /** Parses the body as JSON; throws HttpError 400 when it is not. */
  json<T = unknown>(): T;
  /** Aborted when the client disconnects before we answer. */
  signal: AbortSignal;
}

export interface HttpReply {
  status?: number;
  headers?: Record<string, string>;
  /** Serialised as JSON with content-type application/json (takes precedence over body). */
  json?: unknown;
  body?: string | Uint8Array;
}

export type RouteHandler = (req: HttpRequestContext) => HttpReply | void | Promise<HttpReply | void>;

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

/** Throw from a handler to answer with this status and `{ error: message, details }`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details?: unknown,
    /** Extra response headers, e.g. Retry-After on a 429 or 503. */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'HttpError';
  }
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

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
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

/** The body as JSON, or HttpError 400 saying why it is not. */
export function parseJsonBody<T>(body: Buffer): T {
  try {
    return JSON.parse(body.toString('utf8')) as T;
  } catch (error) {
    throw new HttpError(400, 'request body is not valid JSON', (error as Error).message);
  }
}

/** HttpError → its status and `{error, details?}`; anything else → a 500 that leaks nothing. */
export function errorReply(error: unknown): HttpReply {
  if (error instanceof HttpError) {
    return {
      status: error.status,
      ...(error.headers ? { headers: error.headers } : {}),
      json: error.details === undefined ? { error: error.message } : { error: error.message, details: error.details },
    };
  }
  return { status: 500, json: { error: 'internal server error' } };
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
