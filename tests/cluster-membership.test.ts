/**
 * Cluster membership and the Redis connection, against a real redis-server: nodes see each other
 * with their figures, a node that stops heartbeating leaves every view within nodeTimeoutMs, values
 * planted in the membership keys are skipped with a log line naming the key, and the connection
 * health follows a Redis restart.
 */
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { Redis } from 'ioredis';
import { describeWithRedis, RedisServer } from './helpers/redis-server.js';
import { pollUntil } from './helpers/poll.js';
import { Membership, NODES_KEY, nodeKey, parseMember, refreshInterval } from '../src/services/cluster/membership.js';
import { RedisHealth, createRedis, reconnectDelay } from '../src/services/cluster/redis-connection.js';

function capture() {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk, _e, done) { lines.push(String(chunk)); done(); } });
  return { log: pino({ level: 'debug' }, sink), lines };
}

describe('cluster membership units', () => {
  it('reconnect backoff doubles from 50 ms to a 2 s cap, with jitter', () => {
    expect(reconnectDelay(1, () => 0.5)).toBe(50);
    expect(reconnectDelay(3, () => 0.5)).toBe(200);
    expect(reconnectDelay(30, () => 0.5)).toBe(2000);
    expect(reconnectDelay(30, () => 0)).toBe(1600);
    expect(reconnectDelay(30, () => 1)).toBe(2400);
  });

  it('refreshes a quarter of the slack between heartbeat and timeout, 20–250 ms', () => {
    expect(refreshInterval(1000, 5000)).toBe(250);
    expect(refreshInterval(200, 600)).toBe(100);
    expect(refreshInterval(4990, 5000)).toBe(20);
  });

  it('refuses member values that are not members, saying why', () => {
    const good = { id: 'a', url: 'http://x:1', startedAt: 1, captureWeight: 1, lastSeen: 2, load: { viewers: 1, runsOwned: 0, streamsCaptured: 0, cpuPercent: 1, eventLoopP99Ms: 1 } };
    expect(parseMember(JSON.stringify(good), nodeKey('a')).ok).toBe(true);
    expect(parseMember('{nope', nodeKey('a'))).toMatchObject({ ok: false, error: expect.stringMatching(/not JSON/) });
    expect(parseMember(JSON.stringify(good), nodeKey('b'))).toMatchObject({ ok: false, error: expect.stringMatching(/does not match the key/) });
    expect(parseMember(JSON.stringify({ ...good, load: { ...good.load, viewers: 'many' } }), nodeKey('a'))).toMatchObject({ ok: false, error: '"load.viewers" is not a number' });
    expect(parseMember('[1]', nodeKey('a'))).toMatchObject({ ok: false, error: 'not a JSON object' });
  });
});

describeWithRedis('cluster membership on a real Redis', () => {
  const server = new RedisServer();
  const open: Array<{ m?: Membership; r: Redis }> = [];
  beforeAll(async () => { await server.start(); });
  afterAll(() => server.dispose());
  afterEach(async () => {
    for (const { m, r } of open.splice(0)) {
      await m?.stop();
      r.disconnect();
    }
  });

  function node(id: string, log = capture().log, o: { heartbeatMs?: number; nodeTimeoutMs?: number; viewers?: number } = {}) {
    const health = new RedisHealth();
    const r = createRedis(server.url, log, `test-${id}`, { health });
    const m = new Membership({ redis: r, log, id, url: `http://127.0.0.1/${id}`, captureWeight: 2, heartbeatMs: o.heartbeatMs ?? 200, nodeTimeoutMs: o.nodeTimeoutMs ?? 1000 });
    m.setFigures(() => ({ viewers: o.viewers ?? 0, runsOwned: 1 }));
    open.push({ m, r });
    m.start();
    return { m, r, health };
  }

  it('nodes see each other with their figures, and one that stops heartbeating is gone within nodeTimeoutMs', async () => {
    const a = node('a', undefined, { viewers: 7 });
    const b = node('b', undefined, { viewers: 3 });
    const c = node('c');
    const changes: string[][] = [];
    a.m.on('change', (live: Array<{ id: string }>) => changes.push(live.map((x) => x.id)));
    await pollUntil('three members on a', 5_000, () => (a.m.live().length === 3 ? true : undefined), () => a.m.live().map((x) => x.id));
    await pollUntil('b sees a with 7 viewers', 5_000, () => (b.m.live().find((x) => x.id === 'a')?.load.viewers === 7 ? true : undefined), () => b.m.live());
    const seen = b.m.live().find((x) => x.id === 'a')!;
    expect(seen).toMatchObject({ url: 'http://127.0.0.1/a', captureWeight: 2, load: { viewers: 7, runsOwned: 1 } });
    expect(seen.load.cpuPercent).toBeGreaterThanOrEqual(0);

    // c dies without a goodbye: its connection drops, its key is left to expire.
    const stoppedAt = Date.now();
    c.r.disconnect();
    await pollUntil('c gone from a and b', 3_000, () => (!a.m.live().some((x) => x.id === 'c') && !b.m.live().some((x) => x.id === 'c') ? true : undefined), () => a.m.live().map((x) => x.id), 20);
    // nodeTimeoutMs, plus what a loaded box adds to timers and this poll.
    expect(Date.now() - stoppedAt).toBeLessThanOrEqual(1000 + 400);
    expect(changes.at(-1)).toEqual(['a', 'b']);
    // The index forgets it too.
    expect(await a.r.zrange(NODES_KEY, 0, -1)).toEqual(['a', 'b']);

    // A graceful stop leaves at once.
    await b.m.stop();
    await pollUntil('b gone from a', 1_000, () => (a.m.live().map((x) => x.id).join() === 'a' ? true : undefined), () => a.m.live(), 20);
  });

  it('survives values planted in its keys, naming each key once in the log', async () => {
    const admin = createRedis(server.url, capture().log, 'planter');
    open.push({ r: admin });
    await admin.set(nodeKey('garbage'), '{not json');
    await admin.set(nodeKey('liar'), JSON.stringify({ id: 'someone-else', url: 'x', startedAt: 1, captureWeight: 1, lastSeen: 1, load: {} }));
    await admin.hset(nodeKey('hashy'), 'id', 'hashy');
    const t = Date.now();
    await admin.zadd(NODES_KEY, t, 'garbage', t, 'liar', t, 'hashy', t, 'nobody');
    const { log, lines } = capture();
    const a = node('a', log);
    await pollUntil('a lists itself only', 5_000, () => (a.m.live().map((x) => x.id).join() === 'a' ? true : undefined), () => a.m.live());
    await new Promise((r) => setTimeout(r, 600)); // several refreshes
    const errors = lines.filter((l) => l.includes('"level":50'));
    expect(errors.filter((l) => l.includes(nodeKey('garbage')))).toHaveLength(1);
    expect(errors.filter((l) => l.includes(nodeKey('liar')))).toHaveLength(1);
    expect(errors.join('')).toMatch(/does not match the key/);

    // The index itself replaced by a string: named, repaired, membership goes on.
    await admin.del(NODES_KEY);
    await admin.set(NODES_KEY, 'not a sorted set');
    await pollUntil('index repaired', 5_000, async () => ((await admin.type(NODES_KEY)) === 'zset' ? true : undefined), () => admin.type(NODES_KEY));
    expect(lines.join('')).toMatch(/key ringcast:nodes holds a value of the wrong type/);
    await pollUntil('a lists itself again', 5_000, () => (a.m.live().map((x) => x.id).join() === 'a' ? true : undefined), () => a.m.live());
  });

  it('health goes down when Redis dies, logs the outage once, and membership resumes after it restarts', async () => {
    const { log, lines } = capture();
    const a = node('a', log);
    await pollUntil('up', 5_000, () => (a.health.up ? true : undefined));
    const states: boolean[] = [];
    a.health.on('change', (s: { up: boolean }) => states.push(s.up));
    await server.stop();
    await pollUntil('down', 5_000, () => (!a.health.up ? true : undefined));
    await new Promise((r) => setTimeout(r, 1500)); // several reconnect attempts
    expect(lines.filter((l) => l.includes('redis connection lost'))).toHaveLength(1);
    await server.start();
    await pollUntil('up again', 5_000, () => (a.health.up ? true : undefined));
    expect(states).toEqual([false, true]);
    expect(a.health.outages).toBe(1);
    // The restarted Redis is empty: the next heartbeat announces the node again.
    await pollUntil('a back in the list', 5_000, async () => ((await a.r.zrange(NODES_KEY, 0, -1)).includes('a') ? true : undefined));
    expect(lines.join('')).toMatch(/redis connection back/);
  });
});
