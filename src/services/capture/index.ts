/**
 * Frame capture on the main thread, as the service starts it: the registry and its routes
 * (with or without the capture actor, --no-capture), the operator's overrides from flags, and
 * for `npm start` local demo streams to capture (made in the background: start-up does not
 * wait for ffmpeg).
 */
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../../shared/config.js';
import type { HttpRouter } from '../../shared/http-router.js';
import type { HttpRequestContext } from '../../shared/http-server.js';
import type { StateStore } from '../../shared/state-store.js';
import type { Supervisor } from '../../supervisor/supervisor.js';
import { CAPTURE } from '../../topology.js';
import type { RequireAdmin } from '../admin-auth.js';
import type { PublishOverlay } from '../control-rings.js';
import type { FfmpegStatus } from '../health/ffmpeg-status.js';
import { startDemoStreams, type DemoStreams } from './demo-streams.js';
import { registerCaptureService, type CaptureCluster } from './service.js';

export interface CaptureStartOptions {
  config: Config;
  router: HttpRouter;
  store: StateStore;
  supervisor: Supervisor;
  requireAdmin: RequireAdmin;
  publish: PublishOverlay;
  ffmpeg: FfmpegStatus;
  log: Logger;
  limitCostly: (req: HttpRequestContext, route: string, cost: number) => void;
  /** The streams file named at start, already read (a bad path failed before anything started). */
  streamsFile?: { path: string; text: string };
  /** Clustered: the registry is shared and this node captures its share. */
  cluster?: CaptureCluster;
  /** Called after the registered streams changed. */
  onStreamsChanged?: () => void;
}

export interface CaptureHandle {
  /** Stops the demo streams (intake); `close` later writes what is left. */
  stopIntake(): void;
  close(): void;
  /** Names of the registered, enabled streams, highest priority first. */
  streams(): string[];
}

export function startCapture(o: CaptureStartOptions): CaptureHandle {
  const { config, log, ffmpeg } = o;
  const configOverrides: Record<string, unknown> = {};
  if (config.capture.interval !== undefined) configOverrides.capture_interval = config.capture.interval;
  if (config.capture.maxConcurrent !== undefined) configOverrides.max_concurrent = config.capture.maxConcurrent;
  if (config.capture.quality !== undefined) configOverrides.quality = config.capture.quality;
  const capture = registerCaptureService({
    router: o.router, store: o.store, supervisor: o.supervisor, actor: CAPTURE, requireAdmin: o.requireAdmin, log, limitCostly: o.limitCostly,
    publish: o.publish,
    historyLength: config.capture.historyLength,
    ...(o.streamsFile ? { streamsFile: o.streamsFile } : {}),
    ...(o.cluster ? { cluster: o.cluster } : {}),
    configOverrides,
    ...(o.onStreamsChanged ? { onStreamsChanged: o.onStreamsChanged } : {}),
    extraStatus: () => {
      const unavailable = ffmpeg.details();
      return Object.keys(unavailable).length > 0 ? { unavailable } : {};
    },
  });

  let demoStreams: DemoStreams | null = null;
  let stopped = false;
  const demoDir = path.resolve(config.dataDir, 'demo-hls');
  const registryIsDemo = capture.registry.count() === 0 || capture.registry.list().some((s) => s.name.startsWith(demoDir));
  const media = ffmpeg.availability;
  const wantDemoStreams = config.demo.enabled && config.capture.enabled && config.capture.demoStreams > 0 && registryIsDemo;
  if (wantDemoStreams && !media.ok) {
    log.warn({ reason: media.reason }, 'demo streams not made: they need ffmpeg');
  } else if (wantDemoStreams && media.ok) {
    startDemoStreams({ dir: demoDir, count: config.capture.demoStreams, ffmpegPath: media.ffmpeg.path })
      .then((d) => {
        if (stopped) return d.stop();
        demoStreams = d;
        capture.addStreams(d.playlists);
        log.info({ streams: d.playlists.length }, 'demo streams registered for capture');
      })
      .catch((err: Error) => log.warn({ err }, 'demo streams not available (capture still works for registered streams)'));
  }

  return {
    stopIntake() {
      stopped = true;
      (demoStreams as DemoStreams | null)?.stop();
    },
    close: () => capture.close(),
    streams: () => capture.registry.list().filter((s) => s.enabled).map((s) => s.name),
  };
}
