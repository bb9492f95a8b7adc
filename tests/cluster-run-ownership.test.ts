/**
 * The run-ownership coordinator the aggregator uses, driven directly against a real
 * redis-server with a recording stand-in for the aggregator: the first node to see a run
 * owns it and applies what reached its own stream, another node's events reach the owner,
 * a clean close releases the leases, and an evicted run's lease is given up at once; a node
 * taking a run applies its events in the order they came, first sight or takeover.
 */
import { expect, it } from 'vitest';
import { Redis } from 'ioredis';
import pino from 'pino';
import { Registry } from 'prom-client';
import { describeWithRedis, useRedisServer } from './helpers/redis-server.js';
import { pollUntil } from './helpers/poll.js';
import { RunOwnership, type RunOwnershipHooks } from '../src/actors/aggregator/run-ownership.js';

const log = pino({ level: 'silent' });

function node(url: string, nodeId: string) {
  const applied: string[] = [];
  const adopted: string[] = [];
  const dropped: string[] = [];
  const hooks: RunOwnershipHooks = {
    apply: (record) => applied.push(Buffer.from(record).toString()),
    encode: (run) => JSON.stringify({ run, applied: applied.length }),
    adopt: (run) => adopted.push(run),
    drop: (run) => dropped.push(run),
  };
  const ownership = new RunOwnership({ redis: url, nodeId, leaseMs: 600 }, hooks, log, new Registry());
  return { ownership, applied, adopted, dropped };
}

describeWithRedis('run ownership coordinator (real redis-server)', () => {
  let redis: Redis;
  const server = useRedisServer((client) => { redis = client; });

  it('first sight takes the run; another node\'s events reach the owner; eviction and close release the leases', async () => {
    const a = node(server.url, 'node-a');
    const b = node(server.url, 'node-b');
    try {
      // Not owned yet: the event goes through the run's stream, and A applies it from there once it owns the run.
      expect(a.ownership.route('r', Buffer.from('a-0'))).toBe(false);
      await pollUntil('A to own r and apply its first event', 5000, () => (a.applied.includes('a-0') ? true : undefined), () => a.applied, 20);
      expect(a.adopted).toEqual(['r']);
      expect(a.ownership.owned()).toEqual(['r']);
      expect(a.ownership.route('r', Buffer.from('a-1'))).toBe(true); // owner: applied locally by the caller

      expect(b.ownership.route('r', Buffer.from('b-0'))).toBe(false);
      expect(b.ownership.route('r', Buffer.from('b-1'))).toBe(false);
      await pollUntil('A to apply B\'s events', 5000, () => (a.applied.includes('b-1') ? true : undefined), () => a.applied, 20);
      expect(a.applied).toEqual(['a-0', 'b-0', 'b-1']);
      expect(b.ownership.owned()).toEqual([]);
      // Committed with the snapshot: nothing left in the stream, the snapshot stored by A.
      await pollUntil('the commit', 5000, async () => ((await redis.xlen('ringcast:run:r:in')) === 0 && (await redis.get('ringcast:run:r:snapshot:writer'))?.startsWith('node-a|') ? true : undefined), undefined, 20);

      // Evicted on A: the lease is released at once, and B, which still forwards, takes the run.
      a.ownership.release('r');
      expect(a.ownership.owned()).toEqual([]);
      await pollUntil('A\'s lease on r released', 2000, async () => ((await redis.get('ringcast:lease:r')) === null ? true : undefined), undefined, 10);
      b.ownership.route('r', Buffer.from('b-2'));
      await pollUntil('B to own r', 5000, () => (b.ownership.owned().includes('r') ? true : undefined), undefined, 20);
      await pollUntil('B to apply its own forwarded event', 5000, () => (b.applied.includes('b-2') ? true : undefined), () => b.applied, 20);
    } finally {
      await a.ownership.close();
      await b.ownership.close();
    }
    // A clean close releases what B held.
    expect(await redis.get('ringcast:lease:r')).toBeNull();
  });

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const events = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `e-${from + i}`);
  /** Routes e-from … e-(to-1) as the aggregator does: applied at once when routed locally. */
  async function produce(n: ReturnType<typeof node>, run: string, from: number, to: number): Promise<void> {
    for (let i = from; i < to; i++) {
      if (n.ownership.route(run, Buffer.from(`e-${i}`))) n.applied.push(`e-${i}`);
      if (i % 5 === 0) await sleep(1); // a trainer's pace: the acquisition completes mid-stream
    }
  }

  it('first sight: the events that came while the run was being taken are applied before the later ones, in order', async () => {
    const a = node(server.url, 'node-a');
    try {
      await produce(a, 'ordered', 0, 400);
      await pollUntil('all 400 applied', 5000, () => (a.applied.length >= 400 ? true : undefined), () => a.applied.length, 20);
      expect(a.applied).toEqual(events(0, 400));
    } finally {
      await a.ownership.close();
    }
  });

  it('takeover: the new owner applies what the old one left, then its own earlier forwards, then its new events, in order', async () => {
    const a = node(server.url, 'node-a');
    const b = node(server.url, 'node-b');
    try {
      b.ownership.route('taken', Buffer.from('b-start'));
      await pollUntil('B to own the run', 5000, () => (b.ownership.owned().includes('taken') ? true : undefined), undefined, 20);
      await produce(a, 'taken', 0, 100); // forwarded to B
      await pollUntil('B to apply A\'s first 100', 5000, () => (b.applied.length >= 101 ? true : undefined), () => b.applied.length, 20);
      // B commits what it applied (acknowledged and deleted from the stream), so nothing is replayed.
      await pollUntil('B\'s commit', 5000, async () => ((await redis.xlen('ringcast:run:taken:in')) === 0 ? true : undefined), undefined, 20);
      b.ownership.release('taken'); // evicted on B: A takes over while it keeps producing
      await produce(a, 'taken', 100, 400);
      await pollUntil('A to own the run and apply the rest', 5000, () => (a.applied.at(-1) === 'e-399' ? true : undefined), () => a.applied.slice(-3), 20);
      expect(b.applied).toEqual(['b-start', ...events(0, 100)]);
      expect(a.applied).toEqual(events(100, 400));
    } finally {
      await a.ownership.close();
      await b.ownership.close();
    }
  });
});
