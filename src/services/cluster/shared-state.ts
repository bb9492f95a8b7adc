/**
 * What a clustered node shares beyond membership and fan-out: the state store on Redis,
 * capture split over the capture nodes (with results every node can read), and the
 * figures this node exports with its heartbeat (runs owned, streams captured).
 */
import type { Logger } from 'pino';
import type { Config } from '../../shared/config.js';
import { AGGREGATOR } from '../../topology.js';
import { CAPTURE_NS, STREAMS_NS, type StreamEntry } from '../capture/registry.js';
import type { CaptureCluster } from '../capture/service.js';
import type { CaptureRecord } from '../../actors/capture/index.js';
import type { ClusterService, ClusterSupervisor } from './index.js';
import { captureShare } from './capture-assign.js';
import { SharedCaptureResults } from './capture-results.js';
import { RedisStateStore } from './state-store-redis.js';

export interface SharedState {
  store: RedisStateStore;
  capture: CaptureCluster;
}

export async function startSharedState(config: Config, cluster: ClusterService, supervisor: ClusterSupervisor, log: Logger): Promise<SharedState> {
  const store = await RedisStateStore.open({ redis: cluster.connect('state'), subscriber: cluster.connect('state-notices'), log });
  const share = captureShare({
    selfId: cluster.nodeId, captureWeight: config.cluster.captureWeight,
    membership: cluster.membership, store, streamsNs: STREAMS_NS, configNs: CAPTURE_NS,
  });
  if (config.capture.enabled) {
    cluster.membership.on('change', (live: Array<{ id: string }>) => log.info({ nodes: live.map((m) => m.id) }, 'cluster: members changed; capture shares recomputed'));
  }
  const capture: CaptureCluster = {
    mine: (streams) => share.assignment.mine(streams),
    onChange: (fn) => share.onChange(fn),
    results: new SharedCaptureResults<CaptureRecord>(cluster.redis, config.capture.historyLength, log),
  };
  cluster.addFigures(async () => {
    const stats = await supervisor.call(AGGREGATOR, 'stats', [], 1_000).catch(() => undefined) as { cluster?: { owned?: string[] } } | undefined;
    const enabled = config.capture.enabled ? store.list<StreamEntry>(STREAMS_NS).map((e) => e.value).filter((s) => s?.enabled) : [];
    return { runsOwned: stats?.cluster?.owned?.length ?? 0, streamsCaptured: share.assignment.mine(enabled).length };
  });
  return { store, capture };
}
