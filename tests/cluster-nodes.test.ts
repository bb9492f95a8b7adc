/**
 * Three real nodes (`node dist/src/main.js --redis …`, each with its own data dir and port) on one
 * real redis-server: a trainer on node A reaches /ws viewers on B and C with the same message
 * sequence; /api/cluster lists the three and stops listing a SIGKILLed node within the timeout; a
 * viewer reconnecting to another node with `since` gets exactly the milestones it missed; Redis
 * restarted mid-stream → delivery resumes without a node restart (and /readyz said degraded
 * meanwhile); values planted in Redis keys and channels are survived, the keys named in the log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Redis } from 'ioredis';
import { createProducer, type NetworkProducer } from '../src/sdk/index.js';
import { cleanupMainProcesses, listeningPort, runMain, tempDir, type MainRun } from './helpers/main-process.js';
import { describeWithRedis, RedisServer } from './helpers/redis-server.js';
import { pollUntil } from './helpers/poll.js';
import { runPython } from './helpers/python.js';

const TOKEN = 'cluster-test-ingest-token';
const TIMEOUT_MS = 1500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Node { id: string; run: MainRun; port: number }
interface WsMessage { type: string; run?: string; offset?: number; epoch?: string; data?: Record<string, unknown>; [k: string]: unknown }

class Viewer {
  readonly messages: WsMessage[] = [];
  private readonly ws: WebSocket;
  readonly opened: Promise<void>;
  constructor(port: number, subscription: Record<string, unknown>) {
    this.ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    this.ws.on('message', (d) => this.messages.push(JSON.parse(String(d)) as WsMessage));
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => { this.ws.send(JSON.stringify(subscription)); resolve(); });
      this.ws.once('error', reject);
    });
  }
  milestones(): WsMessage[] {
    return this.messages.filter((m) => m.type === 'milestone');
  }
  names(): string[] {
    return this.milestones().map((m) => String(m.data?.name ?? m.data?.id ?? ''));
  }
  close(): void { this.ws.close(); }
}

describeWithRedis('cluster: three nodes on one Redis', () => {
  const redis = new RedisServer();
  const nodes: Record<string, Node> = {};
  const viewers: Viewer[] = [];
  let producer: NetworkProducer | undefined;
  let admin: Redis;

  const start = async (id: string): Promise<Node> => {
    const run = runMain([
      '--no-demo', '--no-capture', '--port', '0', '--data-dir', tempDir('ringcast-cluster-'), '--fanout-threads', '1',
      '--ingest-token', TOKEN, '--redis', redis.url, '--node-id', id,
      '--cluster-heartbeat-ms', '250', '--cluster-node-timeout-ms', String(TIMEOUT_MS),
    ]);
    const port = await listeningPort(run, 30_000);
    return { id, run, port };
  };
  const api = async (node: Node, path: string) => (await fetch(`http://127.0.0.1:${node.port}${path}`)).json() as Promise<Record<string, unknown>>;
  const listed = async (node: Node) => ((await api(node, '/api/cluster')).nodes as Array<{ id: string }>).map((n) => n.id);
  const viewer = (node: Node, sub: Record<string, unknown> = { channels: ['milestones', 'metrics'], max_fps: 60 }) => {
    const v = new Viewer(node.port, sub);
    viewers.push(v);
    return v;
  };
  const milestone = (name: string, step: number) => producer!.emitMilestone({ name, message: `reached ${name}`, value: step, step });

  beforeAll(async () => {
    await redis.start();
    admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    admin.on('error', () => undefined);
    const started = await Promise.all(['node-a', 'node-b', 'node-c'].map(start));
    for (const n of started) nodes[n.id.slice(-1)] = n;
  }, 60_000);

  afterAll(async () => {
    for (const v of viewers) v.close();
    await producer?.close(200);
    admin?.disconnect();
    cleanupMainProcesses();
    await redis.dispose();
  });

  it('lists all three nodes with their figures on every node', async () => {
    for (const n of Object.values(nodes)) {
      await pollUntil(`${n.id} lists three nodes`, 10_000, async () => ((await listed(n)).length === 3 ? true : undefined), () => listed(n));
    }
    const body = await api(nodes.b, '/api/cluster');
    expect(body).toMatchObject({ clustered: true, self: 'node-b', redis: { up: true } });
    const a = (body.nodes as Array<Record<string, unknown>>).find((n) => n.id === 'node-a')!;
    expect(a).toMatchObject({ url: `http://127.0.0.1:${nodes.a.port}`, captureWeight: 1, load: { viewers: 0 } });
  });

  it('a trainer on A reaches viewers on B and C (and A) with the same milestone sequence, stamped with offsets', async () => {
    const onA = viewer(nodes.a);
    const onB = viewer(nodes.b);
    const onC = viewer(nodes.c);
    await Promise.all([onA.opened, onB.opened, onC.opened]);
    // The viewer count reaches the other nodes with the heartbeat.
    await pollUntil('B sees A\'s viewer', 5_000, async () => {
      const a = ((await api(nodes.b, '/api/cluster')).nodes as Array<{ id: string; load: { viewers: number } }>).find((n) => n.id === 'node-a');
      return a && a.load.viewers >= 1 ? true : undefined;
    });
    producer = createProducer(`ws://127.0.0.1:${nodes.a.port}/ingest`, { token: TOKEN, run: 'r1', flushIntervalMs: 5 });
    for (let i = 1; i <= 5; i++) {
      producer.emitPpoMetrics({ 'ppo/policy_loss': 1 / i }, i * 10);
      milestone(`m${i}`, i * 10);
      await new Promise((r) => setTimeout(r, 30));
    }
    for (const v of [onA, onB, onC]) await pollUntil('five milestones', 10_000, () => (v.milestones().length >= 5 ? true : undefined), () => v.messages.map((m) => m.type));
    const seq = (v: Viewer) => v.milestones().map((m) => [m.run, m.offset, m.epoch, JSON.stringify(m.data)]);
    expect(seq(onB)).toEqual(seq(onA));
    expect(seq(onC)).toEqual(seq(onA));
    expect(onB.milestones().map((m) => m.offset)).toEqual([1, 2, 3, 4, 5]);
    expect(onB.milestones().every((m) => m.run === 'r1' && typeof m.epoch === 'string')).toBe(true);
    // Metrics made on A reach B's and C's viewers as well, the same updates in the same order.
    const steps = (v: Viewer) => v.messages.filter((m) => m.type === 'ppo_metrics').map((m) => m.data?.step);
    // On a timeout, say which viewer and what it got: [step, series mode, stamp offset] per message.
    const seen = (v: Viewer) => v.messages.filter((m) => m.type === 'ppo_metrics').map((m) => [m.data?.step, m.data?.series, (m as { offset?: unknown }).offset]);
    for (const [name, v] of [['A', onA], ['B', onB], ['C', onC]] as const) {
      await pollUntil(`metrics up to step 50 on ${name}'s viewer`, 10_000, () => (steps(v).includes(50) ? true : undefined), () => seen(v));
    }
    expect(steps(onB)).toEqual(steps(onA));
    expect(steps(onC)).toEqual(steps(onA));
  });

  it('the Python client producing to A\'s /ingest reaches the viewers on B and C', async () => {
    const script = [
      'import sys',
      'from ringcast_client import StreamingHook',
      'hook = StreamingHook(sys.argv[1], token=sys.argv[2], run="py-run")',
      'hook.emit_milestone("from_python", message="hello from python")',
      'hook.flush(5)',
      'hook.close()',
    ].join('\n');
    const r = await runPython(['-c', script, `ws://127.0.0.1:${nodes.a.port}/ingest`, TOKEN]);
    expect(r.code, r.stderr).toBe(0);
    for (const v of [viewers[1], viewers[2]]) {
      await pollUntil('python milestone', 10_000, () => (v.milestones().some((m) => m.run === 'py-run') ? true : undefined), () => v.names());
      expect(v.milestones().find((m) => m.run === 'py-run')).toMatchObject({ offset: 1, data: { name: 'from_python', message: 'hello from python' } });
    }
  });

  it('a viewer that reconnects to another node with since gets exactly the milestones it missed', async () => {
    const first = viewer(nodes.c, { channels: ['milestones'] });
    await first.opened;
    // Its snapshot holds the latest milestone (offset 5); then one more arrives live.
    milestone('m6', 60);
    await pollUntil('m6 on C', 5_000, () => (first.milestones().some((m) => m.offset === 6) ? true : undefined), () => first.messages);
    const last = first.milestones().at(-1)!;
    first.close();
    milestone('m7', 70);
    milestone('m8', 80);
    // B's own viewers saw both: the reconnecting one was away for exactly these.
    const witness = viewers[1];
    await pollUntil('m8 on B', 5_000, () => (witness.milestones().some((m) => m.offset === 8) ? true : undefined));
    const again = viewer(nodes.b, { channels: ['milestones'], run: 'r1', since: last.offset, epoch: last.epoch });
    await pollUntil('history recovered', 5_000, () => (again.messages.some((m) => m.type === 'history_recovered') ? true : undefined), () => again.messages);
    const recovered = again.messages.filter((m) => m.type === 'milestone' && m.offset !== undefined && m.offset > 6);
    // The snapshot (latest milestone, offset 8) may come first; what `since` adds is 7 and 8, once each, in order.
    expect(again.messages.find((m) => m.type === 'history_recovered')).toMatchObject({ run: 'r1', epoch: last.epoch, offset: 8, count: 2 });
    const afterSnapshot = again.messages.slice(again.messages.findIndex((m) => m.type === 'milestone' && m.offset === 7));
    expect(afterSnapshot.filter((m) => m.type === 'milestone').map((m) => m.offset)).toEqual([7, 8]);
    expect(recovered.map((m) => String((m.data as { name?: string }).name))).toContain('m7');

    // A stale epoch is told the history is gone.
    const stale = viewer(nodes.a, { channels: ['milestones'], run: 'r1', since: 2, epoch: 'not-the-epoch' });
    await pollUntil('history gone', 5_000, () => (stale.messages.some((m) => m.type === 'history_gone') ? true : undefined), () => stale.messages);
    expect(stale.messages.find((m) => m.type === 'history_gone')).toMatchObject({ run: 'r1', epoch: last.epoch, offset: 8 });
    // And a bad since is refused with a message naming the problem.
    const bad = viewer(nodes.a, { channels: ['milestones'], since: -1 });
    await pollUntil('error', 5_000, () => (bad.messages.some((m) => m.type === 'error') ? true : undefined), () => bad.messages);
    expect(JSON.stringify(bad.messages)).toMatch(/since must be a non-negative integer offset/);
  });

  it('a node that joins later gives its first viewer the whole snapshot, from the retained state in Redis', async () => {
    const late = await start('node-d');
    nodes.d = late;
    try {
      const v = viewer(late, { channels: ['milestones', 'metrics'] });
      await pollUntil('snapshot with A\'s runs on D', 10_000, () => (v.milestones().length >= 2 && v.messages.some((m) => m.type === 'ppo_metrics') ? true : undefined), () => v.messages.map((m) => m.type));
      // The latest milestone of r1, with its history place, and r1's metrics, though D never saw them live.
      expect(v.milestones().filter((m) => m.run === 'r1').at(-1)).toMatchObject({ offset: 8 });
      expect(v.milestones().filter((m) => m.run === 'py-run').at(-1)).toMatchObject({ offset: 1 });
      expect(v.messages.find((m) => m.type === 'ppo_metrics')?.data).toMatchObject({ run: 'r1' });
      v.close();
    } finally {
      late.run.child.kill('SIGTERM');
      await late.run.exited;
      delete nodes.d;
    }
  }, 40_000);

  it('Redis restarted mid-stream: /readyz degraded while away, delivery resumes without a node restart', async () => {
    const onB = viewer(nodes.b, { channels: ['milestones'] });
    await onB.opened;
    await redis.stop();
    const ready = await pollUntil('B degraded', 10_000, async () => {
      const r = await fetch(`http://127.0.0.1:${nodes.b.port}/readyz`);
      const body = await r.json() as { degraded?: string[] };
      return body.degraded?.includes('cluster') ? { status: r.status, body } : undefined;
    });
    // Degraded, not unready: a load balancer keeps sending it its local viewers.
    expect(ready.status).toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${nodes.b.port}/metrics`)).text();
    expect(metrics).toMatch(/ringcast_cluster_redis_up\{actor="supervisor"\} 0/);
    await redis.start();
    await pollUntil('B ready again', 10_000, async () => {
      const body = await (await fetch(`http://127.0.0.1:${nodes.b.port}/readyz`)).json() as { degraded?: string[] };
      return body.degraded?.length === 0 ? true : undefined;
    });
    // The relays reconnect with backoff too (within about 2 s); keep producing until B hears it.
    const before = onB.milestones().length;
    const oldEpoch = viewers[1].milestones().find((m) => m.run === 'r1')!.epoch;
    let emitted = 0;
    await pollUntil('a milestone from A on B after the restart', 15_000, () => {
      milestone(`after-restart-${Date.now()}`, 100);
      emitted++;
      return onB.milestones().some((m, i) => i >= before && typeof m.offset === 'number') ? true : undefined;
    }, () => onB.messages, 500);
    // The restarted Redis lost the history: a new epoch, counting again from 1 (the first few may
    // have gone out while B's relay was still reconnecting).
    const after = onB.milestones().filter((m, i) => i >= before && typeof m.offset === 'number').at(-1)!;
    expect(after.run).toBe('r1');
    expect(after.epoch).not.toBe(oldEpoch);
    expect(after.offset).toBeLessThanOrEqual(emitted);
    for (const n of Object.values(nodes)) expect((await api(n, '/healthz')).ok).toBe(true);
  });

  it('Redis paused (SIGSTOP): local viewers still get milestones at once, without an offset; after SIGCONT all goes on', async () => {
    const onA = viewer(nodes.a, { channels: ['milestones'] });
    const onB = viewer(nodes.b, { channels: ['milestones'] });
    await Promise.all([onA.opened, onB.opened]);
    await sleep(300);
    const pid = Number(/process_id:(\d+)/.exec(await admin.info('server'))![1]);
    process.kill(pid, 'SIGSTOP');
    try {
      const sent = Date.now();
      for (let i = 1; i <= 5; i++) milestone(`while-paused-${i}`, 300 + i);
      const all = () => [1, 2, 3, 4, 5].every((i) => onA.names().includes(`while-paused-${i}`));
      await pollUntil('the paused milestones on A', 8_000, () => (all() ? true : undefined), () => onA.names(), 20);
      // Within one history timeout (1 s) plus the box's load, not one timeout each; without a history place.
      expect(Date.now() - sent).toBeLessThan(3_000);
      const local = onA.milestones().filter((m) => String(m.data?.name).startsWith('while-paused'));
      expect(local.map((m) => m.offset)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await pollUntil('a stamped milestone on B after SIGCONT', 10_000, () => {
      milestone(`after-pause-${Date.now()}`, 301);
      return onB.milestones().some((m) => String(m.data?.name).startsWith('after-pause') && typeof m.offset === 'number') ? true : undefined;
    }, () => onB.names(), 500);
  });

  it('survives values planted in Redis keys and on the fan-out channel, naming the keys', async () => {
    await admin.del('ringcast:retained');
    await admin.set('ringcast:retained', 'not a hash');
    await admin.set('ringcast:history:r1:meta', 'not a hash');
    await admin.set('ringcast:node:node-x', '{"id": "node-x", "garbage": true}');
    await admin.zadd('ringcast:nodes', Date.now(), 'node-x');
    await admin.publish('ringcast:fanout', Buffer.from([3, 0x78, 0x78, 0x78, 255, 255, 255, 255]));
    await admin.publish('ringcast:fanout', Buffer.from([1, 0x78, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]));
    const onC = viewer(nodes.c, { channels: ['milestones'] });
    await onC.opened;
    const before = onC.milestones().length;
    await pollUntil('milestones still flow from A to C', 10_000, () => {
      milestone(`after-garbage-${Date.now()}`, 200);
      return onC.milestones().length > before ? true : undefined;
    }, () => onC.messages, 500);
    await pollUntil('logs name the planted keys', 5_000, () => {
      const logA = nodes.a.run.out.join('');
      const logC = nodes.c.run.out.join('');
      return logA.includes('ringcast:history:r1') && logA.includes('ringcast:retained') && logC.includes('ringcast:node:node-x') && /malformed batch|refused a record/.test(logC) ? true : undefined;
    }, () => nodes.c.run.out.join('').slice(-3000), 250);
    expect(await listed(nodes.c)).not.toContain('node-x');
    for (const n of Object.values(nodes)) expect((await api(n, '/healthz')).ok).toBe(true);
    // Put the keys right for the next test.
    await admin.del('ringcast:retained', 'ringcast:history:r1:meta');
  });

  it('a SIGKILLed node leaves /api/cluster on the others within the node timeout; a producer on a survivor still reaches the other', async () => {
    const killedAt = Date.now();
    nodes.c.run.child.kill('SIGKILL');
    await pollUntil('C gone from A and B', 10_000, async () => (!(await listed(nodes.a)).includes('node-c') && !(await listed(nodes.b)).includes('node-c') ? true : undefined), () => listed(nodes.a), 50);
    // The heartbeat key outlives the last beat by at most the timeout; allow the box's load on top.
    expect(Date.now() - killedAt).toBeLessThan(TIMEOUT_MS + 1000);
    expect((await listed(nodes.a)).sort()).toEqual(['node-a', 'node-b']);
    // The survivors carry on: a producer on B reaches a viewer on A.
    const onA = viewer(nodes.a, { channels: ['milestones'] });
    const script = [
      'import sys',
      'from ringcast_client import StreamingHook',
      'hook = StreamingHook(sys.argv[1], token=sys.argv[2], run="after-kill")',
      'hook.emit_milestone("after_kill", message="from B after C died")',
      'hook.flush(5)',
      'hook.close()',
    ].join('\n');
    const r = await runPython(['-c', script, `ws://127.0.0.1:${nodes.b.port}/ingest`, TOKEN]);
    expect(r.code, r.stderr).toBe(0);
    await pollUntil('the milestone made on B after the kill, on A', 10_000, () => (onA.milestones().some((m) => m.run === 'after-kill') ? true : undefined), () => onA.names());
    expect(onA.milestones().find((m) => m.run === 'after-kill')).toMatchObject({ data: { name: 'after_kill', message: 'from B after C died' } });
  });
});

describe('cluster: one node without Redis', () => {
  afterAll(cleanupMainProcesses);
  it('GET /api/cluster answers with this node only', async () => {
    const run = runMain(['--no-demo', '--no-capture', '--port', '0', '--data-dir', tempDir('ringcast-cluster-'), '--fanout-threads', '1', '--node-id', 'solo']);
    const port = await listeningPort(run, 30_000);
    const body = await (await fetch(`http://127.0.0.1:${port}/api/cluster`)).json() as { clustered: boolean; nodes: Array<{ id: string; url: string }> };
    expect(body).toMatchObject({ clustered: false, self: 'solo', nodes: [{ id: 'solo', url: `http://127.0.0.1:${port}` }] });
    // No history without a cluster: a since subscription is told so.
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const got: WsMessage[] = [];
    ws.on('message', (d) => got.push(JSON.parse(String(d)) as WsMessage));
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ channels: ['milestones'], run: 'r', since: 1, epoch: 'e' }));
    await pollUntil('history_gone', 5_000, () => (got.some((m) => m.type === 'history_gone') ? true : undefined), () => got);
    expect(got.find((m) => m.type === 'history_gone')?.reason).toMatch(/needs a cluster/);
    ws.close();
  });
});
