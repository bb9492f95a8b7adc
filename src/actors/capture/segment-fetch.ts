// What every segment read shares: the typed error (stage codes the scheduler and the REST
// API report), container sniffing, and reading part of a local segment file. The capture
// path itself is keyframe-fetch.ts.

import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { StageError } from './stage-error.js';

export type SegmentFetchErrorCode = 'http' | 'timeout' | 'network' | 'garbage' | 'empty' | 'truncated';

export class SegmentFetchError extends StageError<SegmentFetchErrorCode> {
  override readonly name = 'SegmentFetchError';
}

const FMP4_FIRST_BOXES = new Set(['ftyp', 'styp', 'sidx', 'prft', 'emsg', 'moof', 'moov']);

/**
 * Container sniffing: MPEG-TS has a 0x47 sync byte every 188 bytes; fMP4 starts with a box
 * whose type (bytes 4..7) is one a fragment may open with (ftyp/styp/sidx/prft/emsg/moof, or moov
 * for a self-contained one); some TS segments start with an ID3 tag. null = neither.
 */
export function containerOf(b: Uint8Array): 'ts' | 'fmp4' | null {
  // A TS segment is whole 188-byte packets, so anything shorter cannot be one (and text
  // starting with "G" has a 0x47 first byte); check the next packets' sync bytes too.
  if (b.length >= 188 && b[0] === 0x47) return (b.length < 189 || b[188] === 0x47) && (b.length < 377 || b[376] === 0x47) ? 'ts' : null;
  if (b.length >= 3 && b[0] === 0x49 && b[1] === 0x44 && b[2] === 0x33) return 'ts'; // "ID3"
  if (b.length >= 8 && FMP4_FIRST_BOXES.has(String.fromCharCode(b[4], b[5], b[6], b[7]))) return 'fmp4';
  return null;
}

/** The bytes start like an MPEG-TS or fMP4 segment. */
export function looksLikeMedia(b: Uint8Array): boolean {
  return containerOf(b) !== null;
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
