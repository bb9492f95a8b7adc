/**
 * Run leases, fencing and the per-run forward stream against a real redis-server: one
 * holder at a time, tokens that only grow, a stale holder's writes refused, forwarded
 * events delivered to the owner and, after a takeover, claimed from the dead owner.
 */
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { describeWithRedis, RedisServer } from './helpers/redis-server.js';
import { FencedWriter, Leases } from '../src/services/cluster/run-lease.js';
import { RunStreams } from '../src/services/cluster/run-forward.js';
import { appendHistory, historyKey } from '../src/shared/cluster-history.js';

describeWithRedis('run leases and forward streams (real redis-server)', () => {
  const server = new RedisServer();
  const clients: Redis[] = [];
  const client = () => {
    const c = new Redis(server.url, { maxRetriesPerRequest: 1, lazyConnect: false });
    clients.push(c);
    return c;
  };
  beforeAll(async () => { await server.start(); });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await server.dispose();
  });
  beforeEach(async () => { await client().flushall(); });

  it('gives a lease to one node at a time, with a token that grows on every acquisition', async () => {
    const a = new Leases(client(), 'node-a', 300);
    const b = new Leases(client(), 'node-b', 300);
    const ga = await a.acquire('run1');
    expect(ga?.token).toBe(1);
    expect(await b.acquire('run1')).toBeUndefined();
    expect(await a.renew(ga!)).toBe(true);
    expect((await b.holder('run1'))?.node).toBe('node-a');
    await new Promise((r) => setTimeout(r, 450)); // past the lease, no renewal
    const gb = await b.acquire('run1');
    expect(gb?.token).toBe(2);
    // The old holder can neither renew nor release what is now b's.
    expect(await a.renew(ga!)).toBe(false);
    expect(await a.release(ga!)).toBe(false);
    expect((await a.holder('run1'))?.node).toBe('node-b');
    expect(await b.release(gb!)).toBe(true);
    expect((await a.acquire('run1'))?.token).toBe(3);
  });

  it('refuses (and counts) writes from a holder whose lease passed to another node', async () => {
    const redis = client();
    const refusals: string[] = [];
    const fenced = new FencedWriter(redis, (g, what) => refusals.push(`${g.holder} ${what}`));
    const a = new Leases(redis, 'node-a', 200);
    const b = new Leases(client(), 'node-b', 200);
    const ga = (await a.acquire('run1'))!;
    expect(await fenced.set(ga, 'ringcast:test:k', 'from-a')).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    const gb = (await b.acquire('run1'))!;
    expect(await fenced.set(gb, 'ringcast:test:k', 'from-b')).toBe(true);
    // a wakes up believing it still owns the run: every kind of write is refused.
    expect(await fenced.set(ga, 'ringcast:test:k', 'stale')).toBe(false);
    expect(await fenced.xadd(ga, 'ringcast:test:s', 100, { m: 'stale' })).toBe(false);
    expect(await fenced.publish(ga, 'ringcast:test:c', 'stale')).toBe(false);
    expect(await redis.get('ringcast:test:k')).toBe('from-b');
    expect(await redis.xlen('ringcast:test:s')).toBe(0);
    expect(fenced.refused).toBe(3);
    expect(refusals).toEqual([`node-a|1 SET ringcast:test:k`, `node-a|1 XADD ringcast:test:s`, `node-a|1 PUBLISH ringcast:test:c`]);
    // An expired lease nobody took yet refuses too: the holder must stop acting as owner.
    await new Promise((r) => setTimeout(r, 300));
    expect(await fenced.set(gb, 'ringcast:test:k', 'late')).toBe(false);
  });

  it('forwards events to the owner, acknowledges them with the snapshot, and bounds the stream', async () => {
    const owner = client();
    const reader = client();
    const leases = new Leases(owner, 'node-a', 5000);
    const fenced = new FencedWriter(owner);
    const streamsA = new RunStreams(owner, 'node-a', 5);
    const streamsB = new RunStreams(client(), 'node-b', 5);
    const grant = (await leases.acquire('r'))!;
    await streamsA.ensureGroup('r');
    for (let i = 0; i < 7; i++) await streamsB.forward('r', Buffer.from(`event-${i}`));
    expect(streamsB.forwarded).toBe(5);
    expect(streamsB.refusedFull).toBe(2);
    const got = await streamsA.read(reader, ['r'], 100);
    expect(got.map((e) => String(e.record))).toEqual(['event-0', 'event-1', 'event-2', 'event-3', 'event-4']);
    expect(got.every((e) => e.run === 'r')).toBe(true);
    // Read but not committed: still pending, still counted against the bound.
    expect(await streamsB.forward('r', Buffer.from('x'))).toBe(false);
    expect(await streamsA.commit(fenced, grant, 5000, 'r', '{"n":5}', got.map((e) => e.id))).toBe(true);
    expect(await owner.xlen(streamsA.streamKey('r'))).toBe(0);
    expect(await streamsA.snapshot('r')).toBe('{"n":5}');
    expect(await streamsB.forward('r', Buffer.from('event-5'))).toBe(true);
  });

  it('lets a new owner claim what the dead owner had read but not committed, and its snapshot', async () => {
    const a = client();
    const b = client();
    const leasesA = new Leases(a, 'node-a', 200);
    const leasesB = new Leases(b, 'node-b', 5000);
    const fencedA = new FencedWriter(a);
    const fencedB = new FencedWriter(b);
    const sa = new RunStreams(a, 'node-a', 1000);
    const sb = new RunStreams(b, 'node-b', 1000);
    const ga = (await leasesA.acquire('r'))!;
    await sa.ensureGroup('r');
    for (let i = 0; i < 4; i++) await sb.forward('r', Buffer.from(`e${i}`));
    const first = await sa.read(client(), ['r'], 100, 2);
    expect(await sa.commit(fencedA, ga, 200, 'r', 'snap-after-e1', first.map((e) => e.id))).toBe(true);
    const second = await sa.read(client(), ['r'], 100, 1); // e2 read, then a dies before committing
    expect(second.map((e) => String(e.record))).toEqual(['e2']);
    await new Promise((r) => setTimeout(r, 300));
    const gb = (await leasesB.acquire('r'))!;
    expect(gb.token).toBe(2);
    await sb.ensureGroup('r');
    expect(await sb.snapshot('r')).toBe('snap-after-e1');
    const claimed = await sb.claimPending('r');
    expect(claimed.map((e) => String(e.record))).toEqual(['e2']);
    const fresh = await sb.read(client(), ['r'], 100);
    expect(fresh.map((e) => String(e.record))).toEqual(['e3']);
    // The old owner's late commit is refused; b's goes through.
    expect(await sa.commit(fencedA, ga, 200, 'r', 'stale', second.map((e) => e.id))).toBe(false);
    expect(await sb.commit(fencedB, gb, 5000, 'r', 'snap-after-e3', [...claimed, ...fresh].map((e) => e.id))).toBe(true);
    expect(await sb.snapshot('r')).toBe('snap-after-e3');
    expect(await sb.snapshotWriter('r')).toBe('node-b|2');
    expect(await b.xlen(sb.streamKey('r'))).toBe(0);
  });

  it('refuses a run\'s history entries from a node that does not hold the run\'s lease', async () => {
    const redis = client();
    const variants = [{ levelMask: 7, body: new TextEncoder().encode('{"type":"milestone"}') }];
    // No owner yet: any node may write (the first window of a fresh run).
    expect((await appendHistory(redis, 'h', 5, variants, undefined, 'node-a')).offset).toBe(1);
    const b = new Leases(client(), 'node-b', 5000);
    await b.acquire('h');
    const refused = await appendHistory(redis, 'h', 5, variants, undefined, 'node-a');
    expect(refused.offset).toBe(-1);
    expect(await redis.xlen(historyKey('h'))).toBe(1);
    // The owner writes; so does a caller that names no node.
    expect((await appendHistory(redis, 'h', 5, variants, undefined, 'node-b')).offset).toBe(2);
    expect((await appendHistory(redis, 'h', 5, variants)).offset).toBe(3);
    // A node id that is a prefix of the owner's is not the owner.
    expect((await appendHistory(redis, 'h', 5, variants, undefined, 'node-')).offset).toBe(-1);
  });
});
