/**
 * Capture across node processes sharing a real redis-server: the stream registry is one for
 * the cluster (a stream added through node C's REST is listed by node A), 90 streams from the
 * loopback Twitch fake are split over three capture nodes with each stream captured by one
 * node once per interval, any node's REST answers a stream's results, and when a node is
 * killed its streams are captured elsewhere within two intervals of it being gone.
 */
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { encodeSegments, startLiveHls, type LiveHlsServer } from '../bench/lib/live-hls.js';
import { describeWithRedis, RedisServer } from './helpers/redis-server.js';
import { cleanupMainProcesses, listeningPort, runMain, tempDir, type MainRun } from './helpers/main-process.js';
import { pollUntil } from './helpers/poll.js';

const CACHE = path.join(tmpdir(), 'ringcast-live-hls-cache');
const ADMIN = 'cluster-capture-admin-token';
const INTERVAL_S = 3;
const NODE_TIMEOUT_MS = 1500;
const STREAMS = Array.from({ length: 90 }, (_, i) => `chan_${String(i).padStart(2, '0')}`);

interface Node { name: string; run: MainRun; port: number }
interface Result { stream: string; status: string; at: number }

describeWithRedis('capture across node processes (real redis-server)', () => {
  const server = new RedisServer();
  let redis: Redis;
  let hls: LiveHlsServer;
  const nodes: Node[] = [];

  async function startNode(name: string): Promise<Node> {
    const run = runMain([
      '--port', '0', '--data-dir', tempDir('ringcast-cluster-capture-'), '--no-demo', '--fanout-threads', '1', '--capture',
      '--interval', String(INTERVAL_S), '--capture-width', '160', '--capture-height', '90', '--decoders', '1', '--analysis-threads', '1',
      '--twitch-gql-url', hls.gqlUrl, '--twitch-usher-url', hls.usherUrl, '--admin-token', ADMIN,
      '--redis', server.url, '--node-id', name, '--cluster-heartbeat-ms', '300', '--cluster-node-timeout-ms', String(NODE_TIMEOUT_MS),
    ]);
    return { name, run, port: await listeningPort(run, 40_000) };
  }

  const api = (n: Node, p: string, init?: RequestInit) => fetch(`http://127.0.0.1:${n.port}${p}`, init);
  /** Captures of a stream stored in Redis, oldest first. */
  const history = async (stream: string): Promise<Result[]> => (await redis.lrange(`ringcast:capture:history:${stream}`, 0, -1)).map((s) => JSON.parse(s) as Result).reverse();
  /** The node whose capture actor schedules the stream (only its owner has a schedule). */
  async function capturers(stream: string, among: Node[]): Promise<string[]> {
    const out: string[] = [];
    for (const n of among) {
      const d = await (await api(n, `/api/streams/${stream}`)).json() as { schedule: unknown };
      if (d.schedule) out.push(n.name);
    }
    return out;
  }

  beforeAll(async () => {
    await server.start();
    redis = new Redis(server.url, { maxRetriesPerRequest: 1 });
    mkdirSync(CACHE, { recursive: true });
    const segments = await encodeSegments({ dir: CACHE, width: 320, height: 180, fps: 30, segmentSeconds: 1, segments: 2, source: 'black', noise: 4 });
    hls = await startLiveHls({ segmentSeconds: 1 });
    for (const s of STREAMS) hls.addChannel(s, { variants: { '480p': segments } });
    nodes.push(...await Promise.all(['node-a', 'node-b', 'node-c'].map((n) => startNode(n))));
  }, 120_000);

  afterAll(async () => {
    cleanupMainProcesses();
    await hls?.close();
    redis?.disconnect();
    await server.dispose();
  });

  it('splits 90 streams over three nodes, each captured by one node once per interval; a killed node\'s streams move within two intervals', async () => {
    const [a, b, c] = nodes;
    await pollUntil('three live members', 15_000, async () => {
      const list = await (await api(a, '/api/cluster')).json() as { nodes: Array<{ id: string }> };
      return list.nodes.length === 3 ? true : undefined;
    });

    // Registered through C, listed by A.
    const added = await api(c, '/api/streams/bulk', { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ streams: STREAMS }) });
    expect(added.status, await added.clone().text()).toBeLessThan(300);
    await pollUntil('A to list every stream added through C', 5000, async () => {
      const r = await (await api(a, '/api/streams')).json() as { count: number };
      return r.count === 90 ? true : undefined;
    }, async () => (await (await api(a, '/api/streams')).json() as { count: number }).count, 50);

    // Every stream gets captured; settle for two more intervals, then look at a window of three.
    await pollUntil('every stream captured', 60_000, async () => {
      const lens = await Promise.all(STREAMS.map((s) => redis.llen(`ringcast:capture:history:${s}`)));
      return lens.every((n) => n > 0) ? true : undefined;
    }, async () => (await Promise.all(STREAMS.map((s) => redis.llen(`ringcast:capture:history:${s}`)))).filter((n) => n === 0).length, 500);
    await new Promise((r) => setTimeout(r, 2 * INTERVAL_S * 1000));
    const from = Date.now();
    await new Promise((r) => setTimeout(r, 3 * INTERVAL_S * 1000));
    const to = Date.now();
    const owners = new Map<string, string[]>();
    for (const s of STREAMS) owners.set(s, await capturers(s, nodes));
    const byNode = new Map<string, string[]>();
    for (const [s, o] of owners) {
      expect(o, `capturers of ${s}`).toHaveLength(1);
      byNode.set(o[0], [...(byNode.get(o[0]) ?? []), s]);
    }
    expect([...byNode.keys()].sort()).toEqual(['node-a', 'node-b', 'node-c']);
    for (const share of byNode.values()) expect(share.length).toBeGreaterThan(10); // rendezvous over three equal weights
    let twice = 0;
    for (const s of STREAMS) {
      const inWindow = (await history(s)).filter((r) => r.at >= from && r.at < to);
      // Once per interval: about three captures in three intervals, never two close together.
      expect(inWindow.length, `${s} captures in 3 intervals`).toBeGreaterThanOrEqual(2);
      expect(inWindow.length, `${s} captures in 3 intervals`).toBeLessThanOrEqual(4);
      for (let i = 1; i < inWindow.length; i++) if (inWindow[i].at - inWindow[i - 1].at < INTERVAL_S * 1000 / 2) twice++;
    }
    expect(twice).toBe(0);

    // Any node answers any stream's results, captured by whichever node.
    const someOfC = byNode.get('node-c')![0];
    const seenByA = await (await api(a, `/api/streams/${someOfC}`)).json() as { latest: Result | null; history: Result[] };
    expect(seenByA.latest?.stream).toBe(someOfC);
    expect(seenByA.history.length).toBeGreaterThan(0);

    // Kill B: its streams are captured by A and C within two intervals of B being gone.
    const orphaned = byNode.get('node-b')!;
    b.run.child.kill('SIGKILL');
    const killedAt = Date.now();
    const movedBy = await pollUntil('B\'s streams captured elsewhere', 30_000, async () => {
      const latest = await Promise.all(orphaned.map(async (s) => (await history(s)).at(-1)?.at ?? 0));
      return latest.every((at) => at > killedAt) ? Date.now() : undefined;
    }, undefined, 250);
    // Gone after the node timeout; then the first capture lands within the first interval.
    // The extra 2 s are for this loaded shared machine, not the behaviour.
    expect(movedBy - killedAt).toBeLessThanOrEqual(NODE_TIMEOUT_MS + 2 * INTERVAL_S * 1000 + 2000);
    for (const s of orphaned.slice(0, 10)) expect((await capturers(s, [a, c]))).toHaveLength(1);
  }, 180_000);
});
