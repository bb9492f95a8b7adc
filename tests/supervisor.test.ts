import { afterEach, describe, expect, it } from 'vitest';
import { Supervisor } from '../src/supervisor/supervisor.js';
import { ActorDiedError } from '../src/supervisor/actor-handle.js';
import { SpecError } from '../src/supervisor/spec.js';
import type { RecordRing } from '../src/shared/record-ring.js';
import { capturingLogger, continuity, drainAudit, seqTopology, until, producerModule, consumerModule } from './helpers/supervisor-harness.js';

let running: Supervisor | undefined;
afterEach(async () => {
  await running?.stop(3_000);
  running = undefined;
});

async function startSeq(topology: Parameters<typeof seqTopology>[0]) {
  const { logger, lines } = capturingLogger();
  const supervisor = new Supervisor(seqTopology(topology), logger);
  running = supervisor;
  await supervisor.start();
  const audit = supervisor.ring<RecordRing>('audit');
  const seen = new Map<number, number>();
  return { supervisor, audit, seen, lines };
}

describe('supervisor: sequence continuity across a crash', () => {
  for (const mode of ['throw', 'exit', 'hang'] as const) {
    it(`consumer killed by ${mode} mid-stream: no record lost, duplicates only within one batch`, async () => {
      const total = 40_000;
      const batch = 64;
      const { supervisor, audit, seen } = await startSeq({ total, batch });
      await until(() => seen.size > 8_000, 10_000, 'first records', () => drainAudit(audit, seen));
      const pending = supervisor.call('consumer', 'crashNow', [mode], 10_000);
      await expect(pending).rejects.toBeInstanceOf(ActorDiedError);
      await until(() => supervisor.incarnation('consumer') === 1 && supervisor.health().ok, 10_000, 'restart');
      await until(() => seen.size >= total, 20_000, 'all records', () => drainAudit(audit, seen));
      const { missing, duplicated, maxRepeat } = continuity(seen, total);
      expect(missing).toEqual([]);
      expect(duplicated).toBeLessThanOrEqual(batch);
      expect(maxRepeat).toBeLessThanOrEqual(2);
      expect(await supervisor.call('consumer', 'corrupt')).toBe(0);
      expect(supervisor.incarnation('producer')).toBe(0); // one_for_one left the producer alone
    });
  }

  it('producer killed mid-stream resumes at the next sequence number: none lost, none repeated', async () => {
    const total = 30_000;
    const { supervisor, audit, seen } = await startSeq({ total });
    await until(() => seen.size > 5_000, 10_000, 'first records', () => drainAudit(audit, seen));
    await supervisor.crash('producer');
    await until(() => supervisor.incarnation('producer') === 1, 10_000, 'producer restart');
    await until(() => seen.size >= total, 20_000, 'all records', () => drainAudit(audit, seen));
    const { missing, duplicated } = continuity(seen, total);
    expect(missing).toEqual([]);
    expect(duplicated).toBe(0);
  });
});

describe('supervisor: restart strategies', () => {
  it('rest_for_one restarts the failed actor and those started after it', async () => {
    const { supervisor } = await startSeq({ total: 1_000_000, strategy: 'rest_for_one' });
    await supervisor.crash('producer');
    await until(() => supervisor.incarnation('producer') === 1 && supervisor.incarnation('consumer') === 1 && supervisor.health().ok, 10_000, 'both restarted');
  });

  it('rest_for_one leaves actors started before the failed one alone', async () => {
    const { supervisor } = await startSeq({ total: 1_000_000, strategy: 'rest_for_one' });
    await supervisor.crash('consumer');
    await until(() => supervisor.incarnation('consumer') === 1 && supervisor.health().ok, 10_000, 'consumer restarted');
    expect(supervisor.incarnation('producer')).toBe(0);
  });

  it('one_for_all restarts every actor when one fails', async () => {
    const { supervisor } = await startSeq({ total: 1_000_000, strategy: 'one_for_all' });
    await supervisor.crash('consumer');
    await until(() => supervisor.incarnation('producer') === 1 && supervisor.incarnation('consumer') === 1 && supervisor.health().ok, 10_000, 'all restarted');
  });

  it('a pre-spawned standby takes over after a crash', async () => {
    const { supervisor } = await startSeq({ total: 1_000_000, standby: true });
    const restarted = new Promise<number>((resolve) => supervisor.once('actor-restarted', (_a, _i, ms) => resolve(ms)));
    await until(() => supervisor.hasStandby('producer') && supervisor.hasStandby('consumer'), 5_000, 'standbys spawned');
    await supervisor.crash('consumer');
    const ms = await restarted;
    expect(ms).toBeGreaterThan(0);
    expect(supervisor.incarnation('consumer')).toBe(1);
    expect(supervisor.health().ok).toBe(true);
  });
});

describe('supervisor: hang detection and escalation', () => {
  it('treats a stopped heartbeat as a hang and restarts the actor', async () => {
    const { supervisor, lines } = await startSeq({ total: 1_000_000, hangTimeoutMs: 300 });
    void supervisor.call('producer', 'crashNow', ['hang'], 10_000).catch(() => undefined);
    await until(() => supervisor.incarnation('producer') === 1, 10_000, 'hang restart');
    expect(lines.some((l) => String(l.msg).includes('actor hung'))).toBe(true);
  });

  it('escalates with a fatal log line when restart intensity is exceeded', async () => {
    const { supervisor, lines } = await startSeq({ total: 1_000_000, intensity: 2, periodMs: 60_000 });
    const escalated = new Promise<string>((resolve) => supervisor.once('escalate', resolve));
    for (let i = 0; i < 3; i++) {
      await until(() => supervisor.health().actors.consumer === 'running', 10_000, 'consumer running');
      await supervisor.crash('consumer');
    }
    const reason = await escalated;
    expect(reason).toMatch(/restart intensity exceeded: more than 2 restarts within 60000 ms/);
    expect(lines.some((l) => l.level === 60 && String(l.msg).includes('restart intensity exceeded'))).toBe(true);
    expect(supervisor.health().ok).toBe(false);
  });

  it('fails start() cleanly when an actor cannot start', async () => {
    const { logger } = capturingLogger();
    const spec = seqTopology({ total: 10 });
    (spec.actors[0].options as Record<string, unknown>).crashAtStart = true;
    const supervisor = new Supervisor({ ...spec, startTimeoutMs: 5_000 }, logger);
    await expect(supervisor.start()).rejects.toThrow(/producer/);
    expect(supervisor.health().actors.consumer).not.toBe('running');
  });
});

describe('supervisor: control plane and metrics', () => {
  it('rejects a call to an unknown actor method with a clear error', async () => {
    const { supervisor } = await startSeq({ total: 10 });
    await expect(supervisor.call('consumer', 'nope')).rejects.toThrow(/has no method "nope"/);
  });

  it('merges every thread into one /metrics exposition with an actor label', async () => {
    const { supervisor } = await startSeq({ total: 5_000 });
    await until(() => supervisor.ring<RecordRing>('audit').stats().recordsIn >= 5_000, 10_000, 'records');
    const text = await supervisor.metrics();
    for (const actor of ['supervisor', 'producer', 'consumer']) expect(text).toContain(`actor="${actor}"`);
    expect(text.match(/^# TYPE nodejs_heap_size_used_bytes /gm)?.length).toBe(1);
    expect(text).toMatch(/ringcast_ring_records_in_total\{[^}]*ring="seq"[^}]*\} 5000/);
    expect(text).toMatch(/ringcast_actor_up\{actor="consumer"\} 1/);
  });
});

describe('supervisor: spec validation', () => {
  const { logger } = capturingLogger();
  it('takes the native-handle hang policy as data and names a bad value', () => {
    const s = new Supervisor({ actors: [{ name: 'a', module: producerModule }, { name: 'g', module: producerModule, nativeHandles: true }] }, logger);
    expect(s.spec.actors.map((a) => a.nativeHandles)).toEqual([false, true]);
    expect(s.spec.nativeHangGraceMs).toBe(10_000);
    expect(s.stuckThreads).toEqual([]);
    expect(() => new Supervisor({ actors: [{ name: 'g', module: producerModule, nativeHandles: 'yes' as unknown as boolean }] }, logger)).toThrow(/actors\.0\.nativeHandles/);
    expect(() => new Supervisor({ nativeHangGraceMs: -1, actors: [{ name: 'g', module: producerModule }] }, logger)).toThrow(/nativeHangGraceMs/);
  });
  it('names an undeclared ring', () => {
    expect(() => new Supervisor({ actors: [{ name: 'a', module: producerModule, out: ['missing'] }] }, logger)).toThrow(SpecError);
    expect(() => new Supervisor({ actors: [{ name: 'a', module: producerModule, out: ['missing'] }] }, logger)).toThrow(/ring "missing", which is not declared/);
  });

  it('refuses two producers on one ring', () => {
    const spec = { rings: { r: { kind: 'record' as const, capacityBytes: 4096 } }, actors: [
      { name: 'a', module: producerModule, out: ['r'] }, { name: 'b', module: consumerModule, out: ['r'] }] };
    expect(() => new Supervisor(spec, logger)).toThrow(/already has producer "a"/);
  });

  it('refuses an unknown strategy', () => {
    expect(() => new Supervisor({ strategy: 'sometimes' as never, actors: [{ name: 'a', module: producerModule }] }, logger)).toThrow(/strategy/);
  });
});

describe('supervisor: upcalls from actors to main-thread services', () => {
  it('an actor calls a provided service and gets its result; an unknown service rejects with its name', async () => {
    const { logger } = capturingLogger();
    const supervisor = new Supervisor({ actors: [{ name: 'asker', module: new URL('./fixtures/upcall-actor.ts', import.meta.url) }] }, logger);
    running = supervisor;
    supervisor.provide('add', (a: number, b: number) => a + b);
    supervisor.provide('later', async (x: string) => `main saw ${x}`);
    await supervisor.start();
    expect(await supervisor.call('asker', 'askMain', ['add', 2, 3])).toBe(5);
    expect(await supervisor.call('asker', 'askMain', ['later', 'hi'])).toBe('main saw hi');
    await expect(supervisor.call('asker', 'askMain', ['nope'])).rejects.toThrow(/no main-thread service "nope"/);
  });
});
