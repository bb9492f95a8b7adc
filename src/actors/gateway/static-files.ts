/**
 * The overlay pages (`overlay/`) served by every gateway thread: `/overlay/<page>` answers
 * `overlay/<page>.html`, `/overlay/<path>` any other file below `overlay/`. Files are read
 * from disk on each request (a few KB, OBS loads a page once) so a page edited on a running
 * service is picked up on reload; paths are confined to the overlay folder.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { HttpResponse, HttpRequest, TemplatedApp } from 'uWebSockets.js';
import { projectRoot } from '../../shared/runtime-path.js';
import { reply } from './http-io.js';

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

/** Maps a request path to a file inside the overlay folder, or undefined when it escapes it. */
export function overlayFile(urlPath: string, root = OVERLAY_DIR): string | undefined {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath.replace(/^\/overlay\/?/, ''));
  } catch {
    return undefined;
  }
  if (rel === '' || rel.endsWith('/')) rel += 'index';
  if (!path.extname(rel)) rel += '.html';
  const file = path.resolve(root, rel);
  return file.startsWith(root + path.sep) ? file : undefined;
}

export function registerOverlayFiles(app: TemplatedApp, root = OVERLAY_DIR): void {
  const serve = (res: HttpResponse, req: HttpRequest) => {
    const state = { done: false };
    res.onAborted(() => { state.done = true; });
    const file = overlayFile(req.getUrl(), root);
    if (!file) {
      reply(res, state, 400, { 'content-type': 'text/plain; charset=utf-8' }, 'bad overlay path');
      return;
    }
    readFile(file).then(
      (bytes) => reply(res, state, 200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache' }, bytes),
      () => reply(res, state, 404, { 'content-type': 'text/plain; charset=utf-8' }, `no overlay file ${req.getUrl()}`),
    );
  };
  app.get('/overlay', (res) => {
    const state = { done: false };
    reply(res, state, 302, { location: '/overlay/showcase' }, '');
  });
  app.get('/overlay/*', serve);
}
