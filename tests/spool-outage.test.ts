/**
 * The Python client's offline spool through a real outage: `node dist/src/main.js` is stopped
 * for 10 s while a trainer keeps emitting, then started again on the same ports and data dir.
 * Afterwards every step reached the service exactly once (the two processes' event counts add
 * up to the steps emitted, none filed twice), the restarted one holds them in step order, and
 * viewers watching it saw `catching_up` while the spool drained and a live step that never went
 * back.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { reservePort } from '../src/shared/reserve-port.js';
import { cleanupMainProcesses, listeningPort, runMain, tempDir, trackChild } from './helpers/main-process.js';
import { pythonClientDir, repoRoot } from './helpers/python.js';
import { OverlayClient, type WsMessage } from './helpers/service-harness.js';

const TOKEN = 'spool-outage-token';
const RUN = 'spool-e2e';
const STEPS = 560; // 25 steps/s: ~3 s before the outage, 10 s of it, the rest after
const SPOOL_RATE = 40; // events/s from the spool: the drain takes seconds, long enough to watch

const TRAINER = String.raw`
import json, sys, time
from ringcast_client import StreamingHook
url, token, run, spool, n, rate = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), float(sys.argv[6])
hook = StreamingHook(url, token=token, run=run, spool_dir=spool, spool_rate=rate, flush_interval=0.01,
                     backoff_initial=0.05, backoff_max=0.5, breaker_cooldown=0.2, healthy_after=0.2)
start = time.monotonic()
for step in range(1, n + 1):
    hook.emit_ppo_metrics({"loss": 1.0 / step, "ppo/entropy": 2.0}, step)
    if step % 25 == 0:
        print(json.dumps({"step": step, "state": hook.stats()["state"]}), flush=True)
    time.sleep(max(0.0, start + step * 0.04 - time.monotonic()))
deadline = time.monotonic() + 60
while time.monotonic() < deadline and hook.stats()["spool_backlog"] > 0:
    time.sleep(0.05)
flushed = hook.flush(10)
stats = hook.stats()
hook.close(2)
print(json.dumps({"done": True, "flushed": flushed, "stats": stats}), flush=True)
`;

afterEach(() => cleanupMainProcesses());

describe('Python client spool through a service outage', () => {
  it('a 10 s outage: every step arrives exactly once, filed in order, viewers see catching_up and no step going back', async () => {
    const dataDir = tempDir('ringcast-spool-');
    const spoolDir = tempDir('ringcast-spool-client-');
    const [httpPort, tcpPort] = [await reservePort('127.0.0.1', 0), await reservePort('127.0.0.1', 0)];
    const args = ['--port', String(httpPort), '--ingest-tcp-port', String(tcpPort), '--data-dir', dataDir, '--no-demo',
      '--ingest-token', TOKEN, '--series-points', '1000'];
    const first = runMain(args);
    await listeningPort(first);

    const trainer = trackChild(spawn('python3', ['-c', TRAINER, `tcp://127.0.0.1:${tcpPort}`, TOKEN, RUN, path.join(spoolDir, 'spool'), String(STEPS), String(SPOOL_RATE)],
      { cwd: repoRoot, env: { ...process.env, PYTHONPATH: pythonClientDir, PYTHONDONTWRITEBYTECODE: '1' } }));
    const lines: Array<Record<string, unknown>> = [];
    let stderr = '';
    let partial = '';
    trainer.stdout!.on('data', (d: Buffer) => {
      partial += String(d);
      const parts = partial.split('\n');
      partial = parts.pop()!;
      for (const p of parts) if (p.trim()) lines.push(JSON.parse(p) as Record<string, unknown>);
    });
    trainer.stderr!.on('data', (d: Buffer) => { stderr += String(d); });
    const trainerExit = new Promise<number | null>((resolve) => trainer.once('exit', (code) => resolve(code)));
    const until = async (what: string, ms: number, ok: () => boolean) => {
      const deadline = Date.now() + ms;
      while (!ok()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; trainer: ${JSON.stringify(lines.slice(-3))} ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };

    await until('75 steps sent live', 15_000, () => lines.some((l) => (l.step as number) >= 75 && l.state === 'connected'));
    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);
    await new Promise((r) => setTimeout(r, 10_000)); // the outage: the trainer keeps emitting
    const second = runMain(args);
    await listeningPort(second);
    const viewer = await OverlayClient.connect(httpPort, { channels: ['metrics'], level: 'advanced' });

    await until('the trainer to finish and drain its spool', 60_000, () => lines.some((l) => l.done));
    expect(await trainerExit).toBe(0);
    const stats = lines.find((l) => l.done)!.stats as Record<string, number & Record<string, number>>;
    expect(stats.spooled, JSON.stringify(stats)).toBeGreaterThanOrEqual(200); // 10 s at 25 steps/s went to disk
    expect(stats.sent_from_spool).toBe(stats.spooled);
    expect([stats.dropped_oldest, stats.spool_backlog, stats.lost, stats.unacked]).toEqual([0, 0, 0, 0]);
    expect(Object.values(stats.dropped).reduce((a, b) => a + b, 0)).toBe(0);
    await new Promise((r) => setTimeout(r, 500)); // the last windows close

    // Exactly once: what the stopped process counted plus what the restarted one counted is every step.
    const runs = await (await fetch(`http://127.0.0.1:${httpPort}/api/runs`)).json() as {
      runs: Array<{ run: string; events: number; step: number }>; previous: Array<{ run: string; events: number; step: number }>;
    };
    const before = runs.previous.find((r) => r.run === RUN)!;
    const after = runs.runs.find((r) => r.run === RUN)!;
    expect(before.events).toBe(before.step); // steps 1..k, each once, before the stop
    const state = await (await fetch(`http://127.0.0.1:${httpPort}/api/state`)).json() as { runs: Record<string, { late: Record<string, number | boolean> }> };
    const late = state.runs[RUN].late;
    expect(before.events + after.events, JSON.stringify({ before, after, late, stats })).toBe(STEPS);
    expect(after.step).toBe(STEPS);
    expect(late.duplicate).toBe(0);
    expect(late.filed as number).toBeGreaterThan(0);
    expect(late.catching_up).toBe(false);

    // In step order, each step once: the restarted process's series is k+1..STEPS.
    const fresh = await OverlayClient.connect(httpPort, { channels: ['metrics'], level: 'advanced' });
    const snap = await fresh.waitFor((m) => m.type === 'ppo_metrics' && m.data?.run === RUN && m.data?.series === 'full', 5_000);
    const steps = (snap.data!.metrics as Record<string, { steps: number[] }>).loss.steps;
    expect(steps).toEqual(Array.from({ length: STEPS - before.step }, (_, i) => before.step + 1 + i));
    fresh.close();

    // The viewer who watched the catch-up: told so, and the live step never stepped back.
    const seen = viewer.messages.filter((m): m is WsMessage => m.type === 'ppo_metrics' && m.data?.run === RUN);
    viewer.close();
    const catching = seen.filter((m) => m.data!.catching_up === true);
    expect(catching.length, 'no catching_up message while the spool drained').toBeGreaterThan(0);
    expect(catching.every((m) => (m.data!.backlog as number) > 0)).toBe(true);
    // Rate-limited: ~250 spooled events at 40/s take ~6 s, not one burst.
    expect(catching[catching.length - 1].timestamp! - catching[0].timestamp!).toBeGreaterThan(2_000);
    expect(seen[seen.length - 1].data!.catching_up).toBeUndefined();
    const liveSteps = seen.map((m) => m.data!.step as number);
    expect(liveSteps.every((s, i) => i === 0 || s >= liveSteps[i - 1]), `live steps went back: ${liveSteps.join(',')}`).toBe(true);
    // The recording (both processes appended to it) holds every step exactly once.
    const ndjson = await (await fetch(`http://127.0.0.1:${httpPort}/api/recordings/${RUN}/events`)).text();
    const recorded = ndjson.trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step).sort((x, y) => x - y);
    expect(recorded).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    second.child.kill('SIGTERM');
    await second.exited;
  }, 90_000);
});
