/**
 * GET /api/cluster: the nodes sharing this node's Redis, each with what it carries. Answered on
 * every node, clustered or not (a single node lists itself with `"clustered": false`).
 */
import type { HttpRouter } from '../../shared/http-router.js';
import type { Member } from './membership.js';
import type { RedisHealthState } from './redis-connection.js';

export interface ClusterView {
  clustered: boolean;
  self: () => Member;
  /** Live members (self included while Redis answers). */
  nodes: () => Member[];
  redis?: () => RedisHealthState;
}

export function registerClusterRoutes(router: HttpRouter, view: ClusterView): void {
  router.get('/api/cluster', () => {
    const self = view.self();
    if (!view.clustered) return { json: { clustered: false, self: self.id, nodes: [self] } };
    const redis = view.redis?.();
    // While Redis is away the last list read may be stale: say so rather than hide the nodes.
    const nodes = view.nodes();
    return {
      json: {
        clustered: true, self: self.id,
        redis: redis ? { up: redis.up, since: new Date(redis.since).toISOString(), outages: redis.outages } : undefined,
        nodes: nodes.some((n) => n.id === self.id) ? nodes : [...nodes, self].sort((a, b) => (a.id < b.id ? -1 : 1)),
      },
    };
  });
}
