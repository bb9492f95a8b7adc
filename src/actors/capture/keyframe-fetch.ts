// Fetch a segment only until its first keyframe is complete, demuxing as bytes arrive: at
// 480p that is typically the first 40-60 KB, not the whole ~400 KB segment (nor the 300 KB a
// fixed head read would take). Errors reuse segment-fetch's typed codes so callers treat
// both paths alike.

import { SegmentFetchError, looksLikeMedia, readFileStart } from './segment-fetch.js';
import { KeyframeError, TsKeyframeExtractor, type Keyframe } from './ts-keyframe.js';
import { httpGet, type HttpGetError, type HttpGetResult } from './http-get.js';

export interface KeyframeFetch extends Keyframe {
  /** Bytes read from the network / file. */
  bytesRead: number;
  ms: number;
}

export interface KeyframeFetchOptions {
  /** Stop reading after this many bytes even without a keyframe (default 1 MiB). */
  maxBytes?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
}

function sniff(first: Uint8Array, url: string): void {
  if (looksLikeMedia(first)) {
    // fMP4 ("enhanced" Twitch variants) would need a different demuxer; say so plainly.
    if (first[0] !== 0x47 && !(first[0] === 0x49 && first[1] === 0x44)) {
      throw new SegmentFetchError('garbage', `segment ${url} is fMP4; only MPEG-TS segments are supported (use an h264 TS variant)`);
    }
    return;
  }
  throw new SegmentFetchError('garbage', `segment ${url} is neither MPEG-TS nor fMP4`);
}

function toFetchError(err: unknown, url: string): Error {
  if (err instanceof KeyframeError) {
    return new SegmentFetchError(err.code === 'incomplete' ? 'truncated' : 'garbage', `segment ${url}: ${err.message}`, undefined, { cause: err });
  }
  return err as Error;
}

export async function fetchKeyframe(url: string, opts: KeyframeFetchOptions = {}): Promise<KeyframeFetch> {
  const maxBytes = opts.maxBytes ?? 1024 * 1024;
  const timeoutMs = opts.timeoutMs ?? 5000;
  const t0 = performance.now();
  const x = new TsKeyframeExtractor();
  if (url.startsWith('file:')) return fromFile(url, maxBytes, x, t0);

  let sniffed = false;
  let stageError: Error | null = null;
  let kf: Keyframe | null = null;
  let seen = 0;
  let r: HttpGetResult;
  try {
    r = await httpGet(url, {
      timeoutMs,
      ...(opts.signal ? { signal: opts.signal } : {}),
      onChunk: (chunk) => {
        seen += chunk.length;
        try {
          if (!sniffed && chunk.length > 0) {
            sniff(chunk, url);
            sniffed = true;
          }
          kf = x.push(chunk);
        } catch (err) {
          stageError = err as Error;
          return true;
        }
        return kf !== null || x.done || seen >= maxBytes;
      },
    });
  } catch (err) {
    const e = err as HttpGetError;
    throw new SegmentFetchError(e.code === 'timeout' ? 'timeout' : 'network', `segment ${e.message}`, undefined, { cause: err });
  }
  if (stageError) throw stageError;
  if (r.status !== 200 && r.status !== 206) throw new SegmentFetchError('http', `segment ${url} returned HTTP ${r.status}`, r.status);
  if (kf) return { ...(kf as Keyframe), bytesRead: r.bytesRead, ms: performance.now() - t0 };
  if (r.bytesRead === 0) throw new SegmentFetchError('empty', `segment ${url} is empty`);
  try {
    return { ...x.finish(r.complete), bytesRead: r.bytesRead, ms: performance.now() - t0 };
  } catch (err) {
    throw toFetchError(err, url);
  }
}

/** A local segment is read in 64 KiB steps, stopping at the keyframe as over HTTP. */
async function fromFile(url: string, maxBytes: number, x: TsKeyframeExtractor, t0: number): Promise<KeyframeFetch> {
  const step = 64 * 1024;
  let offset = 0;
  for (;;) {
    const { bytes, size } = await readFileStart(url, Math.min(step, maxBytes - offset), offset);
    if (offset === 0 && bytes.length === 0) throw new SegmentFetchError('empty', `segment ${url} is empty`);
    if (offset === 0) sniff(bytes, url);
    offset += bytes.length;
    const atEnd = offset >= size || bytes.length === 0;
    try {
      const kf = x.push(bytes);
      if (kf) return { ...kf, bytesRead: offset, ms: performance.now() - t0 };
      if (x.done || atEnd || offset >= maxBytes) return { ...x.finish(atEnd), bytesRead: offset, ms: performance.now() - t0 };
    } catch (err) {
      throw toFetchError(err, url);
    }
  }
}
