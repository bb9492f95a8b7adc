/**
 * The StateStore on a real redis-server: the same contract as SQLite and memory, plus what
 * only a shared store has to do — writes reach other nodes' stores, a reopened store reads
 * back what was committed (and nothing of a rolled-back transaction), a reconnect after a
 * Redis restart re-reads, and bad data planted in Redis is refused by key, never a crash.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import pino from 'pino';
import { describeWithRedis, RedisServer } from './helpers/redis-server.js';
import { stateStoreContract } from './helpers/state-store-contract.js';
import { pollUntil } from './helpers/poll.js';
import { RedisStateStore } from '../src/services/cluster/state-store-redis.js';

describeWithRedis('RedisStateStore (real redis-server)', () => {
  const server = new RedisServer();
  const clients: Redis[] = [];
  const logged: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => { logged.push(JSON.parse(line)); } });
  let prefixes = 0;
  const connect = () => {
    const c = new Redis(server.url, { maxRetriesPerRequest: 1 });
    c.on('error', () => undefined); // the restart case drops every connection on purpose
    clients.push(c);
    return c;
  };
  const open = (prefix = `t${prefixes++}`) => RedisStateStore.open({ redis: connect(), subscriber: connect(), log, prefix, loadTimeoutMs: 3000 });

  beforeAll(async () => { await server.start(); });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await server.dispose();
  });

  stateStoreContract('RedisStateStore', () => open());

  it('shares writes with other nodes\' stores, and a reopened store reads back what was committed', async () => {
    const a = await open('shared');
    const b = await open('shared');
    const changes: string[] = [];
    b.on('change', (ns: string, key: string) => changes.push(`${ns}/${key}`));
    a.put('streams', 'alpha', { priority: 50 });
    a.transaction((tx) => { tx.put('streams', 'beta', { priority: 10 }); tx.put('capture', 'config', { capture_interval: 2 }); });
    expect(() => a.transaction((tx) => { tx.put('streams', 'gamma', {}); throw new Error('no'); })).toThrow('no');
    await pollUntil('b to see a\'s writes', 5000, () => (b.list('streams').length === 2 && b.get('capture', 'config') ? true : undefined), () => b.list('streams'), 20);
    expect(b.get('streams', 'beta')).toEqual({ priority: 10 });
    expect(changes.sort()).toEqual(['capture/config', 'streams/alpha', 'streams/beta']);
    a.delete('streams', 'alpha');
    await pollUntil('b to see the delete', 5000, () => (b.get('streams', 'alpha') === undefined ? true : undefined), undefined, 20);
    await a.flushed();
    const c = await open('shared');
    expect(c.list('streams').map((e) => e.key)).toEqual(['beta']);
    expect(c.get('streams', 'gamma')).toBeUndefined();
  });

  it('refuses bad data planted in Redis by key, and keeps the good entries', async () => {
    const raw = connect();
    await raw.set('bad:state:scene', 'a string where a hash belongs');
    await raw.hset('bad:state:streams', 'ok', JSON.stringify({ t: 1, v: { priority: 1 } }), 'junk', 'not json', 'foreign', JSON.stringify({ x: 1 }));
    logged.length = 0;
    const s = await open('bad');
    expect(s.list('streams').map((e) => e.key)).toEqual(['ok']);
    expect(s.list('scene')).toEqual([]);
    expect(s.refused).toBe(3);
    const messages = logged.map((l) => `${String(l.key)} ${String(l.field ?? '')}`);
    expect(messages).toEqual(expect.arrayContaining(['bad:state:scene ', 'bad:state:streams junk', 'bad:state:streams foreign']));
    // A bad change notice is refused too.
    await raw.publish('bad:state-changes', '{nope');
    await pollUntil('the bad notice to be refused', 5000, () => (s.refused === 4 ? true : undefined), () => s.refused, 20);
  });

  it('re-reads everything after Redis comes back (restarted empty), telling what changed', async () => {
    const s = await open('restart');
    s.put('scene', 'current', { layout: 'split' });
    await s.flushed();
    const changes: string[] = [];
    s.on('change', (ns: string, key: string) => changes.push(`${ns}/${key}`));
    await server.restart(100);
    await pollUntil('the store to notice the empty Redis', 10_000, () => (s.get('scene', 'current') === undefined ? true : undefined), undefined, 50);
    expect(changes).toEqual(['scene/current']);
    // And writes go through again.
    s.put('scene', 'current', { layout: 'full' });
    await s.flushed();
    const fresh = await open('restart');
    expect(fresh.get('scene', 'current')).toEqual({ layout: 'full' });
  });
});
