/**
 * Frame capture end to end, the hard parts: per-channel faults from the loopback
 * Twitch fake (bench/lib/live-hls.ts) while a healthy channel keeps capturing, priorities when
 * there are more deadlines than capture slots, and a restart of the whole service on the same
 * data dir (registry, priorities, config and result history survive) plus POST /api/restart,
 * also while captures are in flight (none may fail because of it).
 * Needs the dist/ build (actors run compiled code).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeSegments, startLiveHls, type ChannelFault, type LiveHlsServer } from '../bench/lib/live-hls.js';
import type { CaptureRecord } from '../src/actors/capture/index.js';
import { extractKeyframe } from '../src/actors/capture/ts-keyframe.js';
import { ADMIN_TOKEN, startHarness, type Harness } from './helpers/service-harness.js';
import { pollUntil } from './helpers/poll.js';

const CACHE = path.join(tmpdir(), 'ringcast-live-hls-cache');
const HEALTHY = 'steady_one';
const FAULTS: Record<string, { fault: ChannelFault; code: string; error: RegExp }> = {
  f_notfound: { fault: 'segment-404', code: 'http', error: /returned HTTP 404/ },
  f_slowseg: { fault: 'segment-timeout', code: 'timeout', error: /timed out after 1000 ms/ },
  f_truncated: { fault: 'truncated', code: 'truncated', error: /segment .*\.ts/ },
  f_garbage: { fault: 'garbage', code: 'garbage', error: /neither MPEG-TS nor fMP4/ },
};
const TOP = 'prio_top';
const LOW_COUNT = 40;
const lows = Array.from({ length: LOW_COUNT }, (_, i) => `prio_low_${String(i).padStart(2, '0')}`);

let work: string;
let dataDir: string;
let hls: LiveHlsServer;
let h: Harness;

const base = () => `http://127.0.0.1:${h.service.port}`;
const call = (method: string, p: string, body?: unknown, token: string | null = ADMIN_TOKEN) =>
  fetch(`${base()}${p}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
const ok = async (res: Response | Promise<Response>, status = 200) => {
  const r = await res;
  const text = await r.text();
  expect(r.status, text).toBe(status);
  return JSON.parse(text) as Record<string, unknown>;
};

interface Schedule { state: string; intervalMs: number; attempts: number; captures: number; failures: number; consecutiveFailures: number; missed: number; lastError: string | null; priority: number }
interface StreamDetail {
  stream: { name: string; priority: number; addedAt: string; enabled: boolean };
  latest: CaptureRecord | null;
  history: CaptureRecord[];
  counts: { ok: number; offline: number; error: number };
  schedule: Schedule | null;
}
const detail = async (name: string) => (await ok(fetch(`${base()}/api/streams/${name}`))) as unknown as StreamDetail;

const until = pollUntil;

const harnessArgs = (extra: string[]) => [
  '--data-dir', dataDir, '--fanout-threads', '1', '--capture-width', '320', '--capture-height', '180', '--decoders', '1',
  '--fetch-timeout-ms', '1000', '--twitch-gql-url', hls.gqlUrl, '--twitch-usher-url', hls.usherUrl, ...extra,
];

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'ringcast-capture-faults-'));
  // Our own data dir, not the harness's (which it deletes on close): the restart test starts
  // a second service on it.
  dataDir = path.join(work, 'data');
  mkdirSync(dataDir);
  mkdirSync(CACHE, { recursive: true });
  const segments = await encodeSegments({ dir: CACHE, width: 640, height: 360, fps: 30, segmentSeconds: 1, segments: 2, noise: 12 });
  // The "truncated" fault cuts the body after 20 KB; with a smaller keyframe the capture would
  // (rightly) succeed and the test would prove nothing.
  for (const f of segments) expect(extractKeyframe(readFileSync(f)).annexB.length, f).toBeGreaterThan(24 * 1024);
  // Timeout-fault segments are held 5 s, far past the 1 s fetch deadline.
  hls = await startLiveHls({ segmentSeconds: 1, slowMs: 5_000 });
  for (const name of [HEALTHY, ...Object.keys(FAULTS), TOP, ...lows]) {
    hls.addChannel(name, { variants: { '480p': segments }, fault: FAULTS[name]?.fault ?? 'none' });
  }
  h = await startHarness(harnessArgs(['--interval', '1']));
}, 60_000);

afterAll(async () => {
  await h?.close();
  await hls?.close();
  if (work) rmSync(work, { recursive: true, force: true });
}, 30_000);

describe('faults', () => {
  it('each faulty channel reports an error naming stage and cause and backs off; the healthy one keeps capturing', async () => {
    const bulk = await ok(call('POST', '/api/streams/bulk', { streams: [HEALTHY, ...Object.keys(FAULTS)] }));
    expect(bulk).toMatchObject({ added: 5, duplicate: 0, invalid: 0 });
    const started = Date.now();
    // Three errors each: enough to see the gaps between attempts grow (1 s, then 2 s backoff).
    const all = await until('three errors from every faulty channel', 25_000, async () => {
      const ds = await Promise.all(Object.keys(FAULTS).map(detail));
      return ds.every((d) => d.history.filter((r) => r.status === 'error').length >= 3) ? ds : undefined;
    }, async () => Promise.all(Object.keys(FAULTS).map(async (n) => { const d = await detail(n); return [n, d.counts, d.schedule?.state, d.latest?.error]; })));
    const elapsed = Date.now() - started;

    Object.keys(FAULTS).forEach((name, i) => {
      const want = FAULTS[name];
      const d = all[i];
      const errors = d.history.filter((r) => r.status === 'error');
      expect(d.counts.ok, `${name} never captures`).toBe(0);
      for (const e of errors) {
        expect(e, name).toMatchObject({ stream: name, stage: 'segment', code: want.code });
        expect(e.error, name).toMatch(want.error);
      }
      // Backoff: 1 s, 2 s, 4 s … (±10 % jitter) after each failure, so the second gap is
      // clearly longer than the first even with the capture's own time added to both.
      const [a, b, c] = errors.map((e) => e.at);
      expect(c - b, `${name} gaps ${b - a} then ${c - b} ms`).toBeGreaterThan((b - a) * 1.2);
      expect(b - a, name).toBeGreaterThanOrEqual(850);
      expect(d.schedule!.consecutiveFailures, name).toBeGreaterThanOrEqual(3);
      expect(d.schedule!.lastError, name).toMatch(/^segment: /);
      expect(['backoff', 'running'], name).toContain(d.schedule!.state);
    });

    const healthy = await detail(HEALTHY);
    expect(healthy.counts.error, JSON.stringify(healthy.history.filter((r) => r.status === 'error'))).toBe(0);
    // Interval 1 s: the healthy channel got (nearly) one capture per second meanwhile.
    expect(healthy.history.filter((r) => r.status === 'ok' && r.at >= started).length).toBeGreaterThanOrEqual(Math.floor(elapsed / 1000) - 2);
    expect(healthy.latest?.segment?.url).toMatch(/\/hls\/steady_one\/.+\/480p\/\d+\.ts$/);

    const status = (await ok(fetch(`${base()}/api/status`))) as { capture: { backoff: number; failures: number } };
    expect(status.capture.backoff).toBeGreaterThanOrEqual(1);
    expect(status.capture.failures).toBeGreaterThanOrEqual(12);
  }, 40_000);

  it('a channel whose fault is fixed recovers', async () => {
    hls.setFault('f_garbage', 'none');
    const fixedAt = Date.now();
    // Backoff after 3+ failures is up to ~8 s; allow that plus a capture.
    const d = await until('f_garbage to capture ok', 15_000, async () => {
      const x = await detail('f_garbage');
      return x.history.some((r) => r.status === 'ok' && r.at > fixedAt) ? x : undefined;
    }, () => detail('f_garbage'));
    expect(d.schedule?.consecutiveFailures).toBe(0);
  }, 20_000);
});

describe('priorities under overload', () => {
  it('with one capture slot the priority-100 channel is captured on time and the others miss deadlines', async () => {
    for (const name of Object.keys(FAULTS)) await ok(call('DELETE', `/api/streams/${name}`));
    await ok(call('PUT', '/api/config', { max_concurrent: 1 }));
    const bulk = await ok(call('POST', '/api/streams/bulk', { streams: [{ username: TOP, priority: 100 }, ...lows.map((n) => ({ username: n, priority: 10 }))] }));
    expect(bulk).toMatchObject({ added: 1 + LOW_COUNT, invalid: 0 });
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 7_000));
    const elapsedS = (Date.now() - t0) / 1000;
    const top = (await detail(TOP)).schedule!;
    const low = await Promise.all(lows.map(async (n) => (await detail(n)).schedule!));
    const lowCaptures = low.map((s) => s.captures);
    const lowMissed = low.reduce((n, s) => n + s.missed, 0);
    const info = JSON.stringify({ top, lowCaptures, lowMissed, elapsedS });
    expect(top.priority).toBe(100);
    // Due about once a second and always first in line: nearly every deadline met.
    expect(top.captures, info).toBeGreaterThanOrEqual(Math.floor(elapsedS) - 2);
    // Low-priority channels only get what the top one leaves over, shared forty ways.
    const lowMean = lowCaptures.reduce((a, b) => a + b, 0) / LOW_COUNT;
    expect(top.captures, info).toBeGreaterThanOrEqual(Math.max(...lowCaptures));
    expect(top.captures, info).toBeGreaterThan(3 * lowMean);
    expect(top.missed, info).toBeLessThanOrEqual(1);
    expect(lowMissed, info).toBeGreaterThan(LOW_COUNT);
    const status = (await ok(fetch(`${base()}/api/status`))) as { capture: { missed: number; missed_pct: number; maxConcurrent: number } };
    expect(status.capture.maxConcurrent).toBe(1);
    expect(status.capture.missed).toBeGreaterThanOrEqual(lowMissed);
    expect(status.capture.missed_pct).toBeGreaterThan(0);
    const metrics = await (await fetch(`${base()}/metrics`)).text();
    expect(Number(/^ringcast_capture_missed_total(?:\{[^}]*\})? (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(lowMissed);
  }, 20_000);

  it('POST /api/restart while captures are in flight fails none of them', async () => {
    // With one slot always busy, a restart nearly always lands on a capture mid-way; the
    // old decoders must let it finish rather than fail it as "decoder closed".
    const from = Date.now();
    for (let k = 0; k < 6; k++) {
      expect(await ok(call('POST', '/api/restart'))).toEqual({ restarted: true, streams: 1 + LOW_COUNT + 1 });
      await new Promise((r) => setTimeout(r, 150));
    }
    const last = Date.now();
    const ds = await until('a capture after the last restart', 5_000, async () => {
      const all = await Promise.all([TOP, ...lows].map(detail));
      return all.some((d) => d.history.some((r) => r.status === 'ok' && r.at > last)) ? all : undefined;
    });
    expect(ds.flatMap((d) => d.history.filter((r) => r.status === 'error' && r.at >= from))).toEqual([]);
  }, 20_000);
});

describe('restart', () => {
  it('a new service on the same data dir has the same streams, priorities, config and history', async () => {
    for (const name of lows) await ok(call('DELETE', `/api/streams/${name}`));
    await ok(call('PUT', `/api/streams/${HEALTHY}/priority`, { priority: 77 }));
    const config = await ok(call('PUT', '/api/config', { capture_interval: 2, max_concurrent: 6, quality: '480p' }));
    expect(config).toEqual({ capture_interval: 2, max_concurrent: 6, quality: '480p' });
    const streamsBefore = await ok(fetch(`${base()}/api/streams`));
    // Listed by priority, highest first.
    expect((streamsBefore.streams as Array<{ name: string }>).map((s) => s.name)).toEqual([TOP, HEALTHY]);
    const before = await detail(HEALTHY);
    expect(before.history.length).toBeGreaterThanOrEqual(5);

    await h.close();
    // No --interval / --max-concurrent now: those flags would override the stored config.
    h = await startHarness(harnessArgs([]));
    expect(await ok(fetch(`${base()}/api/streams`))).toEqual(streamsBefore);
    expect(await ok(fetch(`${base()}/api/config`))).toEqual(config);
    const after = await detail(HEALTHY);
    expect(after.stream.priority).toBe(77);
    // Every result kept before the stop is still there (new ones may follow it).
    expect(after.history.slice(0, before.history.length).map((r) => r.at)).toEqual(before.history.map((r) => r.at));
    expect(after.counts.ok).toBeGreaterThanOrEqual(before.counts.ok);
    expect(after.history.filter((r) => r.status === 'error')).toEqual([]); // shows the error if there is one
    expect(after.counts.error).toBe(0);
    const status = (await ok(fetch(`${base()}/api/status`))) as { config: unknown; capture: { maxConcurrent: number; streams: number } };
    expect(status.capture.maxConcurrent).toBe(6);
    expect(status.capture.streams).toBe(2);
  }, 30_000);

  it('POST /api/restart restarts capture, which goes on capturing', async () => {
    await ok(call('POST', '/api/restart', undefined, null), 401);
    const at = Date.now();
    expect(await ok(call('POST', '/api/restart'))).toEqual({ restarted: true, streams: 2 });
    const d = await until(`${HEALTHY} to capture after the restart`, 10_000, async () => {
      const x = await detail(HEALTHY);
      return x.history.some((r) => r.status === 'ok' && r.at > at) ? x : undefined;
    }, () => detail(HEALTHY));
    expect(d.schedule?.intervalMs).toBe(2000);
  }, 20_000);
});
