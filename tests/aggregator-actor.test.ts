/**
 * The aggregator actor under a real Supervisor: ingest records in, fan-out records out.
 * Needs the compiled actor: run `npx tsc -p .` first.
 */
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { Supervisor } from '../src/supervisor/supervisor.js';
import type { RecordRing } from '../src/shared/record-ring.js';
import { EventKind, encodeEvent, encodeMetrics, float32Bytes } from '../src/shared/telemetry/event-codec.js';
import { FanoutFlag, FanoutType, INGEST_HEADER_BYTES, readFanoutRecord, readIngestRecord, writeIngestRecord } from '../src/shared/telemetry/ring-records.js';
import { channelId } from '../src/shared/telemetry/channels.js';
import { MAX_RUNS, type AggregatorOptions } from '../src/actors/aggregator/index.js';
import type { RunSummary } from '../src/actors/aggregator/snapshot.js';

const WINDOW_MS = 100;
const options: AggregatorOptions = {
  inRings: ['ingest.x'], outRings: ['fanout.x'],
  windowMs: WINDOW_MS, seriesPoints: 50, smoothingAlpha: 0.2, attentionAlpha: 0.3, focusSquares: 3,
  health: { klHealthy: 0.01, clipHealthy: 0.1, klLearning: 0.05 },
  milestones: { klSettledBelow: 0.01, klSettledWindows: 30, entropyCollapseBelow: 0.5, lossPlateauWindows: 100, lossPlateauSlope: 1e-5, gameMarks: [10], bestWinRate: true },
};

interface Out { arrivedAt: number; type: number; channel: number; levelMask: number; flags: number; key: string; stamp: number; body: Uint8Array; msg?: { type: string; timestamp: number; data: Record<string, any> } }

let running: Supervisor | undefined;
afterEach(async () => {
  await running?.stop(3_000);
  running = undefined;
});

async function start(overrides: Partial<AggregatorOptions> = {}) {
  // A record ring (the recorder's tap) when the options name one.
  const recordRing = overrides.recordRing;
  const supervisor = new Supervisor({
    heartbeatIntervalMs: 50, hangTimeoutMs: 2_000, logLevel: 'error',
    rings: { 'ingest.x': { kind: 'record', capacityBytes: 1 << 20 }, 'fanout.x': { kind: 'record', capacityBytes: 1 << 22 }, ...(recordRing ? { [recordRing]: { kind: 'record' as const, capacityBytes: 1 << 20 } } : {}) },
    actors: [{ name: 'aggregator', module: new URL('../src/actors/aggregator/index.ts', import.meta.url), in: ['ingest.x'], out: recordRing ? ['fanout.x', recordRing] : ['fanout.x'], options: { ...options, ...overrides } }],
  }, pino({ level: 'warn' }));
  running = supervisor;
  await supervisor.start();
  const ingest = supervisor.ring<RecordRing>('ingest.x');
  const fanout = supervisor.ring<RecordRing>('fanout.x');
  const seen: Out[] = [];
  const drain = () => {
    fanout.poll((data, offset, length) => {
      const r = readFanoutRecord(data, offset, length);
      const body = data.slice(r.bodyOffset, r.bodyOffset + r.bodyLength);
      seen.push({ ...r, arrivedAt: Date.now(), body, msg: r.type === FanoutType.Update ? JSON.parse(new TextDecoder().decode(body)) : undefined });
    });
  };
  const send = (run: string, event: Uint8Array) => {
    expect(writeIngestRecord(ingest, Date.now(), 7, run, event, 0, event.byteLength)).toBe(true);
  };
  const waitFor = async (pred: (o: Out) => boolean, what: string, timeoutMs = 5_000): Promise<Out> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      drain();
      const hit = seen.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; saw ${seen.map((o) => o.msg?.type ?? o.type).join(',')}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  };
  return { supervisor, send, waitFor, seen, drain };
}

describe('aggregator actor', () => {
  it('refuses a relay ring without cluster mode: only an owner of a run may publish it to the other nodes', async () => {
    await expect(start({ relayRing: 'fanout.x' })).rejects.toThrow(/options\.relayRing \("fanout\.x"\) must be one of options\.outRings, and options\.cluster must be set/);
  });

  it('turns ingest records into ppo_metrics per level, milestones at once, experience forwarded as is', async () => {
    const { supervisor, send, waitFor, seen } = await start();
    const values = { 'ppo/kl_divergence_approx': 0.0042, 'ppo/clip_fraction': 0.03, 'ppo/policy_loss': 0.731, my_custom: 12.5 };
    const sourceAt = Date.now() - 1_500; // the trainer's clock, a little behind
    send('run-a', encodeMetrics(1234, values, undefined, { timestamp: sourceAt }));

    const first = await waitFor((o) => o.msg?.type === 'ppo_metrics', 'ppo_metrics');
    const window = seen.filter((o) => o.msg?.type === 'ppo_metrics' && o.msg.timestamp === first.msg!.timestamp);
    // Each window writes the full-series state (retained, not live) and the live tail update.
    const full = window.filter((o) => (o.msg!.data as { series: string }).series === 'full');
    const tail = window.filter((o) => (o.msg!.data as { series: string }).series === 'tail');
    expect(full.reduce((m, o) => m | o.levelMask, 0)).toBe(7); // every level got a variant
    expect(tail.reduce((m, o) => m | o.levelMask, 0)).toBe(7);
    for (const o of window) {
      const flags = (o.msg!.data as { series: string }).series === 'full' ? FanoutFlag.Retain | FanoutFlag.NoLive : FanoutFlag.LiveOnly;
      expect(o).toMatchObject({ type: FanoutType.Update, channel: channelId('metrics'), flags, key: 'ppo_metrics:run-a' });
      expect(o.msg!.data).toMatchObject({ run: 'run-a', step: 1234, values, health: { status: 'healthy', kl: 0.0042 } });
      // The record carries the source event's timestamp (end-to-end latency is measured from it);
      // the message says when the window closed.
      expect(o.stamp).toBe(sourceAt);
      expect(o.msg!.timestamp).toBeGreaterThan(sourceAt + 1_000);
    }

    // A milestone goes out as soon as it is read, not at the next window boundary.
    const sentAt = Date.now();
    send('run-a', encodeEvent(EventKind.Milestone, { name: 'checkpoint', message: 'checkpoint saved', step: 1234 }));
    const m = await waitFor((o) => o.msg?.type === 'milestone', 'milestone');
    expect(m).toMatchObject({ channel: channelId('milestones'), flags: FanoutFlag.Critical | FanoutFlag.Retain, levelMask: 7, key: 'milestone:run-a' });
    expect(m.msg!.data).toMatchObject({ id: 'run-a:trainer:checkpoint:s1234', name: 'checkpoint', message: 'checkpoint saved', critical: true });
    expect(m.stamp).toBeGreaterThanOrEqual(sentAt - 1);
    // Read here before the next window could have closed: windows close every WINDOW_MS after
    // first's window time (a timer never fires early; 2 ms for millisecond rounding), so a milestone
    // held back until a window would arrive at first.stamp + WINDOW_MS or later.
    expect(m.arrivedAt - first.msg!.timestamp).toBeLessThan(WINDOW_MS - 2);

    // Experience: forwarded byte for byte, no JSON.
    const exp = encodeEvent(EventKind.Experience, { game_id: 'g', player_id: 'p', turn: 1, action: 5, reward: 0, done: false, state_shape: [2] }, float32Bytes([1, 2]));
    send('run-a', exp);
    const fwd = await waitFor((o) => o.type === FanoutType.Experience, 'experience');
    // The key carries the record's sequence number, given here once for every gateway.
    expect(fwd).toMatchObject({ channel: 0, levelMask: 7, flags: 0, key: expect.stringMatching(/^\d+$/) });
    expect([...fwd.body]).toEqual([...exp]);
    // The key is zero-padded so the body lands at the ingest event's address mod 8 (shared-buffer
    // copies run word by word only between equally aligned ends); the number is the same.
    const ingestEventAt = supervisor.ring<RecordRing>('ingest.x').data.byteOffset + INGEST_HEADER_BYTES + 'run-a'.length; // reserve() offsets are 8-aligned
    expect((supervisor.ring<RecordRing>('fanout.x').data.byteOffset + (fwd as Out & { bodyOffset: number }).bodyOffset - ingestEventAt) & 7).toBe(0);
    send('run-a', exp);
    const next = await waitFor((o) => o.type === FanoutType.Experience && o.key !== fwd.key, 'a second experience');
    expect(Number(next.key)).toBe(Number(fwd.key) + 1);

    const runs = (await supervisor.call('aggregator', 'runs')) as RunSummary[];
    expect(runs).toEqual([expect.objectContaining({ run: 'run-a', step: 1234, events: 2, metrics: Object.keys(values), games: 0 })]);
  });

  it('keeps experience out of the record ring unless recordExperience is set; telemetry is recorded either way', async () => {
    const exp = encodeEvent(EventKind.Experience, { game_id: 'g', player_id: 'p', turn: 1, action: 5, reward: 0, done: false, state_shape: [2] }, float32Bytes([1, 2]));
    const recordedKinds = async (recordExperience: boolean | undefined): Promise<number[]> => {
      const { supervisor, send, waitFor } = await start({ recordRing: 'record.x', ...(recordExperience === undefined ? {} : { recordExperience }) });
      send('run-r', exp);
      send('run-r', encodeMetrics(5, { policy_loss: 1 }));
      // The metrics event is handled after the experience one: once its update is out, both were.
      await waitFor((o) => o.type === FanoutType.Experience, 'experience');
      await waitFor((o) => o.msg?.type === 'ppo_metrics', 'ppo_metrics');
      const kinds: number[] = [];
      const deadline = Date.now() + 2_000;
      // The record ring is flushed at the aggregator's window: wait for the metrics event's copy.
      while (!kinds.includes(EventKind.Metrics) && Date.now() < deadline) {
        supervisor.ring<RecordRing>('record.x').poll((data, offset, length) => {
          const rec = readIngestRecord(data, offset, length);
          expect(rec.run).toBe('run-r');
          kinds.push(data[rec.eventOffset + 1]);
        });
        await new Promise((r) => setTimeout(r, 10));
      }
      await supervisor.stop(3_000);
      running = undefined;
      return kinds;
    };
    expect(await recordedKinds(undefined)).toEqual([EventKind.Metrics]);
    expect(await recordedKinds(false)).toEqual([EventKind.Metrics]);
    expect(await recordedKinds(true)).toEqual([EventKind.Experience, EventKind.Metrics]);
  });

  it('gen-2 metrics on the default run, a bad record skipped and counted, state over RPC', async () => {
    const { supervisor, send, waitFor } = await start();
    send('', encodeEvent(EventKind.Metrics, undefined, new Uint8Array([1, 2, 3]))); // truncated payload
    send('', encodeMetrics(77, { policy_loss: 1.5, gradient_norm: 0.9 }));
    const msg = await waitFor((o) => o.msg?.type === 'ppo_metrics' && o.levelMask === 1, 'beginner ppo_metrics');
    expect(msg.key).toBe('ppo_metrics:default');
    expect(msg.msg!.data).toMatchObject({ run: 'default', step: 77, values: { policy_loss: 1.5, gradient_norm: 0.9 }, health: { status: 'unknown', kl: null } });
    expect(msg.msg!.data.explanation).toMatch(/does not send/);
    const stats = (await supervisor.call('aggregator', 'stats')) as { decodeFailures: number; events: number; eventsByKind: Record<string, number> };
    expect(stats.decodeFailures).toBe(1);
    expect(stats.events).toBe(1);
    expect(stats.eventsByKind.metrics).toBe(1);
    const snap = (await supervisor.call('aggregator', 'snapshot')) as { runs: Record<string, any> };
    expect(snap.runs.default).toMatchObject({ step: 77, values: { policy_loss: 1.5 }, health: { status: 'unknown' } });
    expect(await supervisor.metrics()).toMatch(/ringcast_aggregator_decode_failures_total\{actor="aggregator"\} 1/);

    // A policy without a trainer heatmap yields a move prediction and a policy-derived heatmap.
    send('', encodeEvent(EventKind.Policy, { top_moves: [{ move: '7g7f', prob: 0.5 }, { move: 'P*5e', prob: 0.2 }], value: 0.1, step: 78 }));
    const heat = await waitFor((o) => o.msg?.type === 'board_heatmap', 'board_heatmap');
    expect(heat).toMatchObject({ channel: channelId('attention'), levelMask: 7, key: 'board_heatmap:default' });
    expect(heat.msg!.data).toMatchObject({ source: 'policy', focus: ['7f', '5e'], step: 78 });
    const pred = await waitFor((o) => o.msg?.type === 'move_prediction' && o.levelMask === 2, 'move_prediction');
    expect(pred.msg!.data).toMatchObject({ step: 78, value: 0.1, top_moves: [{ move: '7g7f', prob: 0.5 }, { move: 'P*5e', prob: 0.2 }] });
    expect(pred.msg!.data.explanation).toMatch(/7g7f \(50%\)/);
    expect(pred.msg!.data.position_board).toBeNull(); // no position sent

    const { finals } = await supervisor.stop(3_000);
    running = undefined;
    expect(finals.aggregator).toMatchObject({ events: 2, runs: [expect.objectContaining({ run: 'default', step: 78 })] });
  });

  it('a move prediction that names its position carries it parsed (pieces per square, hands, side to move)', async () => {
    const { supervisor, send, waitFor } = await start();
    const sfen = 'lnsgkgsnl/1r5b1/ppppppppp/9/9/2P6/PP1PPPPPP/1B5R1/LNSGKGSNL w 2Pb 2';
    send('', encodeEvent(EventKind.Policy, { top_moves: [{ move: '3c3d', prob: 0.6 }], value: 0, step: 79, position: sfen }));
    const parsed = await waitFor((o) => o.msg?.type === 'move_prediction', 'move_prediction with a position');
    expect(parsed.msg!.data.position).toBe(sfen);
    const board = parsed.msg!.data.position_board as { board: string[][]; hands: unknown; turn: string };
    expect(board.board[5][2]).toBe('P'); // 7f
    expect(board.board[6][2]).toBe(''); // 7g
    expect(board.board[0]).toEqual(['l', 'n', 's', 'g', 'k', 'g', 's', 'n', 'l']);
    expect(board.hands).toEqual({ black: { P: 2 }, white: { B: 1 } });
    expect(board.turn).toBe('white');
    // An SFEN the server cannot read gives null, never a guessed board.
    send('', encodeEvent(EventKind.Policy, { top_moves: [{ move: '3c3d', prob: 0.6 }], value: 0, step: 80, position: 'lnsgkgsnl/9/9 b - 1' }));
    const unreadable = await waitFor((o) => o.msg?.type === 'move_prediction' && o.msg.data.step === 80, 'move_prediction with an unreadable position');
    expect(unreadable.msg!.data.position_board).toBeNull();
    await supervisor.stop(3_000);
    running = undefined;
  });

  it(`tracks at most ${MAX_RUNS} runs, evicting the least recently seen`, async () => {
    const { supervisor, send, waitFor } = await start();
    for (let i = 0; i <= MAX_RUNS; i++) send(`run-${i}`, encodeMetrics(i, { loss: i }));
    await waitFor((o) => o.key === `ppo_metrics:run-${MAX_RUNS}`, 'the last run\'s metrics');
    const runs = (await supervisor.call('aggregator', 'runs')) as RunSummary[];
    expect(runs).toHaveLength(MAX_RUNS);
    expect(runs.map((r) => r.run)).not.toContain('run-0');
    const stats = (await supervisor.call('aggregator', 'stats')) as { evictedRuns: number; dropped: Record<string, number> };
    expect(stats.evictedRuns).toBe(1);
    expect(stats.dropped.run_evicted).toBe(1);
  });

  describe('a burst of more steps than seriesPoints in one window', () => {
    const SERIES = options.seriesPoints;
    const BURST = 4 * SERIES + 7; // several parts, the last one partial
    const names = ['loss', 'entropy'];
    /** Every step's metrics written at once, as a trainer catching up after a stall sends them. */
    const burst = (send: (run: string, e: Uint8Array) => void) => {
      for (let step = 1; step <= BURST; step++) send('run-b', encodeMetrics(step, { loss: step / 10, entropy: 1000 + step }));
    };
    /** The live (tail) ppo_metrics a full-rate advanced client receives, in ring order. */
    const liveAdvanced = (seen: Out[]) => seen.filter((o) => o.msg?.type === 'ppo_metrics' && (o.flags & FanoutFlag.LiveOnly) && (o.levelMask & 4));

    it('reaches live clients: every step of every metric, in order, in parts of at most seriesPoints', async () => {
      const { send, waitFor, seen } = await start();
      burst(send);
      await waitFor((o) => o.msg?.type === 'ppo_metrics' && (o.flags & FanoutFlag.LiveOnly) !== 0 && (o.levelMask & 4) !== 0
        && (o.msg.data.metrics.loss?.steps as number[]).at(-1) === BURST, 'the last step live');
      const live = liveAdvanced(seen);
      for (const name of names) {
        const steps = live.flatMap((o) => o.msg!.data.metrics[name].steps as number[]);
        const series = live.flatMap((o) => o.msg!.data.metrics[name].series as number[]);
        expect(steps).toEqual(Array.from({ length: BURST }, (_, i) => i + 1));
        expect(series).toEqual(steps.map((s) => (name === 'loss' ? s / 10 : 1000 + s)));
        expect(steps.length).toBe(live.flatMap((o) => o.msg!.data.metrics[name].smoothed as number[]).length);
      }
      for (const o of live) {
        const loss = o.msg!.data.metrics.loss as { steps: number[]; series: number[] };
        expect(loss.steps.length).toBeLessThanOrEqual(SERIES);
        expect(o.msg!.data.dropped_points).toBeUndefined();
        // Every part's values are as of its own last point (what an intermediate client pairs with that step).
        expect(o.msg!.data.values.loss).toBe(loss.series.at(-1));
        // The run's step in every part (never a part's own, which could look like the step going back).
        expect(o.msg!.data.step).toBe(Math.max(...live.filter((x) => x.stamp === o.stamp).flatMap((x) => x.msg!.data.metrics.loss.steps as number[])));
      }
      // A window split into parts says so; beginner views (no points) go out once per window.
      const split = live.filter((o) => o.msg!.data.parts > 1);
      expect(split.length).toBeGreaterThan(0);
      const beginner = seen.filter((o) => o.msg?.type === 'ppo_metrics' && (o.flags & FanoutFlag.LiveOnly) && (o.levelMask & 1));
      const windows = new Set(live.map((o) => o.stamp));
      expect(beginner.length).toBe(windows.size);
    });

    it('beyond aggregate.burstPoints: the rest is dropped, counted, and the client told', async () => {
      const BUDGET = 30;
      const { supervisor, send, waitFor, seen } = await start({ burstPoints: BUDGET });
      burst(send);
      await waitFor((o) => o.msg?.type === 'ppo_metrics' && (o.flags & FanoutFlag.LiveOnly) !== 0 && (o.levelMask & 4) !== 0
        && (o.msg.data.metrics.loss?.steps as number[]).at(-1) === BURST, 'the last step live');
      const live = liveAdvanced(seen);
      let received = 0;
      for (const name of names) {
        const steps = live.flatMap((o) => o.msg!.data.metrics[name].steps as number[]);
        expect(new Set(steps).size).toBe(steps.length); // nothing twice
        expect(steps).toEqual([...steps].sort((a, b) => a - b)); // in order
        received += steps.length;
      }
      const told = live.reduce((n, o) => n + (o.msg!.data.dropped_points ?? 0), 0);
      const perMetricTold = live.reduce((n, o) => n + names.reduce((m, name) => m + (o.msg!.data.metrics[name].dropped ?? 0), 0), 0);
      expect(told).toBeGreaterThan(0);
      expect(perMetricTold).toBe(told);
      expect(received + told).toBe(names.length * BURST); // every point either delivered or reported dropped
      const stats = (await supervisor.call('aggregator', 'stats')) as { dropped: Record<string, number> };
      expect(stats.dropped.burst_points).toBe(told);
      expect(await supervisor.metrics()).toMatch(new RegExp(`ringcast_aggregator_dropped_total\\{reason="burst_points",actor="aggregator"\\} ${told}`));
    });
  });
});
