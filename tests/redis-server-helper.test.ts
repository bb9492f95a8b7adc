/** The test Redis starts, serves ioredis, survives a restart on the same port, and stops. */
import { afterAll, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { describeWithRedis, RedisServer } from './helpers/redis-server.js';

describeWithRedis('test redis-server helper', () => {
  const server = new RedisServer();
  afterAll(() => server.dispose());

  it('serves commands and comes back empty on the same port after a restart', async () => {
    await server.start();
    const client = new Redis(server.url, { maxRetriesPerRequest: 1 });
    try {
      await client.set('k', 'v');
      expect(await client.get('k')).toBe('v');
      const port = server.port;
      await server.restart(100);
      expect(server.port).toBe(port);
      // ioredis reconnects by itself; the data is gone (no persistence asked for).
      expect(await client.get('k')).toBeNull();
    } finally {
      client.disconnect();
    }
  });
});
