/**
 * REST routes for instant-replay clips. Making one is an admin call (it costs disk and a
 * child ffmpeg); listing is open. The MP4s themselves are served by the gateway threads
 * (streamed from disk, see actors/gateway/clip-files.ts), not through here.
 */
import type { HttpRouter } from '../../shared/http-router.js';
import { HttpError, type HttpRequestContext } from '../../shared/http-server.js';
import type { ClipInfo } from '../../shared/clip-library.js';
import type { RequireAdmin } from '../admin-auth.js';

/** The longest wait after the request: the answer must come within the gateways' 30 s upcall limit. */
export const MAX_AFTER_S = 15;
const MAX_TITLE = 100;

export interface ClipRequestBody {
  before_s: number;
  after_s: number;
  title?: string;
}

export interface ClipsRoutesOptions {
  requireAdmin: RequireAdmin;
  bufferSeconds: number;
  /** Makes a clip (the encoder's `clip` RPC); HttpError for a refusal. */
  create: (request: ClipRequestBody) => Promise<ClipInfo>;
  list: () => Promise<ClipInfo[]>;
}

export const clipUrl = (id: string): string => `/api/clips/${id}.mp4`;

/** Validates a clip request from any door (REST, chat, milestone); throws HttpError(400) naming the field. */
export function parseClipRequest(body: unknown, bufferSeconds: number): ClipRequestBody {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'request body must be a JSON object like {"before_s": 20, "after_s": 5, "title": "…"}');
  const b = body as Record<string, unknown>;
  const before = b.before_s ?? 20;
  const after = b.after_s ?? 5;
  if (typeof before !== 'number' || !Number.isFinite(before) || before <= 0 || before > bufferSeconds) {
    throw new HttpError(400, `"before_s" must be a number of seconds in (0, ${bufferSeconds}] (clips.bufferSeconds)`);
  }
  if (typeof after !== 'number' || !Number.isFinite(after) || after < 0 || after > MAX_AFTER_S) {
    throw new HttpError(400, `"after_s" must be a number of seconds in [0, ${MAX_AFTER_S}]`);
  }
  if (b.title !== undefined && (typeof b.title !== 'string' || b.title.length > MAX_TITLE)) {
    throw new HttpError(400, `"title" must be a string of at most ${MAX_TITLE} characters`);
  }
  const unknown = Object.keys(b).filter((k) => !['before_s', 'after_s', 'title'].includes(k));
  if (unknown.length > 0) throw new HttpError(400, `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}; allowed: before_s, after_s, title`);
  // Control characters would end up in a file's metadata and on overlays.
  const title = typeof b.title === 'string' ? b.title.replace(/[\u0000-\u001f\u007f]/g, ' ').trim() : undefined;
  return { before_s: before, after_s: after, ...(title ? { title } : {}) };
}

export function registerClipsRoutes(router: HttpRouter, o: ClipsRoutesOptions): void {
  const withUrl = (c: ClipInfo) => ({ ...c, url: clipUrl(c.id) });

  router.post('/api/clips', async (req: HttpRequestContext) => {
    o.requireAdmin(req.headers, req.query);
    const body = req.body.length === 0 ? {} : req.json<unknown>();
    const clip = await o.create(parseClipRequest(body, o.bufferSeconds));
    return { status: 201, json: { clip: withUrl(clip) } };
  });

  router.get('/api/clips', async () => {
    const clips = (await o.list()).reverse().map(withUrl);
    return { json: { clips, count: clips.length } };
  });
}
