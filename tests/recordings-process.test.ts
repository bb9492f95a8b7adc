/**
 * Recordings across the real process (`node dist/src/main.js`, runMain): a SIGKILLed service
 * keeps what it recorded and cuts a torn tail on the next start; `--replay <dir> --speed N`
 * starts with that recording as the only producer; small size bounds are held and counted,
 * and an unreachable total bound is a /readyz warning, not a failure.
 */
import { sumSeries } from './helpers/metrics-scrape.js';
import { appendFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupMainProcesses, listeningPort, runMain, tempDir } from './helpers/main-process.js';
import { listRecordings, postMetrics, waitRecorded } from './helpers/recordings.js';
import { pollUntil } from './helpers/poll.js';

const TOKEN = 'process-ingest-token';
const ADMIN = 'process-admin-token';
const base = (dataDir: string) => ['--no-demo', '--port', '0', '--data-dir', dataDir, '--fanout-threads', '1', '--ingest-token', TOKEN, '--admin-token', ADMIN, '--log-level', 'info'];
const T0 = Date.UTC(2026, 0, 2);

afterEach(() => cleanupMainProcesses());

const metricValue = sumSeries;

describe('recordings in the real process', () => {
  it('survive SIGKILL: a torn tail is cut on the next start (counted, logged) and everything before it is kept', async () => {
    const dataDir = tempDir();
    const first = runMain(base(dataDir));
    const port = await listeningPort(first);
    await postMetrics(port, TOKEN, 'crash-run', Array.from({ length: 200 }, (_, i) => i), (s) => ({ loss: s / 10 }), (s) => T0 + s * 50);
    await waitRecorded(port, 'crash-run', 200);
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');

    // The write the kill interrupted: half a record at the end of the newest segment.
    const runDir = path.join(dataDir, 'recordings', 'crash-run');
    const newest = readdirSync(runDir).filter((n) => n.endsWith('.seg')).sort().at(-1)!;
    const file = path.join(runDir, newest);
    const whole = statSync(file).size;
    const torn = Buffer.alloc(40);
    torn.writeUInt32LE(500, 0);
    appendFileSync(file, torn);

    const second = runMain(base(dataDir));
    const port2 = await listeningPort(second);
    expect(statSync(file).size).toBe(whole);
    expect(second.out.join('')).toMatch(/cut a torn tail/);
    const metrics = await (await fetch(`http://127.0.0.1:${port2}/metrics`)).text();
    expect(metricValue(metrics, 'ringcast_recording_torn_tails_total')).toBe(1);
    expect(metricValue(metrics, 'ringcast_recording_torn_bytes_total')).toBe(40);
    expect((await listRecordings(port2)).find((r) => r.run === 'crash-run')).toMatchObject({ first_step: 0, last_step: 199, events: 200 });
    const steps = (await (await fetch(`http://127.0.0.1:${port2}/api/recordings/crash-run/events`)).text()).trim().split('\n').map((l) => JSON.parse(l).step);
    expect(steps).toEqual(Array.from({ length: 200 }, (_, i) => i));

    // Recording goes on after the cut, in a new segment.
    await postMetrics(port2, TOKEN, 'crash-run', [200, 201, 202], (s) => ({ loss: s / 10 }), (s) => T0 + s * 50);
    expect(await waitRecorded(port2, 'crash-run', 203)).toMatchObject({ last_step: 202 });
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);

    // --replay: that recording as the only producer (no demo), under its own run name, not recorded again.
    const replayData = tempDir();
    const third = runMain([...base(replayData).filter((a) => a !== '--no-demo'), '--replay', runDir, '--speed', '20']);
    const port3 = await listeningPort(third);
    const ws = new WebSocket(`ws://127.0.0.1:${port3}/ws`);
    const seen = new Set<number>();
    const runs = new Set<string>();
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as { type: string; data?: { run?: string; metrics?: Record<string, { steps?: number[] }> } };
      if (m.type !== 'ppo_metrics') return;
      runs.add(String(m.data?.run));
      for (const s of m.data?.metrics?.loss?.steps ?? []) seen.add(s);
    });
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ channels: ['metrics'], level: 'advanced', max_fps: 30 }));
    try {
      await pollUntil('every recorded step replayed on /ws', 20_000, () => (seen.size === 203 ? true : undefined), () => [seen.size, [...runs]]);
      expect([...runs]).toEqual(['crash-run']);
      const replays = ((await (await fetch(`http://127.0.0.1:${port3}/api/replays`)).json()) as { replays: Array<{ run: string; as_run: string; speed: number; events_sent: number }> }).replays;
      expect(replays).toMatchObject([{ run: 'crash-run', as_run: 'crash-run', speed: 20, events_sent: 203 }]);
      const apiRuns = ((await (await fetch(`http://127.0.0.1:${port3}/api/runs`)).json()) as { runs: Array<{ run: string }> }).runs.map((r) => r.run);
      expect(apiRuns).toEqual(['crash-run']); // no demo run
      expect(await listRecordings(port3)).toEqual([]); // a replay is not recorded again
    } finally {
      ws.terminate();
    }
  }, 90_000);

  it('--replay of a directory that is not a recording exits 2 naming the flag', async () => {
    const r = runMain([...base(tempDir()), '--replay', tempDir()]);
    const exit = await r.exited;
    expect(exit.code).toBe(2);
    expect(r.out.join('')).toMatch(/--replay.*holds no recording segments/);
  }, 30_000);

  it('holds small size bounds with counts; an unreachable total bound is a /readyz warning', async () => {
    const dataDir = tempDir();
    const r = runMain([...base(dataDir), '--recording-segment-bytes', '65536', '--recording-max-bytes-per-run', '131072', '--recording-max-bytes-total', '262144']);
    const port = await listeningPort(r);
    const wide = (s: number) => Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`a_fairly_long_metric_name_${i}`, s + i]));
    await postMetrics(port, TOKEN, 'big', Array.from({ length: 1500 }, (_, i) => i), wide);
    const big = await waitRecorded(port, 'big', 1, 15_000).then(() => pollUntil('step 1499 recorded', 15_000, async () => {
      const x = (await listRecordings(port)).find((y) => y.run === 'big');
      return x?.last_step === 1499 ? x : undefined;
    }));
    expect(big.bytes).toBeLessThanOrEqual(131072);
    expect(big.first_step).toBeGreaterThan(0);
    let metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metricValue(metrics, 'ringcast_recording_segments_deleted_total', { reason: 'run_bytes' })).toBeGreaterThan(0);
    const steps = (await (await fetch(`http://127.0.0.1:${port}/api/recordings/big/events`)).text()).trim().split('\n').map((l) => JSON.parse(l).step);
    expect(steps).toEqual(Array.from({ length: 1500 - big.first_step! }, (_, i) => big.first_step! + i));

    // Five more runs with ~55 KiB each, all in open segments: the total cannot be met.
    for (let i = 0; i < 5; i++) await postMetrics(port, TOKEN, `w${i}`, Array.from({ length: 60 }, (_, s) => s), wide);
    const ready = await pollUntil('a recording warning on /readyz', 10_000, async () => {
      const body = (await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()) as { warnings: string[]; failing: string[] };
      return body.warnings.some((w) => /recording: the total bound/.test(w)) ? body : undefined;
    });
    expect(ready.failing).not.toContain('recording');
    metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metricValue(metrics, 'ringcast_recording_dropped_total', { reason: 'total_bound' })).toBeGreaterThan(0);
    expect(metricValue(metrics, 'ringcast_recording_segments_deleted_total', { reason: 'total_bytes' })).toBeGreaterThan(0);
    expect(metricValue(metrics, 'ringcast_recording_bytes')).toBeLessThanOrEqual(262144);
    r.child.kill('SIGTERM');
    expect((await r.exited).code).toBe(0);
  }, 90_000);
});
