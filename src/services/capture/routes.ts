/**
 * REST routes for the stream registry and capture config (bodies as documented in the README).
 * Reads are open; writes call requireAdmin first so an unauthenticated request never learns
 * whether its body would have been valid.
 */
import type { HttpRouter } from '../../shared/http-router.js';
import { HttpError, type HttpRequestContext } from '../../shared/http-server.js';
import { RegistryError, type StreamRegistry } from './registry.js';

export interface CaptureRoutesOptions {
  registry: StreamRegistry;
  requireAdmin: (headers: Record<string, string>, query: URLSearchParams) => void;
  status?: () => unknown;
  /** More of the service's state for GET /api/status (parts unavailable for want of ffmpeg). */
  extraStatus?: () => Record<string, unknown>;
  /** Called after every successful write, so the capture actor can be told. */
  onChange?: (what: 'streams' | 'config') => void;
  /** Extra detail merged into GET /api/streams/:name (latest result, history, schedule). */
  details?: (name: string) => unknown;
}

const STATUS_OF: Record<RegistryError['code'], number> = { invalid: 400, duplicate: 409, not_found: 404, full: 409 };

function toHttp(error: unknown): never {
  if (error instanceof RegistryError) throw new HttpError(STATUS_OF[error.code], error.message);
  throw error;
}

/** JSON object body or a 400 saying why not. */
function objectBody(req: HttpRequestContext): Record<string, unknown> {
  if (req.body.length === 0) throw new HttpError(400, 'request body is empty; expected a JSON object');
  const body = req.json<unknown>();
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'request body must be a JSON object');
  return body as Record<string, unknown>;
}

export function registerCaptureRoutes(router: HttpRouter, options: CaptureRoutesOptions): void {
  const { registry, requireAdmin } = options;
  const admin = (req: HttpRequestContext) => requireAdmin(req.headers, req.query);
  const changed = (what: 'streams' | 'config') => options.onChange?.(what);

  router.get('/api/streams', () => ({ json: { streams: registry.list(), count: registry.count() } }));

  router.post('/api/streams', (req) => {
    admin(req);
    const body = objectBody(req);
    if (body.username === undefined) throw new HttpError(400, 'missing "username"');
    try {
      const stream = registry.add(body.username, body.priority);
      changed('streams');
      return { status: 201, json: { stream } };
    } catch (error) { toHttp(error); }
  });

  router.post('/api/streams/bulk', (req) => {
    admin(req);
    const body = objectBody(req);
    if (!Array.isArray(body.streams)) throw new HttpError(400, '"streams" must be an array of names or {username, priority}');
    const results = registry.addMany(body.streams);
    if (results.some((r) => r.status === 'added')) changed('streams');
    const tally = { added: 0, duplicate: 0, invalid: 0 };
    for (const r of results) tally[r.status]++;
    return { json: { ...tally, results } };
  });

  router.get('/api/streams/:name', async (req) => {
    const stream = registry.get(req.params.name);
    if (!stream) throw new HttpError(404, `stream "${req.params.name}" is not registered`);
    const extra = options.details ? await options.details(stream.name) : undefined;
    return { json: { stream, ...(extra && typeof extra === 'object' ? extra : {}) } };
  });

  router.del('/api/streams/:name', (req) => {
    admin(req);
    if (!registry.remove(req.params.name)) throw new HttpError(404, `stream "${req.params.name}" is not registered`);
    changed('streams');
    return { json: { removed: req.params.name } };
  });

  router.put('/api/streams/:name/priority', (req) => {
    admin(req);
    const body = objectBody(req);
    try {
      const stream = registry.setPriority(req.params.name, body.priority);
      changed('streams');
      return { json: { stream } };
    } catch (error) { toHttp(error); }
  });

  router.get('/api/config', () => ({ json: registry.getConfig() }));

  router.put('/api/config', (req) => {
    admin(req);
    const body = objectBody(req);
    try {
      const config = registry.updateConfig(body);
      changed('config');
      return { json: config };
    } catch (error) { toHttp(error); }
  });

  router.get('/api/status', async () => {
    const streams = registry.list();
    return {
      json: {
        streams: { total: streams.length, enabled: streams.filter((s) => s.enabled).length, limit: registry.limit },
        config: registry.getConfig(),
        ...(options.status ? { capture: await options.status() } : {}),
        ...(options.extraStatus?.() ?? {}),
      },
    };
  });
}
