/**
 * The streamer's control and admin API on the main thread:
 *   GET/POST /api/control     control state (level, pause, OBS scene) and actions (predictions, milestones)
 *   POST /api/admin/milestone a milestone as if a trainer had sent it (the test-fire button)
 *   GET /api/admin/actors     the supervisor's view of every actor
 *   GET /api/runs, /api/state the aggregator's runs and structured state
 * The control state goes to every overlay page as a retained `control` message.
 *
 * Clustered, the page acts on the whole cluster from any node: a chat or OBS command goes to
 * the node holding that actor's lease (passed on over HTTP, once), and the control state is
 * kept in the shared state store, so every node announces it to its own viewers.
 */
import { isPreset, presetError } from '../../actors/obs/director.js';
import type { HttpRouter } from '../../shared/http-router.js';
import { bearerToken } from '../../shared/http-router.js';
import { HttpError, type HttpReply, type HttpRequestContext } from '../../shared/http-server.js';
import type { RecordRing } from '../../shared/record-ring.js';
import { LEVELS, type Level } from '../../shared/telemetry/channels.js';
import { EventKind, decodeEvent, encodeEvent } from '../../shared/telemetry/event-codec.js';
import { writeIngestRecord } from '../../shared/telemetry/ring-records.js';
import { runNameProblem } from '../../shared/telemetry/run-name.js';
import type { Supervisor } from '../../supervisor/supervisor.js';
import { AGGREGATOR, CHAT, OBS, RING_MAIN } from '../../topology.js';
import type { RequireAdmin } from '../admin-auth.js';
import type { PublishOverlay } from '../control-rings.js';
import { FORWARDED_HEADER, type ControlCluster } from '../cluster/control-sync.js';
import { CHAT_LEASE, OBS_LEASE } from '../cluster/singleton-lease.js';

export interface ControlServiceOptions {
  router: HttpRouter;
  supervisor: Supervisor;
  requireAdmin: RequireAdmin;
  publish: PublishOverlay;
  /** The runs the previous process stopped with (GET /api/runs `previous`). */
  previousRuns: unknown[];
  /** Clustered: where the chat bot and OBS director run, and the shared control state. */
  cluster?: ControlCluster;
}

interface ControlState { level: Level | null; paused: boolean; scene: string | null; updated_at: number }

/** The shared control state as read back from the store, or undefined when it is not one. */
function parseControlState(raw: unknown): ControlState | undefined {
  if (raw === null || typeof raw !== 'object') return undefined;
  const r = raw as Record<string, unknown>;
  if (!(r.level === null || (LEVELS as readonly unknown[]).includes(r.level))) return undefined;
  if (typeof r.paused !== 'boolean' || !(r.scene === null || typeof r.scene === 'string') || typeof r.updated_at !== 'number') return undefined;
  return { level: r.level as Level | null, paused: r.paused, scene: r.scene as string | null, updated_at: r.updated_at };
}

const ACTIONS = 'actions: level, pause, resume, scene, prediction_start, prediction_stop, milestone';

export function registerControlService(o: ControlServiceOptions): void {
  const { router, supervisor, requireAdmin } = o;
  const mainRing = supervisor.ring<RecordRing>(RING_MAIN);

  const fireMilestone = (body: Record<string, unknown>) => {
    // The same run-name rule producers are held to: the name reaches metric labels and overlays.
    const runProblem = body.run === undefined ? undefined : runNameProblem(body.run);
    if (runProblem !== undefined) throw new HttpError(400, `"run": ${runProblem}`);
    let event: Uint8Array;
    try {
      // Both throw on what the client sent (meta over 65,535 bytes, a field of the wrong type).
      event = encodeEvent(EventKind.Milestone, { ...body, source: 'admin' });
      decodeEvent(event);
    } catch (error) {
      throw new HttpError(400, `milestone: ${(error as Error).message}`);
    }
    const run = typeof body.run === 'string' ? body.run : 'default';
    if (!writeIngestRecord(mainRing, Date.now(), 0, run, event, 0, event.byteLength)) throw new HttpError(503, 'ingest ring full; try again');
  };

  router.get('/api/runs', async () => ({
    json: { runs: await supervisor.call(AGGREGATOR, 'runs'), previous: o.previousRuns },
  }));
  router.get('/api/state', async () => ({ json: await supervisor.call(AGGREGATOR, 'snapshot') }));
  router.post('/api/admin/milestone', (req) => {
    requireAdmin(req.headers, req.query);
    const body = req.json<Record<string, unknown>>();
    if (body === null || typeof body !== 'object' || typeof body.name !== 'string' || body.name.length === 0) {
      throw new HttpError(400, 'body must be a JSON object with "name" (and optionally "message", "run", "value")');
    }
    fireMilestone(body);
    return { status: 202, json: { accepted: true } };
  });
  router.get('/api/admin/actors', async (req) => {
    requireAdmin(req.headers, req.query);
    return { json: supervisor.health() };
  });

  const control: ControlState = { level: null, paused: false, scene: null, updated_at: Date.now() };
  const announce = () => o.publish({ type: 'control', channel: 'control', key: 'control', retain: true, critical: true, data: control });
  const cluster = o.cluster;
  // Another node's change (or the state found at start) is applied and announced to this node's viewers.
  const adopt = (raw: unknown) => {
    const state = parseControlState(raw);
    if (state === undefined) return;
    Object.assign(control, state);
    announce();
  };
  /** A local change: shared with the other nodes (clustered), then announced here. */
  const changed = () => {
    control.updated_at = Date.now();
    cluster?.save({ ...control });
    announce();
  };
  if (cluster) {
    adopt(cluster.load());
    cluster.onChange(adopt);
  }
  /**
   * Clustered, a command for a once-per-cluster actor is answered by the node holding its
   * lease: undefined means act here. A request another node passed on is always acted on here,
   * so two nodes that disagree about the holder cannot bounce it between them.
   */
  const viaHolder = async (req: HttpRequestContext, lease: string, what: string): Promise<HttpReply | undefined> => {
    if (!cluster || req.headers[FORWARDED_HEADER] !== undefined) return undefined;
    const where = await cluster.where(lease);
    if (where.at === 'self') return undefined;
    if (where.at === 'none') throw new HttpError(503, `${what} runs on the node holding the lease ${where.lease}, and ${where.why} (is ${lease === CHAT_LEASE ? '--twitch-channel' : '--obs-url'} set on a live node?)`);
    const token = bearerToken(req.headers, req.query);
    try {
      const reply = await cluster.forward(where.url, '/api/control', token === undefined ? {} : { authorization: `Bearer ${token}` }, req.body);
      return { status: reply.status, json: reply.json };
    } catch (error) {
      throw new HttpError(502, `${what} runs on node ${where.node} (${where.url}), which did not answer: ${(error as Error).message}`);
    }
  };
  const actorStatus = async (name: string) => (supervisor.actorNames().includes(name) ? supervisor.call(name, 'status').catch((error: Error) => ({ error: error.message })) : null);
  const requireActor = (name: string, what: string) => {
    if (!supervisor.actorNames().includes(name)) throw new HttpError(503, `${what} is not configured (${name === CHAT ? 'set --twitch-channel' : 'set --obs-url'})`);
  };
  const callActor = async (name: string, method: string, args: unknown[]) => {
    try {
      return await supervisor.call(name, method, args);
    } catch (error) {
      throw new HttpError(409, (error as Error).message);
    }
  };
  /**
   * A once-per-cluster actor's status as the node running it sees it (clustered: the lease
   * holder's, asked once over HTTP and marked with its node), else this node's own.
   */
  const singletonStatus = async (req: HttpRequestContext, name: string, lease: string, field: 'chat' | 'obs'): Promise<unknown> => {
    if (!cluster || req.headers[FORWARDED_HEADER] !== undefined) return actorStatus(name);
    const where = await cluster.where(lease);
    if (where.at === 'self') return { ...(await actorStatus(name) ?? {}), node: cluster.nodeId };
    if (where.at === 'none') return actorStatus(name); // nobody holds it: what this node knows
    const token = bearerToken(req.headers, req.query);
    try {
      const reply = await cluster.forward(where.url, '/api/control', token === undefined ? {} : { authorization: `Bearer ${token}` });
      const status = reply.status === 200 ? (reply.json as Record<string, unknown> | null)?.[field] : undefined;
      if (status === null || typeof status !== 'object') return { error: `node ${where.node} answered ${reply.status} without a ${field} status`, node: where.node };
      return { ...status, node: where.node };
    } catch (error) {
      return { error: `runs on node ${where.node} (${where.url}), which did not answer: ${(error as Error).message}`, node: where.node };
    }
  };
  router.get('/api/control', async (req) => {
    requireAdmin(req.headers, req.query);
    const [chat, obs] = await Promise.all([singletonStatus(req, CHAT, CHAT_LEASE, 'chat'), singletonStatus(req, OBS, OBS_LEASE, 'obs')]);
    return { json: { ...control, chat, obs } };
  });
  router.post('/api/control', async (req) => {
    requireAdmin(req.headers, req.query);
    const body = req.json<Record<string, unknown>>();
    if (body === null || typeof body !== 'object' || typeof body.action !== 'string') throw new HttpError(400, `body must be {"action": …}; ${ACTIONS}`);
    switch (body.action) {
      case 'level':
        if (!(LEVELS as readonly unknown[]).includes(body.level)) throw new HttpError(400, `level must be one of ${LEVELS.join(', ')}`);
        control.level = body.level as Level;
        break;
      case 'pause':
      case 'resume':
        control.paused = body.action === 'pause';
        break;
      case 'scene': {
        // Validated here so a typo is a 400 whether or not OBS is configured or connected.
        if (!isPreset(body.preset)) throw new HttpError(400, presetError(body.preset).message);
        const forwarded = await viaHolder(req, OBS_LEASE, 'OBS');
        if (forwarded) return forwarded;
        requireActor(OBS, 'OBS');
        const result = await callActor(OBS, 'setScene', [body.preset]);
        control.scene = String(body.preset);
        changed();
        return { json: { ok: true, control, result } };
      }
      case 'prediction_start':
      case 'prediction_stop': {
        const forwarded = await viaHolder(req, CHAT_LEASE, 'Twitch chat');
        if (forwarded) return forwarded;
        requireActor(CHAT, 'Twitch chat');
        const method = body.action === 'prediction_start' ? 'startPrediction' : 'stopPrediction';
        const result = (await callActor(CHAT, method, [{ by: 'control', cancel: body.cancel === true }])) as { ok: boolean; error?: string };
        // The game refused (one already running, nothing to stop): a conflict, not a success.
        if (!result?.ok) throw new HttpError(409, result?.error ?? `${method} refused`);
        return { json: { ok: true, result } };
      }
      case 'milestone': {
        if (typeof body.name !== 'string' || body.name.length === 0) throw new HttpError(400, 'milestone needs "name"');
        fireMilestone({ name: body.name, message: body.message, run: body.run });
        return { status: 202, json: { ok: true } };
      }
      default:
        throw new HttpError(400, `unknown action ${JSON.stringify(body.action)}; ${ACTIONS}`);
    }
    changed();
    return { json: { ok: true, control } };
  });
}
