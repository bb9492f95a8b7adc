// Fetch a segment only until its first keyframe is complete, demuxing as bytes arrive: at
// 480p that is typically the first 40-60 KB, not the whole ~400 KB segment (nor the 300 KB a
// fixed head read would take). MPEG-TS and fragmented MP4 (with its EXT-X-MAP init section)
// are both read this way; the container is told by the first bytes. Errors reuse
// segment-fetch's typed codes so callers treat both paths alike.

import { SegmentFetchError, containerOf, readFileStart } from './segment-fetch.js';
import { KeyframeError, TsKeyframeExtractor, type Keyframe } from './ts-keyframe.js';
import { Fmp4KeyframeExtractor, parseFmp4Init, type Fmp4Init } from './fmp4-keyframe.js';
import { httpGet, type HttpGetError, type HttpGetResult } from './http-get.js';
import type { ByteRange } from './hls-playlist.js';

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
  /** The fMP4 init section (EXT-X-MAP) the segment refers to, when it has one. */
  init?: Fmp4Init;
  /** EXT-X-BYTERANGE: the segment is this part of the URL (single-file renditions). */
  range?: ByteRange;
}

interface Extractor {
  readonly done: boolean;
  push(chunk: Uint8Array): Keyframe | null;
  finish(complete: boolean): Keyframe;
}

/** The extractor for the container the first bytes show; anything else is garbage. */
function extractorFor(first: Uint8Array, url: string, init: Fmp4Init | undefined): Extractor {
  const container = containerOf(first);
  if (!container) throw new SegmentFetchError('garbage', `segment ${url} is neither MPEG-TS nor fMP4`);
  return container === 'ts' ? new TsKeyframeExtractor() : new Fmp4KeyframeExtractor(init ?? null);
}

function toFetchError(err: unknown, url: string): Error {
  if (err instanceof KeyframeError) {
    return new SegmentFetchError(err.code === 'incomplete' ? 'truncated' : 'garbage', `segment ${url}: ${err.message}`, undefined, { cause: err });
  }
  return err as Error;
}

/** An HTTP Range header for one HLS byte range (inclusive end). */
const rangeHeader = (r: ByteRange): Record<string, string> => ({ range: `bytes=${r.offset}-${r.offset + r.length - 1}` });

/** A failed GET (timeout, refused, reset) as the typed error the capture stages report. */
function transportError(err: unknown, what: string): SegmentFetchError {
  const e = err as HttpGetError;
  return new SegmentFetchError(e.code === 'timeout' ? 'timeout' : 'network', `${what} ${e.message}`, undefined, { cause: err });
}

/** Largest init section accepted (real ones are 1-5 KB). */
const MAX_INIT_BYTES = 256 * 1024;

/**
 * Fetches and parses an EXT-X-MAP init section (optionally a byte range of its URL).
 * Callers cache the result per rendition.
 */
export async function fetchInitSection(url: string, range: ByteRange | undefined, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Fmp4Init> {
  if (range && range.length > MAX_INIT_BYTES) throw new SegmentFetchError('garbage', `init section of ${range.length} bytes is larger than ${MAX_INIT_BYTES}`);
  let bytes: Uint8Array;
  if (url.startsWith('file:')) {
    const r = await readFileStart(url, range?.length ?? MAX_INIT_BYTES + 1, range?.offset ?? 0);
    bytes = r.bytes;
  } else {
    let r: HttpGetResult;
    try {
      r = await httpGet(url, {
        timeoutMs: opts.timeoutMs ?? 5000,
        maxBytes: MAX_INIT_BYTES,
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(range ? { headers: rangeHeader(range) } : {}),
      });
    } catch (err) {
      throw transportError(err, 'init section');
    }
    if (r.status !== 200 && r.status !== 206) throw new SegmentFetchError('http', `init section ${url} returned HTTP ${r.status}`, r.status);
    bytes = r.body;
    // A server that ignores Range sends the whole file: take the asked-for part of it.
    if (range && r.status === 200) bytes = bytes.subarray(range.offset, range.offset + range.length);
  }
  if (bytes.length > MAX_INIT_BYTES) throw new SegmentFetchError('garbage', `init section ${url} is larger than ${MAX_INIT_BYTES} bytes`);
  try {
    return parseFmp4Init(bytes);
  } catch (err) {
    if (err instanceof KeyframeError) throw new SegmentFetchError('garbage', `init section ${url}: ${err.message}`, undefined, { cause: err });
    throw err;
  }
}

export async function fetchKeyframe(url: string, opts: KeyframeFetchOptions = {}): Promise<KeyframeFetch> {
  const maxBytes = opts.maxBytes ?? 1024 * 1024;
  const timeoutMs = opts.timeoutMs ?? 5000;
  const t0 = performance.now();
  const range = opts.range;
  if (url.startsWith('file:')) return fromFile(url, maxBytes, opts.init, t0, range);
  const limit = range ? Math.min(maxBytes, range.length) : maxBytes;

  let x: Extractor | null = null;
  let stageError: Error | null = null;
  let kf: Keyframe | null = null;
  let seen = 0;
  let r: HttpGetResult;
  try {
    r = await httpGet(url, {
      timeoutMs,
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(range ? { headers: rangeHeader(range) } : {}),
      onChunk: (chunk, status) => {
        if (range && status !== 206) {
          stageError = new SegmentFetchError('http', `segment ${url}: the server ignored the Range request (HTTP ${status}) that EXT-X-BYTERANGE needs`, status);
          return true;
        }
        // A byte range ends where the next segment begins: never read past it.
        if (seen + chunk.length > limit) chunk = chunk.subarray(0, Math.max(0, limit - seen));
        seen += chunk.length;
        try {
          if (!x && chunk.length > 0) x = extractorFor(chunk, url, opts.init);
          if (x) kf = x.push(chunk);
        } catch (err) {
          stageError = err as Error;
          return true;
        }
        return kf !== null || (x?.done ?? false) || seen >= limit;
      },
    });
  } catch (err) {
    throw transportError(err, 'segment');
  }
  if (stageError) throw stageError;
  if (r.status !== 200 && r.status !== 206) throw new SegmentFetchError('http', `segment ${url} returned HTTP ${r.status}`, r.status);
  if (kf) return { ...(kf as Keyframe), bytesRead: r.bytesRead, ms: performance.now() - t0 };
  if (r.bytesRead === 0 || !x) throw new SegmentFetchError('empty', `segment ${url} is empty`);
  try {
    // The whole byte range read counts as the whole segment.
    const complete = r.complete || (range !== undefined && seen >= range.length);
    return { ...(x as Extractor).finish(complete), bytesRead: r.bytesRead, ms: performance.now() - t0 };
  } catch (err) {
    throw toFetchError(err, url);
  }
}

/** A local segment is read in 64 KiB steps, stopping at the keyframe as over HTTP. */
async function fromFile(url: string, maxBytes: number, init: Fmp4Init | undefined, t0: number, range?: ByteRange): Promise<KeyframeFetch> {
  const step = 64 * 1024;
  const start = range?.offset ?? 0;
  const limit = range ? Math.min(maxBytes, range.length) : maxBytes;
  let offset = 0; // bytes read from `start`
  let x: Extractor | null = null;
  for (;;) {
    const { bytes, size } = await readFileStart(url, Math.min(step, limit - offset), start + offset);
    if (offset === 0 && bytes.length === 0) throw new SegmentFetchError('empty', `segment ${url} is empty`);
    x ??= extractorFor(bytes, url, init);
    offset += bytes.length;
    // The end of the file, or of the segment's byte range, is the end of the segment.
    const atEnd = start + offset >= size || bytes.length === 0 || (range !== undefined && offset >= range.length);
    try {
      const kf = x.push(bytes);
      if (kf) return { ...kf, bytesRead: offset, ms: performance.now() - t0 };
      if (x.done || atEnd || offset >= limit) return { ...x.finish(atEnd), bytesRead: offset, ms: performance.now() - t0 };
    } catch (err) {
      throw toFetchError(err, url);
    }
  }
}
