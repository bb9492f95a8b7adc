/**
 * `GET /api/clips/<id>.mp4`: instant-replay clips served from `<dataDir>/clips` by the gateway
 * threads, streamed from disk in chunks with backpressure (a clip is tens of MB: it never sits
 * whole in memory, and never passes through the main thread). One `Range: bytes=a-b` is
 * honoured so browsers can seek. Only names matching the clip id pattern are served.
 */
import { createReadStream } from 'node:fs';
import { CLIP_ID_PATTERN, clipFile, clipSize } from '../../shared/clip-library.js';
import type { Exchange, UwsRoutes } from '../../shared/uws-routes.js';
import { replyJson } from './http-io.js';

const CHUNK = 256 * 1024;

/** The one byte range asked for, or undefined for the whole file, or 'bad' (416). */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | undefined | 'bad' {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'bad';
  let start: number;
  let end: number;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  return start > end || start >= size ? 'bad' : { start, end };
}

export function registerClipFiles(routes: UwsRoutes, dir: string): void {
  routes.get('/api/clips/:file', async (exchange: Exchange) => {
    const name = decodeURIComponent(exchange.request.params[0] ?? '');
    const id = name.endsWith('.mp4') ? name.slice(0, -4) : '';
    if (!CLIP_ID_PATTERN.test(id)) {
      replyJson(exchange, 404, { error: `no clip ${JSON.stringify(name.slice(0, 80))}; GET /api/clips lists them` });
      return;
    }
    const size = await clipSize(dir, id);
    if (size === undefined) {
      replyJson(exchange, 404, { error: `no clip ${id} (deleted, or never made)` });
      return;
    }
    const range = parseRange(exchange.request.headers.range, size);
    if (range === 'bad') {
      exchange.reply(416, { 'content-range': `bytes */${size}` }, '');
      return;
    }
    const { start, end } = range ?? { start: 0, end: size - 1 };
    const headers: Record<string, string> = {
      'content-type': 'video/mp4', 'accept-ranges': 'bytes', 'cache-control': 'no-cache',
      'content-disposition': `inline; filename="${id}.mp4"`,
      ...(range ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
    };
    const length = size === 0 ? 0 : end - start + 1;
    const source = createReadStream(clipFile(dir, id), { start, end, highWaterMark: CHUNK });
    try {
      await exchange.streamSized(range ? 206 : 200, headers, length, source);
    } finally {
      source.destroy();
    }
  });
}
