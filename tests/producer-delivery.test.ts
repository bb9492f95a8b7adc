/**
 * Producers against the real service: what a gateway crash does to events in flight over
 * WebSocket, and how long a critical event takes, for the Python client and the Node SDK.
 *
 *   - Delivery: a producer streams one metrics step every ~2 ms over ws://…/ingest; mid-stream
 *     both gateway threads are crashed. Afterwards every step is either in the aggregator's
 *     series (read back by a fresh /ws client's snapshot; seriesPoints holds the whole run)
 *     or counted in the producer's stats.
 *   - Critical events: with the batching interval set to 2 s, a milestone still reaches a /ws
 *     client in well under a second.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createProducer } from '../src/sdk/index.js';
import { until } from './helpers/supervisor-harness.js';
import { INGEST_TOKEN, OverlayClient, startHarness, type Harness } from './helpers/service-harness.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const STEPS = 1500;

let h: Harness;
// Six gateway crashes per test: above the default restart intensity, which is not under test here.
beforeAll(async () => { h = await startHarness(['--series-points', '10000', '--restart-intensity', '100']); }, 60_000);
afterAll(async () => { await h?.close(); }, 30_000);

const ingestUrl = () => `ws://127.0.0.1:${h.service.port}/ingest`;

/** A Python script in its own process; resolves each stdout line in turn. */
function python(code: string, args: string[]): { child: ChildProcessWithoutNullStreams; line: () => Promise<string>; stderr: () => string } {
  const child = spawn('python3', ['-c', code, ...args], { cwd: root, env: { ...process.env, PYTHONPATH: path.join(root, 'clients', 'python') } });
  let err = '';
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const lines: string[] = [];
  const waiting: Array<(l: string) => void> = [];
  createInterface({ input: child.stdout }).on('line', (l) => { const w = waiting.shift(); if (w) w(l); else lines.push(l); });
  const line = () => new Promise<string>((resolve, reject) => {
    const l = lines.shift();
    if (l !== undefined) { resolve(l); return; }
    const timer = setTimeout(() => reject(new Error(`python: no output line in 30 s; stderr: ${err}`)), 30_000);
    waiting.push((x) => { clearTimeout(timer); resolve(x); });
  });
  return { child, line, stderr: () => err };
}

async function crashGateways(): Promise<void> {
  const before = ['gateway-0', 'gateway-1'].map((g) => h.service.supervisor.incarnation(g));
  await Promise.all(['gateway-0', 'gateway-1'].map((g) => h.service.supervisor.crash(g, 'test: gateway dies with producer events in flight')));
  await until(() => ['gateway-0', 'gateway-1'].every((g, i) => h.service.supervisor.incarnation(g) > before[i]) && h.service.supervisor.health().ok, 15_000, 'gateways restarted');
}

/** Every step of `run` the aggregator holds, from the ppo_metrics snapshot a new /ws client gets. */
async function stepsReceived(run: string): Promise<Set<number>> {
  // Let the aggregator take in the last step (a window or two), if it ever arrives.
  const deadline = Date.now() + 3_000;
  while (Date.now() < deadline) {
    const runs = (await h.service.supervisor.call('aggregator', 'runs')) as Array<{ run: string; step: number }>;
    if (runs.find((r) => r.run === run)?.step === STEPS) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 300));
  const client = await OverlayClient.connect(h.service.port, { channels: ['metrics'], level: 'advanced', max_fps: 30 });
  try {
    const snap = await client.waitFor((m) => m.type === 'ppo_metrics' && m.data?.run === run && (m.data as { series?: string }).series === 'full', 5_000, `${run} snapshot`);
    return new Set((snap.data!.metrics as Record<string, { steps: number[] }>).loss.steps);
  } finally {
    client.close();
  }
}

const missing = (seen: Set<number>) => Array.from({ length: STEPS }, (_, i) => i + 1).filter((s) => !seen.has(s));

// Three crashes, each while the producer writes a burst of small frames as fast as it can,
// so the dying gateway always has some in flight; the stream waits for each restart.
const CRASH_AT = [STEPS / 4, STEPS / 2, (3 * STEPS) / 4];
const BURST = 100;

const STREAM = String.raw`
import json, sys, time
from ringcast_client import StreamingHook
url, token, run, n, burst = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
crash_at = set(json.loads(sys.argv[6]))
hook = StreamingHook(url, token=token, run=run, flush_interval=0.005, batch_max_events=4,
                     backoff_initial=0.05, backoff_max=0.5, breaker_cooldown=0.2)
step = 0
while step < n:
    step += 1
    hook.emit_ppo_metrics({"loss": step}, step)
    if step in crash_at:
        connects = hook.stats()["connects"]
        print("crash", flush=True)
        for _ in range(burst):
            step += 1
            hook.emit_ppo_metrics({"loss": step}, step)
        sys.stdin.readline()  # the gateways have restarted
        deadline = time.time() + 15
        while hook.stats()["connects"] == connects and time.time() < deadline:  # back on a live connection
            time.sleep(0.01)
    time.sleep(0.002)
hook.flush(20)
hook.close(timeout=5)
print(json.dumps(hook.stats()), flush=True)
`;

describe('a gateway crash with producer events in flight over WebSocket', () => {
  it('python client: every step is delivered or counted in stats()', async () => {
    const run = 'delivery-py';
    const py = python(STREAM, [ingestUrl(), INGEST_TOKEN, run, String(STEPS), String(BURST), JSON.stringify(CRASH_AT)]);
    for (let i = 0; i < CRASH_AT.length; i++) {
      expect(await py.line()).toBe('crash');
      await crashGateways();
      py.child.stdin.write('go\n');
    }
    const stats = JSON.parse(await py.line()) as { lost: number; dropped: Record<string, number>; invalid: Record<string, number>; connects: number; resent: number };
    const counted = stats.lost + Object.values(stats.dropped).reduce((a, b) => a + b, 0) + Object.values(stats.invalid).reduce((a, b) => a + b, 0);
    expect(stats.connects).toBeGreaterThanOrEqual(CRASH_AT.length + 1); // each crash cut its connection
    const lostSteps = missing(await stepsReceived(run));
    expect(lostSteps.length, `missing steps ${lostSteps.join(',')}; stats ${JSON.stringify(stats)}`).toBeLessThanOrEqual(counted);
    // With per-frame acks nothing needs counting: what the dead gateway swallowed was resent.
    expect(lostSteps).toEqual([]);
  }, 60_000);

  it('node SDK: every step is delivered or counted in stats()', async () => {
    const run = 'delivery-node';
    const p = createProducer(ingestUrl(), { token: INGEST_TOKEN, run, flushIntervalMs: 5, batchMaxEvents: 4, reconnect: { initialMs: 50, maxMs: 500 }, breaker: { openMs: 200 } });
    let step = 0;
    while (step < STEPS) {
      p.emitPpoMetrics({ loss: ++step }, step);
      if (CRASH_AT.includes(step)) {
        const connections = p.stats().connections;
        const crashed = crashGateways();
        for (let i = 0; i < BURST; i++) {
          p.emitPpoMetrics({ loss: ++step }, step);
          await new Promise((r) => setImmediate(r)); // let the socket write between events
        }
        await crashed;
        await until(() => p.stats().connections > connections, 15_000, 'reconnected').catch((e: Error) => { throw new Error(`${e.message}: ${JSON.stringify(p.stats())} ${JSON.stringify(h.service.supervisor.health())}`); });
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    await p.close(20_000);
    const stats = p.stats();
    const counted = Object.values(stats.dropped).reduce((a, b) => a + b, 0);
    expect(stats.connections).toBeGreaterThanOrEqual(CRASH_AT.length + 1);
    const lostSteps = missing(await stepsReceived(run));
    expect(lostSteps.length, `missing steps ${lostSteps.join(',')}; stats ${JSON.stringify(stats)}`).toBeLessThanOrEqual(counted);
    expect(lostSteps).toEqual([]);
  }, 60_000);
});

/** Resolves with the wall time a milestone named `name` arrives on /ws. */
async function milestoneWatcher(name: string): Promise<{ arrived: Promise<number>; close: () => void }> {
  const ws = new WebSocket(`ws://127.0.0.1:${h.service.port}/ws`);
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  const arrived = new Promise<number>((resolve) => {
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as { type: string; data?: { name?: string } };
      if (m.type === 'milestone' && m.data?.name === name) resolve(Date.now());
    });
  });
  ws.send(JSON.stringify({ channels: ['milestones'], level: 'advanced' }));
  await new Promise((r) => setTimeout(r, 200)); // subscribed (the snapshot has no such milestone yet)
  return { arrived, close: () => ws.terminate() };
}

const MILESTONE = String.raw`
import json, sys, time
from ringcast_client import StreamingHook
url, token, name = sys.argv[1], sys.argv[2], sys.argv[3]
hook = StreamingHook(url, token=token, run="critical-py", flush_interval=2.0)
deadline = time.time() + 10
while hook.stats()["acks"] < 1 and time.time() < deadline:
    time.sleep(0.01)
print("ready", flush=True)
sys.stdin.readline()
emitted = time.time() * 1000
hook.emit_milestone(name, message="critical", step=1)
print(emitted, flush=True)
sys.stdin.readline()
hook.close(timeout=1)
`;

describe('critical events do not wait for the batching interval (set to 2 s)', () => {
  it('python client: a milestone reaches /ws in under a second', async () => {
    const watcher = await milestoneWatcher('py_critical');
    const py = python(MILESTONE, [ingestUrl(), INGEST_TOKEN, 'py_critical']);
    try {
      expect(await py.line()).toBe('ready');
      py.child.stdin.write('go\n');
      const emitted = Number(await py.line());
      const latency = (await Promise.race([watcher.arrived, new Promise<number>((r) => setTimeout(() => r(Infinity), 5_000))])) - emitted;
      expect(latency).toBeLessThan(1000);
    } finally {
      py.child.stdin.end('\n');
      watcher.close();
    }
  }, 30_000);

  it('node SDK: a milestone and a game result reach /ws in under a second', async () => {
    const watcher = await milestoneWatcher('node_critical');
    const p = createProducer(ingestUrl(), { token: INGEST_TOKEN, run: 'critical-node', flushIntervalMs: 2_000 });
    try {
      await until(() => p.stats().connections >= 1, 5_000, 'connected');
      const emitted = Date.now();
      p.emitMilestone({ name: 'node_critical', step: 1 });
      const latency = (await Promise.race([watcher.arrived, new Promise<number>((r) => setTimeout(() => r(Infinity), 5_000))])) - emitted;
      expect(latency).toBeLessThan(1000);
      // A finished game is critical too: it shows as game_state with its result, at once.
      const game = await OverlayClient.connect(h.service.port, { channels: ['game'], level: 'advanced' });
      try {
        const sent = Date.now();
        p.emitGameState({ gameId: 'g-critical', moves: ['7g7f'], result: 'sente_win' });
        await game.waitFor((m) => m.type === 'game_state' && m.data?.game_id === 'g-critical' && m.data?.result === 'sente_win', 5_000, 'the game result');
        expect(Date.now() - sent).toBeLessThan(1000);
      } finally {
        game.close();
      }
    } finally {
      watcher.close();
      await p.close(1_000);
    }
  }, 30_000);
});
