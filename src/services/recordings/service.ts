/**
 * Recordings and replays on the main thread (the recorder actor does the work):
 *   GET    /api/recordings                   every recorded run: steps, events, bytes, times
 *   POST   /api/recordings/:run/replay       (admin) play a recording back as a live run
 *   DELETE /api/recordings/:run/replay       (admin) stop every replay of that recording
 *   GET    /api/replays                      replays running and recently ended, with progress
 *   DELETE /api/replays/:id                  (admin) stop one replay
 * The streamed routes (events, metrics.csv) are answered by the gateways from disk
 * (actors/gateway/recordings-endpoint.ts).
 */
import type { RunSummary } from '../../actors/aggregator/snapshot.js';
import type { StartReplayResult } from '../../actors/recorder/index.js';
import type { HttpRouter } from '../../shared/http-router.js';
import { HttpError } from '../../shared/http-server.js';
import { runNameProblem } from '../../shared/telemetry/run-name.js';
import type { Supervisor } from '../../supervisor/supervisor.js';
import { AGGREGATOR, RECORDER } from '../../topology.js';
import type { RequireAdmin } from '../admin-auth.js';

export const MIN_SPEED = 0.1;
export const MAX_SPEED = 1000;
/** A run the aggregator heard from within this long counts as live (a replay may not take its name). */
export const LIVE_RUN_MS = 10_000;

export interface RecordingsServiceOptions {
  router: HttpRouter;
  supervisor: Supervisor;
  requireAdmin: RequireAdmin;
}

const REPLAY_KEYS = ['speed', 'from_step', 'to_step', 'as_run'];

interface ReplayBody { speed: number; fromStep?: number; toStep?: number; asRun: string }

function parseReplayBody(run: string, body: unknown): ReplayBody {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'body must be a JSON object like {"speed": 4, "from_step": 0, "as_run": "name"}');
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).filter((k) => !REPLAY_KEYS.includes(k));
  if (unknown.length > 0) throw new HttpError(400, `unknown field(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')}; allowed: ${REPLAY_KEYS.join(', ')}`);
  const speed = b.speed ?? 1;
  if (typeof speed !== 'number' || !(speed >= MIN_SPEED && speed <= MAX_SPEED)) throw new HttpError(400, `"speed" must be a number ${MIN_SPEED}–${MAX_SPEED} (got ${JSON.stringify(speed)})`);
  const step = (k: 'from_step' | 'to_step') => {
    const v = b[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new HttpError(400, `"${k}" must be a number (got ${JSON.stringify(v)})`);
    return v;
  };
  const fromStep = step('from_step');
  const toStep = step('to_step');
  if (fromStep !== undefined && toStep !== undefined && fromStep > toStep) throw new HttpError(400, `"from_step" (${fromStep}) is after "to_step" (${toStep})`);
  if (b.as_run === undefined) throw new HttpError(400, `"as_run" is required: the run name the replay plays under (another name than ${JSON.stringify(run)} while that run is live)`);
  const problem = runNameProblem(b.as_run);
  if (problem !== undefined) throw new HttpError(400, `"as_run": ${problem}`);
  return { speed, fromStep, toStep, asRun: b.as_run as string };
}

export function registerRecordingsService(o: RecordingsServiceOptions): void {
  const { router, supervisor, requireAdmin } = o;
  const recorder = async (method: string, args: unknown[] = []) => {
    try {
      return await supervisor.call(RECORDER, method, args);
    } catch (error) {
      // Restarting, or stopping with the service: the caller may try again.
      throw new HttpError(503, `the recorder cannot answer now: ${(error as Error).message}`);
    }
  };

  router.get('/api/recordings', async () => ({ json: { runs: await recorder('list') } }));
  router.get('/api/replays', async () => ({ json: { replays: await recorder('replays') } }));

  router.post('/api/recordings/:run/replay', async (req) => {
    requireAdmin(req.headers, req.query);
    const run = req.params.run;
    const runProblem = runNameProblem(run);
    if (runProblem !== undefined) throw new HttpError(400, runProblem);
    const q = parseReplayBody(run, req.json<unknown>());
    // A replay under the name of a run that is live now would mix two runs' steps on screen.
    const runs = (await supervisor.call(AGGREGATOR, 'runs')) as RunSummary[];
    const live = runs.find((r) => r.run === q.asRun && Date.now() - r.lastSeenMs < LIVE_RUN_MS);
    if (live) throw new HttpError(409, `run ${JSON.stringify(q.asRun)} is live (last event ${Math.round((Date.now() - live.lastSeenMs) / 1000)} s ago); pick another "as_run"`);
    const result = (await recorder('startReplay', [{ run, ...q }])) as StartReplayResult;
    if (!result.ok) throw new HttpError(result.status, result.error);
    return { status: 202, json: { id: result.replay.id, replay: result.replay } };
  });

  router.del('/api/recordings/:run/replay', async (req) => {
    requireAdmin(req.headers, req.query);
    const stopped = (await recorder('stopReplay', [{ run: req.params.run }])) as string[];
    if (stopped.length === 0) throw new HttpError(404, `no replay of run ${JSON.stringify(req.params.run)} is running`);
    return { json: { stopped } };
  });

  router.del('/api/replays/:id', async (req) => {
    requireAdmin(req.headers, req.query);
    const stopped = (await recorder('stopReplay', [{ id: req.params.id }])) as string[];
    if (stopped.length === 0) {
      const known = (await recorder('knownReplay', [req.params.id])) as boolean;
      throw new HttpError(known ? 409 : 404, known ? `replay ${JSON.stringify(req.params.id)} is not running` : `no replay ${JSON.stringify(req.params.id)}`);
    }
    return { json: { stopped } };
  });
}
