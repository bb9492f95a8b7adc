/**
 * Small reply helpers for the gateway's HTTP routes. Everything that touches uWS's request
 * and response objects lives in shared/uws-routes.ts; handlers here only see an `Exchange`.
 */
import type { Exchange } from '../../shared/uws-routes.js';
import type { GatewayMetrics } from './gateway-metrics.js';

const JSON_TYPE = 'application/json; charset=utf-8';
const TEXT_TYPE = 'text/plain; charset=utf-8';

export function replyJson(exchange: Exchange, status: number, value: unknown, closeConnection = false): void {
  exchange.reply(status, { 'content-type': JSON_TYPE }, JSON.stringify(value), closeConnection);
}

export function replyText(exchange: Exchange, status: number, text: string): void {
  exchange.reply(status, { 'content-type': TEXT_TYPE, 'x-content-type-options': 'nosniff' }, text);
}

/** The token of `Authorization: Bearer <token>`, else `?token=`. */
export function requestToken(authorization: string | undefined, query: URLSearchParams): string | undefined {
  if (authorization) {
    const m = /^Bearer\s+(.+)$/i.exec(authorization.trim());
    if (m) return m[1].trim();
  }
  return query.get('token') ?? undefined;
}

/**
 * The whole request body, or undefined after answering 413 (counted as `too_large` under
 * `route`) when it is larger than the route allows. The 413 closes the connection: the
 * rest of the body is never read.
 */
export async function readBodyOr413(exchange: Exchange, metrics: GatewayMetrics, route: string): Promise<Uint8Array | undefined> {
  const result = await exchange.body();
  if (result.ok) return result.body;
  metrics.httpRequests.inc({ route, outcome: 'too_large' });
  replyJson(exchange, 413, { error: `request body exceeds ${result.tooLarge} bytes` }, true);
  return undefined;
}
