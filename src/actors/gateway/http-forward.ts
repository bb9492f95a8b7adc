/**
 * Every HTTP request the gateway does not serve itself goes to the main thread
 * (`ctx.callMain('http', request)`), which owns the HTTP routes (see shared/http-router).
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { ForwardedReply, ForwardedRequest } from '../../shared/http-router.js';
import type { GatewayMetrics } from './gateway-metrics.js';
import { readRequest, reply, replyJson } from './http-io.js';

export const FORWARD_MAX_BODY = 1024 * 1024;

export type CallMain = <T>(method: string, ...args: unknown[]) => Promise<T>;

export function forwardHttp(res: HttpResponse, req: HttpRequest, callMain: CallMain, metrics: GatewayMetrics, log: Logger): void {
  readRequest(res, req, FORWARD_MAX_BODY, (result, state) => {
    if (!result.ok) {
      metrics.httpRequests.inc({ route: 'forward', outcome: 'too_large' });
      replyJson(res, state, 413, { error: `request body exceeds ${result.tooLarge} bytes` }, true);
      return;
    }
    const request: ForwardedRequest = result.request;
    callMain<ForwardedReply>('http', request).then(
      (answer) => {
        if (!answer || typeof answer.status !== 'number') throw new Error('main thread answered without a status');
        metrics.httpRequests.inc({ route: 'forward', outcome: answer.status >= 400 && answer.status < 500 ? 'client_error' : 'ok' });
        reply(res, state, answer.status, answer.headers ?? {}, answer.body ?? '');
      },
    ).catch((error: unknown) => {
      metrics.httpRequests.inc({ route: 'forward', outcome: 'upstream_error' });
      log.warn({ err: (error as Error)?.message, method: request.method, path: request.path }, 'forwarding an HTTP request to the main thread failed');
      replyJson(res, state, 502, { error: 'the main thread could not answer this request', details: String((error as Error)?.message ?? error) });
    });
  });
}
