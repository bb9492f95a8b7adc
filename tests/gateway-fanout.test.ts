import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AVAILABLE_CHANNELS, LEVEL_BIT } from '../src/shared/telemetry/channels.js';
import { FanoutFlag, FanoutType } from '../src/shared/telemetry/ring-records.js';
import { message, overlay, sleep, startGateways, TestClient, until, type GatewayCluster } from './fixtures/gateway-harness.js';

let gw: GatewayCluster;
const clients: TestClient[] = [];
const track = <T extends TestClient>(c: T) => { clients.push(c); return c; };

/** Records consumed by every gateway: published records have been handled by all of them. */
async function consumed(n: number): Promise<void> {
  await until(async () => {
    for (let i = 0; i < gw.count; i++) if (((await gw.supervisor.call(`gateway-${i}`, 'stats')) as { recordsConsumed: number }).recordsConsumed < n) return false;
    return true;
  }, 3_000, `${n} records consumed by every gateway`);
}
let published = 0;
function publish(input: Parameters<GatewayCluster['publish']>[0]): void {
  gw.publish(input);
  published++;
}

beforeAll(async () => { gw = await startGateways(); });
afterAll(async () => {
  for (const c of clients) c.close();
  await gw?.stop();
});

describe('gateway /ws fan-out', () => {
  it('a late client gets the handshake, then the retained snapshot (exact bytes), then live updates', async () => {
    const metrics = message('ppo_metrics', { step: 1, kl: 0.01 });
    const game = message('game_state', { sfen: 'lnsgkgsnl/9/9/9/9/9/9/9/LNSGKGSNL b - 1' });
    publish({ channel: 'metrics', key: 'ppo_metrics', body: metrics });
    publish({ channel: 'game', key: 'game_state', body: game });
    publish({ channel: 'chat', key: 'chat_message', body: message('chat_message', { text: 'not retained' }), flags: 0 });
    await consumed(published);

    const c = track(await TestClient.connect(`ws://127.0.0.1:${gw.port}/ws`));
    await sleep(100);
    expect(c.received).toEqual([]); // nothing before a subscription
    c.send({ channels: ['all'], level: 'intermediate', max_fps: 30 });
    const hello = (await c.next()).json;
    expect(hello).toMatchObject({ type: 'connection_established', available_channels: [...AVAILABLE_CHANNELS] });
    expect(typeof hello.client_id).toBe('string');
    expect(Math.abs(hello.server_time - Date.now())).toBeLessThan(5_000);
    const snapshot = [(await c.next()).text, (await c.next()).text];
    expect(snapshot.sort()).toEqual([metrics, game].sort());

    const live = message('ppo_metrics', { step: 2, kl: 0.02 });
    publish({ channel: 'metrics', key: 'ppo_metrics', body: live });
    expect((await c.next()).text).toBe(live);
    await sleep(100);
    expect(c.received.some((r) => r.text?.includes('not retained'))).toBe(false);
  });

  it('no-live state goes to snapshots and conflated tiers only; live-only deltas go to full-rate clients only', async () => {
    const fast = track(await overlay(gw.port, { channels: ['predictions'], max_fps: 30 }));
    const slow = track(await overlay(gw.port, { channels: ['predictions'], max_fps: 1 }));
    await sleep(50);
    const state = message('move_prediction', { full: true, points: [1, 2, 3] });
    const delta = message('move_prediction', { full: false, points: [3] });
    publish({ channel: 'predictions', key: 'move_prediction:r', body: state, flags: FanoutFlag.Retain | FanoutFlag.NoLive });
    publish({ channel: 'predictions', key: 'move_prediction:r', body: delta, flags: FanoutFlag.LiveOnly });
    await consumed(published);
    await until(() => fast.received.some((r) => r.text === delta), 2_000, 'the delta at full rate');
    await until(() => slow.received.some((r) => r.text === state), 3_000, 'the full state at 1 fps');
    await sleep(100);
    expect(fast.received.some((r) => r.text === state)).toBe(false);
    expect(slow.received.some((r) => r.text === delta)).toBe(false);
    const late = track(await overlay(gw.port, { channels: ['predictions'], max_fps: 30 }));
    await until(() => late.received.some((r) => r.text === state), 2_000, 'the full state in the snapshot');
    expect(late.received.some((r) => r.text === delta)).toBe(false);
    // Leave no retained state behind for the tests that follow.
    publish({ type: FanoutType.Reset, channel: 'predictions', key: 'move_prediction:r', body: '' });
    await consumed(published);
  });

  it('delivers only the subscribed channels', async () => {
    const m = track(await overlay(gw.port, { channels: ['metrics'] }));
    const g = track(await overlay(gw.port, { channels: ['game', 'chat'] }));
    await sleep(50);
    const mStart = m.received.length;
    const gStart = g.received.length;
    for (let i = 0; i < 3; i++) {
      publish({ channel: 'metrics', key: 'ppo_metrics', body: message('ppo_metrics', { i }) });
      publish({ channel: 'game', key: 'game_state', body: message('game_state', { i }) });
      publish({ channel: 'attention', key: 'se_attention', body: message('se_attention', { i }) });
    }
    publish({ channel: 'chat', key: 'chat_message', body: message('chat_message', { end: true }), flags: 0 });
    publish({ channel: 'metrics', key: 'end', body: message('ppo_metrics', { end: true }), flags: 0 });
    await m.next((r) => r.json?.data?.end === true, 3_000, 'metrics end marker');
    await g.next((r) => r.json?.data?.end === true, 3_000, 'chat end marker');
    const mTypes = m.received.slice(mStart).map((r) => r.json.type);
    const gTypes = g.received.slice(gStart).map((r) => r.json.type);
    expect(mTypes).toEqual(['ppo_metrics', 'ppo_metrics', 'ppo_metrics', 'ppo_metrics']);
    expect(gTypes).toEqual(['game_state', 'game_state', 'game_state', 'chat_message']);
  });

  it('each level gets its own serialisation', async () => {
    const bodies = { beginner: message('milestone', { text: 'easy words' }), intermediate: message('milestone', { text: 'some detail' }), advanced: message('milestone', { text: 'KL 0.0123' }) };
    const cs = {
      beginner: track(await overlay(gw.port, { channels: ['milestones'], level: 'beginner' })),
      intermediate: track(await overlay(gw.port, { channels: ['milestones'] })),
      advanced: track(await overlay(gw.port, { channels: ['milestones'], level: 'advanced' })),
    };
    for (const level of ['beginner', 'intermediate', 'advanced'] as const) {
      publish({ channel: 'milestones', key: 'milestone', body: bodies[level], levelMask: LEVEL_BIT[level], flags: FanoutFlag.Critical | FanoutFlag.Retain });
    }
    for (const level of ['beginner', 'intermediate', 'advanced'] as const) {
      expect((await cs[level].next((r) => r.json?.type === 'milestone')).text).toBe(bodies[level]);
    }
    await sleep(150);
    for (const level of ['beginner', 'intermediate', 'advanced'] as const) {
      expect(cs[level].received.filter((r) => r.json?.type === 'milestone').map((r) => r.text)).toEqual([bodies[level]]);
    }
    // A late advanced client's snapshot has the advanced bytes.
    const late = track(await overlay(gw.port, { channels: ['milestones'], level: 'advanced' }));
    expect((await late.next()).text).toBe(bodies.advanced);
  });

  it('max_fps 2 gets about 2 messages per second carrying the latest values; a 30 fps client gets every update', async () => {
    const slow = track(await overlay(gw.port, { channels: ['predictions'], max_fps: 2 }));
    const fast = track(await overlay(gw.port, { channels: ['predictions'], max_fps: 30 }));
    const start = Date.now();
    let seq = 0;
    while (Date.now() - start < 2_000) {
      publish({ channel: 'predictions', key: 'move_prediction', body: message('move_prediction', { seq: ++seq }) });
      await sleep(50);
    }
    await fast.next((r) => r.json?.data?.seq === seq, 3_000, 'last update on the fast client');
    await slow.next((r) => r.json?.data?.seq === seq, 1_500, 'latest value on the 2 fps client');
    const slowSeqs = slow.jsonOfType('move_prediction').map((m) => m.data.seq);
    const fastSeqs = fast.jsonOfType('move_prediction').map((m) => m.data.seq);
    expect(fastSeqs).toEqual(Array.from({ length: seq }, (_, i) => i + 1));
    // ~2 s at 2 per second, plus the flush that carries the final value.
    expect(slowSeqs.length).toBeGreaterThanOrEqual(3);
    expect(slowSeqs.length).toBeLessThanOrEqual(7);
    expect([...slowSeqs].sort((a, b) => a - b)).toEqual(slowSeqs); // in order, conflated (gaps), never stale repeats
    expect(new Set(slowSeqs).size).toBe(slowSeqs.length);
  });

  it('malformed subscriptions get an error and the connection stays usable; re-subscribing is acknowledged', async () => {
    const c = track(await TestClient.connect(`ws://127.0.0.1:${gw.port}/ws`));
    const cases: Array<[string, RegExp]> = [
      ['{not json', /invalid JSON/],
      [JSON.stringify({ channels: ['metrics', 'nope'] }), /unknown channel.*"nope"/],
      [JSON.stringify({ channels: 'metrics' }), /channels must be an array/],
      [JSON.stringify({ level: 'expert' }), /level must be one of beginner, intermediate, advanced/],
      [JSON.stringify({ max_fps: -3 }), /max_fps must be a positive number/],
      [JSON.stringify([1, 2]), /must be a JSON object/],
    ];
    for (const [text, pattern] of cases) {
      c.send(text);
      const reply = (await c.next()).json;
      expect(reply.type).toBe('error');
      expect(reply.error).toMatch(pattern);
    }
    c.send({ channels: ['chat'] });
    expect((await c.next()).json.type).toBe('connection_established');
    c.send({ channels: ['game'], level: 'advanced', max_fps: 5 });
    expect((await c.next((r) => r.json?.type === 'subscribed')).json).toMatchObject({ type: 'subscribed', channels: ['game'], level: 'advanced', max_fps: 5 });
    publish({ channel: 'chat', key: 'chat_message', body: message('chat_message', { after: true }), flags: 0 });
    publish({ channel: 'game', key: 'game_state', body: message('game_state', { resub: true }), levelMask: LEVEL_BIT.advanced });
    await c.next((r) => r.json?.data?.resub === true, 3_000, 'game update after re-subscribing');
    expect(c.received.some((r) => r.json?.data?.after)).toBe(false);
    const stats = await Promise.all([0, 1].map((i) => gw.supervisor.call(`gateway-${i}`, 'stats') as Promise<any>));
    expect(stats.reduce((s, x) => s + x.overlay.protocolErrors, 0)).toBeGreaterThanOrEqual(cases.length);
  });

  it('both gateway threads serve connections on the shared port', async () => {
    const many = await Promise.all(Array.from({ length: 12 }, () => overlay(gw.port, { channels: ['chat'] })));
    many.forEach(track);
    const stats = await Promise.all([0, 1].map((i) => gw.supervisor.call(`gateway-${i}`, 'stats') as Promise<any>));
    expect(stats[0].port).toBe(gw.port);
    expect(stats[1].port).toBe(gw.port);
    expect(stats[0].overlay.clients).toBeGreaterThan(0);
    expect(stats[1].overlay.clients).toBeGreaterThan(0);
    const metrics = await gw.supervisor.metrics();
    expect(metrics).toMatch(/ringcast_gateway_clients\{[^}]*endpoint="overlay"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/ringcast_gateway_deliveries_total\{/);
  });

  it('GET /api/snapshot answers the retained messages of a level locally; a bad level is a 400', async () => {
    const bad = await fetch(`http://127.0.0.1:${gw.port}/api/snapshot?level=expert`);
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/level must be one of beginner, intermediate, advanced/);
    const res = await fetch(`http://127.0.0.1:${gw.port}/api/snapshot`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.level).toBe('intermediate');
    expect(body.messages.game_state.type).toBe('game_state');
    expect(body.messages.milestone.data.text).toBe('some detail');
    expect(body.messages.chat_message).toBeUndefined(); // never retained
  });
});
