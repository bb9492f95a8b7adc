/**
 * What the control page needs from the cluster, so that it acts on the whole cluster from any node:
 *  - where a once-per-cluster actor (chat bot, OBS director) runs: the node named by its lease,
 *    reached at the URL that node announces in its membership entry;
 *  - the control state (level, pause, scene) kept in the shared state store, so every node
 *    announces the same state to its own viewers and a node starting later reads it.
 */
import type { Redis } from 'ioredis';
import type { Membership } from './membership.js';
import type { RedisStateStore } from './state-store-redis.js';
import { Leases } from './run-lease.js';

/** Marks a request one node passed to another; a node never passes such a request on again. */
export const FORWARDED_HEADER = 'x-ringcast-forwarded-by';

export const CONTROL_NS = 'control';
export const CONTROL_KEY = 'state';

export type SingletonWhere =
  | { at: 'self' }
  | { at: 'node'; node: string; url: string }
  | { at: 'none'; lease: string; why: string };

export interface ControlCluster {
  readonly nodeId: string;
  /** Where the actor that holds the lease `name` runs now. */
  where(name: string): Promise<SingletonWhere>;
  /** Passes a control call to another node (a GET without a body); resolves with its status and JSON body. */
  forward(url: string, path: string, headers: Record<string, string>, body?: Uint8Array): Promise<{ status: number; json: unknown }>;
  /** The shared control state (undefined until anyone set it). */
  load(): unknown;
  save(state: unknown): void;
  /** Called with the new state when another node changed it. */
  onChange(fn: (state: unknown) => void): void;
}

export interface ControlClusterDeps {
  nodeId: string;
  redis: Redis;
  membership: Membership;
  store: RedisStateStore;
  leaseMs: number;
  /** How long a forwarded call may take (the holder's actor call included). */
  forwardTimeoutMs?: number;
}

export function controlCluster(d: ControlClusterDeps): ControlCluster {
  // Only reads the lease key: this node never acquires through it.
  const leases = new Leases(d.redis, d.nodeId, d.leaseMs);
  const timeoutMs = d.forwardTimeoutMs ?? 10_000;
  return {
    nodeId: d.nodeId,
    async where(name) {
      const lease = leases.key(name);
      let holder;
      try {
        // Bounded: a Redis that stops answering must not hold the operator's request.
        holder = await Promise.race([leases.holder(name), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer in 2 s')), 2_000).unref())]);
      } catch (error) {
        return { at: 'none', lease, why: `Redis did not answer (${(error as Error).message})` };
      }
      if (holder === undefined) return { at: 'none', lease, why: 'no node holds it' };
      if (holder.node === d.nodeId) return { at: 'self' };
      const member = d.membership.live().find((m) => m.id === holder.node);
      if (member === undefined) return { at: 'none', lease, why: `its holder ${holder.node} is not among the live nodes` };
      return { at: 'node', node: holder.node, url: member.url };
    },
    async forward(url, path, headers, body) {
      const res = await fetch(new URL(path, url), {
        method: body === undefined ? 'GET' : 'POST',
        headers: { ...headers, [FORWARDED_HEADER]: d.nodeId, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = { error: `the node answered ${res.status} with a body that is not JSON` };
      }
      return { status: res.status, json };
    },
    load: () => d.store.get(CONTROL_NS, CONTROL_KEY),
    save: (state) => d.store.put(CONTROL_NS, CONTROL_KEY, state),
    onChange(fn) {
      d.store.on('change', (ns: string, key: string) => {
        if (ns === CONTROL_NS && key === CONTROL_KEY) fn(d.store.get(CONTROL_NS, CONTROL_KEY));
      });
    },
  };
}
