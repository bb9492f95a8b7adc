/**
 * /readyz's checks on their own, with a scripted clock and ring counters: a ring that drops is
 * named until the drop window passes; a connected producer whose ring stops moving makes data
 * stale; no producer means nothing to be stale; an actor down and a missing ffmpeg are named.
 */
import { describe, expect, it } from 'vitest';
import type { FfmpegStatus } from '../src/services/health/ffmpeg-status.js';
import { Readiness, type ReadinessSource } from '../src/services/health/readiness.js';
import type { RingStats } from '../src/shared/ring-stats.js';

function setup(o: { ffmpeg?: Partial<FfmpegStatus> } = {}) {
  let now = 1_000_000;
  const counters: Record<string, { in: number; dropped: number }> = { 'ingest.net': { in: 0, dropped: 0 }, 'fanout.gw0': { in: 0, dropped: 0 }, 'record.events': { in: 0, dropped: 0 } };
  const actors: Record<string, string> = { ingest: 'running', aggregator: 'running' };
  let producers = 0;
  const supervisor: ReadinessSource = {
    health: () => ({ ok: Object.values(actors).every((s) => s === 'running'), actors }),
    actorNames: () => Object.keys(actors),
    call: async () => undefined,
    ring: (name: string) => ({
      stats: (): RingStats => ({
        kind: 'record', name, capacity: 1, depth: 0, recordsIn: counters[name].in, recordsOut: counters[name].in, waitMs: 0,
        drops: { 'drop-newest': counters[name].dropped, 'overwrite-oldest': 0, 'block-timeout': 0, 'too-large': 0 },
      }),
    }) as never,
  };
  const ffmpeg: FfmpegStatus = {
    availability: { ok: true, ffmpeg: { path: '/usr/bin/ffmpeg', source: 'system', version: '5.1' } },
    needed: ['capture'], details: () => ({}), register: () => undefined, ...o.ffmpeg,
  };
  const r = new Readiness({
    supervisor, ffmpeg, rings: Object.keys(counters), now: () => now,
    producers: [{ ring: 'ingest.net', connected: async () => producers }],
    dropWindowMs: 30_000, staleAfterMs: 30_000, warnRings: ['record.events'],
  });
  return {
    r, counters, actors,
    advance(ms: number) { now += ms; r.sample(); },
    connect(n: number) { producers = n; },
  };
}

describe('readiness', () => {
  it('ready when actors run, ffmpeg is there, nothing drops and no producer is connected', async () => {
    const t = setup();
    const report = await t.r.check();
    t.r.close();
    expect(report).toMatchObject({ ready: true, failing: [], checks: { ffmpeg: { ok: true, detail: '5.1 (system)' }, data: { ok: true, detail: 'no producer connected' } } });
  });

  it('drops in a warn ring (the recorder behind) are a warning, not unreadiness, for the drop window', async () => {
    const t = setup();
    t.r.resetBaseline();
    t.counters['record.events'].dropped = 7;
    t.advance(1_000);
    const report = await t.r.check();
    expect(report.ready).toBe(true);
    expect(report.checks.rings.ok).toBe(true);
    expect(report.warnings).toEqual(['record.events dropping (7 dropped in all): its reader is behind']);
    t.advance(31_000);
    expect((await t.r.check()).warnings).toEqual([]);
    t.r.close();
  });

  it('a ring that drops fails "rings" until the drop window has passed; drops before the baseline do not count', async () => {
    const t = setup();
    t.counters['fanout.gw0'].dropped = 40; // during start-up
    t.r.resetBaseline();
    expect((await t.r.check()).ready).toBe(true);
    t.counters['fanout.gw0'].dropped = 41;
    t.advance(1_000);
    const report = await t.r.check();
    expect(report.failing).toEqual(['rings']);
    expect(report.checks.rings.detail).toBe('dropping: fanout.gw0 (41 dropped)');
    t.advance(29_500);
    expect((await t.r.check()).failing).toEqual(['rings']);
    t.advance(1_000);
    expect((await t.r.check()).ready).toBe(true);
    t.r.close();
  });

  it('a connected producer whose ring stops moving makes data stale; records coming in make it fresh', async () => {
    const t = setup();
    t.connect(2);
    t.counters['ingest.net'].in = 10;
    t.advance(1_000);
    expect((await t.r.check()).checks.data).toEqual({ ok: true, detail: 'fresh (2 producer(s))' });
    t.advance(31_000);
    const stale = await t.r.check();
    expect(stale.failing).toEqual(['data']);
    expect(stale.checks.data.detail).toBe('ingest.net: 2 producer(s) connected, nothing for 31 s');
    t.counters['ingest.net'].in = 11;
    t.advance(1_000);
    expect((await t.r.check()).ready).toBe(true);
    t.connect(0);
    t.advance(60_000);
    expect((await t.r.check()).ready).toBe(true); // nobody connected: nothing to be stale
    t.r.close();
  });

  it('names an actor that is down and a part without ffmpeg', async () => {
    const t = setup({ ffmpeg: { details: () => ({ capture: 'unavailable: ffmpeg not found (x)' }) } });
    t.actors.ingest = 'restarting';
    const report = await t.r.check();
    t.r.close();
    expect(report.failing).toEqual(['actors', 'ffmpeg']);
    expect(report.checks.actors.detail).toBe('ingest restarting');
    expect(report.checks.ffmpeg.detail).toBe('capture unavailable: ffmpeg not found (x)');
  });
});
