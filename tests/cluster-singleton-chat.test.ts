/**
 * One chat bot per cluster: two node processes configured for the same Twitch channel share
 * a real redis-server; only the holder of the chat bot lease joins the (loopback) chat, and
 * when it is killed the other node joins within about a lease.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { describeWithRedis, RedisServer } from './helpers/redis-server.js';
import { cleanupMainProcesses, listeningPort, runMain, tempDir, type MainRun } from './helpers/main-process.js';
import { pollUntil } from './helpers/poll.js';
import { TwitchIrcServer } from './helpers/twitch-irc-server.js';

const LEASE_MS = 1500;

describeWithRedis('one chat bot per cluster (real redis-server, node processes)', () => {
  const server = new RedisServer();
  let irc: TwitchIrcServer;
  let redis: Redis;
  beforeAll(async () => {
    await server.start();
    redis = new Redis(server.url, { maxRetriesPerRequest: 1 });
    irc = await TwitchIrcServer.start();
  });
  afterAll(async () => {
    cleanupMainProcesses();
    redis.disconnect();
    await irc.close?.();
    await server.dispose();
  });

  const start = async (name: string): Promise<{ name: string; run: MainRun }> => {
    const run = runMain([
      '--port', '0', '--data-dir', tempDir('ringcast-cluster-chat-'), '--no-demo', '--fanout-threads', '1',
      '--twitch-channel', 'clusterchan', '--twitch-server', `127.0.0.1:${irc.port}`, '--twitch-token', 'cluster-chat-token',
      '--redis', server.url, '--node-id', name, '--cluster-lease-ms', String(LEASE_MS),
    ]);
    await listeningPort(run, 30_000);
    return { name, run };
  };

  it('only the lease holder joins the channel; killing it hands the bot to the other node', async () => {
    const nodes = await Promise.all([start('node-a'), start('node-b')]);
    await pollUntil('a node to join the chat', 15_000, () => (irc.joins.length > 0 ? true : undefined), () => irc.joins, 50);
    await new Promise((r) => setTimeout(r, 2 * LEASE_MS)); // long enough for a second bot to show up if there were one
    expect(new Set(irc.joins.map((j) => j.conn)).size).toBe(1);
    const holder = (await redis.get('ringcast:lease:chat bot'))?.split('|')[0];
    expect(['node-a', 'node-b']).toContain(holder);

    const first = nodes.find((n) => n.name === holder)!;
    first.run.child.kill('SIGKILL');
    const killedAt = Date.now();
    await pollUntil('the other node to join', 15_000, () => (new Set(irc.joins.map((j) => j.conn)).size === 2 ? true : undefined), () => irc.joins, 50);
    // The lease runs out, then the other node's next try (every third of a lease) takes it;
    // the second of slack is for this loaded shared machine.
    expect(Date.now() - killedAt).toBeLessThan(LEASE_MS + LEASE_MS / 3 + 1000 + 1000);
    expect((await redis.get('ringcast:lease:chat bot'))?.split('|')[0]).toBe(nodes.find((n) => n !== first)!.name);
  });
});
