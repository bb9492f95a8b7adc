import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { decodeEvent, encodeEvent, EventKind, float32Bytes, type ExperienceEvent } from '../src/shared/telemetry/event-codec.js';
import { FanoutType } from '../src/shared/telemetry/ring-records.js';
import { decodeExperienceBatch } from '../src/actors/gateway/index.js';
import { INGEST_TOKEN, sleep, startGateways, TestClient, type GatewayCluster } from './fixtures/gateway-harness.js';

let gw: GatewayCluster;
beforeAll(async () => { gw = await startGateways({ options: { experience: { batchSize: 4, timeoutMs: 200, queueBatches: 3 } } }); });
afterAll(async () => { await gw?.stop(); });

function experience(game: string, player: string, turn: number, shape = [4]): Uint8Array {
  const values = shape.reduce((a, b) => a * b, 1);
  return encodeEvent(EventKind.Experience, { game_id: game, player_id: player, turn, action: turn, reward: 0.5, done: false, state_shape: shape }, float32Bytes(new Float32Array(values).fill(turn)));
}
function publishExperience(bytes: Uint8Array): void {
  gw.publish({ type: FanoutType.Experience, channel: 'game', key: '', body: bytes, flags: 0 });
}
const consumer = (query: string) => TestClient.connect(`ws://127.0.0.1:${gw.port}/experience?${query}`, { headers: { authorization: `Bearer ${INGEST_TOKEN}` } });
const batches = (c: TestClient) => c.received.filter((r) => r.binary).map((r) => decodeExperienceBatch(new Uint8Array(r.binary!)));

function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('unexpected-response', (_q, res) => { resolve(res.statusCode ?? 0); res.resume(); ws.terminate(); });
    ws.on('open', () => { ws.close(); reject(new Error('upgrade unexpectedly accepted')); });
    ws.on('error', () => undefined);
  });
}

describe('gateway /experience', () => {
  it('needs the ingest token and valid query values', async () => {
    expect(await upgradeStatus(`ws://127.0.0.1:${gw.port}/experience`)).toBe(401);
    expect(await upgradeStatus(`ws://127.0.0.1:${gw.port}/experience?token=${INGEST_TOKEN}&batch_size=0`)).toBe(400);
    expect(await upgradeStatus(`ws://127.0.0.1:${gw.port}/experience?token=${INGEST_TOKEN}&min_turn=abc`)).toBe(400);
  });

  it('batches by size, by timeout, and applies game / player / min_turn filters', async () => {
    const bySize = await consumer('game=g1&batch_size=3&timeout_ms=5000');
    const byTime = await consumer('player=p2&min_turn=5&batch_size=100&timeout_ms=150');
    await sleep(50);
    const sent: Uint8Array[] = [];
    for (let turn = 0; turn < 8; turn++) {
      const ev = experience(turn % 2 === 0 ? 'g1' : 'g2', turn % 4 < 2 ? 'p1' : 'p2', turn);
      sent.push(ev);
      publishExperience(ev);
    }
    // g1 = turns 0, 2, 4, 6: one full batch of 3 now, the 4th waits (timeout 5 s).
    const first = await bySize.next((r) => r.binary !== undefined, 3_000, 'a size-triggered batch');
    const records = decodeExperienceBatch(new Uint8Array(first.binary!));
    expect(records.map((r) => Buffer.from(r))).toEqual([0, 2, 4].map((t) => Buffer.from(sent[t])));
    // player p2 with turn >= 5 = turns 6, 7: one batch after the 150 ms timeout.
    const t0 = Date.now();
    const timed = await byTime.next((r) => r.binary !== undefined, 3_000, 'a timeout-triggered batch');
    const timedRecords = decodeExperienceBatch(new Uint8Array(timed.binary!)).map((r) => decodeEvent(r) as ExperienceEvent);
    expect(timedRecords.map((e) => [e.playerId, e.turn])).toEqual([['p2', 6], ['p2', 7]]);
    expect(Date.now() - t0).toBeLessThan(1_000);
    await sleep(300);
    expect(batches(bySize)).toHaveLength(1); // the 4th g1 record is still waiting for its batch
    const status = await byTime.next((r) => r.json?.type === 'experience_status', 2_000, 'a status message');
    expect(status.json).toMatchObject({ type: 'experience_status', sent: 1, dropped: 0 });
    bySize.close();
    byTime.close();
  });

  it('queues a bounded number of batches for a consumer that does not read, dropping the oldest and saying so', async () => {
    const c = await consumer('batch_size=1');
    const socket = (c.ws as unknown as { _socket: net.Socket })._socket;
    socket.pause();
    const big = [4, 4096]; // 64 KiB per record
    for (let turn = 0; turn < 160; turn++) {
      publishExperience(experience('g', 'p', turn, big));
      if (turn % 8 === 7) await sleep(10);
    }
    await sleep(200);
    socket.resume();
    // Every record is accounted for: sent, dropped (counted), or still queued.
    const status = await c.next((r) => r.json?.type === 'experience_status' && r.json.sent + r.json.dropped + r.json.queued === 160, 5_000, 'a status accounting for all 160 records');
    expect(status.json.dropped).toBeGreaterThan(0);
    expect(status.json.queued).toBeLessThanOrEqual(3);
    // What arrived is in order (the dropped ones are the oldest queued, never reordered).
    await sleep(300);
    const turns = batches(c).map((b) => (decodeEvent(b[0]) as ExperienceEvent).turn);
    expect([...turns].sort((a, b) => a - b)).toEqual(turns);
    expect(turns[turns.length - 1]).toBe(159);
    expect(turns.length).toBeLessThan(160);
    c.close();
  });
});
