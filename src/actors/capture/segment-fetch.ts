// Fetch only the head of a segment: a segment opens with a keyframe and ~300 KB of a
// 720p segment is enough to decode it (reference doc), so reading the rest would waste
// bandwidth and time for every capture. The deadline covers headers and body.

import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export const DEFAULT_SEGMENT_MAX_BYTES = 300 * 1024;

export type SegmentFetchErrorCode = 'http' | 'timeout' | 'network' | 'garbage' | 'empty' | 'truncated';

export class SegmentFetchError extends Error {
  readonly code: SegmentFetchErrorCode;
  readonly status?: number;
  constructor(code: SegmentFetchErrorCode, message: string, status?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SegmentFetchError';
    this.code = code;
    if (status !== undefined) this.status = status;
  }
}

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

/**
 * Container sniffing: MPEG-TS has a 0x47 sync byte every 188 bytes; fMP4 starts with a box
 * whose type (bytes 4..7) is ftyp/styp/moof/sidr; some TS segments start with an ID3 tag.
 */
export function looksLikeMedia(b: Uint8Array): boolean {
  // A TS segment is whole 188-byte packets, so anything shorter cannot be one (and text
  // starting with "G" has a 0x47 first byte); check the next packets' sync bytes too.
  if (b.length >= 188 && b[0] === 0x47) return (b.length < 189 || b[188] === 0x47) && (b.length < 377 || b[376] === 0x47);
  if (b.length >= 3 && b[0] === 0x49 && b[1] === 0x44 && b[2] === 0x33) return true; // "ID3"
  if (b.length >= 8) {
    const type = String.fromCharCode(b[4], b[5], b[6], b[7]);
    return type === 'ftyp' || type === 'styp' || type === 'moof' || type === 'sidr';
  }
  return false;
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

/**
 * Up to `maxBytes` of a file: URL segment from `position`, with a missing file mapped to a 404
 * so callers treat files and HTTP alike. `size` is the whole file's.
 */
export async function readFileStart(url: string, maxBytes: number, position = 0): Promise<{ bytes: Uint8Array; size: number }> {
  let fh;
  try {
    fh = await open(fileURLToPath(url), 'r');
  } catch (err) {
    const notFound = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new SegmentFetchError(notFound ? 'http' : 'network', `cannot open ${url}: ${(err as Error).message}`, notFound ? 404 : undefined, { cause: err });
  }
  try {
    const size = (await fh.stat()).size;
    const buf = new Uint8Array(Math.max(0, Math.min(size - position, maxBytes)));
    const { bytesRead } = await fh.read(buf, 0, buf.length, position);
    return { bytes: buf.subarray(0, bytesRead), size };
  } finally {
    await fh.close();
  }
}

async function readFileHead(url: string, maxBytes: number, validate: boolean, t0: number): Promise<SegmentHead> {
  const { bytes, size } = await readFileStart(url, maxBytes);
  check(bytes, validate, url);
  return { bytes, truncated: size > maxBytes, status: 200, ms: performance.now() - t0 };
}
