/**
 * The scene service (main thread): owner of the one live scene.
 *
 * The scene lives in the state store (ns `scene`, key `current`) so a restart shows the
 * same broadcast. Every change goes through `applySceneOp` (pure, validating, version+1),
 * then, in this order: saved (the store is the truth), pushed to the compositor actor when
 * one runs (a failure there is logged, not fatal: the compositor asks for the scene again
 * with `scene.get` when it restarts), and published to the gateways' control rings as a
 * retained `{type:'scene'}` message on the `control` channel (each gateway forwards those
 * to its `/scene` control clients).
 *
 * Two doors lead here: REST routes on the main-thread router (reads open, writes need the
 * admin token) and the `scene.command` upcall the gateways use for the `/scene` WebSocket.
 * Both end in `execute`, so they validate and answer identically.
 */
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { HttpError, type HttpRequestContext } from '../../shared/http-server.js';
import type { HttpRouter } from '../../shared/http-router.js';
import type { StateStore } from '../../shared/state-store.js';
import { SceneError, applySceneOp, captureSourceOf, parseScene, type Layer, type Scene } from '../../shared/scene/model.js';
import { buildPresetScene, isScenePreset, SCENE_PRESETS, type ScenePreset } from '../../shared/scene/presets.js';
import { COMPOSITOR } from '../../topology.js';
import type { PublishOverlay } from '../control-rings.js';
import type { RequireAdmin } from '../admin-auth.js';
import { PreviewBusyError, PreviewPool } from './preview-pool.js';
import { COST_PREVIEW } from '../../shared/rate-limit.js';

export const SCENE_NS = 'scene';
export const SCENE_KEY = 'current';
const PRESET_KEY = 'preset';
/** The scene a fresh service shows. */
export const DEFAULT_PRESET: ScenePreset = 'training';
/** Previews render on the preview pool; still, a preview is a look at the layout, not a full-size export. */
const MAX_PREVIEW_WIDTH = 1920;
const MIN_PREVIEW_WIDTH = 16;

/** What the service needs from the Supervisor (narrow, so tests can stand in for it). */
export interface SceneSupervisor {
  provide(method: string, handler: (...args: never[]) => unknown): unknown;
  actorNames(): string[];
  call(actor: string, method: string, args?: unknown[], timeoutMs?: number): Promise<unknown>;
  readonly registry?: Registry;
}

export interface SceneServiceDeps {
  router: HttpRouter;
  supervisor: SceneSupervisor;
  store: StateStore;
  /** Throws HttpError(401) unless the headers/query carry the admin token. */
  requireAdmin: RequireAdmin;
  /** Announces a change to every gateway (the control rings). */
  publish: PublishOverlay;
  width: number;
  height: number;
  fps: number;
  log: Logger;
  /** Preview pool bounds (default 1 thread, 4 waiting). */
  previewThreads?: number;
  previewQueue?: number;
  /** Throws HttpError(429) when this client spent its budget for costly routes. */
  limitCostly?: (req: HttpRequestContext, route: string, cost: number) => void;
  /** Registered capture streams (what a video layer may bind to), first = the training tile. */
  streams?: () => string[];
  /** A preset named at start (--scene): installed over whatever scene was saved. */
  preset?: ScenePreset;
}

/** A scene operation, as the REST routes and the WS channel express it. */
export type SceneOp =
  | { op: 'add'; layer: unknown }
  | { op: 'update'; id: string; patch: unknown }
  | { op: 'remove'; id: string }
  | { op: 'reorder'; ids: unknown };

/** A `/scene` WebSocket command: an op, or `get`; `id` is echoed in the ack. */
export type SceneCommand = { id?: unknown; op?: unknown; [k: string]: unknown };

export type SceneAck =
  | { type: 'scene_ack'; id: unknown; ok: true; scene_version: number; scene?: Scene }
  | { type: 'scene_ack'; id: unknown; ok: false; error: string; path?: string; status: number };

export interface SceneService {
  current(): Scene;
  /** Installs a preset built for the registered streams (PUT /api/scene/preset). */
  usePreset(name: unknown): Promise<Scene>;
  /** The registered streams changed: a preset nobody has edited since is rebuilt for them. */
  streamsChanged(): void;
  /** Validates and applies one op; throws HttpError (400 with path, 404 for an unknown id). */
  apply(op: SceneOp): Promise<Scene>;
  /** Validates and installs a whole scene (PUT /api/scene). */
  replace(body: unknown): Promise<Scene>;
  /** The `/scene` WebSocket path: never throws, answers with an ack. */
  command(cmd: SceneCommand, token?: string): Promise<SceneAck>;
  /** Stops the preview threads. */
  close(): Promise<void>;
}

const OPS = ['add', 'update', 'remove', 'reorder', 'get'] as const;

export function registerSceneService(deps: SceneServiceDeps): SceneService {
  const { router, supervisor, store, log } = deps;
  const registry = supervisor.registry;
  const registers = registry ? [registry] : [];
  const commands = new Counter({
    name: 'ringcast_scene_commands_total', help: 'Scene commands by operation, door (rest, ws) and outcome',
    labelNames: ['op', 'via', 'outcome'], registers,
  });
  const pushFailures = new Counter({ name: 'ringcast_scene_push_failures_total', help: 'Scene pushes to the compositor actor that failed', registers });
  const relayDrops = new Counter({ name: 'ringcast_scene_relay_drops_total', help: 'Scene announcements the control rings refused (full or too big)', registers });
  const versionGauge = new Gauge({ name: 'ringcast_scene_version', help: 'Version of the current scene', registers });
  const layersGauge = new Gauge({ name: 'ringcast_scene_layers', help: 'Layers in the current scene', registers });

  const streams = () => deps.streams?.() ?? [];
  const build = (name: ScenePreset) => buildPresetScene(name, { width: deps.width, height: deps.height, fps: deps.fps, streams: streams() });
  /** Which preset the scene is and the version it had when installed (an edit makes it the user's own). */
  let preset = store.get<{ name: ScenePreset; version: number }>(SCENE_NS, PRESET_KEY) ?? null;
  let scene = load();
  if (deps.preset !== undefined) {
    scene = { ...build(deps.preset), version: scene.version + 1 };
    preset = { name: deps.preset, version: scene.version };
    store.put(SCENE_NS, SCENE_KEY, scene);
    store.put(SCENE_NS, PRESET_KEY, preset);
  } else if (store.get(SCENE_NS, SCENE_KEY) === undefined) {
    preset = { name: DEFAULT_PRESET, version: scene.version };
  }
  versionGauge.set(scene.version);
  layersGauge.set(scene.layers.length);

  function load(): Scene {
    const stored = store.get<Scene>(SCENE_NS, SCENE_KEY);
    if (stored !== undefined) {
      // Re-validate what was stored (an older build may have written something this one
      // rejects), adopting the configured output size: a changed --width keeps the layers.
      try {
        const { width, height, fps } = deps;
        return { ...parseScene({ ...stored, width, height, fps }), version: numberOr(stored.version, 0) };
      } catch (error) {
        log.error({ err: error }, 'stored scene is not valid any more: starting from the showcase scene (the old one stays until the first change)');
        // Versions keep increasing across the swap, so clients never see one go backwards.
        preset = null;
        return { ...build(DEFAULT_PRESET), version: numberOr(stored.version, 0) + 1 };
      }
    }
    return build(DEFAULT_PRESET);
  }

  /**
   * A layer may bind only to a registered stream. Checked for the bindings an edit introduces
   * (not the ones already there: removing a stream must not make the whole scene uneditable).
   */
  function checkBindings(next: Scene, prefix: (i: number) => string): void {
    const before = new Map(scene.layers.map((l) => [l.id, captureSourceOf(l)]));
    let known: Set<string> | null = null;
    next.layers.forEach((l, i) => {
      const name = captureSourceOf(l);
      if (name === undefined || before.get(l.id) === name) return;
      known ??= new Set(streams());
      if (!known.has(name)) {
        const list = [...known].slice(0, 10).map((s) => JSON.stringify(s)).join(', ');
        throw new HttpError(400, `${prefix(i)}: no capture stream ${JSON.stringify(name)} is registered (${known.size ? `registered: ${list}${known.size > 10 ? ', …' : ''}` : 'none is; add it with POST /api/streams'})`, { path: prefix(i) });
      }
    });
  }

  async function usePreset(name: unknown): Promise<Scene> {
    if (!isScenePreset(name)) throw new HttpError(400, `unknown scene preset ${JSON.stringify(name)}; presets: ${SCENE_PRESETS.join(', ')}`, { path: 'name' });
    const next = { ...build(name), version: scene.version + 1 };
    preset = { name, version: next.version };
    store.put(SCENE_NS, PRESET_KEY, preset);
    return install(next);
  }

  function streamsChanged(): void {
    if (preset === null || preset.version !== scene.version) return;
    const next = { ...build(preset.name), version: scene.version + 1 };
    if (JSON.stringify(next.layers) === JSON.stringify(scene.layers)) return;
    preset = { name: preset.name, version: next.version };
    store.put(SCENE_NS, PRESET_KEY, preset);
    install(next).catch((error: Error) => log.warn({ err: error.message }, 'scene preset not rebuilt for the new streams'));
  }

  /** Save, push, announce. Runs for every accepted change, in that order. */
  async function install(next: Scene): Promise<Scene> {
    store.put(SCENE_NS, SCENE_KEY, next);
    scene = next;
    versionGauge.set(next.version);
    layersGauge.set(next.layers.length);
    announce(next);
    if (supervisor.actorNames().includes(COMPOSITOR)) {
      try {
        await supervisor.call(COMPOSITOR, 'setScene', [next]);
      } catch (error) {
        pushFailures.inc();
        log.warn({ err: (error as Error).message, version: next.version }, 'could not push the scene to the compositor (it reloads it with scene.get on restart)');
      }
    }
    return next;
  }

  function announce(next: Scene): void {
    let ok = false;
    try {
      ok = deps.publish({ type: 'scene', channel: 'control', key: 'scene', retain: true, data: next });
    } catch (error) {
      // A scene bigger than one overlay message (64 KiB) cannot be announced; the store has it.
      log.warn({ err: (error as Error).message }, 'scene change not announced to control clients');
    }
    if (!ok) relayDrops.inc();
  }

  function applyOp(op: SceneOp): Promise<Scene> {
    if (op.op === 'update' || op.op === 'remove') {
      if (typeof op.id !== 'string' || op.id.length === 0) throw new HttpError(400, `${op.op} needs the layer id (in the URL for REST, "layer_id" on /scene)`, { path: 'id' });
      if (!scene.layers.some((l) => l.id === op.id)) throw new HttpError(404, `no layer with id ${JSON.stringify(op.id)}`, { path: 'id' });
    }
    if (op.op === 'reorder' && !Array.isArray(op.ids)) throw new HttpError(400, 'reorder needs "ids": an array of every layer id, bottom first', { path: 'ids' });
    let next: Scene;
    try {
      next = applySceneOp(scene, op);
    } catch (error) {
      throw asHttpError(error);
    }
    if (op.op === 'add' || op.op === 'update') checkBindings(next, () => (op.op === 'add' ? 'layer.props.source.capture' : 'patch.props.source.capture'));
    return install(next);
  }

  async function replace(body: unknown): Promise<Scene> {
    let next: Scene;
    try {
      next = validateScene(body, deps.width, deps.height, deps.fps);
    } catch (error) {
      throw asHttpError(error);
    }
    checkBindings(next, (i) => `layers[${i}].props.source.capture`);
    return install({ ...next, version: scene.version + 1 });
  }

  async function execute(cmd: SceneCommand): Promise<Scene> {
    switch (cmd.op) {
      case 'get': return scene;
      case 'add': return applyOp({ op: 'add', layer: cmd.layer });
      case 'update': return applyOp({ op: 'update', id: cmd.layer_id as string, patch: cmd.patch });
      case 'remove': return applyOp({ op: 'remove', id: cmd.layer_id as string });
      case 'reorder': return applyOp({ op: 'reorder', ids: cmd.ids });
      default:
        throw new HttpError(400, `unknown op ${JSON.stringify(cmd.op)}; ops: ${OPS.join(', ')}`, { path: 'op' });
    }
  }

  const adminCheck = (token: string | undefined) => deps.requireAdmin(token === undefined ? {} : { authorization: `Bearer ${token}` }, new URLSearchParams());

  async function command(cmd: SceneCommand, token?: string): Promise<SceneAck> {
    const id = cmd && typeof cmd === 'object' ? cmd.id ?? null : null;
    const op = cmd && typeof cmd === 'object' && typeof cmd.op === 'string' ? cmd.op : 'invalid';
    try {
      if (!cmd || typeof cmd !== 'object' || Array.isArray(cmd)) throw new HttpError(400, 'a command is a JSON object {id?, op, ...}', { path: '' });
      // The gateway checked the token at upgrade; checking again here keeps the upcall safe on its own.
      if (cmd.op !== 'get') adminCheck(token);
      const next = await execute(normaliseWsCommand(cmd));
      commands.inc({ op: label(op), via: 'ws', outcome: 'ok' });
      return cmd.op === 'get' ? { type: 'scene_ack', id, ok: true, scene_version: next.version, scene: next } : { type: 'scene_ack', id, ok: true, scene_version: next.version };
    } catch (error) {
      const e = asHttpError(error);
      commands.inc({ op: label(op), via: 'ws', outcome: outcomeOf(e.status) });
      const path = (e.details as { path?: string } | undefined)?.path;
      return { type: 'scene_ack', id, ok: false, error: e.message, ...(path !== undefined ? { path } : {}), status: e.status };
    }
  }

  // REST ------------------------------------------------------------------------------
  const write = (op: string, handler: (req: HttpRequestContext) => Promise<Scene>, status = 200) => async (req: HttpRequestContext) => {
    try {
      deps.requireAdmin(req.headers, req.query);
      const next = await handler(req);
      commands.inc({ op, via: 'rest', outcome: 'ok' });
      return { status, json: next };
    } catch (error) {
      const e = asHttpError(error);
      commands.inc({ op, via: 'rest', outcome: outcomeOf(e.status) });
      throw e;
    }
  };
  const layerOf = (id: string): Layer => {
    const layer = scene.layers.find((l) => l.id === id);
    if (!layer) throw new HttpError(404, `no layer with id ${JSON.stringify(id)}`, { path: 'id' });
    return layer;
  };

  router.get('/api/scene', () => ({ json: scene }));
  router.get('/api/scene/presets', () => ({ json: { presets: SCENE_PRESETS, current: preset !== null && preset.version === scene.version ? preset.name : null } }));
  router.put('/api/scene/preset', write('preset', (req) => {
    const body = req.json<{ name?: unknown }>();
    if (body === null || typeof body !== 'object') throw new HttpError(400, `body must be {"name": one of ${SCENE_PRESETS.join(', ')}}`, { path: 'name' });
    return usePreset(body.name);
  }));
  router.put('/api/scene', write('replace', (req) => replace(req.json())));
  router.post('/api/scene/layers', write('add', (req) => applyOp({ op: 'add', layer: req.json() }), 201));
  router.get('/api/scene/layers/:id', (req) => ({ json: layerOf(req.params.id) }));
  router.route('PATCH', '/api/scene/layers/:id', write('update', (req) => applyOp({ op: 'update', id: req.params.id, patch: req.json() })));
  router.del('/api/scene/layers/:id', write('remove', (req) => applyOp({ op: 'remove', id: req.params.id })));
  router.post('/api/scene/reorder', write('reorder', (req) => {
    const body = req.json<{ ids?: unknown }>();
    if (body === null || typeof body !== 'object') throw new HttpError(400, 'body must be {"ids": [...]}', { path: 'ids' });
    return applyOp({ op: 'reorder', ids: body.ids });
  }));
  const preview = new PreviewPool({ threads: deps.previewThreads ?? 1, maxQueue: deps.previewQueue ?? 4, registry });
  router.get('/api/scene/preview.png', async (req) => {
    const frame = intParam(req.query, 'frame', 0, 0, 2 ** 31 - 1);
    const width = intParam(req.query, 'width', scene.width, MIN_PREVIEW_WIDTH, Math.min(MAX_PREVIEW_WIDTH, scene.width));
    deps.limitCostly?.(req, 'scene_preview', COST_PREVIEW);
    const shown = scene;
    let png: Uint8Array;
    try {
      png = await preview.render(shown, frame, width);
    } catch (error) {
      if (error instanceof PreviewBusyError) throw new HttpError(503, error.message, undefined, { 'retry-after': '1' });
      throw error;
    }
    return { headers: { 'content-type': 'image/png', 'cache-control': 'no-store', 'x-scene-version': String(shown.version) }, body: png };
  });

  supervisor.provide('scene.get', () => scene);
  supervisor.provide('scene.command', (cmd: SceneCommand, token?: string) => command(cmd, token));

  return { current: () => scene, usePreset, streamsChanged, apply: applyOp, replace, command, close: () => preview.close() };
}

/**
 * A WS command carries its correlation `id` at the top level, so the layer id of
 * update/remove travels as `layer_id` (or `layerId`); `update` may also nest the id in
 * `layer: {id, ...}`. Mapped here so `execute` sees one shape.
 */
function normaliseWsCommand(cmd: SceneCommand): SceneCommand {
  if (cmd.op === 'update' || cmd.op === 'remove') {
    const nested = cmd.layer && typeof cmd.layer === 'object' ? (cmd.layer as { id?: unknown }).id : undefined;
    const layerId = cmd.layer_id ?? cmd.layerId ?? nested;
    return { ...cmd, layer_id: layerId };
  }
  return cmd;
}

/**
 * A whole scene from an untrusted body (PUT /api/scene, or what the store held). The output
 * size and rate are the service's, not the client's: the compositor and encoder run at the
 * configured ones, so a body may omit them but not contradict them.
 */
export function validateScene(body: unknown, width: number, height: number, fps: number): Scene {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new SceneError('', 'scene must be a JSON object with "layers"');
  const fixed = { width, height, fps } as const;
  for (const [key, value] of Object.entries(fixed)) {
    const given = (body as Record<string, unknown>)[key];
    if (given !== undefined && given !== value) throw new SceneError(key, `must be ${value} (the configured output ${width}x${height}@${fps}) or omitted`);
  }
  return parseScene({ ...body, ...fixed, version: 0 });
}

function asHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof SceneError) return new HttpError(400, error.message, { path: error.path });
  const message = error instanceof Error ? error.message : String(error);
  return new HttpError(500, message);
}

function outcomeOf(status: number): string {
  return status === 401 ? 'unauthorized' : status === 404 ? 'not_found' : status >= 500 ? 'error' : 'bad_request';
}

/** Metric label: known ops only, so a client cannot grow the label set. */
function label(op: string): string {
  return (OPS as readonly string[]).includes(op) ? op : 'invalid';
}

function numberOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

function intParam(query: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const raw = query.get(name);
  if (raw === null || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new HttpError(400, `?${name}= must be an integer from ${min} to ${max}`, { path: name });
  return n;
}
