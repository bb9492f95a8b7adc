/**
 * Delta subscriptions through the real service (demo trainer → aggregator → gateway):
 * a delta subscriber rebuilds (overlay/lib/delta-state.js) exactly the messages a full
 * subscriber gets, at the live tier and at a conflated tier, recovers from a lost delta
 * with a resync; a metrics delta is a fraction of the full state it rebuilds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { OverlayClient, startHarness, type Harness, type WsMessage } from './helpers/service-harness.js';
import { metricSum } from './helpers/metrics-scrape.js';
// @ts-expect-error plain ES module without types
import { deltaState } from '../overlay/lib/delta-state.js';

const CHANNELS = ['metrics', 'attention', 'predictions'];

/** A delta client as the overlay pages run one: rebuilds full messages, asks for a resync on a gap; can be told to lose deltas. */
class DeltaClient {
  readonly held = deltaState();
  /** Rebuilt messages by `${type}:${run}:${timestamp}`. */
  readonly history = new Map<string, WsMessage>();
  bytes = 0;
  readonly byKind = new Map<string, [number, number]>();
  deltas = 0;
  fulls = 0;
  resyncs = 0;
  loseNext = 0;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (raw) => {
      const text = String(raw);
      this.bytes += Buffer.byteLength(text);
      const msg = JSON.parse(text) as WsMessage;
      // A delta names no key: the key is the one held at its base version.
      const kind = msg.type === 'delta' ? `delta/${String(this.held.keyOf(msg)).split(':')[0]}` : `${msg.type}/`;
      const b = this.byKind.get(kind) ?? [0, 0];
      this.byKind.set(kind, [b[0] + 1, b[1] + Buffer.byteLength(text)]);
      if (msg.type === 'delta') {
        this.deltas++;
        if (this.loseNext > 0) { this.loseNext--; return; }
      } else if (typeof msg.seq === 'number') this.fulls++;
      const { message, resync } = this.held.accept(msg);
      if (resync) { this.resyncs++; ws.send('{"type":"resync"}'); }
      if (message?.data?.run !== undefined) this.history.set(`${message.type}:${message.data.run}:${message.timestamp}`, message);
    });
  }

  static async connect(port: number, sub: Record<string, unknown>): Promise<DeltaClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const c = new DeltaClient(ws);
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
    ws.send(JSON.stringify({ ...sub, delta: true }));
    return c;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const keyOf = (m: WsMessage) => `${m.type}:${m.data?.run}:${m.timestamp}`;

describe('/ws delta subscriptions', () => {
  let h: Harness;
  beforeAll(async () => { h = await startHarness(['--demo', '--fanout-threads', '1']); }, 60_000);
  afterAll(async () => { await h?.close(); }, 30_000);

  it('a delta subscriber rebuilds exactly what full subscribers get (live and conflated tiers), recovers a lost delta by resync; a metrics delta is a fraction of the full state', async () => {
    const port = h.service.port;
    const live = await DeltaClient.connect(port, { channels: CHANNELS, level: 'intermediate', max_fps: 60 });
    const slow = await DeltaClient.connect(port, { channels: CHANNELS, level: 'intermediate', max_fps: 2 });
    const full = await OverlayClient.connect(port, { channels: CHANNELS, level: 'intermediate', max_fps: 60 });
    let fullBytes = 0;
    full.ws.on('message', (raw) => { fullBytes += Buffer.byteLength(String(raw)); });
    await sleep(2500);
    live.loseNext = 2; // two deltas lost in a row: the next one does not follow what it holds
    await sleep(2500);

    // Every state message a full subscriber got (except ppo_metrics tails, which are not state) was rebuilt identically.
    const fullState = full.messages.filter((m) => m.data?.run !== undefined && !(m.type === 'ppo_metrics' && m.data?.series === 'tail'));
    const compared = fullState.filter((m) => live.history.has(keyOf(m)));
    expect(compared.length).toBeGreaterThan(20);
    for (const m of compared) expect(live.history.get(keyOf(m))).toEqual({ type: m.type, timestamp: m.timestamp, data: m.data });
    // Live ppo_metrics tails agree with the rebuilt full state of the same window: same values, statistics and newest points.
    const tails = full.messages.filter((m) => m.type === 'ppo_metrics' && m.data?.series === 'tail' && live.history.has(keyOf(m)) && m.data?.part === undefined);
    expect(tails.length).toBeGreaterThan(10);
    for (const t of tails) {
      const d = live.history.get(keyOf(t))!.data as Record<string, any>;
      const td = t.data as Record<string, any>;
      expect(d.values).toEqual(td.values);
      expect(d.series).toBe('full');
      for (const [name, m] of Object.entries(td.metrics as Record<string, any>)) {
        const { smoothed, steps, ...stats } = m;
        expect(d.metrics[name]).toMatchObject(stats);
        expect(d.metrics[name].steps.slice(-steps.length)).toEqual(steps);
        expect(d.metrics[name].smoothed.slice(-smoothed.length)).toEqual(smoothed);
      }
    }

    // The lost deltas were noticed and repaired by a resync (full, versioned state).
    expect(live.resyncs).toBeGreaterThanOrEqual(1);
    expect(await metricSum(port, 'ringcast_gateway_resyncs_total')).toBe(live.resyncs);
    expect(await metricSum(port, 'ringcast_gateway_delta_updates_total', { kind: 'delta' })).toBeGreaterThan(50);
    expect(live.deltas).toBeGreaterThan(50);

    // A fresh full subscriber's snapshot: the latest retained state; both delta clients rebuilt those same messages.
    const late = await OverlayClient.connect(port, { channels: CHANNELS, level: 'intermediate', max_fps: 60 });
    await sleep(1500);
    const stateMessages = late.messages.filter((m) => m.data?.run !== undefined && m.data?.series !== 'tail');
    const snapshot = [...new Map(stateMessages.reverse().map((m) => [m.type, m])).values()]; // first of each type
    expect(snapshot.map((m) => m.type).sort()).toEqual(['board_heatmap', 'move_prediction', 'ppo_metrics', 'se_attention']);
    for (const m of snapshot) expect(live.history.get(keyOf(m))).toEqual({ type: m.type, timestamp: m.timestamp, data: m.data });
    // The 2-fps tier: fewer messages, each one exactly the live state of its window.
    expect(slow.history.size).toBeGreaterThan(5);
    let slowCompared = 0;
    for (const [k, m] of slow.history) if (live.history.has(k)) { slowCompared++; expect(m).toEqual(live.history.get(k)); }
    expect(slowCompared).toBeGreaterThan(5);
    expect(slow.resyncs).toBe(0);

    // Bytes: a ppo_metrics delta is a fraction of the full state it rebuilds (the whole series).
    const [n, deltaBytes] = live.byKind.get('delta/ppo_metrics')!;
    const fullPpo = JSON.stringify(snapshot.find((m) => m.type === 'ppo_metrics')).length;
    expect(deltaBytes / n).toBeLessThan(fullPpo / 3);
    // The demo's SE attention evolves slowly: at the precision the summaries show, a delta names the few numbers that moved.
    const [ns, seDeltaBytes] = live.byKind.get('delta/se_attention')!;
    const fullSe = JSON.stringify(snapshot.find((m) => m.type === 'se_attention')).length;
    expect(seDeltaBytes / ns).toBeLessThan(fullSe / 5);
    // In all (snapshot and resync included), the delta client read well under what the full client did.
    expect(live.bytes).toBeLessThan(fullBytes * 0.6);
    console.log(JSON.stringify([...live.byKind]));
    console.log(`5 s at intermediate: full ${fullBytes} B, delta ${live.bytes} B (${live.deltas} deltas, ${live.fulls} full, ${live.resyncs} resyncs)`);
    for (const c of [live, slow]) c.ws.terminate();
    full.close();
    late.close();
  }, 30_000);
});
