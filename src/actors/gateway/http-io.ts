/**
 * Plain HTTP on a gateway thread, within uWS's two rules: the request object is only
 * valid during the synchronous part of the handler (so everything is copied up front),
 * and the response dies when the client goes away (so onAborted comes before any async
 * work and every write checks it, inside cork).
 */
import { STATUS_CODES } from 'node:http';
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { ForwardedRequest } from '../../shared/http-router.js';

export interface ReplyState {
  done: boolean;
}

export type BodyResult = { ok: true; request: ForwardedRequest } | { ok: false; tooLarge: number };

const METHODS_WITH_BODY = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Copies the request, installs onAborted and reads the body (at most `maxBody` bytes);
 * `onRequest` runs once the body is complete, or with `tooLarge` as soon as it overflows.
 * Returns the reply state to pass to `reply`.
 */
export function readRequest(res: HttpResponse, req: HttpRequest, maxBody: number, onRequest: (result: BodyResult, state: ReplyState) => void): ReplyState {
  const state: ReplyState = { done: false };
  res.onAborted(() => { state.done = true; });
  const method = req.getMethod().toUpperCase();
  const headers: Record<string, string> = {};
  req.forEach((key, value) => { headers[key] = key in headers ? `${headers[key]}, ${value}` : value; });
  const request: ForwardedRequest = { method, path: req.getUrl(), query: req.getQuery() ?? '', headers, body: new Uint8Array(0) };
  if (!METHODS_WITH_BODY.has(method)) {
    onRequest({ ok: true, request }, state);
    return state;
  }
  const declared = Number(headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBody) {
    onRequest({ ok: false, tooLarge: maxBody }, state);
    return state;
  }
  const chunks: Uint8Array[] = [];
  let received = 0;
  let finished = false;
  res.onData((chunk, isLast) => {
    if (finished || state.done) return;
    received += chunk.byteLength;
    if (received > maxBody) {
      finished = true;
      onRequest({ ok: false, tooLarge: maxBody }, state);
      return;
    }
    // uWS neuters the chunk's ArrayBuffer when this callback returns: copy it.
    chunks.push(new Uint8Array(chunk.slice(0)));
    if (isLast) {
      finished = true;
      request.body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received);
      onRequest({ ok: true, request }, state);
    }
  });
  return state;
}

/** Writes a reply unless the client is gone or it was answered already. */
export function reply(res: HttpResponse, state: ReplyState, status: number, headers: Record<string, string>, body: string | Uint8Array, closeConnection = false): void {
  if (state.done) return;
  state.done = true;
  res.cork(() => {
    res.writeStatus(`${status} ${STATUS_CODES[status] ?? ''}`.trimEnd());
    for (const [key, value] of Object.entries(headers)) {
      // uWS writes Content-Length itself; a second one would corrupt the response.
      if (key.toLowerCase() !== 'content-length') res.writeHeader(key, value);
    }
    // No arguments: even `undefined` makes uWS write a bogus Content-Length.
    if (status === 204 || status === 304) res.endWithoutBody();
    else res.end(body, closeConnection);
  });
}

export function replyJson(res: HttpResponse, state: ReplyState, status: number, value: unknown, closeConnection = false): void {
  reply(res, state, status, { 'content-type': 'application/json; charset=utf-8' }, JSON.stringify(value), closeConnection);
}

/** The token of `Authorization: Bearer <token>`, else `?token=`. */
export function requestToken(authorization: string | undefined, query: URLSearchParams): string | undefined {
  if (authorization) {
    const m = /^Bearer\s+(.+)$/i.exec(authorization.trim());
    if (m) return m[1].trim();
  }
  return query.get('token') ?? undefined;
}
