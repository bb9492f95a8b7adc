/**
 * How fast a crashed actor runs again: backoff only for crash loops, and a standby that is
 * ready (module loaded, logger, metrics and control plane set up) before it is needed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Supervisor } from '../src/supervisor/supervisor.js';
import { capturingLogger, seqTopology, until } from './helpers/supervisor-harness.js';

let running: Supervisor | undefined;
afterEach(async () => {
  await running?.stop(3_000);
  running = undefined;
});

describe('supervisor: restart delay', () => {
  it('backs off a crash loop, but restarts at once an actor that had been up longer than the longest backoff', async () => {
    const { logger, lines } = capturingLogger();
    // backoff 10..200 ms: "stable" means up for max(1 s, 200 ms).
    const supervisor = new Supervisor({ ...seqTopology({ total: 1_000_000, intensity: 20, periodMs: 60_000 }) }, logger);
    running = supervisor;
    await supervisor.start();
    const failures = () => lines.filter((l) => l.msg === 'actor failed' && l.target === 'consumer');
    const crashWhenRunning = async (incarnation: number) => {
      await until(() => supervisor.incarnation('consumer') === incarnation && supervisor.health().actors.consumer === 'running', 10_000, `consumer incarnation ${incarnation}`);
      await supervisor.crash('consumer');
    };
    await new Promise((r) => setTimeout(r, 1_100));
    await crashWhenRunning(0); // up > 1 s
    await crashWhenRunning(1); // at once: a crash loop
    await crashWhenRunning(2); // again
    await until(() => supervisor.incarnation('consumer') === 3 && supervisor.health().ok, 10_000, 'incarnation 3');
    await new Promise((r) => setTimeout(r, 1_100));
    await crashWhenRunning(3); // up > 1 s again
    await until(() => failures().length === 4, 5_000, 'four failures logged');
    expect(failures().map((l) => l.backoffMs)).toEqual([0, 10, 20, 0]);
    expect(failures()[3].upMs).toBeGreaterThanOrEqual(1_000);
  });
});

describe('supervisor: standby', () => {
  it('keeps a ready standby: loaded before the crash, used by the restart, replaced by a new ready one', async () => {
    const supervisor = new Supervisor(seqTopology({ total: 1_000_000, standby: true }), capturingLogger().logger);
    running = supervisor;
    await supervisor.start();
    await until(() => supervisor.standbyReady('consumer'), 10_000, 'standby ready');
    const restarted = new Promise<number>((resolve) => supervisor.once('actor-restarted', (_a, _i, ms) => resolve(ms)));
    await supervisor.crash('consumer');
    const ms = await restarted;
    expect(supervisor.incarnation('consumer')).toBe(1);
    // Activation of a ready standby is a message and the actor's start(); a cold spawn loads modules first.
    expect(ms).toBeLessThan(1_000);
    expect(supervisor.standbyReady('consumer')).toBe(false); // the old standby is now the running actor
    await until(() => supervisor.standbyReady('consumer'), 10_000, 'a new standby ready');
  });
});

describe('supervisor: a standby that dies unused', () => {
  it('is counted and replaced, and the replacement takes over the next crash', async () => {
    const { logger, lines } = capturingLogger();
    const supervisor = new Supervisor(seqTopology({ total: 1_000_000, standby: true }), logger);
    running = supervisor;
    await supervisor.start();
    await until(() => supervisor.standbyReady('consumer'), 10_000, 'standby ready');
    await supervisor.crashStandby('consumer', 'test');
    expect(supervisor.hasStandby('consumer')).toBe(false);
    await until(() => supervisor.standbyReady('consumer'), 10_000, 'a replacement standby ready');
    expect(lines.some((l) => l.msg === 'standby thread died before use; replacing it' && l.target === 'consumer')).toBe(true);
    expect(await supervisor.metrics()).toMatch(/^ringcast_standby_failures_total\{actor="consumer"\} 1$/m);
    const restarted = new Promise<number>((resolve) => supervisor.once('actor-restarted', (_a, _i, ms) => resolve(ms)));
    await supervisor.crash('consumer');
    expect(await restarted).toBeLessThan(1_000);
    expect(supervisor.incarnation('consumer')).toBe(1);
  });
});
