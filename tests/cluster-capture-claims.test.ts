/**
 * Capture claims in a real Redis: two capture engines (two nodes whose member lists disagree,
 * both scheduling the same stream) capture it once per interval between them, and when the node
 * holding the claim stops, the other captures it from then on.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import pino from 'pino';
import { encodeSegments, startLiveHls, type LiveHlsServer } from '../bench/lib/live-hls.js';
import { CaptureEngine, type CaptureResult } from '../src/actors/capture/engine.js';
import { captureClaims } from '../src/actors/capture/index.js';
import { SlotRing } from '../src/shared/slot-ring.js';
import { resolveFfmpeg } from '../src/shared/ffmpeg.js';
import { describeWithRedis, RedisServer } from './helpers/redis-server.js';
import { pollUntil } from './helpers/poll.js';

const W = 160;
const H = 90;
const INTERVAL_MS = 1000;
const log = pino({ level: 'silent' });

describeWithRedis('capture claims across nodes (real redis-server)', () => {
  const server = new RedisServer();
  let hls: LiveHlsServer;
  beforeAll(async () => {
    await server.start();
    const segments = await encodeSegments({ dir: join(tmpdir(), 'ringcast-test-hls'), width: 320, height: 180, fps: 30, segmentSeconds: 1, segments: 2, noise: 4 });
    hls = await startLiveHls({ segmentSeconds: 1 });
    hls.addChannel('shared_chan', { variants: { '480p': segments } });
  }, 60_000);
  afterAll(async () => {
    await hls?.close();
    await server.dispose();
  });

  /** Captures started (claims granted), by node, in order. */
  const starts: Array<{ node: string; at: number }> = [];
  const node = (nodeId: string, results: Array<CaptureResult & { node: string }>) => {
    const claims = captureClaims({ redis: server.url, nodeId }, log);
    const claim = async (stream: string, intervalMs: number) => {
      const granted = await claims.claim(stream, intervalMs);
      if (granted) starts.push({ node: nodeId, at: Date.now() });
      return granted;
    };
    const engine = new CaptureEngine({
      ffmpegPath: resolveFfmpeg().path, ring: SlotRing.create({ name: `test.claims.${nodeId}`, slots: 4, slotBytes: W * H * 3, mode: 'latest' }),
      width: W, height: H, intervalMs: INTERVAL_MS, maxConcurrent: 2, quality: '480p', decoders: 1,
      resolve: { gqlUrl: hls.gqlUrl, usherUrl: hls.usherUrl }, fetchTimeoutMs: 3000,
      onResult: (r) => results.push({ ...r, node: nodeId }), claim,
    });
    return { engine, claims };
  };

  it('two nodes scheduling one stream capture it once per interval between them; the other takes over when the first stops', async () => {
    const results: Array<CaptureResult & { node: string }> = [];
    const a = node('node-a', results);
    const b = node('node-b', results);
    await a.engine.start();
    await b.engine.start();
    try {
      a.engine.setStreams([{ name: 'shared_chan', priority: 50 }]);
      b.engine.setStreams([{ name: 'shared_chan', priority: 50 }]);
      // The first capture starts the decoder (slow on a loaded machine); count from then on.
      await pollUntil('a first capture', 20_000, () => (results.length > 0 ? true : undefined), undefined, 50);
      const from = Date.now();
      const skippedBefore = a.engine.claimedElsewhere + b.engine.claimedElsewhere;
      await new Promise((r) => setTimeout(r, 5 * INTERVAL_MS));
      const inWindow = starts.filter((c) => c.at >= from && c.at < from + 5 * INTERVAL_MS);
      // Without claims each engine would capture about 5 times; with them, about 5 in all.
      expect(inWindow.length).toBeGreaterThanOrEqual(3);
      expect(inWindow.length).toBeLessThanOrEqual(6);
      expect(a.engine.claimedElsewhere + b.engine.claimedElsewhere - skippedBefore).toBeGreaterThanOrEqual(3);
      // The stream passes to the other node only once the claim has run out: never a capture by
      // one node less than an interval after the other's (the holder's own cadence is the scheduler's).
      for (let i = 1; i < starts.length; i++) {
        if (starts[i].node !== starts[i - 1].node) expect(starts[i].at - starts[i - 1].at).toBeGreaterThan(INTERVAL_MS);
      }

      // The holder (usually the node that captured first: it renews its own claim) stops.
      const last = starts.at(-1)!.node;
      const holder = last === 'node-a' ? a : b;
      const other = last === 'node-a' ? 'node-b' : 'node-a';
      await holder.engine.stop();
      holder.claims.close();
      const stoppedAt = Date.now();
      await new Promise((r) => setTimeout(r, 3 * INTERVAL_MS + 500));
      const after = starts.filter((c) => c.at > stoppedAt);
      expect(after.length).toBeGreaterThanOrEqual(2);
      expect(after.every((c) => c.node === other)).toBe(true);
      // The claim runs out 1¼ intervals after the holder's last capture, then the other's next deadline comes within one.
      expect(after[0].at - stoppedAt).toBeLessThanOrEqual(2.25 * INTERVAL_MS + 500);
    } finally {
      await a.engine.stop();
      await b.engine.stop();
      a.claims.close();
      b.claims.close();
    }
  }, 60_000);
});
