// Minimal GET over node:http(s) with keep-alive, a deadline and early stop. Why not fetch():
// at ~170 captures/s its per-request cost (web streams, an AbortController whose abort builds
// a DOMException with a stack, a new connection whenever a body is cancelled) was the largest
// CPU item in the capture actor after decoding. Playlists reuse pooled connections; a segment
// read that stops after its keyframe destroys that one socket.

import http from 'node:http';
import https from 'node:https';

export class HttpGetError extends Error {
  constructor(readonly code: 'timeout' | 'network' | 'aborted', message: string) {
    super(message);
    this.name = 'HttpGetError';
  }
}

const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64 }),
  https: new https.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64 }),
};

export interface HttpGetOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /**
   * Called per body chunk; return true to stop reading (the socket is then destroyed rather
   * than drained, since draining a 400 KB segment we do not need costs more than a reconnect).
   */
  onChunk?: (chunk: Buffer, status: number) => boolean;
  /** Max body bytes collected when no onChunk is given. */
  maxBytes?: number;
  /** Extra request headers (e.g. Range for an EXT-X-MAP byte range). */
  headers?: Record<string, string>;
}

export interface HttpGetResult {
  status: number;
  /** Collected body (only without onChunk, and only for status 200). */
  body: Buffer;
  bytesRead: number;
  /** The body ended normally (not stopped early, not cut off). */
  complete: boolean;
}

export function httpGet(url: string, o: HttpGetOptions): Promise<HttpGetResult> {
  return new Promise((resolve, reject) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      reject(new HttpGetError('network', `invalid URL ${url}`));
      return;
    }
    const mod = u.protocol === 'https:' ? https : http;
    const agent = u.protocol === 'https:' ? agents.https : agents.http;
    let settled = false;
    const chunks: Buffer[] = [];
    let bytesRead = 0;
    let status = 0;
    const finish = (err: Error | null, complete = false) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve({ status, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks), bytesRead, complete });
    };
    const req = mod.get(u, { agent, ...(o.headers ? { headers: o.headers } : {}) }, (res) => {
      status = res.statusCode ?? 0;
      if (status !== 200 && status !== 206) {
        res.resume(); // drain small error bodies so the connection can be reused
        res.on('end', () => finish(null, true));
        res.on('error', () => finish(null, false));
        return;
      }
      res.on('data', (chunk: Buffer) => {
        if (settled) return;
        bytesRead += chunk.length;
        if (o.onChunk) {
          if (o.onChunk(chunk, status)) {
            finish(null, false);
            res.destroy();
          }
          return;
        }
        chunks.push(chunk);
        if (o.maxBytes !== undefined && bytesRead > o.maxBytes) {
          finish(new HttpGetError('network', `${url}: body larger than ${o.maxBytes} bytes`));
          res.destroy();
        }
      });
      res.on('end', () => finish(null, true));
      // A body cut short (server reset) still resolves: the caller decides whether what
      // arrived is enough.
      res.on('error', () => finish(null, false));
      res.on('aborted', () => finish(null, false));
    });
    req.on('error', (err) => finish(new HttpGetError('network', `${url}: ${err.message}`)));
    const timer = setTimeout(() => {
      finish(new HttpGetError('timeout', `${url} timed out after ${o.timeoutMs} ms`));
      req.destroy();
    }, o.timeoutMs);
    const onAbort = () => {
      finish(new HttpGetError('aborted', `${url}: aborted`));
      req.destroy();
    };
    if (o.signal?.aborted) onAbort();
    else o.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
