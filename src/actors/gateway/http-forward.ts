/**
 * Every HTTP request the gateway does not serve itself goes to the main thread
 * (`ctx.callMain('http', request)`), which owns the HTTP routes (see shared/http-router),
 * with the client's address so the main thread can rate-limit per client.
 */
import type { Logger } from 'pino';
import type { ForwardedReply, ForwardedRequest } from '../../shared/http-router.js';
import type { Exchange } from '../../shared/uws-routes.js';
import type { GatewayMetrics } from './gateway-metrics.js';
import { readBodyOr413, replyJson } from './http-io.js';

export const FORWARD_MAX_BODY = 1024 * 1024;

export type CallMain = <T>(method: string, ...args: unknown[]) => Promise<T>;

export async function forwardHttp(exchange: Exchange, callMain: CallMain, metrics: GatewayMetrics, log: Logger): Promise<void> {
  const body = await readBodyOr413(exchange, metrics, 'forward');
  if (body === undefined) return;
  const head = exchange.request;
  const request: ForwardedRequest = {
    method: head.method, path: head.path, query: head.query, headers: { ...head.headers }, body, remoteAddress: head.remoteAddress,
  };
  let answer: ForwardedReply;
  try {
    answer = await callMain<ForwardedReply>('http', request);
    if (!answer || typeof answer.status !== 'number') throw new Error('main thread answered without a status');
  } catch (error) {
    metrics.httpRequests.inc({ route: 'forward', outcome: 'upstream_error' });
    log.warn({ err: (error as Error)?.message, method: request.method, path: request.path }, 'forwarding an HTTP request to the main thread failed');
    replyJson(exchange, 502, { error: 'the main thread could not answer this request', details: String((error as Error)?.message ?? error) });
    return;
  }
  metrics.httpRequests.inc({ route: 'forward', outcome: answer.status >= 400 && answer.status < 500 ? 'client_error' : 'ok' });
  exchange.reply(answer.status, answer.headers ?? {}, answer.body ?? '');
}
