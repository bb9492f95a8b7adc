/**
 * Per-record cost of the gateway's experience path alone (no sockets, no other threads):
 * `node dist/bench/experience/hub-micro.js [records]` feeds Keisei-sized events, numbered as the
 * aggregator numbers them, through an ExperienceHub with the benchmark's ten consumers on
 * stand-in sockets that only count bytes, and prints µs per ingested record and per delivered
 * record (wall and CPU: the CPU figure is the steadier one on a shared machine). A profiling aid for the hub (run it under `node --cpu-prof`), not a recorded figure.
 */
import { Registry } from 'prom-client';
import { encodeEvent, EventKind } from '../../src/shared/telemetry/event-codec.js';
import { packLegalMask } from '../../src/sdk/encode.js';
import { createGatewayMetrics } from '../../src/actors/gateway/gateway-metrics.js';
import { ExperienceHub, parseExperienceQuery, type ExperienceConsumer } from '../../src/actors/gateway/experience-stream.js';
import { ACTIONS, CONSUMER_FILTERS, POOL_SIZE, recordFacts, rng, STATE_SHAPE, tensorPool } from './records.js';

const n = Number(process.argv[2] ?? 100_000);
const rand = rng(1);
const pool = tensorPool(0, rand);
const events: Uint8Array[] = [];
for (let i = 0; i < 4 * 120; i++) {
  const t = pool[i % POOL_SIZE];
  const f = recordFacts(i % 20, i, rand);
  const payload = new Uint8Array(t.state.byteLength + Math.ceil(ACTIONS / 8));
  payload.set(new Uint8Array(t.state.buffer));
  packLegalMask(t.mask, payload, t.state.byteLength);
  events.push(encodeEvent(EventKind.Experience, { game_id: f.gameId, player_id: f.playerId, turn: f.turn, action: t.action, reward: f.reward, done: f.done, state_shape: STATE_SHAPE, mask_len: ACTIONS }, payload));
}
// The fan-out ring holds each event inside a larger buffer: feed views into one.
const ring = new Uint8Array(events.reduce((a, e) => a + e.byteLength, 0));
const offsets: number[] = [];
let p = 0;
for (const e of events) { ring.set(e, p); offsets.push(p); p += e.byteLength; }

const hub = new ExperienceHub({ queueBatches: 64, softLimitBytes: 1 << 30, hardLimitBytes: 1 << 31, statusEveryMs: 1000, metrics: createGatewayMetrics(new Registry()) });
let sentBytes = 0;
let delivered = 0;
for (const q of CONSUMER_FILTERS) {
  const parsed = parseExperienceQuery(new URLSearchParams({ ...q, v: '2', timeout_ms: '20' }), { batchSize: 32, timeoutMs: 100 });
  if (!parsed.ok) throw new Error(parsed.error);
  const data = hub.newConsumerData(parsed.filter);
  const ws = {
    getUserData: () => data, getBufferedAmount: () => 0, cork: (f: () => void) => f(),
    send: (b: Uint8Array) => { sentBytes += b.byteLength; delivered += new DataView(b.buffer, b.byteOffset).getUint32(4, true) > 0 ? 0 : 0; return 1; },
  } as unknown as Parameters<ExperienceHub['open']>[0];
  hub.open(ws as never);
  void (ws as unknown as { getUserData(): ExperienceConsumer });
}
let seq = 1_000_000;
const t0 = performance.now();
const cpu0 = process.cpuUsage();
for (let i = 0; i < n; i++) {
  const k = i % events.length;
  hub.onExperience(ring, offsets[k], events[k].byteLength, String(++seq), Date.now());
}
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const cpuMs = (cpu.user + cpu.system) / 1000;
const stats = hub.stats();
hub.stop();
delivered = stats.batchesSent;
console.log(JSON.stringify({ records: n, ms: Math.round(ms), us_per_record: +(ms * 1000 / n).toFixed(2), cpu_us_per_record: +(cpuMs * 1000 / n).toFixed(2), mb_sent: Math.round(sentBytes / 2 ** 20), us_per_mb: +(ms * 1000 / (sentBytes / 2 ** 20)).toFixed(1), batches: delivered }));
process.exit(0);
