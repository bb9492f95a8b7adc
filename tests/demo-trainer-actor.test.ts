import { afterEach, describe, expect, it } from 'vitest';
import { Supervisor } from '../src/supervisor/supervisor.js';
import type { SupervisorSpec } from '../src/supervisor/spec.js';
import type { RecordRing } from '../src/shared/record-ring.js';
import { readIngestRecord } from '../src/shared/telemetry/ring-records.js';
import { EventKind, decodeEvent, type GameStateEvent, type MetricsEvent, type TelemetryEvent } from '../src/shared/telemetry/event-codec.js';
import { STANDARD_SFEN, positionFromSfen } from '../src/shared/shogi/tsshogi.js';
import type { DemoTrainerOptions } from '../src/actors/demo-trainer/index.js';
import { capturingLogger, until } from './helpers/supervisor-harness.js';

// Runs the compiled actor: `npx tsc -p .` first.
const trainerModule = new URL('../src/actors/demo-trainer/index.ts', import.meta.url);
const RING = 'ingest.demo';

function topology(options: Partial<DemoTrainerOptions>): SupervisorSpec {
  const trainer: DemoTrainerOptions = { ring: RING, run: 'demo-test', stepsPerSec: 400, movesPerSec: 150, crashEveryMs: 0, experience: true, seed: 11, maxMoves: 60, ...options };
  return {
    strategy: 'one_for_one',
    intensity: 5,
    periodMs: 10_000,
    backoff: { initialMs: 10, maxMs: 200 },
    heartbeatIntervalMs: 50,
    hangTimeoutMs: 2_000,
    logLevel: 'warn',
    rings: { [RING]: { kind: 'record', capacityBytes: 1 << 23, policy: 'drop-newest' } },
    actors: [{ name: 'demo-trainer', module: trainerModule, out: [RING], options: trainer }],
  };
}

interface Seen { run: string; producerId: number; event: TelemetryEvent }
function drain(ring: RecordRing, seen: Seen[]): void {
  ring.poll((data, offset, length) => {
    const rec = readIngestRecord(data, offset, length);
    seen.push({ run: rec.run, producerId: rec.producerId, event: decodeEvent(data.subarray(rec.eventOffset, rec.eventOffset + rec.eventLength)) });
  });
}

let running: Supervisor | undefined;
afterEach(async () => {
  await running?.stop(3_000);
  running = undefined;
});

describe('demo trainer actor under a supervisor', () => {
  it('streams every kind for ~1.5 s; every published game replays legally; stop() reports totals', async () => {
    const supervisor = new Supervisor(topology({}), capturingLogger().logger);
    running = supervisor;
    await supervisor.start();
    const ring = supervisor.ring<RecordRing>(RING);
    const seen: Seen[] = [];
    const started = Date.now();
    await until(() => Date.now() - started >= 1_500, 5_000, '1.5 s of telemetry', () => drain(ring, seen));
    const { finals } = await supervisor.stop(3_000);
    running = undefined;
    drain(ring, seen);
    const summary = finals['demo-trainer'] as { games: number; moves: number; steps: number };

    expect(seen.every((s) => s.run === 'demo-test' && s.producerId === 1)).toBe(true);
    const kinds = new Set(seen.map((s) => s.event.kind));
    for (const k of [EventKind.Metrics, EventKind.SeAttention, EventKind.Policy, EventKind.BoardHeatmap, EventKind.GameState, EventKind.Experience]) expect(kinds.has(k), `kind ${k}`).toBe(true);
    expect(ring.stats().drops['drop-newest']).toBe(0);

    // Nothing lost between the actor and the ring: counts match the actor's own totals.
    const metrics = seen.filter((s) => s.event.kind === EventKind.Metrics).map((s) => s.event as MetricsEvent);
    expect(metrics).toHaveLength(summary.steps);
    expect(seen.filter((s) => s.event.kind === EventKind.Policy)).toHaveLength(summary.moves);
    expect(summary.steps).toBeGreaterThan(200); // ~400/s for 1.5 s, minus start-up
    expect(summary.moves).toBeGreaterThan(60);
    expect(summary.games).toBeGreaterThanOrEqual(1);

    // Replay the latest state of every game through tsshogi: every move legal, SFEN agrees.
    const latest = new Map<string, GameStateEvent>();
    for (const s of seen) if (s.event.kind === EventKind.GameState) latest.set(s.event.gameId, s.event);
    expect(latest.size).toBeGreaterThanOrEqual(summary.games);
    let replayed = 0;
    for (const g of latest.values()) {
      const position = positionFromSfen(STANDARD_SFEN);
      for (const usi of g.moves ?? []) {
        const move = position.createMoveByUSI(usi);
        expect(move !== null && position.doMove(move), `${g.gameId} ${usi}`).toBe(true);
        replayed++;
      }
      expect(position.sfen).toBe(g.sfen);
    }
    expect(replayed).toBe(summary.moves);
    const results = [...latest.values()].filter((g) => g.result);
    expect(results).toHaveLength(summary.games);
  });

  it('crashEveryMs crashes it on a timer; the restarted incarnation carries on with new game ids', async () => {
    const supervisor = new Supervisor(topology({ crashEveryMs: 400, stepsPerSec: 50, movesPerSec: 40, experience: false }), capturingLogger().logger);
    running = supervisor;
    await supervisor.start();
    const ring = supervisor.ring<RecordRing>(RING);
    const seen: Seen[] = [];
    await until(() => supervisor.incarnation('demo-trainer') >= 1 && seen.some((s) => s.event.kind === EventKind.GameState && s.event.gameId.startsWith('r1-')), 8_000, 'a restart that plays on', () => drain(ring, seen));
    expect(seen.some((s) => s.event.kind === EventKind.GameState && s.event.gameId === 'g1')).toBe(true);
  });
});
