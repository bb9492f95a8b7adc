/**
 * Main-thread side of frame capture: the stream registry and its REST routes, the results
 * kept per stream (latest + bounded history, persisted to the state store), thumbnails, the
 * capture-restart route, and the upcalls the capture actor makes (`capture.sync`,
 * `capture.results`). Results also go to overlays on the `capture` channel (the control rings).
 */
import type { Logger } from 'pino';
import type { HttpRouter } from '../../shared/http-router.js';
import { HttpError, type HttpRequestContext } from '../../shared/http-server.js';
import { COST_THUMBNAIL } from '../../shared/rate-limit.js';
import type { StateStore } from '../../shared/state-store.js';
import type { CaptureRecord } from '../../actors/capture/index.js';
import { StreamRegistry } from './registry.js';
import { registerCaptureRoutes } from './routes.js';
import { parseStreamsFile } from './streams-file.js';
import type { PublishOverlay } from '../control-rings.js';
import type { RequireAdmin } from '../admin-auth.js';
import type { SharedCaptureResults } from '../cluster/capture-results.js';

export const RESULTS_NS = 'capture-results';
/**
 * Results are rewritten per stream (latest + history) for the streams that changed. With 500
 * streams and 50 results each that is ~25 MB of JSON per write, so not too often: a crash
 * loses at most this much history; a clean stop writes everything.
 */
const PERSIST_EVERY_MS = 30_000;

interface SupervisorLike {
  actorNames(): string[];
  call(actor: string, method: string, args?: unknown[], timeoutMs?: number): Promise<unknown>;
  provide(method: string, handler: (...args: never[]) => unknown): unknown;
}

export interface CaptureServiceOptions {
  router: HttpRouter;
  store: StateStore;
  supervisor: SupervisorLike;
  actor: string;
  requireAdmin: RequireAdmin;
  /** Each result goes to the overlays as a `capture_result` message keyed by stream. */
  publish: PublishOverlay;
  log: Logger;
  historyLength: number;
  /** The streams file named at start, already read (readStreamsFile) so a bad path fails before anything starts. */
  streamsFile?: { path: string; text: string };
  /** Flag/env values that override the stored capture config at start (CLI --interval etc.). */
  configOverrides?: Record<string, unknown>;
  /** Throws HttpError(429) when this client spent its budget for costly routes. */
  limitCostly?: (req: HttpRequestContext, route: string, cost: number) => void;
  /** Merged into GET /api/status. */
  extraStatus?: () => Record<string, unknown>;
  /** Called after the set of registered streams changed (scenes bound to streams follow it). */
  onStreamsChanged?: () => void;
  /** Several nodes share the registry (the store is on Redis): this node captures its share only. */
  cluster?: CaptureCluster;
}

/** What capture needs when the registry is shared by several nodes. */
export interface CaptureCluster {
  /** This node's share of the enabled streams. */
  mine<T extends { name: string }>(streams: readonly T[]): T[];
  /** Calls back when the share or the config may have changed (members came or went, another node edited the registry). */
  onChange(fn: (what: 'streams' | 'config') => void): void;
  /** Results every node can read. */
  results: SharedCaptureResults<CaptureRecord>;
}

interface StreamResults {
  latest: CaptureRecord | null;
  history: CaptureRecord[];
  counts: { ok: number; offline: number; error: number };
}

export interface CaptureService {
  registry: StreamRegistry;
  /** Register streams (duplicates ignored) and tell the capture actor. */
  addStreams(names: string[]): void;
  /** Write results not yet persisted (called on stop). */
  flush(): void;
  close(): void;
}

const FILE_RE = /^(latest|[0-9]{1,15})\.jpe?g$/;

export function registerCaptureService(o: CaptureServiceOptions): CaptureService {
  const registry = new StreamRegistry(o.store);
  if (o.configOverrides && Object.keys(o.configOverrides).length > 0) registry.updateConfig(o.configOverrides);
  if (o.streamsFile) {
    // A bad line is reported, the good ones still load (a missing file was refused before
    // start, by readStreamsFile: the operator named it explicitly).
    const parsed = parseStreamsFile(o.streamsFile.text);
    const results = registry.addMany(parsed.entries.map((e) => (e.priority === undefined ? e.name : { username: e.name, priority: e.priority })));
    const invalid = results.filter((r) => r.status === 'invalid');
    for (const bad of [...parsed.errors.map((e) => `line ${e.line}: ${e.reason}`), ...invalid.map((r) => `${JSON.stringify(r.input)}: ${r.reason}`)]) o.log.warn({ file: o.streamsFile.path }, `streams file: ${bad}`);
    o.log.info({ file: o.streamsFile.path, added: results.filter((r) => r.status === 'added').length }, 'streams file loaded');
  }

  const results = new Map<string, StreamResults>();
  for (const e of o.store.list<StreamResults>(RESULTS_NS)) results.set(e.key, e.value);
  const dirty = new Set<string>();
  const hasActor = () => o.supervisor.actorNames().includes(o.actor);

  const enabledStreams = () => {
    const all = registry.list().filter((s) => s.enabled).map((s) => ({ name: s.name, priority: s.priority }));
    return o.cluster ? o.cluster.mine(all) : all;
  };
  const pushToActor = (what: 'streams' | 'config') => {
    if (!hasActor()) return;
    const call = what === 'streams'
      ? o.supervisor.call(o.actor, 'setStreams', [enabledStreams()])
      : o.supervisor.call(o.actor, 'configure', [registry.getConfig()]);
    // The actor re-syncs from the registry when it (re)starts, so a failed push is not lost.
    call.catch((err: Error) => o.log.warn({ err }, `capture: ${what} change not delivered to the actor yet`));
  };

  o.supervisor.provide('capture.sync', () => ({ streams: enabledStreams(), config: registry.getConfig() }));
  o.cluster?.onChange((what) => pushToActor(what));
  o.supervisor.provide('capture.results', (batch: CaptureRecord[]) => {
    o.cluster?.results.record(batch.filter((rec) => registry.get(rec.stream)));
    for (const rec of batch) {
      if (!registry.get(rec.stream)) continue; // removed meanwhile
      let r = results.get(rec.stream);
      if (!r) {
        r = { latest: null, history: [], counts: { ok: 0, offline: 0, error: 0 } };
        results.set(rec.stream, r);
      }
      r.latest = rec;
      r.history.push(rec);
      if (r.history.length > o.historyLength) r.history.splice(0, r.history.length - o.historyLength);
      r.counts[rec.status]++;
      dirty.add(rec.stream);
      o.publish({ type: 'capture_result', channel: 'capture', key: rec.stream, data: rec });
    }
    return batch.length;
  });

  const flush = () => {
    if (dirty.size === 0) return;
    o.store.transaction((tx) => {
      for (const name of dirty) {
        const r = results.get(name);
        if (r) tx.put(RESULTS_NS, name, r);
      }
    });
    dirty.clear();
  };
  const timer = setInterval(flush, PERSIST_EVERY_MS);
  timer.unref();

  registerCaptureRoutes(o.router, {
    registry,
    requireAdmin: o.requireAdmin,
    onChange: (what) => {
      if (what === 'streams') {
        // Forget results of removed streams.
        for (const name of [...results.keys()]) {
          if (!registry.get(name)) {
            results.delete(name);
            o.store.delete(RESULTS_NS, name);
            o.cluster?.results.forget(name);
          }
        }
      }
      pushToActor(what);
      if (what === 'streams') o.onStreamsChanged?.();
    },
    ...(o.extraStatus ? { extraStatus: o.extraStatus } : {}),
    status: async () => (hasActor() ? o.supervisor.call(o.actor, 'status').catch((err: Error) => ({ error: err.message })) : { error: 'capture actor is not running' }),
    details: async (name) => {
      // Clustered, the stream may be captured by another node: its results are read from Redis.
      const r = o.cluster ? await o.cluster.results.details(name) : results.get(name);
      // latest, history and counts all come from what the main thread has received, so they
      // agree with each other (results arrive in batches every ~200 ms); the schedule is live.
      const live = hasActor() ? ((await o.supervisor.call(o.actor, 'stream', [name]).catch(() => null)) as { schedule: unknown } | null) : null;
      return {
        latest: r?.latest ?? null,
        history: r?.history ?? [],
        counts: r?.counts ?? { ok: 0, offline: 0, error: 0 },
        schedule: live?.schedule ?? null,
      };
    },
  });

  o.router.get('/api/frames/:name/:file', async (req) => {
    const name = req.params.name;
    if (!registry.get(name)) throw new HttpError(404, `stream "${name}" is not registered`);
    const m = FILE_RE.exec(req.params.file);
    if (!m) throw new HttpError(400, `frame file must be "latest.jpg" or "<frame>.jpg", got "${req.params.file}"`);
    const opts: Record<string, number> = {};
    for (const [name, min, max] of [['width', 16, 3840], ['quality', 1, 100]] as const) {
      const raw = req.query.get(name);
      if (raw === null) continue;
      const v = Number(raw);
      if (!Number.isInteger(v) || v < min || v > max) throw new HttpError(400, `${name} must be an integer ${min}-${max}`);
      opts[name] = v;
    }
    if (!hasActor()) throw new HttpError(503, 'capture is not running');
    // The JPEG is encoded on the capture actor's analysis pool, never here; the budget bounds how often one client asks.
    o.limitCostly?.(req, 'frames', COST_THUMBNAIL);
    let r: { jpeg: Uint8Array; at: number; frame: number };
    try {
      r = (await o.supervisor.call(o.actor, 'thumbnail', [name, { ...opts, waitMs: 8000 }], 10_000)) as typeof r;
    } catch (err) {
      const message = (err as Error).message;
      // The analysis pool's queue is full: a busy server, not a missing frame.
      if (/tasks already queued/.test(message)) throw new HttpError(503, message, undefined, { 'retry-after': '1' });
      throw new HttpError(404, message);
    }
    if (m[1] !== 'latest' && Number(m[1]) !== r.frame) throw new HttpError(404, `frame ${m[1]} of "${name}" is gone; the latest is ${r.frame}.jpg`);
    return { status: 200, headers: { 'content-type': 'image/jpeg', 'cache-control': 'no-store', 'x-frame': String(r.frame), 'x-captured-at': new Date(r.at).toISOString() }, body: new Uint8Array(r.jpeg) };
  });

  o.router.post('/api/restart', async (req) => {
    o.requireAdmin(req.headers, req.query);
    if (!hasActor()) throw new HttpError(503, 'capture is not running');
    try {
      await o.supervisor.call(o.actor, 'restart', [], 15_000);
    } catch (err) {
      throw new HttpError(500, `capture restart failed: ${(err as Error).message}`);
    }
    return { json: { restarted: true, streams: registry.count() } };
  });

  return {
    registry,
    addStreams(names) {
      const added = registry.addMany(names).filter((r) => r.status === 'added').length;
      if (added > 0) {
        pushToActor('streams');
        o.onStreamsChanged?.();
      }
    },
    flush,
    close() {
      clearInterval(timer);
      flush();
    },
  };
}
