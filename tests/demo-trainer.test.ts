import { describe, expect, it } from 'vitest';
import { PPO_METRIC_NAMES, simulatePpoCurves, type PpoMetricName, type PpoMetrics } from '../src/actors/demo-trainer/ppo-curves.js';
import { DemoTrainerCore } from '../src/actors/demo-trainer/trainer.js';
import { RingProducer } from '../src/sdk/ring-producer.js';
import { RecordRing } from '../src/shared/record-ring.js';
import { readIngestRecord } from '../src/shared/telemetry/ring-records.js';
import { EventKind, decodeEvent, type ExperienceEvent, type GameStateEvent, type MetricsEvent, type PolicyEvent, type TelemetryEvent } from '../src/shared/telemetry/event-codec.js';
import { maskBit } from '../src/sdk/encode.js';
import { STANDARD_SFEN, positionFromSfen } from '../src/shared/shogi/tsshogi.js';
import { keiseiPlanes } from '../src/shared/shogi/keisei-planes.js';
import { listLegalMoves } from '../src/shared/shogi/legal-moves.js';
import { actionIndexOfUsi, usiOfActionIndex } from '../src/shared/shogi/keisei-actions.js';

const series = (runs: PpoMetrics[], name: PpoMetricName) => runs.map((m) => m[name]);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
function correlation(a: number[], b: number[]): number {
  const ma = mean(a), mb = mean(b);
  let num = 0, da = 0, db = 0;
  for (let i = 0; i < a.length; i++) { num += (a[i] - ma) * (b[i] - mb); da += (a[i] - ma) ** 2; db += (b[i] - mb) ** 2; }
  return num / Math.sqrt(da * db);
}

describe('PPO curves (pure, 5,000 updates)', () => {
  const run = simulatePpoCurves(5000, { seed: 42 });
  const first = (xs: number[]) => mean(xs.slice(0, 200));
  const last = (xs: number[]) => mean(xs.slice(-200));

  it('uses the Keisei gen-1 names and finite values', () => {
    expect(Object.keys(run[0]).sort()).toEqual([...PPO_METRIC_NAMES].sort());
    for (const m of run) for (const v of Object.values(m)) expect(Number.isFinite(v)).toBe(true);
  });

  it('losses and entropy decrease; entropy starts near ln(#legal moves) and stays above its floor', () => {
    for (const name of ['ppo/policy_loss', 'ppo/value_loss', 'ppo/entropy'] as const) {
      const xs = series(run, name);
      expect(last(xs), name).toBeLessThan(first(xs) * 0.6);
    }
    const h = series(run, 'ppo/entropy');
    expect(h[0]).toBeGreaterThan(Math.log(80) * 0.9);
    expect(Math.min(...h)).toBeGreaterThan(0.8);
  });

  it('KL is high early and settles around 0.005–0.02, with rare spikes', () => {
    const kl = series(run, 'ppo/kl_divergence_approx');
    expect(first(kl)).toBeGreaterThan(0.03);
    const settled = kl.slice(-2000);
    expect(median(settled)).toBeGreaterThan(0.005);
    expect(median(settled)).toBeLessThan(0.02);
    const spikes = settled.filter((v) => v > 0.04).length;
    expect(spikes).toBeGreaterThan(0); // they happen…
    expect(spikes).toBeLessThan(settled.length * 0.05); // …occasionally
  });

  it('clip fraction tracks KL; the learning rate decays linearly', () => {
    expect(correlation(series(run, 'ppo/kl_divergence_approx'), series(run, 'ppo/clip_fraction'))).toBeGreaterThan(0.8);
    const lr = series(run, 'ppo/learning_rate');
    for (let i = 1; i < lr.length; i++) expect(lr[i]).toBeLessThanOrEqual(lr[i - 1]);
    expect(lr[999] - lr[1999]).toBeCloseTo(lr[2999] - lr[3999], 12); // constant slope
  });

  it('noise is autocorrelated (not white), and the run is a function of the seed', () => {
    const v = series(run, 'ppo/value_loss').slice(-2000);
    const trend = (i: number) => 0.05 + 0.6 * Math.exp(-(3001 + i) / 2000);
    const resid = v.map((x, i) => Math.log(x / trend(i)));
    expect(correlation(resid.slice(0, -1), resid.slice(1))).toBeGreaterThan(0.6);
    expect(simulatePpoCurves(300, { seed: 42 })).toEqual(run.slice(0, 300));
    expect(simulatePpoCurves(300, { seed: 43 })).not.toEqual(run.slice(0, 300));
  });
});

function drain(ring: RecordRing, into: { event: TelemetryEvent; bytes: Uint8Array }[]): void {
  ring.poll((data, offset, length) => {
    const rec = readIngestRecord(data, offset, length);
    const bytes = data.slice(rec.eventOffset, rec.eventOffset + rec.eventLength);
    into.push({ event: decodeEvent(bytes), bytes });
  });
}

describe('demo trainer core (no timers)', () => {
  it('a resumed core continues the step, games and moves of the progress it is given', () => {
    const ring = RecordRing.create({ capacityBytes: 1 << 22 });
    const core = new DemoTrainerCore(new RingProducer({ ring, run: 'demo' }), { seed: 9, experience: false, resume: { steps: 4_000, games: 37, moves: 900, firstMateSeen: true } });
    core.trainStep();
    const events: { event: TelemetryEvent; bytes: Uint8Array }[] = [];
    drain(ring, events);
    const metrics = events.map((e) => e.event).filter((e): e is MetricsEvent => e.kind === EventKind.Metrics);
    expect(metrics.map((m) => m.step)).toEqual([4_001]);
    expect(metrics[0].values[metrics[0].names.indexOf('games_played')]).toBe(37);
    core.playMove();
    expect(core.progress()).toEqual({ steps: 4_001, games: 37, moves: 901, firstMateSeen: true });
  });

  it('plays legal games to a result, with matching predictions, experience and metrics', () => {
    const ring = RecordRing.create({ capacityBytes: 1 << 24 });
    const producer = new RingProducer({ ring, run: 'demo' });
    const core = new DemoTrainerCore(producer, { seed: 5, experience: true, maxMoves: 120 });
    const events: { event: TelemetryEvent; bytes: Uint8Array }[] = [];
    let finished = 0;
    while (finished < 3) {
      for (let k = 0; k < 5; k++) core.trainStep();
      if (core.playMove().result) finished++;
      drain(ring, events);
    }
    expect(producer.stats().dropped).toEqual({});
    expect(core.summary()).toEqual({ games: 3, moves: core.moves, steps: core.moves * 5 });

    const byKind = (k: EventKind) => events.filter((e) => e.event.kind === k);
    const finals = byKind(EventKind.GameState).map((e) => e.event as GameStateEvent).filter((g) => g.result);
    expect(finals).toHaveLength(3);
    for (const g of finals) {
      expect(['sente_win', 'gote_win', 'draw']).toContain(g.result);
      // Replay every move through tsshogi's validation.
      const position = positionFromSfen(STANDARD_SFEN);
      for (const usi of g.moves!) {
        const move = position.createMoveByUSI(usi);
        expect(move && position.doMove(move), `${g.gameId}: ${usi}`).toBe(true);
      }
      expect(position.sfen).toBe(g.sfen);
      expect(g.moveCount).toBe(g.moves!.length);
      if (g.meta.reason === 'checkmate') expect(listLegalMoves(position)).toHaveLength(0);
      if (g.result === 'draw') expect(g.moves!.length === 120 || g.meta.reason === 'repetition').toBe(true);
    }

    // Predictions: top moves are legal in the position they were made for, sorted, summing to ≤ 1.
    for (const { event } of byKind(EventKind.Policy).slice(0, 60)) {
      const p = event as PolicyEvent;
      const legal = new Set(listLegalMoves(positionFromSfen(p.position!)).map((m) => m.usi));
      expect(p.topMoves.length).toBeLessThanOrEqual(5);
      for (const t of p.topMoves) expect(legal.has(t.move)).toBe(true);
      for (let i = 1; i < p.topMoves.length; i++) expect(p.topMoves[i].prob).toBeLessThanOrEqual(p.topMoves[i - 1].prob);
      expect(p.value! >= -1 && p.value! <= 1).toBe(true);
    }
    for (const { event } of byKind(EventKind.BoardHeatmap)) {
      const sum = [...(event as { grid: Float32Array }).grid].reduce((a, b) => a + b, 0);
      expect(sum).toBeCloseTo(1, 4);
    }

    // Experience: one per move; the played action is legal in the mask; planes are the real position;
    // each player's last transition of a game is done with reward ±1 (0 for a draw).
    const exps = byKind(EventKind.Experience);
    expect(exps).toHaveLength(core.moves);
    const game1 = finals[0];
    const position = positionFromSfen(STANDARD_SFEN);
    const g1 = exps.filter((e) => (e.event as ExperienceEvent).gameId === game1.gameId).map((e) => ({ ...e, x: e.event as ExperienceEvent })).sort((a, b) => a.x.turn - b.x.turn);
    expect(g1).toHaveLength(game1.moves!.length);
    g1.forEach(({ x, bytes }, ply) => {
      expect(x.turn).toBe(ply);
      expect(usiOfActionIndex(x.action)).toBe(game1.moves![ply]);
      expect(maskBit(bytes, x.maskOffset, x.action)).toBe(true);
      let count = 0;
      for (let i = 0; i < x.maskLen; i++) if (maskBit(bytes, x.maskOffset, i)) count++;
      expect(count).toBe(listLegalMoves(position).length);
      const state = new Float32Array(bytes.slice(x.stateOffset, x.stateOffset + x.stateBytes).buffer);
      expect(state).toEqual(keiseiPlanes(position, { moveCount: ply }));
      expect(x.playerId).toBe(ply % 2 === 0 ? 'sente' : 'gote');
      position.doMove(position.createMoveByUSI(game1.moves![ply])!);
      expect(actionIndexOfUsi(game1.moves![ply])).toBe(x.action);
    });
    const dones = g1.filter(({ x }) => x.done).map(({ x }) => x);
    expect(dones).toHaveLength(2);
    const want = game1.result === 'draw' ? [0, 0] : game1.result === 'sente_win' ? [1, -1] : [-1, 1];
    expect(dones.sort((a, b) => String(a.playerId).localeCompare(String(b.playerId))).map((d) => d.reward)).toEqual([want[1], want[0]]); // gote, sente
    expect(g1.filter(({ x }) => !x.done).every(({ x }) => x.reward === 0)).toBe(true);

    // Metrics: Keisei names plus games_played; win_rate only once a game has finished.
    const metrics = byKind(EventKind.Metrics).map((e) => e.event as MetricsEvent);
    expect(metrics[0].names).toEqual([...PPO_METRIC_NAMES, 'games_played']);
    const last = metrics[metrics.length - 1];
    expect(last.names).toContain('win_rate');
    expect(last.values[last.names.indexOf('games_played')]).toBe(2); // the last update ran before the move that ended game 3
    expect(metrics.map((m) => m.step)).toEqual(metrics.map((_, i) => i + 1));
  });
});
