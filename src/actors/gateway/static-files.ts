/**
 * The overlay pages (`overlay/`) served by every gateway thread: `/overlay/<page>` answers
 * `overlay/<page>.html`, `/overlay/<path>` any other file below `overlay/`. Files are read
 * from disk on each request (a few KB, OBS loads a page once) so a page edited on a running
 * service is picked up on reload; paths are confined to the overlay folder.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { projectRoot } from '../../shared/runtime-path.js';
import type { Exchange, UwsRoutes } from '../../shared/uws-routes.js';
import { replyText } from './http-io.js';

export const OVERLAY_DIR = path.join(projectRoot, 'overlay');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

/** Longest request path echoed back in a 404 (the path is the client's, not ours). */
const MAX_ECHOED_PATH = 200;

/** Maps a request path to a file inside the overlay folder, or undefined when it escapes it. */
export function overlayFile(urlPath: string, root = OVERLAY_DIR): string | undefined {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath.replace(/^\/overlay\/?/, ''));
  } catch {
    return undefined;
  }
  if (rel.includes('\0')) return undefined;
  if (rel === '' || rel.endsWith('/')) rel += 'index';
  if (!path.extname(rel)) rel += '.html';
  const file = path.resolve(root, rel);
  return file.startsWith(root + path.sep) ? file : undefined;
}

export function registerOverlayFiles(routes: UwsRoutes, root = OVERLAY_DIR): void {
  const serve = async (exchange: Exchange) => {
    const urlPath = exchange.request.path;
    const file = overlayFile(urlPath, root);
    if (!file) {
      replyText(exchange, 400, 'bad overlay path');
      return;
    }
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch {
      replyText(exchange, 404, `no overlay file ${urlPath.slice(0, MAX_ECHOED_PATH)}`);
      return;
    }
    exchange.reply(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache' }, bytes);
  };
  routes.get('/overlay', (exchange) => { exchange.reply(302, { location: '/overlay/showcase' }, ''); });
  routes.get('/overlay/*', serve);
}
