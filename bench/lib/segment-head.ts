// A plain segment client for the loopback Twitch fake's own tests: reads the head of a
// segment (up to maxBytes) with fetch(), so each fault the fake injects (404, timeout,
// truncated body, garbage) can be observed as the typed SegmentFetchError the capture path
// reports. The product reads segments with keyframe-fetch.ts instead.

import { SegmentFetchError, looksLikeMedia, readFileStart } from '../../src/actors/capture/segment-fetch.js';

export const DEFAULT_SEGMENT_MAX_BYTES = 300 * 1024;

export interface SegmentHead {
  bytes: Uint8Array;
  /** True when the segment had more bytes than maxBytes and we stopped reading. */
  truncated: boolean;
  status: number;
  ms: number;
}

export interface SegmentFetchOptions {
  maxBytes?: number;
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** Check the bytes look like MPEG-TS / fMP4 (default true). */
  validate?: boolean;
  signal?: AbortSignal;
}

function finish(chunks: Uint8Array[], total: number, max: number): Uint8Array {
  const out = new Uint8Array(Math.min(total, max));
  let off = 0;
  for (const c of chunks) {
    const n = Math.min(c.length, out.length - off);
    out.set(c.subarray(0, n), off);
    off += n;
    if (off >= out.length) break;
  }
  return out;
}

function check(bytes: Uint8Array, validate: boolean, url: string): void {
  if (bytes.length === 0) throw new SegmentFetchError('empty', `segment ${url} is empty`);
  if (validate && !looksLikeMedia(bytes)) throw new SegmentFetchError('garbage', `segment ${url} is neither MPEG-TS nor fMP4`);
}

export async function fetchSegmentHead(url: string, opts: SegmentFetchOptions = {}): Promise<SegmentHead> {
  const maxBytes = opts.maxBytes ?? DEFAULT_SEGMENT_MAX_BYTES;
  const timeoutMs = opts.timeoutMs ?? 5000;
  const validate = opts.validate ?? true;
  const t0 = performance.now();
  if (url.startsWith('file:')) return readFileHead(url, maxBytes, validate, t0);

  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const onOuter = () => ac.abort();
  // An already-aborted signal never fires 'abort' again, so honour it up front.
  if (opts.signal?.aborted) ac.abort();
  else opts.signal?.addEventListener('abort', onOuter, { once: true });
  try {
    let res: Response;
    try {
      res = await (opts.fetch ?? fetch)(url, { signal: ac.signal });
    } catch (err) {
      throw wrap(err, ac, opts.signal, timeoutMs, url);
    }
    if (res.status !== 200 && res.status !== 206) {
      await res.body?.cancel().catch(() => undefined); // release the socket
      throw new SegmentFetchError('http', `segment ${url} returned HTTP ${res.status}`, res.status);
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    let truncated = false;
    if (res.body) {
      const reader = res.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          chunks.push(value);
          total += value.length;
          if (total >= maxBytes) {
            // Exactly maxBytes with nothing after would also land here; peeking one more read
            // would cost a round trip, so "truncated" means "stopped reading at the limit".
            truncated = true;
            await reader.cancel().catch(() => undefined);
            break;
          }
        }
      } catch (err) {
        throw wrap(err, ac, opts.signal, timeoutMs, url);
      } finally {
        reader.releaseLock();
      }
    }
    const bytes = finish(chunks, total, maxBytes);
    check(bytes, validate, url);
    return { bytes, truncated, status: res.status, ms: performance.now() - t0 };
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onOuter);
  }
}

function wrap(err: unknown, ac: AbortController, outer: AbortSignal | undefined, timeoutMs: number, url: string): SegmentFetchError {
  if (err instanceof SegmentFetchError) return err;
  if (ac.signal.aborted && !outer?.aborted) return new SegmentFetchError('timeout', `segment ${url} timed out after ${timeoutMs} ms`, undefined, { cause: err });
  return new SegmentFetchError('network', `segment ${url} failed: ${(err as Error).message}`, undefined, { cause: err });
}

async function readFileHead(url: string, maxBytes: number, validate: boolean, t0: number): Promise<SegmentHead> {
  const { bytes, size } = await readFileStart(url, maxBytes);
  check(bytes, validate, url);
  return { bytes, truncated: size > maxBytes, status: 200, ms: performance.now() - t0 };
}
