/**
 * The compiled service on a machine without a system ffmpeg: PATH holds no ffmpeg, so the
 * resolver must fall back to the npm one and the demo streams are still captured; and with no
 * usable ffmpeg at all the service still starts, naming what is unavailable and how to fix it.
 * Also /readyz beside /healthz, and /api/metrics as an alias of /metrics.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { cleanupMainProcesses, listeningPort, runMain, tempDir as tempDirIn, type MainRun } from './helpers/main-process.js';

afterEach(cleanupMainProcesses);

const tempDir = () => tempDirIn('ringcast-fresh-');

/** The service with this test's env only: FFMPEG_PATH/FFPROBE_PATH of the outer environment left out. */
function run(args: string[], env: NodeJS.ProcessEnv): MainRun {
  const { FFMPEG_PATH: _f, FFPROBE_PATH: _p, ...base } = process.env;
  return runMain(args, env, base);
}

async function stopCleanly(r: MainRun): Promise<void> {
  r.child.kill('SIGTERM');
  expect(await r.exited).toMatchObject({ code: 0, signal: null });
}

function series(metrics: string, name: string, labels = ''): number | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(name) && (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && l.includes(labels));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function poll<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

describe('service on a machine with no system ffmpeg', () => {
  it('uses the npm ffmpeg (logged, ringcast_ffmpeg_info{source="npm"}) and captures the demo streams', async () => {
    const noBin = tempDir(); // PATH with nothing in it: no system ffmpeg can be found
    const r = run(['--port', '0', '--data-dir', tempDir(), '--demo-streams', '1', '--interval', '1'], { PATH: noBin });
    const port = await listeningPort(r);
    const base = `http://127.0.0.1:${port}`;
    expect(r.out.join('')).toMatch(/"source":"npm"[^\n]*ffmpeg \S+ \(npm\) at \S*node_modules\/@ffmpeg-installer\//);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/ringcast_ffmpeg_info\{[^}]*source="npm"[^}]*\} 1/);
    expect(series(metrics, 'ringcast_ffmpeg_available')).toBe(1);
    // The demo HLS streams are encoded by the npm ffmpeg and decoded by it in the capture actor.
    const ok = await poll('two ok captures of the demo stream', async () => {
      const n = series(await (await fetch(`${base}/api/metrics`)).text(), 'ringcast_capture_captures_total', 'status="ok"');
      return n !== undefined && n >= 2 ? n : undefined;
    }, 45_000);
    expect(ok).toBeGreaterThanOrEqual(2);
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).not.toHaveProperty('details');
    const ready = await poll('ready', async () => {
      const res = await fetch(`${base}/readyz`);
      return res.status === 200 ? (await res.json()) as { ready: boolean; checks: Record<string, { ok: boolean; detail: string }> } : undefined;
    }, 10_000);
    expect(ready).toMatchObject({ ready: true, checks: { actors: { ok: true }, ffmpeg: { ok: true, detail: expect.stringContaining('(npm)') }, rings: { ok: true }, data: { ok: true, detail: expect.stringMatching(/^fresh/) } } });
    await stopCleanly(r);
  }, 90_000);

  it('with no usable ffmpeg at all it still starts: capture and encoder say unavailable and how to fix it; the rest runs', async () => {
    const bin = tempDir();
    const broken = path.join(bin, 'ffmpeg-broken');
    writeFileSync(broken, '#!/bin/sh\necho "cannot execute binary file" >&2\nexit 126\n');
    chmodSync(broken, 0o755);
    const out = path.join(tempDir(), 'out.mp4');
    const r = run(['--port', '0', '--data-dir', tempDir(), '--output', out, '--demo-steps-per-sec', '50'], { PATH: tempDir(), FFMPEG_PATH: broken });
    const port = await listeningPort(r);
    const base = `http://127.0.0.1:${port}`;

    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200); // alive: a missing ffmpeg is not a reason to be restarted
    const h = (await health.json()) as { ok: boolean; actors: Record<string, string>; details: Record<string, string> };
    expect(h.ok).toBe(true);
    expect(h.actors).toMatchObject({ capture: 'running', encoder: 'running', compositor: 'running', 'demo-trainer': 'running', aggregator: 'running' });
    for (const part of ['capture', 'encoder']) {
      expect(h.details[part]).toMatch(new RegExp(`^unavailable: ffmpeg not found \\(FFMPEG_PATH=${broken} does not run: .*exited 126; point FFMPEG_PATH at a working ffmpeg or unset it`));
    }

    const status = (await (await fetch(`${base}/api/status`)).json()) as { capture: { unavailable: string }; unavailable: Record<string, string> };
    expect(status.capture.unavailable).toBe(h.details.capture);
    expect(status.unavailable).toEqual(h.details);

    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(series(metrics, 'ringcast_ffmpeg_available')).toBe(0);
    expect(metrics).not.toMatch(/^ringcast_ffmpeg_info\{/m);
    expect(series(metrics, 'ringcast_capture_available')).toBe(0);
    expect(series(metrics, 'ringcast_encoder_available')).toBe(0);

    // Everything else runs: the demo trainer's data reaches an overlay client over the real /ws.
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const got = new Promise<string>((resolve, reject) => {
      ws.on('message', (m) => { const t = JSON.parse(String(m)) as { type: string }; if (t.type === 'ppo_metrics') resolve(t.type); });
      ws.once('error', reject);
    });
    ws.once('open', () => ws.send(JSON.stringify({ channels: ['metrics'] })));
    expect(await got).toBe('ppo_metrics');
    ws.close();
    // The encoder drains the compositor's frames (counted) instead of letting its ring fill.
    const drained = await poll('frames drained by the unavailable encoder', async () => {
      const n = series(await (await fetch(`${base}/metrics`)).text(), 'ringcast_encoder_frames_total', 'result="dropped_offline"');
      return n !== undefined && n > 0 ? n : undefined;
    }, 10_000);
    expect(drained).toBeGreaterThan(0);

    // Not ready, and the report names the failing check and why.
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(503);
    const report = (await ready.json()) as { ready: boolean; failing: string[]; checks: Record<string, { ok: boolean; detail: string }> };
    expect(report.ready).toBe(false);
    expect(report.failing).toEqual(['ffmpeg']);
    expect(report.checks.ffmpeg.detail).toMatch(/^capture, encoder unavailable: ffmpeg not found/);
    await stopCleanly(r);
  }, 60_000);

  it('takes the frame processor\'s short flags (-h is the host, not help) and serves /api/metrics like /metrics', async () => {
    const r = run(['-h', '127.0.0.1', '-p', '0', '-d', '--data-dir', tempDir(), '--no-demo', '--no-capture'], {});
    const port = await listeningPort(r);
    expect(r.out.join('')).toContain(`ringcast listening on http://127.0.0.1:${port}`);
    expect(r.out.join('')).not.toContain('usage: ringcast'); // -h did not print the help
    const a = await fetch(`http://127.0.0.1:${port}/api/metrics`);
    expect(a.status).toBe(200);
    expect(a.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await a.text();
    expect(text).toMatch(/^# HELP ringcast_actor_up /m);
    expect(text).toMatch(/^ringcast_ffmpeg_info\{/m);
    await stopCleanly(r);
  });
});
