import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { createProducer, type NetworkProducer } from '../src/sdk/index.js';
import { PriorityDropQueue } from '../src/sdk/priority-queue.js';
import { WsClient } from '../src/sdk/ws-client.js';
import {
  concatFrame, decodeEvent, decodeFrame, encodeEvent, EventKind,
  type BoardHeatmapEvent, type ExperienceEvent, type GameStateEvent, type MetricsEvent, type MilestoneEvent, type PolicyEvent, type SeAttentionEvent, type TelemetryEvent,
} from '../src/shared/telemetry/event-codec.js';
import { readIngestRecord } from '../src/shared/telemetry/ring-records.js';
import { until } from './helpers/supervisor-harness.js';
import { INGEST_TOKEN as GATEWAY_TOKEN, startGateways } from './fixtures/gateway-harness.js';
import { startIngest, TOKEN, type IngestRig } from './helpers/ingest-harness.js';

const cleanup: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});
const track = <T extends NetworkProducer>(p: T): T => { cleanup.push(() => p.close(200)); return p; };
const rigged = async (...args: Parameters<typeof startIngest>) => { const rig = await startIngest(...args); cleanup.push(() => rig.stop()); return rig; };
const tmpSocket = () => { const dir = mkdtempSync(path.join(tmpdir(), 'ringcast-sdk-')); cleanup.push(() => rmSync(dir, { recursive: true, force: true })); return path.join(dir, 'ingest.sock'); };
const kindsOf = (rig: IngestRig) => rig.records.map((r) => r.event.kind);

function emitAll(p: NetworkProducer): void {
  p.emitPpoMetrics({ 'ppo/policy_loss': 0.125, 'ppo/value_loss': 2.5, gradient_norm: 0.75 }, 42);
  p.emitPredictions([{ move: '7g7f', prob: 0.6 }, { move: '2g2f', prob: 0.3 }], 'lnsgkgsnl/1r5b1/ppppppppp/9/9/9/PPPPPPPPP/1B5R1/LNSGKGSNL b - 1', 0.1, 42);
  p.cacheAttentionWeights([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], undefined, 42);
  p.emitBoardHeatmap(Float32Array.from({ length: 81 }, (_, i) => i / 81), 42);
  p.emitGameState({ gameId: 'g-1', sfen: 'startpos', moves: ['7g7f'], moveCount: 1 });
  p.emitMilestone({ name: 'best_win_rate', message: 'new best', value: 0.61, step: 42 });
  p.emitExperience({ gameId: 'g-1', playerId: 'p0', turn: 3, action: 1234, reward: -1, done: true, state: new Float32Array(2 * 9 * 9).fill(0.5), stateShape: [2, 9, 9], legalMask: [1, 0, 1, 1] });
}

describe('network producer → ingest actor', () => {
  it('tcp: every emit kind arrives with its values', async () => {
    const rig = await rigged();
    const p = track(createProducer(`tcp://127.0.0.1:${rig.address.tcpPort}`, { token: TOKEN, run: 'sdk-run', flushIntervalMs: 5 }));
    emitAll(p);
    await until(() => rig.records.length >= 7, 5_000, 'seven events', rig.drain);
    expect(kindsOf(rig)).toEqual([EventKind.Metrics, EventKind.Policy, EventKind.SeAttention, EventKind.BoardHeatmap, EventKind.GameState, EventKind.Milestone, EventKind.Experience]);
    expect(rig.records.every((r) => r.run === 'sdk-run')).toBe(true);
    const [m, pol, att, heat, game, mile, exp] = rig.records.map((r) => r.event) as [MetricsEvent, PolicyEvent, SeAttentionEvent, BoardHeatmapEvent, GameStateEvent, MilestoneEvent, ExperienceEvent];
    expect(m.step).toBe(42);
    expect(Object.fromEntries(m.names.map((n, i) => [n, m.values[i]]))).toEqual({ 'ppo/policy_loss': 0.125, 'ppo/value_loss': 2.5, gradient_norm: 0.75 });
    expect(pol.topMoves).toEqual([{ move: '7g7f', prob: 0.6 }, { move: '2g2f', prob: 0.3 }]);
    expect(pol.value).toBe(0.1);
    expect([att.blocks, att.channels, att.weights[4]]).toEqual([2, 3, Math.fround(0.5)]);
    expect(heat.grid[80]).toBe(Math.fround(80 / 81));
    expect([game.gameId, game.sfen, game.moves, game.moveCount]).toEqual(['g-1', 'startpos', ['7g7f'], 1]);
    expect([mile.name, mile.value, mile.step]).toEqual(['best_win_rate', 0.61, 42]);
    expect([exp.turn, exp.action, exp.reward, exp.done, exp.stateShape, exp.maskLen]).toEqual([3, 1234, -1, true, [2, 9, 9], 4]);
    await until(() => p.stats().state === 'connected', 2_000, 'connected');
    expect(p.stats()).toMatchObject({ sent: 7, queued: 0, errorsFromServer: 0, dropped: {}, connections: 1 });
  });

  it('unix: events arrive; close() flushes what is queued', async () => {
    const rig = await rigged({ tcpPort: -1 });
    const p = createProducer(`unix://${rig.address.unixPath}`, { token: TOKEN, flushIntervalMs: 1_000 });
    for (let step = 0; step < 1_000; step++) p.emitPpoMetrics({ loss: step }, step);
    await p.close(3_000);
    expect(p.stats()).toMatchObject({ sent: 1_000, queued: 0, state: 'closed', dropped: {} });
    await until(() => rig.records.length >= 1_000, 5_000, 'all events', rig.drain);
    expect(rig.records.map((r) => (r.event as MetricsEvent).step)).toEqual(Array.from({ length: 1_000 }, (_, i) => i));
    expect(rig.records[0].run).toBe('default');
    p.emitMilestone({ name: 'late' });
    expect(p.stats().dropped).toEqual({ closed_milestone: 1 });
  });

  it('reconnects after the ingest actor is killed and restarted, and keeps sending', async () => {
    const rig = await rigged({ tcpPort: -1 });
    const p = track(createProducer(`unix://${rig.address.unixPath}`, { token: TOKEN, flushIntervalMs: 5, reconnect: { initialMs: 20, maxMs: 100 }, breaker: { openMs: 200 } }));
    let step = 0;
    const ticker = setInterval(() => p.emitPpoMetrics({ loss: step }, step++), 5);
    cleanup.push(() => clearInterval(ticker));
    await until(() => rig.records.length >= 10, 5_000, 'first events', rig.drain);
    await rig.supervisor.crash('ingest');
    await until(() => rig.supervisor.incarnation('ingest') === 1 && rig.supervisor.health().ok, 10_000, 'restart');
    const crashedAt = step;
    await until(() => rig.records.some((r) => (r.event as MetricsEvent).step > crashedAt + 10), 10_000, `events after the restart ${JSON.stringify(p.stats())}`, rig.drain);
    expect(p.stats().connections).toBeGreaterThanOrEqual(2);
    expect(p.stats().errorsFromServer).toBe(0);
  });

  it('a wrong token: the server Error is read and counted, the breaker opens', async () => {
    const rig = await rigged();
    const p = track(createProducer(`tcp://127.0.0.1:${rig.address.tcpPort}`, { token: 'not-the-token', reconnect: { initialMs: 5, maxMs: 10 }, breaker: { failureThreshold: 2, openMs: 60_000 } }));
    p.emitMilestone({ name: 'x' });
    await until(() => p.stats().state === 'open', 5_000, 'breaker open');
    expect(p.stats()).toMatchObject({ errorsFromServer: 2, lastServerError: 'invalid ingest token (hello)', connectFailures: 2, connections: 0 });
    rig.drain();
    expect(rig.records).toEqual([]);
  });
});

describe('network producer without a server', () => {
  it('emit never throws, with nothing listening and with bad input; close() gives up in time and counts what was left', async () => {
    const p = createProducer(`unix://${tmpSocket()}`, { token: TOKEN, reconnect: { initialMs: 5 } });
    const bad: Array<() => void> = [
      () => p.emitPpoMetrics({ loss: 1, bad: Number.NaN }, 1),
      () => p.emitPpoMetrics(null as unknown as Record<string, number>, 1),
      () => p.emitPredictions([], undefined),
      () => p.cacheAttentionWeights([[1, 2], [3]]),
      () => p.emitBoardHeatmap([1, 2, 3]),
      () => p.emitGameState({} as never),
      () => p.emitMilestone({ name: '' }),
      () => p.emitExperience({ gameId: 'g', playerId: 'p', turn: -1, action: 0, reward: 0, done: false, state: [] }),
    ];
    for (const f of bad) expect(f).not.toThrow();
    const t0 = performance.now();
    await p.close(150);
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(p.stats().dropped).toEqual({
      metrics_invalid_value: 1, invalid_metrics: 1, invalid_policy: 1, invalid_se_attention: 1, invalid_board_heatmap: 1,
      invalid_game_state: 1, invalid_milestone: 1, invalid_experience: 1, unsent_metrics: 1,
    });
    expect(p.lastInputError()).toMatch(/experience: turn/);
    expect(() => createProducer('http://x', { token: TOKEN })).toThrow(/unsupported scheme/);
  });

  it('queue overflow drops the lowest priority, oldest first; what survives is delivered in order', async () => {
    const socketPath = tmpSocket();
    const p = track(createProducer(`unix://${socketPath}`, { token: TOKEN, queueSize: 10, flushIntervalMs: 5, reconnect: { initialMs: 10, maxMs: 20 }, breaker: { failureThreshold: 1_000 } }));
    const exp = (turn: number) => ({ gameId: 'g', playerId: 'p', turn, action: 0, reward: 0, done: false, state: [1], stateShape: [1] });
    for (let i = 0; i < 3; i++) p.emitMilestone({ name: `m${i}` });
    for (let i = 0; i < 6; i++) p.emitExperience(exp(i));
    for (let i = 0; i < 4; i++) p.emitPpoMetrics({ loss: i }, i); // the first fits, the rest evict experience 0..2
    p.cacheAttentionWeights([1, 2, 3]); // evicts experience 3
    expect(p.stats()).toMatchObject({ queued: 10, dropped: { experience: 4 } });
    for (let i = 0; i < 3; i++) p.emitPpoMetrics({ loss: 10 + i }, 10 + i); // experience 4, 5, then attention
    expect(p.stats().dropped).toEqual({ experience: 6, se_attention: 1 });
    p.emitExperience(exp(99)); // lowest priority and the queue holds nothing lower: the new one goes
    expect(p.stats().dropped).toEqual({ experience: 7, se_attention: 1 });
    for (let i = 0; i < 4; i++) p.emitMilestone({ name: `late${i}` }); // evicts the four oldest metrics
    expect(p.stats().dropped).toEqual({ experience: 7, se_attention: 1, metrics: 4 });

    const rig = await rigged({ unixPath: socketPath, tcpPort: -1 });
    await until(() => rig.records.length >= 10, 10_000, 'the survivors', rig.drain);
    const names = rig.records.map((r) => (r.event.kind === EventKind.Milestone ? (r.event as MilestoneEvent).name : `step${(r.event as MetricsEvent).step}`));
    expect(names).toEqual(['m0', 'm1', 'm2', 'step10', 'step11', 'step12', 'late0', 'late1', 'late2', 'late3']);
  });

  it('circuit breaker: opens after repeated failures, stops trying, half-opens, fails again, then closes on success', async () => {
    const socketPath = tmpSocket();
    const states: string[] = [];
    const p = track(createProducer(`unix://${socketPath}`, {
      token: TOKEN, reconnect: { initialMs: 5, maxMs: 10 }, breaker: { failureThreshold: 3, openMs: 300 }, onStateChange: (s) => states.push(s),
    }));
    await until(() => p.stats().state === 'open', 3_000, 'open');
    expect(p.stats().connectFailures).toBe(3);
    await new Promise((r) => setTimeout(r, 150));
    expect(p.stats().connectFailures).toBe(3); // no attempts while open
    await until(() => p.stats().connectFailures === 4, 3_000, 'the half-open trial fails');
    expect(p.stats().breaker).toBe('open');
    const rig = await rigged({ unixPath: socketPath, tcpPort: -1 });
    await until(() => p.stats().state === 'connected', 5_000, 'connected after the next half-open');
    // Start-up of the rig may span more than one open period; the pattern is what matters.
    expect(states.slice(0, 3)).toEqual(['open', 'half-open', 'open']);
    expect(states.slice(-2)).toEqual(['half-open', 'connected']);
    expect(states.slice(0, -1).every((s, i) => s === (i % 2 === 0 ? 'open' : 'half-open'))).toBe(true);
    p.emitMilestone({ name: 'back' });
    await until(() => rig.records.length === 1, 3_000, 'event after recovery', rig.drain);
  });
});

describe('PriorityDropQueue', () => {
  it('bounds bytes too, refuses an event larger than the whole budget, and keeps FIFO order across levels', () => {
    const q = new PriorityDropQueue<string>(100, 10, 3);
    const dropped: string[] = [];
    const on = (t: string) => dropped.push(t);
    q.push(new Uint8Array(4), 1, 'a', on);
    q.push(new Uint8Array(4), 0, 'b', on);
    q.push(new Uint8Array(11), 2, 'huge', on);
    q.push(new Uint8Array(4), 2, 'c', on); // 12 > 10: evicts b (lowest)
    expect(dropped).toEqual(['huge', 'b']);
    expect([q.length, q.bytes]).toEqual([2, 8]);
    expect([q.shift()!.tag, q.shift()!.tag, q.shift()]).toEqual(['a', 'c', undefined]);
  });

  it('requeueFront puts unconfirmed events back ahead of everything, in order, within the bounds', () => {
    const q = new PriorityDropQueue<string>(4, 100, 3);
    const dropped: string[] = [];
    const on = (t: string) => dropped.push(t);
    q.push(new Uint8Array(1), 1, 'new1', on);
    q.push(new Uint8Array(1), 0, 'new2', on);
    const e = (tag: string, priority: number) => ({ bytes: new Uint8Array(1), priority, tag });
    q.requeueFront([e('old1', 2), e('old2', 0), e('old3', 1)], on); // 5 > 4 events: the lowest priority oldest goes
    expect(dropped).toEqual(['old2']);
    const order: string[] = [];
    for (let x = q.shift(); x; x = q.shift()) order.push(`${x.tag}@${x.priority}`);
    expect(order).toEqual(['old1@2', 'old3@1', 'new1@1', 'new2@0']);
  });
});

describe('network producer: per-frame acks', () => {
  it('a server that takes frames and never acknowledges them is left after ackTimeoutMs; the frames go out again', async () => {
    let connection = 0;
    const steps: number[][] = [];
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/ingest' });
    cleanup.push(() => new Promise((r) => wss.close(r)));
    await new Promise((r) => wss.once('listening', r));
    wss.on('connection', (socket) => {
      const mine = connection++;
      steps[mine] = [];
      let frames = 0;
      socket.on('message', (data: Buffer) => {
        const events: TelemetryEvent[] = [];
        decodeFrame(new Uint8Array(data), (ev) => events.push(ev), () => {});
        if (events[0]?.kind === EventKind.Hello) {
          expect((decodeEvent(new Uint8Array(data)) as unknown as { acks: boolean }).acks).toBe(true);
          socket.send(encodeEvent(EventKind.Ack, { ok: true, run: 'r', acks: true }));
          return;
        }
        for (const ev of events) if (ev.kind === EventKind.Metrics) steps[mine].push((ev as MetricsEvent).step);
        frames++;
        if (mine > 0) socket.send(encodeEvent(EventKind.Ack, { frames })); // only the second connection acks
      });
    });
    const p = track(createProducer(`ws://127.0.0.1:${(wss.address() as { port: number }).port}/ingest`, {
      token: 'tok-12345', flushIntervalMs: 5, ackTimeoutMs: 300, reconnect: { initialMs: 10, maxMs: 50 },
    }));
    await until(() => p.stats().connections === 1, 3_000, 'connected');
    for (let step = 1; step <= 5; step++) p.emitPpoMetrics({ loss: step }, step);
    await until(() => p.stats().delivered === 5, 5_000, 'delivered on the second connection');
    expect(steps[0]).toEqual([1, 2, 3, 4, 5]); // swallowed by the first
    expect(steps[1]).toEqual([1, 2, 3, 4, 5]); // sent again, in order
    expect(p.stats()).toMatchObject({ resent: 5, unacked: 0, connections: 2, dropped: {} });
    expect(p.stats().lastTransportError).toMatch(/stopped acknowledging/);
  });
});

describe('WsClient and the producer over ws:// (against the ws package server)', () => {
  it('handshake, masked binary frames, hello first, server replies read, ping answered, close handshake', async () => {
    const received: TelemetryEvent[] = [];
    let authHeader: string | undefined;
    let pongs = 0;
    let closeCode = 0;
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/ingest' });
    cleanup.push(() => new Promise((r) => wss.close(r)));
    await new Promise((r) => wss.once('listening', r));
    wss.on('connection', (socket, req) => {
      authHeader = req.headers.authorization;
      socket.on('pong', () => pongs++);
      socket.on('close', (code) => { closeCode = code; });
      socket.on('message', (data: Buffer) => {
        decodeFrame(new Uint8Array(data), (e) => received.push(e), () => {});
        if (received.length === 1) {
          socket.ping();
          // Two replies in one message, and one message split into fragments.
          socket.send(concatFrame([encodeEvent(EventKind.Ack, { ok: true, run: 'r' }), encodeEvent(EventKind.Error, { error: 'first' })]));
          const err = encodeEvent(EventKind.Error, { error: 'fragmented' });
          socket.send(err.subarray(0, 10), { fin: false });
          socket.send(err.subarray(10), { fin: true });
        }
      });
    });
    const port = (wss.address() as { port: number }).port;
    const p = track(createProducer(`ws://127.0.0.1:${port}/ingest`, { token: TOKEN, run: 'r', flushIntervalMs: 5 }));
    const big = Float32Array.from({ length: 46 * 9 * 9 }, (_, i) => i);
    p.emitExperience({ gameId: 'g', playerId: 'p', turn: 1, action: 2, reward: 0.5, done: false, state: big, stateShape: [46, 9, 9] });
    p.emitPpoMetrics({ loss: 1 }, 7);
    await until(() => received.length >= 3 && p.stats().errorsFromServer === 2 && pongs === 1, 5_000, 'events, replies and a pong');
    expect(authHeader).toBe(`Bearer ${TOKEN}`);
    expect(received[0]).toMatchObject({ kind: EventKind.Hello, token: TOKEN, run: 'r' });
    expect(received[1]).toMatchObject({ kind: EventKind.Experience, turn: 1, stateBytes: 46 * 81 * 4 });
    expect(received[2]).toMatchObject({ kind: EventKind.Metrics, step: 7 });
    expect(p.stats()).toMatchObject({ state: 'connected', connections: 1, lastServerError: 'fragmented' });
    await p.close(1_000);
    await until(() => closeCode !== 0, 2_000, 'server sees the close');
    expect(closeCode).toBe(1000);
  });

  it('the producer over ws:// against the real gateway (uWebSockets.js): every kind lands in its ingest ring', async () => {
    const gw = await startGateways({ count: 1 });
    cleanup.push(() => gw.stop());
    const p = track(createProducer(`ws://127.0.0.1:${gw.port}/ingest`, { token: GATEWAY_TOKEN, run: 'sdk-ws', flushIntervalMs: 5 }));
    emitAll(p);
    const kinds: EventKind[] = [];
    const runs = new Set<string>();
    await until(() => {
      gw.ingest(0).poll((data, offset, length) => {
        const r = readIngestRecord(data, offset, length);
        runs.add(r.run);
        kinds.push(decodeEvent(data.slice(r.eventOffset, r.eventOffset + r.eventLength)).kind);
      });
      return kinds.length >= 7;
    }, 5_000, 'seven events through the gateway');
    expect(kinds).toEqual([EventKind.Metrics, EventKind.Policy, EventKind.SeAttention, EventKind.BoardHeatmap, EventKind.GameState, EventKind.Milestone, EventKind.Experience]);
    expect([...runs]).toEqual(['sdk-ws']);
    await until(() => p.stats().connections === 1, 2_000, 'the gateway acks the hello');
    expect(p.stats()).toMatchObject({ errorsFromServer: 0, state: 'connected' });
  });

  it('a refused upgrade is an error and a close, not a throw', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, verifyClient: () => false });
    cleanup.push(() => new Promise((r) => wss.close(r)));
    await new Promise((r) => wss.once('listening', r));
    const client = new WsClient(`ws://127.0.0.1:${(wss.address() as { port: number }).port}/ingest`);
    const errors: string[] = [];
    client.on('error', (e: Error) => errors.push(e.message));
    const code = await new Promise<number>((r) => client.on('close', r));
    expect(code).toBe(1006);
    expect(errors[0]).toMatch(/upgrade refused .* 401/);
    expect(client.send(new Uint8Array(1))).toBe(false);
  });
});
