/**
 * Main-thread HTTP routes, answered for requests the gateway threads forward.
 *
 * Why the main thread does not listen itself: the gateways listen on the public port with
 * SO_REUSEPORT, and the kernel spreads connections over every socket in that group. A
 * main-thread listener in the group would receive a share of `/ws` clients it cannot serve.
 * So the gateways own the port, answer what they can locally (`/ws`, `/ingest`, ...), and
 * forward the rest here over the supervisor's upcall channel (`ctx.callMain('http', req)`).
 */
import type { Logger } from 'pino';
import { HttpError, errorReply, parseJsonBody, type HttpReply, type HttpRequestContext, type RouteHandler } from './http-server.js';

/** A request as a gateway forwards it (structured-cloneable). */
export interface ForwardedRequest {
  method: string;
  path: string;
  /** Raw query string without "?". */
  query: string;
  /** Lower-case header names. */
  headers: Record<string, string>;
  body: Uint8Array;
  /** The client's IP address as the gateway saw it (for per-client limits). */
  remoteAddress?: string;
}

export interface ForwardedReply {
  status: number;
  headers: Record<string, string>;
  body: string | Uint8Array;
}

interface Route {
  method: string;
  segments: string[];
  wildcard: boolean;
  handler: RouteHandler;
}

const JSON_TYPE = 'application/json; charset=utf-8';

export class HttpRouter {
  private readonly routes: Route[] = [];

  constructor(private readonly log?: Logger) {}

  /** `pattern`: static segments, `:name` parameters, optional trailing `/*`. Method "*" matches any. */
  route(method: string, pattern: string, handler: RouteHandler): this {
    const wildcard = pattern.endsWith('/*');
    const segments = (wildcard ? pattern.slice(0, -2) : pattern).split('/').filter(Boolean);
    this.routes.push({ method: method.toUpperCase(), segments, wildcard, handler });
    return this;
  }

  get(pattern: string, handler: RouteHandler): this { return this.route('GET', pattern, handler); }
  post(pattern: string, handler: RouteHandler): this { return this.route('POST', pattern, handler); }
  put(pattern: string, handler: RouteHandler): this { return this.route('PUT', pattern, handler); }
  del(pattern: string, handler: RouteHandler): this { return this.route('DELETE', pattern, handler); }

  async dispatch(request: ForwardedRequest): Promise<ForwardedReply> {
    const method = request.method.toUpperCase();
    const parts = request.path.split('/').filter(Boolean);
    let pathMatched = false;
    for (const route of this.routes) {
      const params = match(route, parts);
      if (!params) continue;
      pathMatched = true;
      if (route.method !== '*' && route.method !== method && !(method === 'HEAD' && route.method === 'GET')) continue;
      return this.run(route.handler, request, method, params);
    }
    if (pathMatched) return encode({ status: 405, json: { error: `method ${method} not allowed on ${request.path}` } });
    return encode({ status: 404, json: { error: 'not found', method, path: request.path } });
  }

  private async run(handler: RouteHandler, request: ForwardedRequest, method: string, params: Record<string, string> | 'bad'): Promise<ForwardedReply> {
    if (params === 'bad') return encode({ status: 400, json: { error: 'malformed URL encoding in path' } });
    const body = Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength);
    const context: HttpRequestContext = {
      method,
      path: request.path,
      query: new URLSearchParams(request.query),
      headers: request.headers,
      params,
      body,
      remoteAddress: request.remoteAddress ?? '',
      json: <T>() => parseJsonBody<T>(body),
      signal: new AbortController().signal,
    };
    try {
      return encode((await handler(context)) ?? { status: 204 });
    } catch (error) {
      if (!(error instanceof HttpError)) this.log?.error({ err: error, method, path: request.path }, 'HTTP handler failed');
      return encode(errorReply(error));
    }
  }
}

function match(route: Route, parts: string[]): Record<string, string> | 'bad' | undefined {
  if (route.wildcard ? parts.length < route.segments.length : parts.length !== route.segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < route.segments.length; i++) {
    const seg = route.segments[i];
    if (seg.startsWith(':')) {
      try {
        params[seg.slice(1)] = decodeURIComponent(parts[i]);
      } catch {
        return 'bad';
      }
    } else if (seg !== parts[i]) return undefined;
  }
  if (route.wildcard) params['*'] = parts.slice(route.segments.length).join('/');
  return params;
}

function encode(reply: HttpReply): ForwardedReply {
  const status = reply.status ?? 200;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(reply.headers ?? {})) headers[k.toLowerCase()] = v;
  let body: string | Uint8Array = '';
  if (reply.json !== undefined) {
    try {
      body = JSON.stringify(reply.json);
    } catch {
      return { status: 500, headers: { 'content-type': JSON_TYPE }, body: '{"error":"internal server error"}' };
    }
    headers['content-type'] ??= JSON_TYPE;
  } else if (reply.body !== undefined) {
    body = reply.body;
    if (body.length > 0) headers['content-type'] ??= 'text/plain; charset=utf-8';
  }
  if (status === 204 || status === 304) body = '';
  return { status, headers, body };
}

/** Bearer token from an Authorization header, or `?token=`. */
export function bearerToken(headers: Record<string, string>, query?: URLSearchParams): string | undefined {
  const auth = headers.authorization;
  if (auth) {
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (m) return m[1].trim();
  }
  return query?.get('token') ?? undefined;
}
