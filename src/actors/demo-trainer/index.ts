/**
 * Demo trainer actor: a built-in stand-in for a live Keisei PPO trainer, so a fresh ringcast
 * has something real to show. It plays legal shogi games (learner vs. baseline, see
 * trainer.ts) and emits PPO metrics, predictions, heatmaps, game states, SE attention,
 * milestones and optionally experience into its ingest ring through the in-process
 * RingProducer: the same event bytes a network trainer sends.
 *
 * Rates: one ticker drives three accumulators (updates at stepsPerSec, SE attention at
 * stepsPerSec / 2, moves at movesPerSec). After a stall (GC, a busy core) the backlog is
 * capped rather than replayed in a burst, as a real trainer would not catch up either.
 *
 * A restarted incarnation continues from the progress the previous one left in its durable
 * words (ctx.durable): the step, games played and moves never go back, as a trainer resumed
 * from its checkpoint would. It takes a new seed and game-id prefix: the game that was in
 * play when it crashed is abandoned.
 */
import { Counter } from 'prom-client';
import { defineActor } from '../../shared/actor.js';
import type { RecordRing } from '../../shared/record-ring.js';
import { RingProducer } from '../../sdk/ring-producer.js';
import { seedFromString } from './rng.js';
import { DemoTrainerCore, type TrainerProgress, type TrainerSummary } from './trainer.js';

export interface DemoTrainerOptions {
  /** Output ingest ring. */
  ring: string;
  /** Run name every event is reported under. */
  run: string;
  /** PPO updates per second (one metrics event each). */
  stepsPerSec: number;
  /** Self-play moves per second. */
  movesPerSec: number;
  /** Chaos knob: crash this often (ms) to watch supervision work; 0 disables. */
  crashEveryMs: number;
  /** Emit experience records (default false). */
  experience?: boolean;
  /** Seed for games and curves (default: derived from the run name); the same seed replays the same run. */
  seed?: number;
  /** Move cap per game, a draw when reached (default 256). */
  maxMoves?: number;
}

const TICK_MS = 20;
/** Most work one tick may do, so a stall is not followed by a long synchronous burst. */
const MAX_STEPS_PER_TICK = 500;
const MAX_MOVES_PER_TICK = 40;
/** In-process producers use small fixed ids; network connections are numbered from a higher range by the ingest side. */
export const DEMO_PRODUCER_ID = 1;

/** Where the demo trainer keeps its progress in ctx.durable (written as each value is published). */
const DURABLE = { steps: 0, games: 1, moves: 2, firstMateSeen: 3 } as const;

function readProgress(words: Float64Array): TrainerProgress {
  return { steps: words[DURABLE.steps], games: words[DURABLE.games], moves: words[DURABLE.moves], firstMateSeen: words[DURABLE.firstMateSeen] === 1 };
}

function writeProgress(words: Float64Array, core: DemoTrainerCore): void {
  const p = core.progress();
  words[DURABLE.steps] = p.steps;
  words[DURABLE.games] = p.games;
  words[DURABLE.moves] = p.moves;
  words[DURABLE.firstMateSeen] = p.firstMateSeen ? 1 : 0;
}

export default defineActor<DemoTrainerOptions>({
  start(ctx) {
    const { stepsPerSec, movesPerSec, crashEveryMs } = ctx.options;
    const ring = ctx.out[ctx.options.ring] as RecordRing | undefined;
    if (!ring) throw new Error(`demo trainer: no output ring "${ctx.options.ring}" (have: ${Object.keys(ctx.out).join(', ') || 'none'})`);
    const producer = new RingProducer({ ring, run: ctx.options.run, producerId: DEMO_PRODUCER_ID, metrics: ctx.metrics });
    const baseSeed = ctx.options.seed ?? seedFromString(ctx.options.run);
    const core = new DemoTrainerCore(producer, {
      seed: (baseSeed + ctx.incarnation * 0x9e3779b1) >>> 0,
      experience: ctx.options.experience ?? false,
      maxMoves: ctx.options.maxMoves,
      gameIdPrefix: ctx.incarnation > 0 ? `r${ctx.incarnation}-` : '',
      resume: readProgress(ctx.durable),
    });
    if (ctx.incarnation > 0) ctx.log.info(core.summary(), 'demo trainer resumes');
    const games = new Counter({ name: 'ringcast_demo_games_total', help: 'Self-play games the demo trainer finished', registers: [ctx.metrics] });
    const moves = new Counter({ name: 'ringcast_demo_moves_total', help: 'Self-play moves the demo trainer played', registers: [ctx.metrics] });
    const steps = new Counter({ name: 'ringcast_demo_steps_total', help: 'Simulated PPO updates the demo trainer emitted', registers: [ctx.metrics] });

    let crashTimer: NodeJS.Timeout | undefined;
    if (crashEveryMs > 0) {
      crashTimer = setTimeout(() => { throw new Error(`demo trainer chaos crash after ${crashEveryMs} ms`); }, crashEveryMs);
    }

    const durable = ctx.durable;
    let last = performance.now();
    let stepCarry = 0;
    let attentionCarry = 0;
    let moveCarry = 0;
    const tick = () => {
      const now = performance.now();
      const dt = (now - last) / 1000;
      last = now;
      stepCarry = Math.min(stepCarry + dt * stepsPerSec, MAX_STEPS_PER_TICK);
      attentionCarry = Math.min(attentionCarry + (dt * stepsPerSec) / 2, MAX_STEPS_PER_TICK);
      moveCarry = Math.min(moveCarry + dt * movesPerSec, MAX_MOVES_PER_TICK);
      let n = 0;
      // Progress is stored after every event, so a crash at any point resumes at or after
      // what viewers last saw.
      for (; stepCarry >= 1; stepCarry--, n++) { core.trainStep(); durable[DURABLE.steps] = core.steps; }
      steps.inc(n);
      for (; attentionCarry >= 1; attentionCarry--) core.emitAttention();
      const gamesBefore = core.games;
      n = 0;
      for (; moveCarry >= 1; moveCarry--, n++) { core.playMove(); writeProgress(durable, core); }
      moves.inc(n);
      games.inc(core.games - gamesBefore);
    };
    const ticker = setInterval(tick, TICK_MS);

    return {
      api: {
        summary: (): TrainerSummary => core.summary(),
        producerStats: () => producer.stats(),
      },
      async stop(): Promise<TrainerSummary> {
        clearInterval(ticker);
        if (crashTimer) clearTimeout(crashTimer);
        await producer.close();
        const summary = core.summary();
        ctx.log.info({ ...summary, producer: producer.stats() }, 'demo trainer stopped');
        return summary;
      },
    };
  },
});
