/**
 * The gateway's experience stream with upstream sequence numbers (written in the record key as
 * the aggregator does): the retained window's byte bound, `missed` when a consumer resumes
 * behind it, per_game_cap, sample_rate, max_rate drops, ranges and reward filters, and the
 * per-consumer metrics with their bounded `consumer` label.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEvent, EventKind, float32Bytes, decodeEvent, type ExperienceEvent } from '../src/shared/telemetry/event-codec.js';
import { FanoutType } from '../src/shared/telemetry/ring-records.js';
import { decodeBatchV2 } from '../src/shared/telemetry/experience-batch.js';
import { INGEST_TOKEN, sleep, startGateways, TestClient, type GatewayCluster } from './fixtures/gateway-harness.js';

const RECORD_VALUES = 1000; // ~4 KB per record
let gw: GatewayCluster;
let seq = 1_000_000;
beforeAll(async () => {
  gw = await startGateways({ options: { experience: { batchSize: 4, timeoutMs: 50, queueBatches: 64, retainBytes: 100 * 4200, retainMs: 60_000 } } });
});
afterAll(async () => { await gw?.stop(); });

function publish(game: string, player: string, turn: number, reward = 0, done = false): number {
  const bytes = encodeEvent(EventKind.Experience, { game_id: game, player_id: player, turn, action: turn, reward, done, state_shape: [RECORD_VALUES] }, float32Bytes(new Float32Array(RECORD_VALUES).fill(turn)));
  seq++;
  gw.publish({ type: FanoutType.Experience, channel: 'game', key: String(seq), body: bytes, flags: 0 });
  return seq;
}
const consumer = (query: string) => TestClient.connect(`ws://127.0.0.1:${gw.port}/experience?v=2&${query}`, { headers: { authorization: `Bearer ${INGEST_TOKEN}` } });
const batches = (c: TestClient) => c.received.filter((r) => r.binary).map((r) => decodeBatchV2(new Uint8Array(r.binary!)));
const recordsOf = (c: TestClient) => batches(c).flatMap((b) => b.records.map((r) => ({ seq: r.seq, ev: decodeEvent(r.bytes) as ExperienceEvent })));
async function stats(c: TestClient): Promise<Record<string, any>> {
  c.ws.send(JSON.stringify({ type: 'stats' }));
  return (await c.next((r) => r.json?.type === 'stats', 3_000, 'stats')).json;
}

describe('experience window and filters (upstream sequence numbers)', () => {
  it('keeps a bounded window; a consumer resuming behind it is told how many sequence numbers it missed', async () => {
    const first = publish('w', 'p', 0);
    for (let t = 1; t < 300; t++) publish('w', 'p', t);
    const last = seq;
    await sleep(300);
    const c = await consumer(`start=${first}&batch_size=50`);
    await c.next((r) => r.binary !== undefined, 3_000, 'a batch');
    await sleep(300);
    const got = recordsOf(c);
    const s = await stats(c);
    // The window holds what fits in retainBytes (~100 records of ~4.1 KB), not 300.
    expect(s.window.bytes).toBeLessThanOrEqual(100 * 4200);
    expect(s.window.records).toBeGreaterThan(90);
    expect(s.window.records).toBeLessThan(110);
    expect(got[0].seq).toBeGreaterThan(first);
    expect(got[got.length - 1].seq).toBe(last);
    const b0 = batches(c)[0];
    expect(b0.head.missed).toBe(got[0].seq - first);
    expect(b0.head.seq_first).toBe(got[0].seq);
    // Contiguous from there on.
    for (let i = 1; i < got.length; i++) expect(got[i].seq).toBe(got[i - 1].seq + 1);
    expect(s.missed).toBe(got[0].seq - first);
    c.close();
  });

  it('applies turn ranges, player lists, reward ranges, terminal_only and per_game_cap, and counts what it filtered', async () => {
    const c = await consumer('players=a,b&min_turn=2&max_turn=5&reward_min=0&reward_max=0.5&per_game_cap=3&batch_size=100&timeout_ms=100');
    const t = await consumer('terminal_only=true&timeout_ms=100');
    await sleep(100);
    const sent: Array<[string, string, number, number, boolean]> = [];
    for (const game of ['g1', 'g2']) {
      for (let turn = 0; turn < 8; turn++) {
        const row: [string, string, number, number, boolean] = [game, ['a', 'b', 'c'][turn % 3], turn, turn === 3 ? 0.9 : 0.25, turn === 7];
        sent.push(row);
        publish(...row);
      }
    }
    await c.next((r) => r.binary !== undefined, 3_000, 'a batch');
    await t.next((r) => r.binary !== undefined, 3_000, 'a terminal batch');
    await sleep(200);
    const want = sent.filter(([, p, turn, reward]) => ['a', 'b'].includes(p) && turn >= 2 && turn <= 5 && reward <= 0.5);
    // per_game_cap=3: at most 3 per game, the first ones.
    const capped = ['g1', 'g2'].flatMap((g) => want.filter((w) => w[0] === g).slice(0, 3));
    expect(recordsOf(c).map((r) => [r.ev.gameId, r.ev.playerId, r.ev.turn])).toEqual(capped.map(([g, p, turn]) => [g, p, turn]));
    expect((await stats(c)).filtered).toBe(sent.length - capped.length);
    expect(recordsOf(t).map((r) => [r.ev.gameId, r.ev.turn, r.ev.done])).toEqual([['g1', 7, true], ['g2', 7, true]]);
    c.close();
    t.close();
  });

  it('configure takes long id lists (a message far over 4 KiB) on the same connection', async () => {
    const c = await consumer('batch_size=1');
    const games = Array.from({ length: 1000 }, (_, i) => `training-game-${i}`);
    c.ws.send(JSON.stringify({ type: 'configure', games }));
    const answer = await c.next((r) => r.json?.type === 'configured' || r.json?.type === 'error', 3_000, 'the configure answer');
    expect(answer.json.type).toBe('configured');
    expect(answer.json.filters.games).toHaveLength(1000);
    publish('training-game-999', 'p', 1);
    publish('other', 'p', 2);
    publish('training-game-3', 'p', 3);
    await sleep(300);
    expect(recordsOf(c).map((r) => r.ev.gameId)).toEqual(['training-game-999', 'training-game-3']);
    c.close();
  });

  it('sample_rate keeps about that share; max_rate drops live records over the rate and reports them in the next batch', async () => {
    const sampled = await consumer('sample_rate=0.25&batch_size=1000&timeout_ms=100&consumer=sampler');
    const limited = await consumer('max_rate=20&batch_size=5&timeout_ms=50&consumer=limited');
    await sleep(100);
    for (let i = 0; i < 400; i++) publish('s', 'p', i % 100);
    await sleep(600);
    publish('s', 'p', 1); // one more after the bucket refilled a little, so a batch carries the drop count
    await sleep(400);
    const n = recordsOf(sampled).length;
    expect(n).toBeGreaterThan(50);
    expect(n).toBeLessThan(150);
    const ls = await stats(limited);
    expect(ls.dropped).toBeGreaterThan(300);
    expect(ls.delivered + ls.dropped).toBe(401);
    expect(batches(limited).reduce((a, b) => a + b.head.dropped, 0)).toBe(ls.dropped);
    sampled.close();
    limited.close();
    await sleep(400); // metrics are added on the status tick
    const text = await gw.supervisor.metrics();
    expect(text).toMatch(/ringcast_gateway_experience_consumer_records_total\{[^}]*consumer="limited"[^}]*outcome="dropped"[^}]*\} [1-9]/);
    expect(text).toMatch(/ringcast_gateway_experience_retained_records\{[^}]*\} [1-9]/);
  });
});
