/**
 * Actor restart after a crash, measured end to end: from the moment the consumer's
 * thread is killed until records flow out of its input ring again (the ring's
 * records-out counter moves). The demo trainer keeps publishing into the aggregator's ring, so the
 * restarted consumer finds a backlog and the figure is "rings re-attached and flowing".
 *
 * Two supervisors in the same run: one with a pre-spawned standby per actor (the
 * configuration the bar is about) and one that cold-spawns a worker per restart
 * (the baseline).
 */
import { setImmediate as tick } from 'node:timers/promises';
import pino from 'pino';
import { Supervisor } from '../src/supervisor/supervisor.js';
import type { SupervisorSpec } from '../src/supervisor/spec.js';
import type { RecordRing } from '../src/shared/record-ring.js';
import { percentile } from './lib/stats.js';

const RING = 'ingest.demo';

const aggregatorOptions = {
  inRings: [RING], outRings: [], windowMs: 100, seriesPoints: 100, smoothingAlpha: 0.2, attentionAlpha: 0.3, focusSquares: 5,
  health: { klHealthy: 0.01, clipHealthy: 0.1, klLearning: 0.05 },
  milestones: { klSettledBelow: 0.01, klSettledWindows: 30, entropyCollapseBelow: 0.5, lossPlateauWindows: 100, lossPlateauSlope: 1e-5, gameMarks: [10, 100], bestWinRate: true },
};

function spec(standby: boolean): SupervisorSpec {
  return {
    strategy: 'one_for_one',
    intensity: 10_000,
    periodMs: 1_000,
    backoff: { initialMs: 0, maxMs: 0 },
    heartbeatIntervalMs: 100,
    hangTimeoutMs: 5_000,
    logLevel: 'error',
    rings: { [RING]: { kind: 'record', capacityBytes: 8 << 20, policy: 'drop-newest' } },
    actors: [
      { name: 'demo-trainer', module: new URL('../src/actors/demo-trainer/index.js', import.meta.url), out: [RING], options: { ring: RING, run: 'bench', stepsPerSec: 5_000, movesPerSec: 200, crashEveryMs: 0 } },
      { name: 'aggregator', module: new URL('../src/actors/aggregator/index.js', import.meta.url), in: [RING], standby, options: aggregatorOptions },
    ],
  };
}

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error('restart bench: timed out');
    await tick();
  }
}

async function measure(standby: boolean, restarts: number): Promise<number[]> {
  const supervisor = new Supervisor(spec(standby), pino({ level: 'silent' }));
  await supervisor.start();
  const ring = supervisor.ring<RecordRing>(RING);
  const samples: number[] = [];
  try {
    for (let i = 0; i < restarts; i++) {
      // Let the standby (if any) finish loading, as it would between real crashes.
      await new Promise((r) => setTimeout(r, standby ? 120 : 30));
      await waitFor(() => supervisor.health().ok, 5_000);
      const t0 = performance.now();
      await supervisor.crash('aggregator', 'bench');
      const outAtCrash = ring.stats().recordsOut;
      await waitFor(() => ring.stats().recordsOut > outAtCrash, 5_000);
      samples.push(performance.now() - t0);
    }
  } finally {
    await supervisor.stop(2_000);
  }
  return samples;
}

export async function measureRestart(opts: { quick: boolean }): Promise<Record<string, number>> {
  const restarts = opts.quick ? 20 : 100;
  const warm = await measure(true, restarts);
  const cold = await measure(false, restarts);
  return {
    restart_p50_ms: percentile(warm, 50),
    restart_p99_ms: percentile(warm, 99),
    restart_cold_p50_ms: percentile(cold, 50),
    restart_cold_p99_ms: percentile(cold, 99),
    restart_samples: warm.length,
  };
}
