/**
 * The control page acts on the whole cluster: two node processes share a real redis-server and
 * a (loopback) Twitch chat. A prediction started through the node that does not run the chat
 * bot is passed to the one that does (the chat sees the game announced); a level set on one
 * node reaches the overlay viewers of the other, and a node started later announces it too.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { describeWithRedis, RedisServer } from './helpers/redis-server.js';
import { cleanupMainProcesses, listeningPort, runMain, tempDir, type MainRun } from './helpers/main-process.js';
import { pollUntil } from './helpers/poll.js';
import { TwitchIrcServer } from './helpers/twitch-irc-server.js';
import { OverlayClient } from './helpers/service-harness.js';
import { encodeGameStateEvent } from '../src/sdk/encode.js';
import { STANDARD_SFEN } from '../src/shared/shogi/tsshogi.js';

const LEASE_MS = 1500;
const ADMIN = 'cluster-control-admin-token';
const INGEST = 'cluster-control-ingest-token';

interface Node { name: string; run: MainRun; port: number }

describeWithRedis('the control page acts cluster-wide (real redis-server, node processes)', () => {
  const server = new RedisServer();
  let irc: TwitchIrcServer;
  let redis: Redis;
  const clients: OverlayClient[] = [];
  beforeAll(async () => {
    await server.start();
    redis = new Redis(server.url, { maxRetriesPerRequest: 1 });
    irc = await TwitchIrcServer.start();
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    cleanupMainProcesses();
    redis.disconnect();
    await irc.close?.();
    await server.dispose();
  });

  const start = async (name: string, chat: boolean): Promise<Node> => {
    const run = runMain([
      '--port', '0', '--data-dir', tempDir('ringcast-cluster-control-'), '--no-demo', '--fanout-threads', '1', '--ingest-tcp-port', '-1',
      '--admin-token', ADMIN, '--ingest-token', INGEST,
      ...(chat ? ['--twitch-channel', 'controlchan', '--twitch-server', `127.0.0.1:${irc.port}`, '--twitch-token', 'cluster-control-chat-token'] : []),
      '--redis', server.url, '--node-id', name, '--cluster-lease-ms', String(LEASE_MS),
    ]);
    return { name, run, port: await listeningPort(run, 30_000) };
  };
  const control = (node: Node, body: unknown, headers: Record<string, string> = {}) => fetch(`http://127.0.0.1:${node.port}/api/control`, {
    method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body),
  });
  let nodes: Node[];

  it('a prediction started on the node without the chat bot is started by the bot\'s node', async () => {
    nodes = await Promise.all([start('node-a', true), start('node-b', true)]);
    const holderName = await pollUntil('a node to hold the chat bot lease', 15_000, async () => (await redis.get('ringcast:lease:chat bot'))?.split('|')[0], () => undefined, 50);
    await pollUntil('the bot to join the chat', 15_000, () => (irc.joins.length > 0 ? true : undefined), () => irc.joins, 50);
    // Both nodes must see each other before a forward can find the holder's URL.
    await pollUntil('both nodes live', 10_000, async () => {
      const c = await (await fetch(`http://127.0.0.1:${nodes[0].port}/api/cluster`)).json() as { nodes: unknown[] };
      return c.nodes.length === 2 ? true : undefined;
    }, () => undefined, 100);
    const holder = nodes.find((n) => n.name === holderName)!;
    const other = nodes.find((n) => n !== holder)!;

    // The trainer's game position reaches the bot's node (its aggregator owns the run).
    const game = encodeGameStateEvent({ gameId: 'g1', sfen: STANDARD_SFEN, moves: [], moveCount: 0 }, undefined, { copy: true });
    const ingest = await fetch(`http://127.0.0.1:${holder.port}/api/ingest?run=default`, {
      method: 'POST', headers: { authorization: `Bearer ${INGEST}`, 'content-type': 'application/octet-stream' }, body: game,
    });
    expect(ingest.status).toBe(200);

    // Until the position has reached the bot the game refuses to start (409); then it starts.
    const last: { status?: number; body?: unknown } = {};
    const started = await pollUntil('prediction_start through the other node to succeed', 20_000, async () => {
      const res = await control(other, { action: 'prediction_start' });
      last.status = res.status;
      last.body = await res.json();
      return res.status === 200 ? last.body as { ok: boolean; result: { ok: boolean } } : undefined;
    }, () => last, 250);
    expect(started).toMatchObject({ ok: true, result: { ok: true } });
    const announced = await irc.waitFor(() => irc.privmsgs.find((p) => p.text.startsWith('Prediction game!')), 10_000, 'the prediction game announced in chat');
    expect(announced.channel).toBe('#controlchan');

    // The control page on either node shows the bot as its node runs it: in the channel, the game running.
    const status = async (node: Node) => (await (await fetch(`http://127.0.0.1:${node.port}/api/control`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { chat: Record<string, unknown>; obs: unknown };
    for (const node of [other, holder]) {
      const seen = await status(node);
      expect(seen.chat).toMatchObject({ node: holder.name, connected: true, channel: 'controlchan' });
      expect(seen.chat.game).toMatchObject({ state: 'collecting' });
      expect(seen.obs).toBeNull(); // no node runs an OBS director
    }

    // A second start is refused by the bot's game, and the refusal comes back through the other node.
    const again = await control(other, { action: 'prediction_start' });
    expect(again.status).toBe(409);
    expect((await again.json() as { error: string }).error).toMatch(/already/);

    // A request one node already passed on is acted on where it lands, never passed again:
    // the other node has no game to stop, though the bot's node has one.
    const passed = await control(other, { action: 'prediction_stop' }, { 'x-ringcast-forwarded-by': holder.name });
    expect(passed.status).toBe(409);
    expect((await passed.json() as { error: string }).error).toMatch(/no prediction game is running/);
    const stopped = await control(other, { action: 'prediction_stop', cancel: true });
    expect(stopped.status).toBe(200);
    await irc.waitForPrivmsg(/^Prediction game cancelled: stopped by control/, 10_000);

    // No node runs an OBS director: the answer names the lease nobody holds.
    const scene = await control(other, { action: 'scene', preset: 'overview' });
    expect(scene.status).toBe(503);
    expect((await scene.json() as { error: string }).error).toMatch(/lease ringcast:lease:OBS director, and no node holds it/);
  });

  it('a level set on one node reaches the other node\'s viewers, and a node started later announces it', async () => {
    const [a, b] = nodes;
    const viewer = await OverlayClient.connect(b.port, { channels: ['control'], level: 'beginner', max_fps: 30 });
    clients.push(viewer);
    const res = await control(a, { action: 'level', level: 'advanced' });
    expect(res.status).toBe(200);
    const seen = await viewer.waitFor((m) => m.type === 'control' && (m.data as { level?: string } | undefined)?.level === 'advanced', 10_000, 'level advanced on node B');
    expect(seen.data).toMatchObject({ level: 'advanced', paused: false });
    expect((await control(b, { action: 'pause' })).status).toBe(200);
    const state = await pollUntil('node A to show the pause', 10_000, async () => {
      const s = await (await fetch(`http://127.0.0.1:${a.port}/api/control`, { headers: { authorization: `Bearer ${ADMIN}` } })).json() as { level: string; paused: boolean };
      return s.paused ? s : undefined;
    }, () => undefined, 100);
    expect(state.level).toBe('advanced');

    const c = await start('node-c', false);
    const late = await OverlayClient.connect(c.port, { channels: ['control'], level: 'beginner', max_fps: 30 });
    clients.push(late);
    const snapshot = await late.waitFor((m) => m.type === 'control', 10_000, 'the control state on the late node');
    expect(snapshot.data).toMatchObject({ level: 'advanced', paused: true });
  });
});
