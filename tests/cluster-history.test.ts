/**
 * The per-run history of critical messages on a real Redis: offsets count from 1 and every level
 * variant shares one; a recovery gets exactly what came after `since` at the client's level; a
 * wrong epoch, a trimmed or lost history and planted values are answered "gone", never thrown;
 * the keys expire after the run's last message.
 */
import { expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { HISTORY_TTL_MS, appendHistory, historyKey, historyMetaKey, readHistory } from '../src/shared/cluster-history.js';
import { describeWithRedis, useRedisServer } from './helpers/redis-server.js';

const enc = (s: string) => new TextEncoder().encode(s);
const log = pino({ level: 'silent' });
const up = { up: true };

describeWithRedis('cluster history on a real Redis', () => {
  let redis: Redis;
  const server = useRedisServer((client) => { redis = client; });

  it('appends with offsets from 1, recovers exactly what came after since at the client\'s level', async () => {
    const first = await appendHistory(redis, 'run-a', 4, [{ levelMask: 1, body: enc('{"type":"milestone","n":1,"lv":"b"}') }, { levelMask: 6, body: enc('{"type":"milestone","n":1,"lv":"ia"}') }], 'epochA');
    expect(first).toEqual({ offset: 1, epoch: 'epochA' });
    for (let n = 2; n <= 4; n++) {
      // A later append keeps the epoch it started with, whatever it is offered.
      expect(await appendHistory(redis, 'run-a', 4, [{ levelMask: 7, body: enc(`{"type":"milestone","n":${n}}`) }], 'other')).toEqual({ offset: n, epoch: 'epochA' });
    }
    const ttl = await redis.pttl(historyKey('run-a'));
    expect(ttl).toBeGreaterThan(HISTORY_TTL_MS - 60_000);
    expect(await redis.pttl(historyMetaKey('run-a'))).toBeGreaterThan(HISTORY_TTL_MS - 60_000);

    const beginner = await readHistory(redis, up, { run: 'run-a', since: 0, epoch: 'epochA', levelBit: 1 }, log);
    expect(beginner.ok && beginner.messages.map((m) => [m.offset, m.channel, JSON.parse(m.body)])).toEqual([
      [1, 4, { run: 'run-a', offset: 1, epoch: 'epochA', type: 'milestone', n: 1, lv: 'b' }],
      [2, 4, { run: 'run-a', offset: 2, epoch: 'epochA', type: 'milestone', n: 2 }],
      [3, 4, { run: 'run-a', offset: 3, epoch: 'epochA', type: 'milestone', n: 3 }],
      [4, 4, { run: 'run-a', offset: 4, epoch: 'epochA', type: 'milestone', n: 4 }],
    ]);
    const advanced = await readHistory(redis, up, { run: 'run-a', since: 0, epoch: 'epochA', levelBit: 4 }, log);
    expect(advanced.ok && JSON.parse(advanced.messages[0].body).lv).toBe('ia');
    const tail = await readHistory(redis, up, { run: 'run-a', since: 2, epoch: 'epochA', levelBit: 2 }, log);
    expect(tail).toMatchObject({ ok: true, epoch: 'epochA', offset: 4 });
    expect(tail.ok && tail.messages.map((m) => m.offset)).toEqual([3, 4]);
    expect(await readHistory(redis, up, { run: 'run-a', since: 4, epoch: 'epochA', levelBit: 2 }, log)).toMatchObject({ ok: true, messages: [] });
  });

  it('answers gone for a wrong epoch, a trimmed or unknown history and planted values; unavailable while Redis is away', async () => {
    expect(await readHistory(redis, up, { run: 'run-a', since: 1, epoch: 'stale', levelBit: 2 }, log)).toMatchObject({ ok: false, gone: true, epoch: 'epochA', offset: 4 });
    expect(await readHistory(redis, up, { run: 'nobody', since: 1, epoch: 'e', levelBit: 2 }, log)).toMatchObject({ ok: false, gone: true, reason: expect.stringMatching(/no history/) });
    await redis.xdel(historyKey('run-a'), '1-1', '2-1');
    expect(await readHistory(redis, up, { run: 'run-a', since: 0, epoch: 'epochA', levelBit: 2 }, log)).toMatchObject({ ok: false, gone: true, reason: expect.stringMatching(/trimmed/) });
    expect(await readHistory(redis, { up: false }, { run: 'run-a', since: 0, epoch: 'epochA', levelBit: 2 }, log)).toMatchObject({ ok: false, gone: false });

    await redis.set(historyMetaKey('planted'), 'not a hash');
    expect(await readHistory(redis, up, { run: 'planted', since: 0, epoch: 'e', levelBit: 2 }, log)).toMatchObject({ ok: false, gone: true, reason: expect.stringMatching(/unreadable/) });
    await expect(appendHistory(redis, 'planted', 4, [{ levelMask: 7, body: enc('{"type":"milestone"}') }])).rejects.toThrow(/WRONGTYPE/);
    // The meta lost (Redis restarted without it): a new epoch, from 1, the old stream dropped.
    await redis.del(historyMetaKey('run-a'));
    const again = await appendHistory(redis, 'run-a', 4, [{ levelMask: 7, body: enc('{"type":"milestone","n":9}') }], 'epochB');
    expect(again).toEqual({ offset: 1, epoch: 'epochB' });
    expect(await redis.xlen(historyKey('run-a'))).toBe(1);
    expect(await readHistory(redis, up, { run: 'run-a', since: 3, epoch: 'epochA', levelBit: 2 }, log)).toMatchObject({ ok: false, gone: true, epoch: 'epochB' });
  });
});
