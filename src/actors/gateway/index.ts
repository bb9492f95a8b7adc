/**
 * Gateway actor: one of N worker threads that share the public port (uWS listen option 0,
 * SO_REUSEPORT, so the kernel spreads connections over them). Each serves
 *   /ws           overlay fan-out from its `fanout.gw<i>` ring (the aggregator's) merged with its
 *                 `control.gw<i>` ring (the main thread's) (fanout-hub.ts)
 *   /ingest       producer WebSocket into its `ingest.gw<i>` ring (ingest-endpoints.ts)
 *   /experience   RL experience batches (experience-stream.ts)
 *   POST /api/ingest, GET /api/snapshot (retained overlay messages, answered locally)
 *   GET /api/recordings/:run/events, /metrics.csv (streamed from disk: recordings-endpoint.ts)
 *   anything else forwarded to the main thread (http-forward.ts).
 * Every uWS handle is tracked so that stop and crash close them all before the thread
 * exits (uws-lifecycle.ts explains why that matters).
 */
import type { TemplatedApp, WebSocket, us_listen_socket } from 'uWebSockets.js';
import { LEVELS } from '../../shared/telemetry/channels.js';
import { defineActor } from '../../shared/actor.js';
import { consumeLoop } from '../../shared/consume-loop.js';
import { loadUws } from '../../shared/http-server.js';
import type { RecordRing } from '../../shared/record-ring.js';
import { MergedReader } from '../../shared/merged-reader.js';
import { FanoutFlag, FanoutType, readFanoutRecord } from '../../shared/telemetry/ring-records.js';
import type { HistoryReply } from '../../shared/cluster-history.js';
import { IngestAcceptor } from '../ingest/acceptor.js';
import { EXPERIENCE_MAX_MESSAGE, ExperienceHub, parseExperienceQuery, type ExperienceConsumer } from './experience-stream.js';
import { FanoutHub, type OverlayClient } from './fanout-hub.js';
import { planTiers } from './fps-tiers.js';
import { createGatewayMetrics } from './gateway-metrics.js';
import { FORWARD_MAX_BODY, forwardHttp } from './http-forward.js';
import { replyJson, requestToken } from './http-io.js';
import { UwsRoutes } from '../../shared/uws-routes.js';
import { registerIngestEndpoints } from './ingest-endpoints.js';
import {
  DEFAULT_CRITICAL_QUEUE, DEFAULT_EXPERIENCE_STATUS_MS, DEFAULT_SLOW_CHECK_MS, validateGatewayOptions, type GatewayOptions,
} from './options.js';
import { UwsHandles, installCrashGuard } from './uws-lifecycle.js';
import { registerOverlayFiles } from './static-files.js';
import { registerClipFiles } from './clip-files.js';
import { registerSceneEndpoint } from './scene-endpoint.js';
import { registerRecordingsEndpoint } from './recordings-endpoint.js';

export type { GatewayOptions, ExperienceOptions } from './options.js';
export { decodeExperienceBatch, encodeExperienceBatch } from './experience-stream.js';
export { CLOSE_FLOOD, CLOSE_TOO_SLOW, CLOSE_TRY_AGAIN_LATER } from './fanout-hub.js';

/** Overlay messages are tiny JSON subscriptions: anything bigger is a misbehaving client. */
const OVERLAY_MAX_PAYLOAD = 16 * 1024;
const IDLE_TIMEOUT_S = 120;
/** How long a graceful stop waits for clients to answer close frames before cutting them off. */
const STOP_GRACE_MS = 500;

export interface GatewayStats {
  index: number;
  port: number;
  overlay: ReturnType<FanoutHub['stats']>;
  experience: ReturnType<ExperienceHub['stats']>;
  openSockets: number;
  recordsConsumed: number;
  /** Records skipped because handling them threw (should stay 0). */
  recordErrors: number;
}

function listen(app: TemplatedApp, host: string, port: number): Promise<us_listen_socket> {
  return new Promise((resolve, reject) => {
    // Options 0 = shared port: every gateway thread binds the same port (SO_REUSEPORT).
    (app.listen as unknown as (h: string, p: number, o: number, cb: (s: us_listen_socket | false) => void) => void).call(app, host, port, 0, (socket) => {
      if (socket) resolve(socket);
      else reject(new Error(`gateway: cannot listen on ${host}:${port}: the port is taken by another program (or not shareable), or ${host} is not an address of this machine`));
    });
  });
}

export default defineActor<GatewayOptions>({
  async start(ctx) {
    const o = validateGatewayOptions(ctx.options);
    const inRing = ctx.in[o.inRing] as RecordRing | undefined;
    const outRing = ctx.out[o.outRing] as RecordRing | undefined;
    if (!inRing) throw new Error(`gateway ${o.index}: fan-out ring "${o.inRing}" is not among this actor's input rings`);
    const controlRing = o.controlRing === undefined ? undefined : (ctx.in[o.controlRing] as RecordRing | undefined);
    if (o.controlRing !== undefined && !controlRing) throw new Error(`gateway ${o.index}: control ring "${o.controlRing}" is not among this actor's input rings`);
    if (!outRing) throw new Error(`gateway ${o.index}: ingest ring "${o.outRing}" is not among this actor's output rings`);
    const clusterRing = o.clusterRing === undefined ? undefined : (ctx.in[o.clusterRing] as RecordRing | undefined);
    if (o.clusterRing !== undefined && !clusterRing) throw new Error(`gateway ${o.index}: cluster ring "${o.clusterRing}" is not among this actor's input rings`);

    const { uws } = loadUws({ logger: ctx.log, registry: ctx.metrics });
    const app = uws.App();
    const handles = new UwsHandles(uws, app);
    const uninstallGuard = installCrashGuard(handles, (error, origin) => {
      ctx.log.fatal({ err: error, origin }, 'gateway crashed: closing every connection, then exiting the thread');
    });
    const metrics = createGatewayMetrics(ctx.metrics);
    const routes = new UwsRoutes(app, {
      maxBodyBytes: FORWARD_MAX_BODY,
      onError: (error, request) => ctx.log.error({ err: error, method: request.method, path: request.path }, 'gateway HTTP handler failed'),
    });

    const hub = new FanoutHub({
      app, index: o.index, plan: planTiers(o.maxFps, o.tickMs), maxFps: o.maxFps,
      softLimitBytes: o.softLimitBytes, hardLimitBytes: o.hardLimitBytes, maxClients: o.maxClients,
      criticalQueueLimit: o.criticalQueueLimit ?? DEFAULT_CRITICAL_QUEUE, metrics, snapshotIntervalMs: o.snapshotIntervalMs,
      compress: o.compression === 'shared',
      // Missed critical messages come from the cluster's history, through the main thread.
      recover: (request) => ctx.callMain<HistoryReply>('cluster.history', request),
    });
    const experience = new ExperienceHub({
      queueBatches: o.experience.queueBatches, softLimitBytes: o.softLimitBytes, hardLimitBytes: o.hardLimitBytes,
      statusEveryMs: o.experienceStatusMs ?? DEFAULT_EXPERIENCE_STATUS_MS, metrics,
      limits: o.experience, index: o.index,
    });
    // Producer ids: ws sessions from (index+1)<<24, HTTP requests from (index+129)<<24: unique across threads and transports.
    const acceptor = new IngestAcceptor({ ring: outRing, token: o.ingestToken, transport: 'ws', producerIdBase: ((o.index + 1) << 24) >>> 0, metrics: ctx.metrics });
    const httpAcceptor = new IngestAcceptor({ ring: outRing, token: o.ingestToken, transport: 'http', producerIdBase: ((o.index + 129) << 24) >>> 0, metrics: ctx.metrics });

    routes.ws<OverlayClient>('/ws', {
      maxPayloadLength: OVERLAY_MAX_PAYLOAD,
      // Above the hard limit: uWS must never drop silently before our check closes the client.
      maxBackpressure: o.hardLimitBytes + Math.max(o.softLimitBytes, 1024 * 1024),
      idleTimeout: IDLE_TIMEOUT_S,
      sendPingsAutomatically: true,
      // Only clients that offer permessage-deflate get compressed frames; the others are sent the same bytes plain.
      compression: o.compression === 'shared' ? uws.SHARED_COMPRESSOR : uws.DISABLED,
      upgrade: () => ({ accept: hub.newClientData() }),
      open(ws) {
        handles.add(ws as WebSocket<unknown>);
        hub.open(ws);
      },
      message: (ws, message, isBinary) => hub.message(ws, message, isBinary),
      drain: (ws) => hub.drain(ws),
      close(ws) {
        handles.delete(ws as WebSocket<unknown>);
        hub.close(ws);
      },
    });

    routes.ws<ExperienceConsumer>('/experience', {
      maxPayloadLength: EXPERIENCE_MAX_MESSAGE,
      maxBackpressure: o.hardLimitBytes + Math.max(o.softLimitBytes, 1024 * 1024),
      idleTimeout: IDLE_TIMEOUT_S,
      sendPingsAutomatically: true,
      upgrade(request) {
        const query = new URLSearchParams(request.query);
        const token = requestToken(request.headers.authorization || undefined, query);
        const refuse = (status: number, error: string) => {
          metrics.protocolErrors.inc({ endpoint: 'experience' });
          return { refuse: { status, error } };
        };
        if (!acceptor.tokenMatches(token)) return refuse(401, 'missing or wrong ingest token (Authorization: Bearer <token> or ?token=)');
        const parsed = parseExperienceQuery(query, o.experience);
        if (!parsed.ok) return refuse(400, parsed.error);
        return { accept: experience.newConsumerData(parsed.filter) };
      },
      open(ws) {
        handles.add(ws as WebSocket<unknown>);
        experience.open(ws);
      },
      // stats / configure; anything else is answered with an error, never a reason to close.
      message: (ws, message, isBinary) => experience.message(ws, message, isBinary),
      drain: (ws) => experience.drain(ws),
      close(ws) {
        handles.delete(ws as WebSocket<unknown>);
        experience.close(ws);
      },
    });

    let stopping = false;
    registerIngestEndpoints({ routes, acceptor, httpAcceptor, maxFrameBytes: o.maxFrameBytes, preAuth: o.preAuth, handles, metrics, stopping: () => stopping });

    // The retained overlay messages (what a new /ws client gets as its snapshot) at one level,
    // answered here without a main-thread hop. (/api/state is the aggregator's structured state.)
    routes.get('/api/snapshot', (exchange) => {
      const asked = new URLSearchParams(exchange.request.query).get('level') ?? 'intermediate';
      if (!(LEVELS as readonly string[]).includes(asked)) {
        metrics.httpRequests.inc({ route: 'snapshot', outcome: 'bad_request' });
        replyJson(exchange, 400, { error: `level must be one of ${LEVELS.join(', ')}` });
        return;
      }
      const level = asked as (typeof LEVELS)[number];
      metrics.httpRequests.inc({ route: 'snapshot', outcome: 'ok' });
      const body = `{"gateway":${o.index},"level":"${level}","generated_at":${Date.now()},"messages":${hub.stateJson(level)}}`;
      exchange.reply(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }, body);
    });
    registerOverlayFiles(routes);
    if (o.recordingsDir !== undefined) registerRecordingsEndpoint({ routes, dir: o.recordingsDir, metrics, log: ctx.log });
    if (o.clipsDir) registerClipFiles(routes, o.clipsDir);
    const scene = registerSceneEndpoint({ app, routes, handles, callMain: ctx.callMain, adminToken: o.adminToken, registry: ctx.metrics, log: ctx.log });
    routes.any('/*', (exchange) => forwardHttp(exchange, ctx.callMain, metrics, ctx.log));

    let listenSocket: us_listen_socket;
    try {
      listenSocket = await listen(app, o.host, o.port);
    } catch (error) {
      handles.closeAll();
      hub.stop();
      experience.stop();
      uninstallGuard();
      throw error;
    }
    handles.setListenSocket(listenSocket);
    const port = uws.us_socket_local_port(listenSocket as never);
    ctx.log.info({ host: o.host, port, index: o.index }, 'gateway listening');

    const slowTimer = setInterval(() => hub.checkBackpressure(), o.slowCheckMs ?? DEFAULT_SLOW_CHECK_MS);
    let recordsConsumed = 0;
    let recordErrors = 0;
    const onRecord = (data: Uint8Array, offset: number, length: number, source = 0) => {
      recordsConsumed++;
      // Clustered, a critical message reaches the gateways through the relay, stamped with its
      // history offset, so the aggregator's unstamped copy is not sent.
      if (source === 0 && clusterRing && data[offset] === FanoutType.Update && (data[offset + 3] & FanoutFlag.Critical) !== 0) return;
      // A throw here would leave the batch uncommitted and replay it forever: contain it.
      try {
        if (data[offset] === FanoutType.Experience) {
          const rec = readFanoutRecord(data, offset, length);
          experience.onExperience(data, rec.bodyOffset, rec.bodyLength, rec.key, rec.stamp);
        } else {
          hub.onRecord(data, offset, length);
          scene.onRecord(data, offset, length);
        }
      } catch (error) {
        metrics.recordErrors.inc();
        if (recordErrors++ % 1000 === 0) ctx.log.error({ err: error, recordErrors }, 'gateway failed to fan out a record (skipped)');
      }
    };
    // A restarted gateway starts with an empty snapshot: the aggregator and the main thread
    // each write their retained messages into this gateway's rings again when it restarts,
    // so nothing has to be asked for here.
    const extra = [controlRing, clusterRing].filter((r): r is RecordRing => r !== undefined);
    const records = extra.length > 0 ? new MergedReader([inRing, ...extra]) : inRing;
    const loop = consumeLoop(records, onRecord, ctx.signal, { batch: 256 });

    const stats = (): GatewayStats => ({ index: o.index, port, overlay: hub.stats(), experience: experience.stats(), openSockets: handles.openSockets, recordsConsumed, recordErrors });

    const api: Record<string, (...args: never[]) => unknown> = { stats };
    if (o.testHooks) {
      // Test hooks: an uncaught exception on the event loop (the crash guard's path), and a
      // plain process.exit() of this thread (the exit hook's path).
      api.crash = () => { setTimeout(() => { throw new Error('gateway test hook: crash'); }, 0); return 'crashing'; };
      api.exit = () => { setTimeout(() => process.exit(1), 0); return 'exiting'; };
      // A blocked event loop (what heavy fan-out does to a busy thread): a synchronous busy
      // wait of `ms` on a later tick, so the caller gets its answer first.
      api.block = (ms: number) => {
        if (!Number.isInteger(ms) || ms < 0 || ms > 600_000) throw new RangeError(`block: ms must be an integer 0..600000, got ${String(ms)}`);
        setTimeout(() => { const until = Date.now() + ms; while (Date.now() < until) { /* blocked on purpose */ } }, 0);
        return 'blocking';
      };
    }

    return {
      api,
      async stop() {
        // Stop taking connections first; the other gateway threads keep the port open.
        stopping = true;
        handles.closeListen();
        clearInterval(slowTimer);
        await loop;
        hub.stop();
        experience.stop();
        handles.endAll(1001, 'server shutting down');
        const deadline = Date.now() + STOP_GRACE_MS;
        while (handles.openSockets > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        handles.closeAll();
        // Let uWS process the closes before the host may terminate this thread.
        await new Promise((r) => setTimeout(r, 0));
        // The crash guard stays installed: its exit hook still protects the thread's last moments.
        const final = stats();
        ctx.log.info(final, 'gateway stopped');
        return final;
      },
    };
  },
});
