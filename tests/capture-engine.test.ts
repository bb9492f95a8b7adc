// The capture engine against the loopback Twitch fake (bench/lib/live-hls.ts): Twitch names
// resolved through gql + usher, only the keyframe's bytes fetched, frames committed to the
// ring, offline kept apart from errors, each fault named, bounded concurrency.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeSegments, startLiveHls, type LiveHlsServer } from '../bench/lib/live-hls.js';
import { CaptureEngine, type CaptureResult } from '../src/actors/capture/engine.js';
import { fetchKeyframe } from '../src/actors/capture/keyframe-fetch.js';
import { SlotRing } from '../src/shared/slot-ring.js';
import { resolveFfmpeg } from '../src/shared/ffmpeg.js';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startDemoStreams } from '../src/services/capture/demo-streams.js';
import { pollUntil } from './helpers/poll.js';

const W = 160;
const H = 90;
let server: LiveHlsServer;
let segments: string[];
/** Keyframes bigger than the 20 KB the 'truncated' fault sends. */
let bigSegments: string[];

beforeAll(async () => {
  segments = await encodeSegments({ dir: join(tmpdir(), 'ringcast-test-hls'), width: 426, height: 240, fps: 30, segmentSeconds: 1, segments: 3, noise: 4 });
  bigSegments = await encodeSegments({ dir: join(tmpdir(), 'ringcast-test-hls'), width: 852, height: 480, fps: 30, segmentSeconds: 1, segments: 2, noise: 10 });
  server = await startLiveHls({ segmentSeconds: 1, slowMs: 5000 });
}, 60_000);
afterAll(() => server?.close());

function engineWith(results: CaptureResult[], extra: Partial<ConstructorParameters<typeof CaptureEngine>[0]> = {}) {
  const ring = SlotRing.create({ name: 'test.capture', slots: 8, slotBytes: W * H * 3, mode: 'latest' });
  const engine = new CaptureEngine({
    ffmpegPath: resolveFfmpeg().path, ring, width: W, height: H, intervalMs: 1000, maxConcurrent: 4, quality: '480p', decoders: 1,
    resolve: { gqlUrl: server.gqlUrl, usherUrl: server.usherUrl }, fetchTimeoutMs: 800, backoffInitialMs: 200, backoffMaxMs: 400, offlineRecheckMs: 300,
    onResult: (r) => results.push(r),
    ...extra,
  });
  return { engine, ring };
}

const until = (cond: () => boolean, ms: number): Promise<true> => pollUntil('the condition', ms, () => (cond() ? true : undefined), () => '', 50);

describe('keyframe fetch', () => {
  it('stops reading once the first keyframe is complete', async () => {
    server.addChannel('kfonly', { variants: { '480p': segments } });
    const url = server.mediaPlaylistUrl('kfonly', '480p');
    const playlist = await (await fetch(url)).text();
    const seg = new URL(playlist.split('\n').find((l) => l.endsWith('.ts'))!, url).toString();
    const kf = await fetchKeyframe(seg);
    expect(kf.annexB.length).toBeGreaterThan(100);
    expect(kf.bytesRead).toBeLessThan(statSync(segments[0]).size);
    server.removeChannel('kfonly');
  });
});

describe('capture engine', () => {
  it('captures Twitch channels into the ring, fetching only the keyframe', async () => {
    for (const c of ['enga', 'engb']) server.addChannel(c, { variants: { '480p': segments } });
    const results: CaptureResult[] = [];
    const { engine, ring } = engineWith(results);
    await engine.start();
    try {
      engine.setStreams([{ name: 'enga', priority: 50 }, { name: 'engb', priority: 50 }]);
      await until(() => results.filter((r) => r.status === 'ok').length >= 4, 10_000);
      const ok = results.filter((r): r is Extract<CaptureResult, { status: 'ok' }> => r.status === 'ok');
      expect(new Set(ok.map((r) => r.stream))).toEqual(new Set(['enga', 'engb']));
      for (const r of ok) {
        expect(ring.frameInSlot(r.slot) === r.frame || ring.recordsWritten > r.frame).toBe(true);
        expect(r.bytesFetched).toBeLessThan(statSync(segments[0]).size);
      }
      // A grey or black frame would mean the decoder produced nothing real: testsrc2 is colourful.
      const last = ok[ok.length - 1];
      const px = ring.slotView(last.slot);
      let spread = 0;
      for (let i = 0; i < W * H * 3; i += 3) spread = Math.max(spread, Math.abs(px[i] - px[i + 2]));
      expect(spread).toBeGreaterThan(100);
      expect(engine.stats().decoder.decoded).toBeGreaterThanOrEqual(4);
    } finally {
      await engine.stop();
      server.removeChannel('enga');
      server.removeChannel('engb');
    }
  }, 20_000);

  it('reports offline apart from errors and resumes when the channel is back', async () => {
    server.addChannel('engoff', { variants: { '480p': segments }, live: false });
    const results: CaptureResult[] = [];
    const { engine } = engineWith(results);
    await engine.start();
    try {
      engine.setStreams([{ name: 'engoff', priority: 50 }]);
      await until(() => results.some((r) => r.status === 'offline'), 5_000);
      expect(engine.stream('engoff')?.state).toBe('offline');
      expect(results.some((r) => r.status === 'error')).toBe(false);
      server.setLive('engoff', true);
      await until(() => results.some((r) => r.status === 'ok'), 8_000);
    } finally {
      await engine.stop();
      server.removeChannel('engoff');
    }
  }, 20_000);

  it('names each fault (stage and code), backs off, and keeps healthy streams going', async () => {
    const faults = { eng404: 'segment-404', engslow: 'segment-timeout', engtrunc: 'truncated', enggarb: 'garbage' } as const;
    for (const [name, fault] of Object.entries(faults)) server.addChannel(name, { variants: { '480p': name === 'engtrunc' ? bigSegments : segments }, fault });
    server.addChannel('enggood', { variants: { '480p': segments } });
    const results: CaptureResult[] = [];
    const { engine } = engineWith(results);
    await engine.start();
    try {
      engine.setStreams([...Object.keys(faults), 'enggood'].map((name) => ({ name, priority: 50 })));
      await until(() => Object.keys(faults).every((n) => results.some((r) => r.stream === n && r.status === 'error'))
        && results.filter((r) => r.stream === 'enggood' && r.status === 'ok').length >= 2, 12_000);
      const firstError = (n: string) => results.find((r): r is Extract<CaptureResult, { status: 'error' }> => r.stream === n && r.status === 'error')!;
      expect(firstError('eng404')).toMatchObject({ stage: 'segment', code: 'http' });
      expect(firstError('engslow')).toMatchObject({ stage: 'segment', code: 'timeout' });
      expect(firstError('engtrunc')).toMatchObject({ stage: 'segment', code: 'truncated' });
      expect(firstError('enggarb')).toMatchObject({ stage: 'segment', code: 'garbage' });
      for (const n of Object.keys(faults)) {
        const s = engine.stream(n)!;
        expect(s.failures).toBeGreaterThan(0);
        expect(s.lastError).toMatch(/segment/);
      }
      expect(engine.stats().inFlight).toBeLessThanOrEqual(4);
    } finally {
      await engine.stop();
      for (const n of [...Object.keys(faults), 'enggood']) server.removeChannel(n);
    }
  }, 25_000);

  it('stop() during a capture reports no result for it (a shutdown is not a stream error)', async () => {
    server.addChannel('enghang', { variants: { '480p': segments }, fault: 'segment-timeout' });
    const results: CaptureResult[] = [];
    const { engine } = engineWith(results, { fetchTimeoutMs: 4000 });
    await engine.start();
    try {
      engine.setStreams([{ name: 'enghang', priority: 50 }]);
      await until(() => engine.stats().inFlight === 1 && engine.stream('enghang')?.state === 'running', 5_000);
      await new Promise((r) => setTimeout(r, 300)); // resolved, now waiting on the hung segment
    } finally {
      await engine.stop();
      server.removeChannel('enghang');
    }
    expect(results).toEqual([]);
  }, 15_000);

  it('captures a local playlist file, as the built-in demo streams are registered', async () => {
    const demo = await startDemoStreams({ dir: mkdtempSync(join(tmpdir(), 'rc-demo-')), count: 1, ffmpegPath: resolveFfmpeg().path });
    const results: CaptureResult[] = [];
    const { engine } = engineWith(results);
    await engine.start();
    try {
      expect(demo.playlists[0]).toMatch(/demo1\/live\.m3u8$/);
      expect(readFileSync(demo.playlists[0], 'utf8')).toMatch(/#EXT-X-MEDIA-SEQUENCE:\d+/);
      engine.setStreams([{ name: demo.playlists[0], priority: 50 }]);
      await until(() => results.some((r) => r.status === 'ok'), 8_000);
      const ok = results.find((r): r is Extract<CaptureResult, { status: 'ok' }> => r.status === 'ok')!;
      expect(ok.segment.url).toMatch(/^file:.*seg\d\.ts$/);
      // Local segments too are read only up to the keyframe (in 64 KiB steps).
      expect(ok.bytesFetched).toBeLessThan(statSync(fileURLToPath(ok.segment.url)).size);
    } finally {
      await engine.stop();
      demo.stop();
    }
  }, 30_000);
});
