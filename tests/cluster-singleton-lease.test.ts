/**
 * The cluster-wide singleton (chat bot, OBS director): exactly one of several contenders
 * holds it; when the holder stops renewing (dies) another takes over within about a lease;
 * a clean stop hands over at once.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import pino from 'pino';
import { describeWithRedis, RedisServer } from './helpers/redis-server.js';
import { pollUntil } from './helpers/poll.js';
import { SingletonLease } from '../src/services/cluster/singleton-lease.js';

describeWithRedis('singleton lease (real redis-server)', () => {
  const server = new RedisServer();
  const clients: Redis[] = [];
  const log = pino({ level: 'silent' });
  beforeAll(async () => { await server.start(); });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await server.dispose();
  });
  const contender = (node: string, leaseMs = 600) => {
    const redis = new Redis(server.url, { maxRetriesPerRequest: 1 });
    clients.push(redis);
    return { redis, lease: new SingletonLease(redis, node, 'chat bot', leaseMs, log) };
  };

  it('one holder among three; a dead holder is replaced within about a lease; a clean stop hands over at once', async () => {
    const nodes = ['a', 'b', 'c'].map((n) => contender(n));
    const changes: string[] = [];
    nodes.forEach((n, i) => n.lease.on('change', (holding: boolean) => changes.push(`${'abc'[i]}:${holding}`)));
    for (const n of nodes) n.lease.start();
    const first = await pollUntil('a holder', 5000, () => nodes.find((n) => n.lease.holding), undefined, 20);
    await new Promise((r) => setTimeout(r, 700)); // more than a lease: the holder renews, nobody else gets in
    expect(nodes.filter((n) => n.lease.holding)).toEqual([first]);

    // The holder is cut off from Redis: it renews no more (no release) and gives the job up
    // itself once its lease would have run out.
    const deadAt = Date.now();
    first.lease.removeAllListeners();
    first.redis.disconnect();
    const rest = nodes.filter((n) => n !== first);
    const second = await pollUntil('another holder', 5000, () => rest.find((n) => n.lease.holding), undefined, 10);
    expect(Date.now() - deadAt).toBeLessThan(600 + 200 + 500); // lease + a renewal period, plus slack for a loaded machine
    expect(rest.filter((n) => n.lease.holding)).toEqual([second]);
    await pollUntil('the cut-off holder to give up', 2000, () => (first.lease.holding ? undefined : true), undefined, 10);
    await first.lease.stop();

    // A clean stop releases: the last contender takes over within one renewal period.
    const last = rest.find((n) => n !== second)!;
    const stoppedAt = Date.now();
    await second.lease.stop();
    await pollUntil('the last contender to hold', 5000, () => (last.lease.holding ? true : undefined), undefined, 10);
    expect(Date.now() - stoppedAt).toBeLessThan(600);
    await last.lease.stop();
    expect(changes.filter((c) => c.endsWith(':true'))).toHaveLength(3);
  });
});
