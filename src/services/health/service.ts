/**
 * Health, readiness and metrics routes of the main thread: /healthz (the actors run; a part
 * degraded for want of ffmpeg is named, not fatal), /readyz (doing its job now), /metrics and
 * /api/metrics (every thread's metrics merged).
 */
import type { HttpRouter } from '../../shared/http-router.js';
import { METRICS_CONTENT_TYPE } from '../../shared/http-server.js';
import type { Supervisor } from '../../supervisor/supervisor.js';
import type { IngestStats } from '../../actors/ingest/index.js';
import { DEMO_TRAINER, INGEST, RECORDER, RING_DEMO, RING_NET, RING_RECORD } from '../../topology.js';
import type { FfmpegStatus } from './ffmpeg-status.js';
import { Readiness, type ReadinessOptions } from './readiness.js';

export interface HealthServiceOptions {
  router: HttpRouter;
  supervisor: Supervisor;
  ffmpeg: FfmpegStatus;
  /** Every ring of the topology (readiness watches their drops). */
  rings: string[];
  /** The demo trainer runs (its ring counts as a connected producer while it does). */
  demo: boolean;
  /** Checks that report degraded without making the instance unready. */
  advisory?: ReadinessOptions['advisory'];
}

export function registerHealthService(o: HealthServiceOptions): Readiness {
  const { router, supervisor, ffmpeg } = o;
  router.get('/healthz', () => {
    const report = supervisor.health();
    const details = ffmpeg.details();
    return { status: report.ok ? 200 : 503, json: Object.keys(details).length > 0 ? { ...report, details } : report };
  });
  const readiness = new Readiness({
    supervisor, ffmpeg, rings: o.rings, ...(o.advisory ? { advisory: o.advisory } : {}), warnRings: [RING_RECORD],
    producers: [
      { ring: RING_NET, connected: async () => (supervisor.actorNames().includes(INGEST) ? ((await supervisor.call(INGEST, 'stats', [], 1_000)) as IngestStats).transports.reduce((n, t) => n + t.connections, 0) : 0) },
      ...(o.demo ? [{ ring: RING_DEMO, connected: async () => (supervisor.health().actors[DEMO_TRAINER] === 'running' ? 1 : 0) }] : []),
    ],
    warnings: async () => {
      if (!supervisor.actorNames().includes(RECORDER)) return [];
      const s = (await supervisor.call(RECORDER, 'status', [], 1_000)) as { problem: string | null; problemSince: number | null };
      return s.problem === null ? [] : [`recording: ${s.problem} (since ${new Date(s.problemSince ?? Date.now()).toISOString()}); events are not being recorded`];
    },
  });
  router.get('/readyz', async () => {
    const report = await readiness.check();
    return { status: report.ready ? 200 : 503, json: report };
  });
  // Merging every thread's metrics costs the main thread tens of ms: scrapes that arrive
  // while one is being merged share its result instead of each paying for their own.
  let scrape: Promise<string> | undefined;
  const metrics = async () => {
    scrape ??= supervisor.metrics().finally(() => { scrape = undefined; });
    return { headers: { 'content-type': METRICS_CONTENT_TYPE }, body: await scrape };
  };
  router.get('/metrics', metrics);
  // The frame processor's scrapers asked for /api/metrics.
  router.get('/api/metrics', metrics);
  return readiness;
}
