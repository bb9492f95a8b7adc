/**
 * End to end, as a user runs it: the real Python client (python3) → ingest (TCP, Unix
 * socket, WebSocket) → aggregator → gateways → an overlay WebSocket client.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INGEST_TOKEN, ADMIN_TOKEN, OverlayClient, startHarness, type Harness } from './helpers/service-harness.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Runs a Python snippet with the client importable; resolves with its stdout. */
function python(code: string, args: string[] = [], timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', code, ...args], { cwd: root, env: { ...process.env, PYTHONPATH: path.join(root, 'clients', 'python') } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`python timed out: ${err}`)); }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`python exited ${code}: ${err}`));
    });
  });
}

const EMIT = `
import sys, json, time
from ringcast_client import StreamingHook
url, token, run, step = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
hook = StreamingHook(url, token=token, run=run)
hook.emit_ppo_metrics({"ppo/policy_loss": 0.25, "ppo/kl_divergence_approx": 0.004, "ppo/clip_fraction": 0.05, "custom/anything": 7.5}, step)
hook.emit_milestone("e2e_" + run, message="hello from " + run)
hook.flush(5)
if token.startswith("wrong"):
    # The refusal arrives asynchronously on the reader side of the client.
    deadline = time.time() + 3
    while hook.stats()["server_errors"] == 0 and time.time() < deadline:
        time.sleep(0.02)
print(json.dumps(hook.stats()))
hook.close()
`;

let h: Harness;
beforeAll(async () => { h = await startHarness(); }, 60_000);
afterAll(async () => { await h?.close(); }, 30_000);

describe('telemetry end to end', () => {
  const transports = () => ({
    tcp: `tcp://127.0.0.1:${h.tcpPort}`,
    unix: `unix://${h.unixPath}`,
    ws: `ws://127.0.0.1:${h.service.port}/ingest`,
  });

  for (const transport of ['tcp', 'unix', 'ws'] as const) {
    it(`python client over ${transport} → ppo_metrics on /ws with the values and step the trainer sent`, async () => {
      const client = await OverlayClient.connect(h.service.port, { channels: ['metrics', 'milestones'], level: 'advanced', max_fps: 30 });
      try {
        const step = 1000 + ['tcp', 'unix', 'ws'].indexOf(transport);
        const run = `e2e-${transport}`;
        const stats = JSON.parse(await python(EMIT, [transports()[transport], INGEST_TOKEN, run, String(step)]));
        expect(stats.server_errors ?? 0).toBe(0);
        const update = await client.waitFor((m) => m.type === 'ppo_metrics' && m.data?.run === run && m.data?.step === step, 5_000, `ppo_metrics for ${run}`).catch(async (e) => {
          const m = (await h.service.supervisor.metrics()).split('\n').filter((l) => /ingest_events|records_in_total|gateway_(clients|messages|deliv)/.test(l) && !l.startsWith('#'));
          throw new Error(`${e.message}\nstats ${JSON.stringify(stats)}\nruns ${JSON.stringify(await h.service.supervisor.call('aggregator', 'runs'))}\n${m.join('\n')}`);
        });
        expect(update.data!.values).toMatchObject({ 'ppo/policy_loss': 0.25, 'ppo/kl_divergence_approx': 0.004, 'ppo/clip_fraction': 0.05, 'custom/anything': 7.5 });
        expect((update.data!.health as { status: string }).status).toBe('healthy');
        expect(typeof update.timestamp).toBe('number');
        const milestone = await client.waitFor((m) => m.type === 'milestone' && JSON.stringify(m.data).includes(`e2e_${run}`), 5_000, 'milestone');
        expect(JSON.stringify(milestone.data)).toContain(`hello from ${run}`);
      } finally {
        client.close();
      }
    }, 30_000);
  }

  it('a client subscribed to other channels does not receive metrics', async () => {
    const onlyGame = await OverlayClient.connect(h.service.port, { channels: ['game'], level: 'beginner', max_fps: 30 });
    const all = await OverlayClient.connect(h.service.port, { channels: ['all'], level: 'beginner', max_fps: 30 });
    try {
      await python(EMIT, [`tcp://127.0.0.1:${h.tcpPort}`, INGEST_TOKEN, 'filter-run', '77']);
      await all.waitFor((m) => m.type === 'ppo_metrics' && m.data?.run === 'filter-run', 5_000);
      expect(onlyGame.messages.filter((m) => m.type === 'ppo_metrics' || m.type === 'milestone')).toEqual([]);
    } finally {
      onlyGame.close();
      all.close();
    }
  }, 30_000);

  it('a wrong token is refused with an error the client counts; nothing reaches overlays', async () => {
    const client = await OverlayClient.connect(h.service.port, { channels: ['metrics'], level: 'beginner', max_fps: 30 });
    try {
      const stats = JSON.parse(await python(EMIT, [`tcp://127.0.0.1:${h.tcpPort}`, 'wrong-token-value', 'intruder', '5']));
      expect(stats.server_errors).toBeGreaterThan(0);
      expect(JSON.stringify(stats.last_server_error)).toMatch(/token/);
      await new Promise((r) => setTimeout(r, 400));
      expect(client.messages.filter((m) => m.data?.run === 'intruder')).toEqual([]);
    } finally {
      client.close();
    }
  }, 30_000);

  it('main-thread routes answer through the gateways: /healthz, /metrics, /api/runs, admin auth', async () => {
    const base = `http://127.0.0.1:${h.service.port}`;
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect((await health.json()).actors).toMatchObject({ aggregator: 'running', ingest: 'running', 'gateway-0': 'running', 'gateway-1': 'running' });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    for (const actor of ['aggregator', 'ingest', 'gateway-0', 'gateway-1']) expect(metrics).toContain(`actor="${actor}"`);
    const runs = await (await fetch(`${base}/api/runs`)).json();
    expect(JSON.stringify(runs)).toContain('e2e-tcp');
    expect((await fetch(`${base}/api/admin/milestone`, { method: 'POST', body: '{"name":"x"}' })).status).toBe(401);
    const fired = await fetch(`${base}/api/admin/milestone`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, body: '{"name":"admin_fired","message":"test"}' });
    expect(fired.status).toBe(202);
  }, 20_000);

  it('a restarted gateway still gives new clients the full snapshot', async () => {
    for (const gateway of ['gateway-0', 'gateway-1']) {
      const before = h.service.supervisor.incarnation(gateway);
      await h.service.supervisor.crash(gateway, 'test: snapshot after restart');
      const deadline = Date.now() + 10_000;
      while (!(h.service.supervisor.incarnation(gateway) === before + 1 && h.service.supervisor.health().ok) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    }
    const client = await OverlayClient.connect(h.service.port, { channels: ['metrics'], level: 'advanced', max_fps: 30 });
    try {
      const update = await client.waitFor((m) => m.type === 'ppo_metrics' && m.data?.run === 'e2e-tcp', 3_000, 'retained ppo_metrics of e2e-tcp');
      expect((update.data!.values as Record<string, number>)['ppo/policy_loss']).toBe(0.25);
    } finally {
      client.close();
    }
  }, 30_000);

  it('restarting the aggregator mid-stream loses no milestone', async () => {
    const client = await OverlayClient.connect(h.service.port, { channels: ['milestones'], level: 'intermediate', max_fps: 60 });
    try {
      const total = 60;
      const script = `
import sys, time
from ringcast_client import StreamingHook
hook = StreamingHook(sys.argv[1], token=sys.argv[2], run="restart")
for i in range(${total}):
    hook.emit_milestone("restart_%d" % i, step=i)
    time.sleep(0.02)
hook.flush(5)
hook.close()
`;
      const sending = python(script, [`tcp://127.0.0.1:${h.tcpPort}`, INGEST_TOKEN]);
      await new Promise((r) => setTimeout(r, 400));
      await h.service.supervisor.crash('aggregator', 'test: crash mid-stream');
      await sending;
      const names = () => new Set(client.messages.filter((m) => m.type === 'milestone').map((m) => JSON.stringify(m.data).match(/restart_(\d+)/)?.[1]).filter(Boolean));
      const deadline = Date.now() + 8_000;
      while (names().size < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(names().size).toBe(total);
      expect(h.service.supervisor.incarnation('aggregator')).toBe(1);
    } finally {
      client.close();
    }
  }, 40_000);

  it('the producer reconnects after the ingest actor restarts and keeps delivering', async () => {
    const client = await OverlayClient.connect(h.service.port, { channels: ['metrics'], level: 'intermediate', max_fps: 60 });
    try {
      const script = `
import sys, time
from ringcast_client import StreamingHook
hook = StreamingHook(sys.argv[1], token=sys.argv[2], run="reconnect")
deadline = time.time() + 6
step = 0
while time.time() < deadline:
    step += 1
    hook.emit_ppo_metrics({"ppo/entropy": 1.0 + step * 0.001}, step)
    time.sleep(0.02)
hook.flush(5)
print(step)
hook.close()
`;
      const sending = python(script, [`tcp://127.0.0.1:${h.tcpPort}`, INGEST_TOKEN]);
      await client.waitFor((m) => m.type === 'ppo_metrics' && m.data?.run === 'reconnect', 5_000);
      await h.service.supervisor.crash('ingest', 'test: producer reconnect');
      const crashedAt = Date.now();
      const lastStep = Number((await sending).trim());
      const after = client.messages.filter((m) => m.type === 'ppo_metrics' && m.data?.run === 'reconnect' && (m.timestamp ?? 0) > crashedAt + 500);
      expect(after.length).toBeGreaterThan(0);
      const finalUpdate = await client.waitFor((m) => m.type === 'ppo_metrics' && m.data?.run === 'reconnect' && m.data?.step === lastStep, 5_000, 'the last step');
      expect(finalUpdate).toBeDefined();
    } finally {
      client.close();
    }
  }, 40_000);

});
