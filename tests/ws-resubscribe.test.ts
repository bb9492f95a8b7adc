/**
 * Re-subscription on /ws through the real service: a client that re-subscribes in a loop
 * gets one deferred snapshot per fanout.snapshotIntervalMs instead of one per message, the
 * suppressed ones are counted, and a client that keeps flooding is closed with 1008 and a
 * reason, while other clients carry on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ADMIN_TOKEN, OverlayClient, startHarness, type Harness } from './helpers/service-harness.js';
import { actorRestarts, metricSum } from './helpers/metrics-scrape.js';

describe('/ws re-subscribe amplification', () => {
  let h: Harness;
  let port: number;

  beforeAll(async () => {
    h = await startHarness(['--fanout-threads', '1', '--fanout-snapshot-interval-ms', '1000']);
    port = h.service.port;
    // A retained message on the control channel: what every snapshot carries.
    const res = await fetch(`http://127.0.0.1:${port}/api/control`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ action: 'level', level: 'beginner' }),
    });
    expect(res.status).toBe(200);
    const deadline = Date.now() + 5000;
    for (;;) {
      const snap = await (await fetch(`http://127.0.0.1:${port}/api/snapshot`)).json() as { messages: Record<string, unknown> };
      if ('control' in snap.messages) break;
      if (Date.now() > deadline) throw new Error('the control message never reached the gateway');
      await new Promise((r) => setTimeout(r, 20));
    }
  });
  afterAll(async () => { await h?.close(); });

  it('ten quick re-subscriptions get one deferred snapshot, not ten; the rest are counted as coalesced', async () => {
    const coalescedBefore = await metricSum(port, 'ringcast_gateway_snapshots_total', { outcome: 'coalesced' });
    const client = await OverlayClient.connect(port, { channels: ['control'] });
    await client.waitFor((m) => m.type === 'control', 3000, 'the first snapshot');
    for (let i = 0; i < 10; i++) client.ws.send(JSON.stringify({ channels: ['control'], level: i === 9 ? 'advanced' : 'beginner' }));
    await client.waitFor((m) => m.type === 'subscribed' && m.level === 'advanced', 3000, 'the last ack');
    // Every subscription is acknowledged at once; the snapshot comes once the interval is up.
    expect(client.messages.filter((m) => m.type === 'subscribed')).toHaveLength(10);
    await new Promise((r) => setTimeout(r, 1500));
    const snapshots = client.messages.filter((m) => m.type === 'control');
    expect(snapshots).toHaveLength(2);
    // The deferred one follows the last subscription.
    const lastAck = client.messages.findIndex((m) => m.type === 'subscribed' && m.level === 'advanced');
    expect(client.messages.lastIndexOf(snapshots[1])).toBeGreaterThan(lastAck);
    expect(await metricSum(port, 'ringcast_gateway_snapshots_total', { outcome: 'coalesced' }) - coalescedBefore).toBe(9);
    // After a quiet interval a re-subscription is answered with its snapshot at once again.
    client.ws.send(JSON.stringify({ channels: ['control'] }));
    await client.waitFor((m) => m === client.messages.filter((x) => x.type === 'control')[2], 500, 'an immediate snapshot');
    client.close();
  });

  it('a client that keeps flooding is closed with 1008 and a reason; others are not disturbed', async () => {
    const restarts = await actorRestarts(port);
    const bystander = await OverlayClient.connect(port, { channels: ['control'] });
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
    let received = 0;
    ws.on('message', () => { received++; });
    const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
    for (let i = 0; i < 500 && ws.readyState === WebSocket.OPEN; i++) ws.send(JSON.stringify({ channels: ['control'] }));
    const result = await Promise.race([closed, new Promise<null>((r) => setTimeout(() => r(null), 5000))]);
    expect(result).not.toBeNull();
    expect(result!.code).toBe(1008);
    expect(result!.reason).toMatch(/too many messages/);
    // Only the first snapshot was sent, then acks; nowhere near 500 snapshots.
    expect(received).toBeLessThan(80);
    expect(await metricSum(port, 'ringcast_gateway_disconnects_total', { endpoint: 'overlay', reason: 'flood' })).toBe(1);
    // The bystander still gets re-subscription answers, and nothing restarted.
    bystander.ws.send(JSON.stringify({ channels: ['control'], level: 'advanced' }));
    await bystander.waitFor((m) => m.type === 'subscribed', 2000, 'an ack');
    bystander.close();
    expect(await actorRestarts(port)).toBe(restarts);
  });
});
