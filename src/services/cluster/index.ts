/**
 * The cluster service of the main thread: what a node does when it shares a Redis with others
 * (`cluster.redis`). Unclustered, it only answers GET /api/cluster for this node, and nothing
 * else changes. Clustered, it holds the main thread's Redis connection and its health, the
 * membership (heartbeat, live members, figures), the route, the metrics and the answer to a
 * gateway asking for missed history. The fan-out relay itself runs in the `cluster` actor.
 */
import os from 'node:os';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Redis } from 'ioredis';
import type { Config } from '../../shared/config.js';
import type { HttpRouter } from '../../shared/http-router.js';
import { CLUSTER, clusterNodeId, clusterRing, gatewayCount, gatewayName } from '../../topology.js';
import { Membership, type FiguresProvider, type Member, type NodeLoad } from './membership.js';
import { RedisHealth, createRedis, type CreateRedisOptions, type RedisHealthState } from './redis-connection.js';
import { registerClusterRoutes } from './routes.js';
import { readHistory, type HistoryRequest, type HistoryReply } from '../../shared/cluster-history.js';

export { Membership, type Member, type NodeLoad } from './membership.js';
export { RedisHealth, createRedis } from './redis-connection.js';

/** What the service needs from the supervisor (gateway stats for the viewer count, upcalls). */
export interface ClusterSupervisor {
  call(actor: string, method: string, args?: unknown[], timeoutMs?: number): Promise<unknown>;
  actorNames(): string[];
  provide(method: string, handler: (...args: never[]) => unknown): unknown;
  on(event: 'actor-started', listener: (actor: string, incarnation: number) => void): unknown;
  readonly registry: Registry;
}

export interface ClusterDeps {
  router: HttpRouter;
  supervisor: ClusterSupervisor;
  log: Logger;
  /** The port the gateways listen on (resolved). */
  port: number;
}

export interface ClusterService {
  readonly nodeId: string;
  /** The main thread's command connection. */
  readonly redis: Redis;
  readonly health: RedisHealth;
  readonly membership: Membership;
  /** Another connection to the same Redis, counted in `health` (e.g. a subscriber). */
  connect(name: string, options?: CreateRedisOptions['redis']): Redis;
  /** More of what this node exports with its heartbeat; figures from every provider are merged. */
  addFigures(fn: FiguresProvider): void;
  /** For /readyz: degraded (not unready) while Redis is away; local viewers are still served. */
  check(): { ok: boolean; detail: string };
  /** Runs at close, before the connections end (leases to give up and the like). */
  onClose(fn: () => Promise<void> | void): void;
  close(): Promise<void>;
}

/** Where other nodes and operators reach this node: the configured host, or the host name for a wildcard. */
function advertisedUrl(config: Config, port: number): string {
  const host = config.host === '0.0.0.0' || config.host === '::' ? os.hostname() : config.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

async function viewersOn(supervisor: ClusterSupervisor, gateways: number): Promise<number> {
  const names = new Set(supervisor.actorNames());
  const counts = await Promise.all(Array.from({ length: gateways }, (_, i) => gatewayName(i)).filter((n) => names.has(n))
    .map((n) => supervisor.call(n, 'stats', [], 1_000).then((s) => (s as { overlay?: { clients?: number } }).overlay?.clients ?? 0, () => 0)));
  return counts.reduce((a, b) => a + b, 0);
}

export function startCluster(config: Config, deps: ClusterDeps): ClusterService | undefined {
  const { router, supervisor, log, port } = deps;
  const gateways = gatewayCount(config);
  const url = config.cluster.redis;
  if (url === undefined) {
    // One node: /api/cluster still answers, with this node only.
    const startedAt = Date.now();
    const id = clusterNodeId(config, port);
    let viewers = 0;
    registerClusterRoutes(router, {
      clustered: false,
      self: () => {
        void viewersOn(supervisor, gateways).then((n) => { viewers = n; });
        return { id, url: advertisedUrl(config, port), startedAt, captureWeight: config.cluster.captureWeight, lastSeen: Date.now(), load: { viewers, runsOwned: 0, streamsCaptured: 0, cpuPercent: 0, eventLoopP99Ms: 0 } };
      },
      nodes: () => [],
    });
    supervisor.provide('cluster.history', (): HistoryReply => ({ ok: false, gone: true, reason: 'history needs a cluster: this node runs without --redis' }));
    return undefined;
  }

  const nodeId = clusterNodeId(config, port);
  const clusterLog = log.child({ node: nodeId });
  const health = new RedisHealth();
  const redis = createRedis(url, clusterLog, 'main', { health });
  const connections = new Map<string, Redis>([['main', redis]]);
  const membership = new Membership({
    redis, log: clusterLog, id: nodeId, url: advertisedUrl(config, port), captureWeight: config.cluster.captureWeight,
    heartbeatMs: config.cluster.heartbeatMs, nodeTimeoutMs: config.cluster.nodeTimeoutMs,
  });
  const providers: FiguresProvider[] = [async () => ({ viewers: await viewersOn(supervisor, gateways) })];
  membership.setFigures(async () => {
    const parts = await Promise.all(providers.map((p) => Promise.resolve().then(p).catch(() => ({}))));
    return Object.assign({}, ...parts) as Partial<NodeLoad>;
  });

  const registers = [supervisor.registry];
  new Gauge({ name: 'ringcast_cluster_redis_up', help: '1 while every Redis connection of this thread is ready, 0 while any is down', registers, collect() { this.set(health.up ? 1 : 0); } });
  const outages = new Counter({ name: 'ringcast_cluster_redis_outages_total', help: 'Times this thread lost Redis (up → down)', registers });
  new Gauge({ name: 'ringcast_cluster_nodes', help: 'Live cluster nodes as this node last read them', registers, collect() { this.set(membership.live().length); } });
  health.on('change', (s: RedisHealthState) => {
    if (!s.up) outages.inc();
    clusterLog.info({ up: s.up, outages: s.outages }, s.up ? 'cluster: redis up' : 'cluster: redis down; serving local viewers only');
  });

  registerClusterRoutes(router, { clustered: true, self: () => membership.selfMember(), nodes: () => membership.live(), redis: () => health.snapshot() });
  supervisor.provide('cluster.history', (request: HistoryRequest) => readHistory(redis, health, request, clusterLog));
  // A restarted gateway gets the other nodes' retained messages again from the relay, as it
  // gets this node's from the aggregator and the main thread.
  const gatewayIndex = new Map(Array.from({ length: gateways }, (_, i) => [gatewayName(i), i]));
  supervisor.on('actor-started', (actor, incarnation) => {
    const i = gatewayIndex.get(actor);
    if (i === undefined || incarnation === 0) return;
    supervisor.call(CLUSTER, 'replayRetained', [clusterRing(i)])
      .catch((error: Error) => clusterLog.warn({ gateway: actor, err: error.message }, 'cluster: the relay could not replay the other nodes\' snapshot to a restarted gateway'));
  });
  membership.start();
  clusterLog.info({ redis: url.replace(/\/\/[^@/]*@/, '//***@'), heartbeatMs: config.cluster.heartbeatMs, nodeTimeoutMs: config.cluster.nodeTimeoutMs }, 'cluster: joining');

  const closers: Array<() => Promise<void> | void> = [];
  let closed: Promise<void> | undefined;
  return {
    nodeId, redis, health, membership,
    connect(name, options) {
      if (connections.has(name)) throw new Error(`cluster: a connection named "${name}" exists already`);
      const c = createRedis(url, clusterLog, name, { health, ...(options ? { redis: options } : {}) });
      connections.set(name, c);
      return c;
    },
    addFigures(fn) { providers.push(fn); },
    check() {
      const s = health.snapshot();
      return s.up
        ? { ok: true, detail: `redis up; ${membership.live().length} node(s) live` }
        : { ok: false, detail: `redis down since ${new Date(s.since).toISOString()} (${s.down.join(', ')}); serving local viewers only` };
    },
    onClose(fn) { closers.push(fn); },
    close() {
      closed ??= (async () => {
        for (const fn of closers.splice(0).reverse()) await Promise.resolve().then(fn).catch((error: Error) => clusterLog.warn({ err: error.message }, 'cluster: a close step failed'));
        await membership.stop();
        // Closed on purpose: not an outage.
        for (const [name, c] of connections) {
          health.unwatch(name);
          c.disconnect();
        }
      })();
      return closed;
    },
  };
}
