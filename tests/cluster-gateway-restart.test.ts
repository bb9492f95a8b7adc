/**
 * Two clustered nodes in this process (the real service, in-process harness) on a real Redis: a
 * gateway thread that crashes and is restarted gives its next viewer the whole snapshot again,
 * both the other node's retained messages (replayed by the relay) and this node's own critical
 * ones with their history place (the relay replays its stamped copy; the aggregator's unstamped
 * one is skipped in a cluster).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createProducer, type NetworkProducer } from '../src/sdk/index.js';
import { INGEST_TOKEN, OverlayClient, startHarness, type Harness } from './helpers/service-harness.js';
import { describeWithRedis, RedisServer } from './helpers/redis-server.js';
import { pollUntil } from './helpers/poll.js';

describeWithRedis('cluster: a restarted gateway', () => {
  const redis = new RedisServer();
  let a: Harness;
  let b: Harness;
  let producer: NetworkProducer;
  const clients: OverlayClient[] = [];

  beforeAll(async () => {
    await redis.start();
    const args = (id: string) => ['--fanout-threads', '1', '--redis', redis.url, '--node-id', id];
    a = await startHarness(args('gw-a'));
    b = await startHarness(args('gw-b'));
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await producer?.close(200);
    await a?.close();
    await b?.close();
    await redis.dispose();
  }, 30_000);

  const connect = async (h: Harness) => {
    const c = await OverlayClient.connect(h.service.port, { channels: ['milestones', 'metrics'] });
    clients.push(c);
    return c;
  };
  const restartGateway = async (h: Harness) => {
    const before = h.service.supervisor.incarnation('gateway-0');
    await h.service.supervisor.crash('gateway-0', 'test: crash the gateway');
    await pollUntil('gateway-0 running again', 10_000, () => (h.service.supervisor.incarnation('gateway-0') > before && h.service.supervisor.health().actors['gateway-0'] === 'running' ? true : undefined));
  };

  it('its next viewer gets the other node\'s retained messages and this node\'s stamped milestone', async () => {
    producer = createProducer(`tcp://127.0.0.1:${a.tcpPort}`, { token: INGEST_TOKEN, run: 'gw-run', flushIntervalMs: 5 });
    producer.emitPpoMetrics({ 'ppo/policy_loss': 0.5 }, 10);
    producer.emitMilestone({ name: 'first', message: 'first one', value: 1, step: 10 });
    const onB = await connect(b);
    await onB.waitFor((m) => m.type === 'milestone' && (m as { offset?: number }).offset === 1, 10_000, 'the milestone on B');
    await onB.waitFor((m) => m.type === 'ppo_metrics', 10_000, 'metrics on B');

    await restartGateway(b);
    const againB = await connect(b);
    await againB.waitFor((m) => m.type === 'milestone', 10_000, 'the milestone in B\'s snapshot after the restart');
    await againB.waitFor((m) => m.type === 'ppo_metrics', 10_000, 'metrics in B\'s snapshot after the restart');
    expect(againB.messages.find((m) => m.type === 'milestone')).toMatchObject({ run: 'gw-run', offset: 1 });

    await restartGateway(a);
    const againA = await connect(a);
    const own = await againA.waitFor((m) => m.type === 'milestone', 10_000, 'the milestone in A\'s snapshot after the restart');
    // Exactly one copy, the stamped one.
    expect(own).toMatchObject({ run: 'gw-run', offset: 1 });
    await new Promise((r) => setTimeout(r, 300));
    expect(againA.messages.filter((m) => m.type === 'milestone')).toHaveLength(1);
  });
});
