/**
 * The service as an operator runs it: the compiled entry point in its own process,
 * probed over HTTP and stopped with signals.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupMainProcesses, listeningPort, runMain, tempDir as tempDirIn, trackChild } from './helpers/main-process.js';
import { repoRoot as root } from './helpers/python.js';

afterEach(cleanupMainProcesses);

const tempDir = () => tempDirIn('ringcast-svc-');
const run = (args: string[], env: NodeJS.ProcessEnv = {}) => runMain(args, env);

describe('service: npm start contract', () => {
  it('serves /healthz 200 with every actor up, and /metrics labelled by actor', async () => {
    const r = run(['--port', '0', '--data-dir', tempDir()]);
    const port = await listeningPort(r);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ ok: true, actors: { 'demo-trainer': 'running', aggregator: 'running', ingest: 'running', 'gateway-0': 'running' } });
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const actor of ['supervisor', 'demo-trainer', 'aggregator', 'ingest', 'gateway-0']) expect(metrics).toContain(`actor="${actor}"`);
    expect(metrics).toMatch(/nodejs_eventloop_lag_seconds\{actor="aggregator"\}/);
    expect(metrics).toMatch(/ringcast_ring_records_in_total\{[^}]*ring="ingest.demo"/);
    r.child.kill('SIGTERM');
    await r.exited;
  });

  it('SIGTERM drains, flushes state and exits 0 within 10 s; the next run sees the flushed state', async () => {
    const dataDir = tempDir();
    const first = run(['--port', '0', '--data-dir', dataDir, '--demo-steps-per-sec', '200', '--demo-moves-per-sec', '50']);
    const port = await listeningPort(first);
    await new Promise((res) => setTimeout(res, 1_000));
    const sent = Date.now();
    first.child.kill('SIGTERM');
    const { code, at } = await first.exited;
    expect(code).toBe(0);
    expect(at - sent).toBeLessThan(10_000);
    const log = first.out.join('');
    expect(log).toContain('stopped cleanly');
    const db = new Database(path.join(dataDir, 'ringcast.db'), { readonly: true });
    const row = db.prepare("select value from state where ns = 'telemetry' and key = 'runs'").get() as { value: string };
    db.close();
    const stored = JSON.parse(row.value) as { runs: Array<{ run: string; events: number; step: number }> };
    const demo = stored.runs.find((r) => r.run === 'demo');
    expect(demo?.events).toBeGreaterThan(50);
    expect(port).toBeGreaterThan(0);

    const second = run(['--port', '0', '--data-dir', dataDir]);
    const port2 = await listeningPort(second);
    const runs = await (await fetch(`http://127.0.0.1:${port2}/api/runs`)).json() as { previous: Array<{ run: string; events: number }> };
    expect(runs.previous.find((r) => r.run === 'demo')?.events).toBe(demo!.events);
    second.child.kill('SIGINT');
    expect((await second.exited).code).toBe(0);
  });

  it('npm start forwards SIGTERM to the service and exits 0 (the start script execs node; prestart build skipped: dist is built)', async () => {
    const child = spawn('npm', ['start', '--ignore-scripts', '--', '--port', '0', '--ingest-tcp-port', '0', '--data-dir', tempDir()], { cwd: root, env: { ...process.env, NOTIFY_SOCKET: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    trackChild(child);
    const out: string[] = [];
    child.stdout!.on('data', (d) => out.push(String(d)));
    child.stderr!.on('data', (d) => out.push(String(d)));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    await listeningPort({ child, out, exited: exited.then((e) => ({ ...e, at: Date.now() })) }, 60_000);
    child.kill('SIGTERM');
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(out.join('')).toContain('stopped cleanly');
  });

  it('SIGTERM the instant the listening line appears still stops gracefully with exit 0', async () => {
    for (let i = 0; i < 3; i++) {
      const r = run(['--port', '0', '--data-dir', tempDir()]);
      await listeningPort(r);
      r.child.kill('SIGTERM');
      const { code, signal } = await r.exited;
      expect({ code, signal }).toEqual({ code: 0, signal: null });
      expect(r.out.join('')).toContain('stopped cleanly');
    }
  });

  it('--port nope exits non-zero with a message naming port', async () => {
    const r = run(['--port', 'nope']);
    const { code } = await r.exited;
    expect(code).not.toBe(0);
    expect(r.out.join('')).toMatch(/port = "nope".*expected an integer 0–65535/);
  });

  it('--help lists every flag with its env variable and default, and exits 0 without starting; --version prints the version', async () => {
    const help = run(['--help', '--port', 'nope']); // --help wins over a bad flag: it starts nothing
    const helpClosed = new Promise((r) => help.child.once('close', r)); // all of stdout read, not just exited
    expect((await help.exited).code).toBe(0);
    await helpClosed;
    const text = help.out.join('');
    expect(text).toMatch(/^usage: ringcast \[flags\]/);
    expect(text).toMatch(/--port\n\s+port · env RINGCAST_PORT · default 8080 · an integer 0–65535/);
    expect(text).toMatch(/--twitch-gql-url\n\s+capture\.twitchGqlUrl · env RINGCAST_\w+/);
    expect(text).not.toMatch(/listening/);
    const version = run(['--version']);
    expect((await version.exited).code).toBe(0);
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
    expect(version.out.join('').trim()).toBe(`ringcast ${pkg.version}`);
  });

  it('RINGCAST_PORT out of range is refused, naming the key and the source', async () => {
    const r = run([], { RINGCAST_PORT: '70000' });
    const { code } = await r.exited;
    expect(code).toBe(2);
    expect(r.out.join('')).toMatch(/port = .*70000.*RINGCAST_PORT/);
  });

  it('a missing --streams-file is a config error: exit 2 with a message naming the file and the flag, and nothing starts', async () => {
    const missing = path.join(tempDir(), 'no-such-streams.txt');
    const r = run(['--port', '0', '--data-dir', tempDir(), '--streams-file', missing]);
    const { code } = await r.exited;
    expect(code).toBe(2);
    const out = r.out.join('');
    expect(out).toContain(`ringcast: invalid config: capture.streamsFile (--streams-file / RINGCAST_STREAMS_FILE): ${JSON.stringify(missing)} does not exist`);
    expect(out).not.toMatch(/ENOENT|listening/);
  });

  it('escalates and exits 1 with a fatal line when the demo trainer keeps crashing', async () => {
    const r = run(['--port', '0', '--data-dir', tempDir(), '--demo-crash-every-ms', '30', '--restart-intensity', '2', '--restart-period-ms', '60000']);
    const { code } = await r.exited;
    expect(code).toBe(1);
    const log = r.out.join('');
    expect(log).toMatch(/"level":60[^\n]*restart intensity exceeded/);
  });
});
