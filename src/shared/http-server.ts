/**
 * Loading uWebSockets.js (native, or the JS fallback where allowed), and the request/reply
 * shapes and errors every HTTP handler shares (main-thread router, gateway routes).
 *
 * uWS hands us a response object that dies the moment the client goes away, and a
 * request object that is only valid during the synchronous part of the callback. Both
 * rules are kept in one place, shared/uws-routes.ts.
 */
import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';

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

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
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
