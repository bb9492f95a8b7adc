/**
 * The one place that registers uWebSockets.js routes and touches its request and response
 * objects. uWS has two rules that a handler cannot be trusted to follow on every path:
 *
 *   - the request (`HttpRequest`) is valid only during the synchronous part of the route
 *     callback: reading it after an `await`, in a `.then`, or from a timer throws and takes
 *     the whole thread down;
 *   - the response (`HttpResponse`) dies when the client goes away: without `onAborted`
 *     installed before the callback returns uWS aborts the process, and writing to an
 *     aborted response throws.
 *
 * So handlers never see either object. `UwsRoutes` copies the request head (method, path,
 * query, headers, route parameters, client address) before the handler runs, installs
 * `onAborted` and starts collecting the body itself, and hands the handler an `Exchange`
 * whose `reply` is a no-op once the client is gone or it was answered. WebSocket upgrades
 * get the same copied head and answer with a decision (accept with user data, or refuse)
 * that this module carries out synchronously. A test (tests/uws-routes.test.ts) fails when
 * any other module in src/ registers a uWS route or names the request/response types.
 */
import { STATUS_CODES } from 'node:http';
import type { HttpRequest, HttpResponse, TemplatedApp, WebSocketBehavior, us_socket_context_t } from 'uWebSockets.js';

/** What a handler knows about a request: copied out of uWS before the handler runs. */
export interface RequestHead {
  /** Upper-case, e.g. "GET". */
  readonly method: string;
  /** Path without the query string, as sent (not decoded). */
  readonly path: string;
  /** Raw query string without "?" ("" when none). */
  readonly query: string;
  /** Lower-case header names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  /** The route's `:name` segments in order, as sent (not decoded). */
  readonly params: readonly string[];
  /** The peer's IP address as text (IPv4 dotted, or IPv6). */
  readonly remoteAddress: string;
}

export type BodyResult = { ok: true; body: Uint8Array } | { ok: false; tooLarge: number };

/** One HTTP request/response pair, safe to use from any later tick. */
export interface Exchange {
  readonly request: RequestHead;
  /** True once the client went away. */
  readonly aborted: boolean;
  /** True once answered or aborted: `reply` does nothing from then on. */
  readonly done: boolean;
  /** Aborted when the client disconnects before it is answered. */
  readonly signal: AbortSignal;
  /**
   * The request body (collection starts before the handler runs, at most the route's
   * `maxBodyBytes`; past it, or when Content-Length says so, `{ok: false}`). Empty for
   * methods without a body. Never settles if the client goes away mid-body.
   */
  body(): Promise<BodyResult>;
  /**
   * Answers unless already answered or aborted; returns whether it wrote. A reply sent
   * before the whole body arrived closes the connection (the rest of the body is unread).
   */
  reply(status: number, headers: Readonly<Record<string, string>>, body: string | Uint8Array, closeConnection?: boolean): boolean;
  /**
   * Answers with a streamed (chunked) body: the status and headers now, the body in pieces
   * through the returned stream. Undefined when already answered or aborted.
   */
  stream(status: number, headers: Readonly<Record<string, string>>): BodyStream | undefined;
  /**
   * Answers with a body of `totalBytes` taken from `chunks` as the client can take them
   * (backpressure: the next chunk is read only once the last one was written), so a large
   * file never sits in memory whole. Resolves true once all was written, false when the
   * client went away (the source is closed then) or it was already answered.
   */
  streamSized(status: number, headers: Readonly<Record<string, string>>, totalBytes: number, chunks: AsyncIterable<Uint8Array>): Promise<boolean>;
}

/** A streamed reply body, with uWS's backpressure. */
export interface BodyStream {
  /**
   * Sends one piece. Resolves true once the connection can take more (at once while the
   * client keeps up, after uWS's `onWritable` when it does not), false when the client went
   * away or the stream was ended: the writer stops then.
   */
  write(chunk: string | Uint8Array): Promise<boolean>;
  /** Ends the body (idempotent; a no-op once the client is gone). */
  end(): void;
}

export type HttpHandler = (exchange: Exchange) => void | Promise<void>;

export type RouteMethod = 'get' | 'post' | 'put' | 'patch' | 'del' | 'options' | 'head' | 'any';

export interface HttpRouteOptions {
  /** Largest request body collected; default from the UwsRoutes options. */
  maxBodyBytes?: number;
}

export interface UwsRoutesOptions {
  /** Default body limit (1 MiB). */
  maxBodyBytes?: number;
  /** Called when a handler throws or rejects (it is answered 500 when still unanswered). */
  onError?: (error: unknown, request: RequestHead) => void;
}

/**
 * How an upgrade handler answers: accept with the socket's user data, refuse with a status,
 * or pass the upgrade on to the next matching route (uWS's yield), e.g. to a route with
 * other limits.
 */
export type UpgradeDecision<UserData> =
  | { accept: UserData }
  | { refuse: { status: number; error: string } }
  | { pass: true };

/** A WebSocket endpoint: uWS's behaviour, with `upgrade` deciding from the copied head. */
export interface SocketBehavior<UserData> extends Omit<WebSocketBehavior<UserData>, 'upgrade'> {
  /** Synchronous on purpose: the upgrade must be decided while uWS's request is still valid. Default: accept `{}`. */
  upgrade?: (request: RequestHead) => UpgradeDecision<UserData>;
}

const METHODS_WITH_BODY = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
const EMPTY = new Uint8Array(0);
const JSON_TYPE = 'application/json; charset=utf-8';

export class UwsRoutes {
  private readonly maxBodyBytes: number;

  constructor(private readonly app: TemplatedApp, private readonly options: UwsRoutesOptions = {}) {
    this.maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  }

  http(method: RouteMethod, pattern: string, handler: HttpHandler, options: HttpRouteOptions = {}): this {
    const paramCount = countParams(pattern);
    const maxBody = options.maxBodyBytes ?? this.maxBodyBytes;
    this.app[method](pattern, (res, req) => this.serve(res, req, paramCount, maxBody, handler));
    return this;
  }

  get(pattern: string, handler: HttpHandler, options?: HttpRouteOptions): this { return this.http('get', pattern, handler, options); }
  post(pattern: string, handler: HttpHandler, options?: HttpRouteOptions): this { return this.http('post', pattern, handler, options); }
  any(pattern: string, handler: HttpHandler, options?: HttpRouteOptions): this { return this.http('any', pattern, handler, options); }

  ws<UserData>(pattern: string, behavior: SocketBehavior<UserData>): this {
    const { upgrade, ...rest } = behavior;
    const paramCount = countParams(pattern);
    this.app.ws<UserData>(pattern, {
      ...rest,
      upgrade: (res: HttpResponse, req: HttpRequest, context: us_socket_context_t) => {
        const head = readHead(res, req, paramCount);
        let decision: UpgradeDecision<UserData>;
        try {
          decision = upgrade ? upgrade(head) : { accept: {} as UserData };
        } catch (error) {
          this.options.onError?.(error, head);
          decision = { refuse: { status: 500, error: 'internal server error' } };
        }
        if ('pass' in decision) {
          req.setYield(true);
          return;
        }
        if ('refuse' in decision) {
          const { status, error } = decision.refuse;
          res.cork(() => {
            res.writeStatus(statusLine(status)).writeHeader('content-type', JSON_TYPE).end(JSON.stringify({ error }), true);
          });
          return;
        }
        res.upgrade<UserData>(decision.accept, head.headers['sec-websocket-key'] ?? '', head.headers['sec-websocket-protocol'] ?? '', head.headers['sec-websocket-extensions'] ?? '', context);
      },
    });
    return this;
  }

  private serve(res: HttpResponse, req: HttpRequest, paramCount: number, maxBody: number, handler: HttpHandler): void {
    const exchange = new UwsExchange(res, readHead(res, req, paramCount));
    exchange.collectBody(maxBody);
    let result: void | Promise<void>;
    try {
      result = handler(exchange);
    } catch (error) {
      this.failed(exchange, error);
      return;
    }
    if (result && typeof (result as Promise<void>).then === 'function') {
      (result as Promise<void>).then(undefined, (error: unknown) => this.failed(exchange, error));
    }
  }

  private failed(exchange: UwsExchange, error: unknown): void {
    try {
      this.options.onError?.(error, exchange.request);
    } finally {
      exchange.reply(500, { 'content-type': JSON_TYPE }, '{"error":"internal server error"}', true);
    }
  }
}

class UwsExchange implements Exchange {
  aborted = false;
  private answered = false;
  /** True until the whole body was read (or there was none). */
  private bodyPending = false;
  private controller: AbortController | undefined;
  private bodyPromise: Promise<BodyResult> = Promise.resolve({ ok: true, body: EMPTY });
  /** A streamed write waiting for the connection to drain. */
  private writableWaiter: ((ok: boolean) => void) | undefined;

  constructor(private readonly res: HttpResponse, readonly request: RequestHead) {
    // Must be installed before the route callback returns (see the module comment).
    res.onAborted(() => {
      this.aborted = true;
      this.controller?.abort();
      const waiter = this.writableWaiter;
      this.writableWaiter = undefined;
      waiter?.(false);
    });
  }

  stream(status: number, headers: Readonly<Record<string, string>>): BodyStream | undefined {
    if (this.done) return undefined;
    this.answered = true;
    this.res.cork(() => {
      this.res.writeStatus(statusLine(status));
      // No Content-Length: uWS sends the body chunked.
      for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() !== 'content-length') this.res.writeHeader(key, value);
    });
    let ended = false;
    return {
      write: (chunk) => {
        if (this.aborted || ended) return Promise.resolve(false);
        let drained = true;
        this.res.cork(() => { drained = this.res.write(chunk); });
        if (drained) return Promise.resolve(true);
        return new Promise<boolean>((resolve) => {
          this.writableWaiter = resolve;
          this.res.onWritable(() => {
            const waiter = this.writableWaiter;
            this.writableWaiter = undefined;
            waiter?.(!this.aborted);
            return true;
          });
        });
      },
      end: () => {
        if (ended || this.aborted) return;
        ended = true;
        this.res.cork(() => this.res.end());
      },
    };
  }

  get done(): boolean {
    return this.aborted || this.answered;
  }

  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    if (this.aborted && !this.controller.signal.aborted) this.controller.abort();
    return this.controller.signal;
  }

  collectBody(maxBody: number): void {
    if (!METHODS_WITH_BODY.has(this.request.method)) return;
    const declared = Number(this.request.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBody) {
      this.bodyPending = true;
      this.bodyPromise = Promise.resolve({ ok: false, tooLarge: maxBody });
      return;
    }
    this.bodyPending = true;
    this.bodyPromise = new Promise<BodyResult>((resolve) => {
      const chunks: Uint8Array[] = [];
      let received = 0;
      let finished = false;
      this.res.onData((chunk, isLast) => {
        if (finished || this.done) return;
        received += chunk.byteLength;
        if (received > maxBody) {
          finished = true;
          resolve({ ok: false, tooLarge: maxBody });
          return;
        }
        // uWS neuters the chunk's ArrayBuffer when this callback returns: copy it.
        chunks.push(new Uint8Array(chunk.slice(0)));
        if (isLast) {
          finished = true;
          this.bodyPending = false;
          resolve({ ok: true, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received) });
        }
      });
    });
  }

  body(): Promise<BodyResult> {
    return this.bodyPromise;
  }

  reply(status: number, headers: Readonly<Record<string, string>>, body: string | Uint8Array, closeConnection = false): boolean {
    if (this.done) return false;
    this.answered = true;
    const close = closeConnection || this.bodyPending;
    this.res.cork(() => {
      this.res.writeStatus(statusLine(status));
      for (const [key, value] of Object.entries(headers)) {
        // uWS writes Content-Length itself; a second one would corrupt the response.
        if (key.toLowerCase() !== 'content-length') this.res.writeHeader(key, value);
      }
      // No arguments: even `undefined` makes uWS write a bogus Content-Length.
      if (status === 204 || status === 304) this.res.endWithoutBody();
      else this.res.end(body, close);
    });
    return true;
  }

  async streamSized(status: number, headers: Readonly<Record<string, string>>, totalBytes: number, chunks: AsyncIterable<Uint8Array>): Promise<boolean> {
    if (this.done) return false;
    this.answered = true;
    let headWritten = false;
    const writeHead = () => {
      if (headWritten) return;
      headWritten = true;
      this.res.writeStatus(statusLine(status));
      for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() !== 'content-length') this.res.writeHeader(key, value);
    };
    if (totalBytes === 0) {
      this.res.cork(() => { writeHead(); this.res.end(''); });
      return true;
    }
    try {
      for await (const chunk of chunks) {
        if (this.aborted) return false; // leaving the loop closes the source
        const base = this.res.getWriteOffset();
        let ok = false;
        let finished = false;
        this.res.cork(() => {
          writeHead();
          [ok, finished] = this.res.tryEnd(chunk, totalBytes);
        });
        if (finished) return true;
        if (ok) continue;
        // Backpressure: uWS wrote part of the chunk; the rest goes out when the socket drains.
        const drained = await new Promise<boolean>((resolve) => {
          const onAbort = () => resolve(false);
          this.signal.addEventListener('abort', onAbort, { once: true });
          this.res.onWritable((offset) => {
            let wrote = false;
            let end = false;
            [wrote, end] = this.res.tryEnd(chunk.subarray(offset - base), totalBytes);
            if (wrote || end) {
              this.signal.removeEventListener('abort', onAbort);
              resolve(true);
            }
            return wrote;
          });
        });
        if (!drained) return false;
        if (this.res.getWriteOffset() >= totalBytes) return true;
      }
    } catch {
      if (this.aborted) return false;
      // The source failed before anything was sent: an error the client can read. Mid-body the
      // status line is gone, so the only honest signal left is a closed connection.
      if (!headWritten) this.res.cork(() => this.res.writeStatus(statusLine(500)).writeHeader('content-type', JSON_TYPE).end('{"error":"the response body could not be read"}', true));
      else this.res.cork(() => this.res.close());
      return false;
    }
    // The source ended short of totalBytes (file truncated meanwhile): the client sees a short body.
    if (!this.aborted) this.res.cork(() => this.res.close());
    return false;
  }
}

function readHead(res: HttpResponse, req: HttpRequest, paramCount: number): RequestHead {
  const headers: Record<string, string> = {};
  req.forEach((key, value) => { headers[key] = key in headers ? `${headers[key]}, ${value}` : value; });
  const params: string[] = [];
  for (let i = 0; i < paramCount; i++) params.push(req.getParameter(i) ?? '');
  return {
    method: req.getMethod().toUpperCase(),
    path: req.getUrl(),
    query: req.getQuery() ?? '',
    headers,
    params,
    remoteAddress: Buffer.from(res.getRemoteAddressAsText()).toString(),
  };
}

function countParams(pattern: string): number {
  return pattern.split('/').filter((segment) => segment.startsWith(':')).length;
}

function statusLine(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? ''}`.trimEnd();
}
