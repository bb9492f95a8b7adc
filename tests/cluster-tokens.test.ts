/**
 * Clustered nodes given no tokens share one set through Redis: the first node's generated tokens
 * (its tokens.json) are every node's, and each node's tokens.json says what is in force. A token
 * set in config wins; a bad value planted in the Redis hash leaves a node on its own tokens with a
 * log line naming the key.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { describeWithRedis, useRedisServer } from './helpers/redis-server.js';
import { cleanupMainProcesses, listeningPort, runMain, tempDir } from './helpers/main-process.js';

describeWithRedis('cluster tokens (real redis-server, node processes)', () => {
  let redis: Redis;
  const server = useRedisServer((client) => { redis = client; });
  afterAll(async () => {
    cleanupMainProcesses();
  });

  const start = async (name: string, extra: string[] = []) => {
    const dataDir = tempDir('ringcast-cluster-tokens-');
    const run = runMain(['--port', '0', '--data-dir', dataDir, '--no-demo', '--no-capture', '--fanout-threads', '1', '--ingest-tcp-port', '-1', '--redis', server.url, '--node-id', name, ...extra]);
    const port = await listeningPort(run, 30_000);
    const file = JSON.parse(readFileSync(path.join(dataDir, 'tokens.json'), 'utf8')) as { adminToken: string; ingestToken: string };
    return { run, port, file };
  };
  const adminStatus = (port: number, token: string) => fetch(`http://127.0.0.1:${port}/api/control`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);

  it('nodes without tokens in config share the first node\'s; one set in config wins on its node', async () => {
    const a = await start('tok-a');
    const b = await start('tok-b');
    expect(b.file).toEqual(a.file);
    expect(await redis.hgetall('ringcast:tokens')).toEqual(a.file);
    expect(await adminStatus(b.port, a.file.adminToken)).toBe(200);
    expect(await adminStatus(b.port, 'not-the-admin-token')).toBe(401);
    const c = await start('tok-c', ['--admin-token', 'admin-token-of-c']);
    expect(await adminStatus(c.port, 'admin-token-of-c')).toBe(200);
    expect(await adminStatus(c.port, a.file.adminToken)).toBe(401);
    expect(c.file.ingestToken).toBe(a.file.ingestToken); // the unset one is still the cluster's
    for (const n of [a, b, c]) n.run.child.kill('SIGTERM');
  }, 90_000);

  it('a bad value in the hash leaves a node on its own tokens, with a log line naming the key', async () => {
    await redis.del('ringcast:tokens');
    await redis.hset('ringcast:tokens', 'adminToken', 'short', 'ingestToken', 'x');
    const d = await start('tok-d');
    expect(d.file.adminToken).not.toBe('short');
    expect(await adminStatus(d.port, d.file.adminToken)).toBe(200);
    expect(d.run.out.join('')).toMatch(/ringcast:tokens field adminToken holds no usable token/);
    d.run.child.kill('SIGTERM');
  }, 60_000);
});
