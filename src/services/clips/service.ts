/**
 * Instant-replay clips, main-thread side: the REST routes and the `clips.create` upcall (chat's
 * `!clip`, milestones) all end in the encoder actor's `clip` RPC, which waits for the seconds
 * after the request, cuts the clip off this thread and answers with it. Listing reads the
 * clips folder (small JSON files, asynchronously).
 */
import type { Logger } from 'pino';
import { HttpError } from '../../shared/http-server.js';
import type { HttpRouter } from '../../shared/http-router.js';
import { listClips, type ClipInfo } from '../../shared/clip-library.js';
import { ENCODER } from '../../topology.js';
import type { RequireAdmin } from '../admin-auth.js';
import { MAX_AFTER_S, parseClipRequest, registerClipsRoutes, type ClipRequestBody } from './routes.js';

type ClipResult = { ok: true; clip: ClipInfo } | { ok: false; status: number; error: string };

export interface ClipsServiceDeps {
  router: HttpRouter;
  supervisor: {
    provide(method: string, handler: (...args: never[]) => unknown): unknown;
    actorNames(): string[];
    call(actor: string, method: string, args?: unknown[], timeoutMs?: number): Promise<unknown>;
  };
  requireAdmin: RequireAdmin;
  dir: string;
  enabled: boolean;
  bufferSeconds: number;
  log: Logger;
}

export function registerClipsService(d: ClipsServiceDeps): void {
  const create = async (request: ClipRequestBody): Promise<ClipInfo> => {
    if (!d.enabled) throw new HttpError(409, 'clips are off (clips.enabled is false)');
    if (!d.supervisor.actorNames().includes(ENCODER)) throw new HttpError(409, 'no output is running (start with --output …), so there is nothing to clip');
    // The wait for after_s, the last segment and the cut, with room to spare.
    const result = (await d.supervisor.call(ENCODER, 'clip', [request], (MAX_AFTER_S + 25) * 1000)) as ClipResult;
    if (!result.ok) throw new HttpError(result.status, result.error);
    return result.clip;
  };
  registerClipsRoutes(d.router, { requireAdmin: d.requireAdmin, bufferSeconds: d.bufferSeconds, create, list: () => listClips(d.dir) });
  // Chat's !clip and milestone clips: the same validation and the same answer as REST.
  d.supervisor.provide('clips.create', async (body: unknown) => {
    try {
      // Chat asks for a fixed length: a shorter buffer gives what it holds.
      const b = body as { before_s?: unknown } | null;
      const asked = typeof b?.before_s === 'number' ? { ...b, before_s: Math.min(b.before_s, d.bufferSeconds) } : body;
      return { ok: true, clip: await create(parseClipRequest(asked, d.bufferSeconds)) };
    } catch (error) {
      if (!(error instanceof HttpError)) d.log.error({ err: (error as Error).message }, 'clip request failed');
      return { ok: false, status: error instanceof HttpError ? error.status : 500, error: (error as Error).message };
    }
  });
}
