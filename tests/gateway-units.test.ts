import { describe, expect, it } from 'vitest';
import { parseSubscription } from '../src/actors/gateway/subscription.js';
import { planTiers } from '../src/actors/gateway/fps-tiers.js';
import { LatestMessages } from '../src/actors/gateway/latest-messages.js';
import { decodeExperienceBatch, encodeExperienceBatch, parseExperienceQuery } from '../src/actors/gateway/experience-stream.js';
import { validateGatewayOptions, type GatewayOptions } from '../src/actors/gateway/options.js';
import { CHANNELS } from '../src/shared/telemetry/channels.js';

describe('subscription parsing', () => {
  it('applies defaults and caps max_fps', () => {
    const telemetry = CHANNELS.map((_, i) => i).filter((i) => CHANNELS[i] !== 'capture');
    expect(parseSubscription('{}', 60)).toEqual({ ok: true, sub: { channels: telemetry, level: 'intermediate', maxFps: 60, delta: false } });
    expect(parseSubscription('{"channels":["chat","metrics","chat"],"level":"beginner","max_fps":500}', 30)).toEqual({ ok: true, sub: { channels: [0, 5], level: 'beginner', maxFps: 30, delta: false } });
    expect(parseSubscription('{"delta":true}', 60)).toMatchObject({ ok: true, sub: { delta: true } });
    expect(parseSubscription('{"delta":1}', 60)).toEqual({ ok: false, error: 'delta must be true or false (got 1)' });
    expect(parseSubscription('{"channels":["metrics","all"]}', 60)).toMatchObject({ ok: true, sub: { channels: telemetry } });
    // capture results are opt-in: named explicitly, alone or next to "all".
    const capture = CHANNELS.indexOf('capture');
    expect(parseSubscription('{"channels":["capture"]}', 60)).toMatchObject({ ok: true, sub: { channels: [capture] } });
    expect(parseSubscription('{"channels":["all","capture"]}', 60)).toMatchObject({ ok: true, sub: { channels: CHANNELS.map((_, i) => i) } });
  });
  it('names what is wrong', () => {
    expect(parseSubscription('{"channels":[]}', 60)).toEqual({ ok: false, error: expect.stringMatching(/at least one channel/) });
    expect(parseSubscription('{"max_fps":"fast"}', 60)).toEqual({ ok: false, error: expect.stringMatching(/max_fps must be a positive number/) });
    expect(parseSubscription('null', 60)).toEqual({ ok: false, error: expect.stringMatching(/JSON object/) });
  });
});

describe('fps tiers', () => {
  it('collapses rates that can take every update into one live tier and conflates the rest', () => {
    const plan = planTiers(60, 100);
    expect(plan.tiers.map((t) => t.name)).toEqual(['1', '2', '5', 'live']);
    expect(plan.tierFor(2).name).toBe('2');
    expect(plan.tierFor(4).name).toBe('2');
    expect(plan.tierFor(0.5).name).toBe('1');
    expect(plan.tierFor(10).name).toBe('live');
    expect(plan.tierFor(7).intervalMs).toBe(200);
  });
  it('has no live tier when even the ceiling is below the update rate', () => {
    const plan = planTiers(3, 100);
    expect(plan.live).toBeUndefined();
    expect(plan.tiers.map((t) => t.name)).toEqual(['1', '2', '3']);
    expect(plan.tierFor(60).name).toBe('3');
  });
});

describe('latest messages', () => {
  it('keeps the latest bytes per key and level, bounded by maxKeys', () => {
    const store = new LatestMessages(2);
    const a = new Uint8Array([1]);
    const b = new Uint8Array([2]);
    expect(store.put(0, 'k', 0b011, a, true, false)).toBe(true);
    expect(store.put(0, 'k', 0b010, b, true, false)).toBe(true);
    const [entry] = [...store.values()];
    expect(entry.bytes).toEqual([a, b, undefined]);
    expect(entry.seq[1]).toBeGreaterThan(entry.seq[0]);
    expect(store.put(1, 'k', 7, a, false, false)).toBe(true); // same key, other channel: another entry
    expect(store.put(2, 'new', 7, a, false, false)).toBe(false); // full
    store.reset(0, 'k');
    expect(store.size).toBe(1);
    store.reset(0, '');
    expect(store.size).toBe(0);
  });
});

describe('experience helpers', () => {
  it('round-trips a batch', () => {
    const records = [new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array([9])];
    const encoded = encodeExperienceBatch(records, 4);
    expect(encoded.byteLength).toBe(4 + 3 * 4 + 4);
    expect(new DataView(encoded.buffer).getUint32(0, true)).toBe(3);
    expect(decodeExperienceBatch(encoded)).toEqual(records);
  });
  it('parses query filters with defaults and clear errors', () => {
    const defaults = { batchSize: 32, timeoutMs: 100 };
    expect(parseExperienceQuery(new URLSearchParams('game=g&player=p&min_turn=3'), defaults)).toEqual({
      ok: true,
      filter: { filter: { games: new Set(['g']), players: new Set(['p']), minTurn: 3, terminalOnly: false, sampleRate: 1, batchSize: 32, timeoutMs: 100 }, start: 'live', version: 1, deflate: false, name: undefined },
    });
    expect(parseExperienceQuery(new URLSearchParams('batch_size=2.5'), defaults)).toEqual({ ok: false, error: expect.stringMatching(/batch_size: must be an integer/) });
    expect(parseExperienceQuery(new URLSearchParams('timeout_ms=0'), defaults)).toEqual({ ok: false, error: expect.stringMatching(/timeout_ms/) });
  });
});

describe('gateway options', () => {
  const good: GatewayOptions = {
    index: 0, host: '127.0.0.1', port: 8080, inRing: 'fanout.gw0', outRing: 'ingest.gw0', ingestToken: '12345678', adminToken: 'abcdefgh',
    softLimitBytes: 1024, hardLimitBytes: 8192, maxFps: 60, maxClients: 10, maxFrameBytes: 4096, tickMs: 100,
    experience: { batchSize: 32, timeoutMs: 100, queueBatches: 64 },
  };
  it('accepts valid options and names the bad field', () => {
    expect(validateGatewayOptions(good)).toBe(good);
    expect(() => validateGatewayOptions({ ...good, softLimitBytes: 9000 })).toThrow(/softLimitBytes \(9000\) must be less than hardLimitBytes/);
    expect(() => validateGatewayOptions({ ...good, ingestToken: 'short' })).toThrow(/ingestToken/);
    expect(() => validateGatewayOptions({ ...good, experience: { ...good.experience, queueBatches: 0 } })).toThrow(/queueBatches/);
    expect(validateGatewayOptions({ ...good, preAuth: { helloTimeoutMs: 5000, maxBytes: 65536, maxPerAddress: 64 } }).preAuth?.maxPerAddress).toBe(64);
    expect(() => validateGatewayOptions({ ...good, preAuth: { helloTimeoutMs: 0, maxBytes: 65536, maxPerAddress: 64 } })).toThrow(/helloTimeoutMs/);
  });
});
