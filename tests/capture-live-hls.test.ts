// Local live HLS channels (bench/lib/live-hls.ts): real ffmpeg-made segments served as
// rotating Twitch-like live streams, checked against the existing resolver, playlist
// parser, segment fetcher and keyframe extractor exactly as the capture engine uses them.

import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeSegments, META_FILE, startLiveHls, type LiveHlsServer, type SegmentMeta } from '../bench/lib/live-hls.js';
import { newestSegment, parseMediaPlaylist } from '../src/actors/capture/hls-playlist.js';
import { fetchSegmentHead } from '../bench/lib/segment-head.js';
import { extractKeyframe, nalTypes } from '../src/actors/capture/ts-keyframe.js';
import { resolveSource, resolveTwitch, type ResolveResult } from '../src/actors/capture/twitch-resolver.js';
import { resolveFfmpeg, resolveFfprobe } from '../src/shared/ffmpeg.js';

// Shared across runs on purpose: encodeSegments caches by options hash, so re-runs skip ffmpeg.
const CACHE = join(tmpdir(), 'ringcast-live-hls-cache');
const SEG_S = 1;

function exec(bin: string, args: string[], encoding: 'utf8' | 'buffer' = 'utf8'): Promise<string | Buffer> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { encoding, maxBuffer: 64 << 20, timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${bin} ${args.join(' ')}: ${err.message} ${String(stderr)}`));
      else resolve(stdout);
    });
  });
}

async function probe(file: string) {
  const out = await exec(resolveFfprobe().path, [
    '-v', 'error', '-show_entries', 'stream=codec_type,codec_name,profile,width,height,sample_rate,channels',
    '-select_streams', 'v:0', '-show_frames', '-read_intervals', '%+#1', '-show_entries', 'frame=key_frame,pict_type',
    '-of', 'json', file,
  ]);
  return JSON.parse(out as string) as { streams: Array<Record<string, unknown>>; frames: Array<{ key_frame: number; pict_type: string }> };
}

/** Frame 0 of a segment as RGB24. */
async function firstFrameRgb(file: string): Promise<Buffer> {
  return (await exec(resolveFfmpeg().path, ['-v', 'error', '-i', file, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], 'buffer')) as Buffer;
}

let seg480: string[];
let seg720: string[];

beforeAll(async () => {
  mkdirSync(CACHE, { recursive: true });
  // Small and short so the test stays fast; a little noise so keyframes are not trivially tiny.
  [seg480, seg720] = await Promise.all([
    encodeSegments({ dir: CACHE, width: 320, height: 180, fps: 30, segmentSeconds: SEG_S, segments: 3, noise: 4 }),
    encodeSegments({ dir: CACHE, width: 640, height: 360, fps: 60, segmentSeconds: SEG_S, segments: 3, noise: 4 }),
  ]);
});

describe('encodeSegments', () => {
  it('writes the requested segments once and serves re-runs from the cache', async () => {
    expect(seg480).toHaveLength(3);
    const mtimes = seg480.map((f) => statSync(f).mtimeMs);
    const t0 = performance.now();
    const again = await encodeSegments({ dir: CACHE, width: 320, height: 180, fps: 30, segmentSeconds: SEG_S, segments: 3, noise: 4 });
    expect(again).toEqual(seg480);
    expect(again.map((f) => statSync(f).mtimeMs)).toEqual(mtimes);
    expect(performance.now() - t0).toBeLessThan(500);
    const meta = JSON.parse(readFileSync(join(seg480[0], '..', META_FILE), 'utf8')) as SegmentMeta;
    expect(meta).toMatchObject({ width: 320, height: 180, fps: 30, segmentSeconds: SEG_S });
    expect(meta.codecs).toMatch(/^avc1\.64[0-9A-F]{4},mp4a\.40\.2$/); // High profile
  });

  it('makes H.264 High + AAC segments that each open with a keyframe (ffprobe)', async () => {
    for (const [files, w, h] of [[seg480, 320, 180], [seg720, 640, 360]] as const) {
      for (const f of files) {
        const p = await probe(f);
        const v = p.streams.find((s) => s.codec_type === 'video');
        expect(v).toMatchObject({ codec_name: 'h264', profile: 'High', width: w, height: h });
        expect(p.frames[0]).toMatchObject({ key_frame: 1, pict_type: 'I' });
      }
    }
    const all = JSON.parse((await exec(resolveFfprobe().path, ['-v', 'error', '-show_entries', 'stream=codec_type,codec_name,sample_rate,channels', '-of', 'json', seg480[0]])) as string) as { streams: Array<Record<string, unknown>> };
    expect(all.streams.find((s) => s.codec_type === 'audio')).toMatchObject({ codec_name: 'aac', sample_rate: '48000', channels: 2 });
  });

  it('the first segment yields an IDR with SPS and PPS through extractKeyframe', () => {
    const kf = extractKeyframe(readFileSync(seg480[0]));
    const types = nalTypes(kf.annexB);
    expect(types).toContain(7);
    expect(types).toContain(8);
    expect(types).toContain(5);
    expect(kf.bytesUsed).toBeLessThanOrEqual(statSync(seg480[0]).size);
  });

  it('draws overlay PNGs scaled into exactly the given rectangles', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringcast-live-hls-ov-'));
    const magenta = join(dir, 'magenta.png');
    const green = join(dir, 'green.png');
    await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 255, g: 0, b: 255 } } }).png().toFile(magenta);
    await sharp({ create: { width: 20, height: 10, channels: 3, background: { r: 0, g: 255, b: 0 } } }).png().toFile(green);
    const rects = [
      { png: magenta, x: 40, y: 30, w: 64, h: 48 },
      { png: green, x: 200, y: 100, w: 80, h: 40 },
    ];
    const [file] = await encodeSegments({ dir: CACHE, width: 320, height: 180, segmentSeconds: SEG_S, segments: 1, source: 'black', overlays: rects });
    const rgb = await firstFrameRgb(file);
    expect(rgb.length).toBe(320 * 180 * 3);
    const px = (x: number, y: number) => [...rgb.subarray((y * 320 + x) * 3, (y * 320 + x) * 3 + 3)];
    const near = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]) < 40);
    for (const [r, colour] of [[rects[0], [255, 0, 255]], [rects[1], [0, 255, 0]]] as const) {
      // Inside (a few px in from each edge: chroma subsampling blurs the border by a pixel).
      for (const [x, y] of [[r.x + 3, r.y + 3], [r.x + r.w - 4, r.y + r.h - 4], [r.x + r.w / 2, r.y + r.h / 2]]) {
        expect(near(px(x, y), [...colour]), `inside ${x},${y} = ${px(x, y)}`).toBe(true);
      }
      // Just outside each edge stays black.
      for (const [x, y] of [[r.x - 3, r.y + 5], [r.x + r.w + 2, r.y + 5], [r.x + 5, r.y - 3], [r.x + 5, r.y + r.h + 2]]) {
        expect(near(px(x, y), [0, 0, 0]), `outside ${x},${y} = ${px(x, y)}`).toBe(true);
      }
    }
  });

  it('rejects bad options with a message naming the problem', async () => {
    await expect(encodeSegments({ dir: CACHE, width: 321, height: 180 })).rejects.toThrow(/width must be an even integer/);
    await expect(encodeSegments({ dir: CACHE, width: 320, height: 180, fps: 25, segmentSeconds: 0.5 })).rejects.toThrow(/whole number of frames/);
    await expect(encodeSegments({ dir: CACHE, width: 320, height: 180, noise: 101 })).rejects.toThrow(/noise/);
    await expect(
      encodeSegments({ dir: CACHE, width: 320, height: 180, overlays: [{ png: '/nope.png', x: 300, y: 0, w: 40, h: 10 }] }),
    ).rejects.toThrow(/not inside the 320x180 frame/);
    await expect(
      encodeSegments({ dir: CACHE, width: 320, height: 180, overlays: [{ png: '/definitely/missing.png', x: 0, y: 0, w: 4, h: 4 }] }),
    ).rejects.toThrow(/cannot read overlay \/definitely\/missing\.png/);
  });
});

describe('startLiveHls', () => {
  let srv: LiveHlsServer;
  const opts = (s: LiveHlsServer) => ({ gqlUrl: s.gqlUrl, usherUrl: s.usherUrl, timeoutMs: 3000 });
  const live = (r: ResolveResult) => {
    if (r.status !== 'live') throw new Error(`expected live, got ${r.status}`);
    return r;
  };
  const playlist = async (url: string) => {
    const res = await fetch(url);
    expect(res.status).toBe(200);
    return parseMediaPlaylist(await res.text(), url);
  };

  beforeAll(async () => {
    srv = await startLiveHls({ segmentSeconds: SEG_S, window: 4, slowMs: 5000 });
    srv.addChannel('chan_a', { variants: { '720p60': seg720, '480p': seg480 } });
  });
  afterAll(async () => srv?.close());

  it('resolves a channel through gql + usher with the existing resolver and picks 480p', async () => {
    const r = live(await resolveTwitch('Chan_A', { ...opts(srv), quality: '480p' }));
    expect(r.match).toBe('exact');
    expect(r.variant).toMatchObject({ name: '480p', resolution: { width: 320, height: 180 }, frameRate: 30, source: false });
    expect(r.variants.map((v) => v.name)).toEqual(['720p60', '480p']);
    expect(r.variants[0]).toMatchObject({ source: true, frameRate: 60, resolution: { width: 640, height: 360 } });
    expect(r.variant.codecs).toMatch(/^avc1\.64/);
    expect(r.variant.bandwidth).toBeGreaterThan(0);
    expect(live(await resolveTwitch('chan_a', { ...opts(srv), quality: 'best' })).variant.name).toBe('720p60');
  });

  it('rotates the live window: the sequence advances across a segment boundary', async () => {
    const r = live(await resolveTwitch('chan_a', { ...opts(srv), quality: '480p' }));
    const a = await playlist(r.variant.url);
    expect(a.targetDuration).toBe(SEG_S);
    expect(a.segments.filter((s) => !s.isPrefetch)).toHaveLength(4);
    expect(a.segments.filter((s) => s.isPrefetch)).toHaveLength(2);
    expect(a.segments.every((s) => s.duration === SEG_S)).toBe(true);
    await new Promise((r) => setTimeout(r, SEG_S * 1000 + 100));
    const b = await playlist(r.variant.url);
    const step = b.mediaSequence - a.mediaSequence;
    expect(step).toBeGreaterThanOrEqual(1);
    expect(step).toBeLessThanOrEqual(3);
    // The window slid: a segment of the first playlist is now earlier in the second, same URI.
    expect(b.segments[0].url).toBe(a.segments[step].url);

    // Segment sequence n is file n % 3, delivered intact.
    const newest = newestSegment(b)!;
    const head = await fetchSegmentHead(newest.url, { maxBytes: 10 << 20 });
    expect(Buffer.from(head.bytes).equals(readFileSync(seg480[newest.sequence % 3]))).toBe(true);
    // The direct (stable) media playlist URL serves the same live window.
    const direct = await playlist(srv.mediaPlaylistUrl('chan_a', '480p'));
    expect(Math.abs(direct.mediaSequence - b.mediaSequence)).toBeLessThanOrEqual(1);
  });

  it('offline: null token and usher 404, then a new broadcast when it comes back', async () => {
    const before = live(await resolveTwitch('chan_a', { ...opts(srv), quality: '480p' }));
    srv.setLive('chan_a', false);
    expect((await resolveTwitch('chan_a', opts(srv))).status).toBe('offline');
    // Usher itself 404s too (a client holding an old token must not get a playlist).
    expect((await fetch(before.masterUrl)).status).toBe(404);
    expect((await fetch(before.variant.url)).status).toBe(404);
    expect((await resolveSource(srv.mediaPlaylistUrl('chan_a', '480p'))).status).toBe('offline');
    srv.setLive('chan_a', true);
    const after = live(await resolveTwitch('chan_a', { ...opts(srv), quality: '480p' }));
    // The old broadcast's URLs stay dead, as on Twitch; the new ones work.
    expect(after.variant.url).not.toBe(before.variant.url);
    expect((await fetch(before.variant.url)).status).toBe(404);
    expect((await playlist(after.variant.url)).segments.length).toBe(6);
    expect((await resolveSource(srv.mediaPlaylistUrl('chan_a', '480p'))).status).toBe('live');
    // Unknown channels look offline, as nonexistent Twitch logins do.
    expect((await resolveTwitch('nobody_here', opts(srv))).status).toBe('offline');
  });

  it('usher rejects a master request whose signature it did not issue', async () => {
    const r = live(await resolveTwitch('chan_a', opts(srv)));
    const forged = new URL(r.masterUrl);
    forged.searchParams.set('sig', 'f'.repeat(40));
    expect((await fetch(forged)).status).toBe(403);
  });

  it('each fault shows up as the right error', async () => {
    srv.addChannel('faulty', { variants: { '480p': seg480 } });
    const r = live(await resolveTwitch('faulty', { ...opts(srv), quality: '480p' }));
    const segUrl = newestSegment(await playlist(r.variant.url))!.url;
    expect((await fetchSegmentHead(segUrl)).bytes.length).toBeGreaterThan(0);

    srv.setFault('faulty', 'segment-404');
    await expect(fetchSegmentHead(segUrl)).rejects.toMatchObject({ name: 'SegmentFetchError', code: 'http', status: 404 });

    srv.setFault('faulty', 'segment-timeout');
    const t0 = performance.now();
    await expect(fetchSegmentHead(segUrl, { timeoutMs: 300 })).rejects.toMatchObject({ code: 'timeout' });
    expect(performance.now() - t0).toBeLessThan(2000);

    srv.setFault('faulty', 'truncated');
    await expect(fetchSegmentHead(segUrl, { maxBytes: 10 << 20 })).rejects.toMatchObject({ code: 'network' });

    srv.setFault('faulty', 'garbage');
    await expect(fetchSegmentHead(segUrl)).rejects.toMatchObject({ code: 'garbage' });

    srv.setFault('faulty', 'playlist-404');
    expect((await fetch(r.variant.url)).status).toBe(404);
    expect((await resolveSource(srv.mediaPlaylistUrl('faulty', '480p'))).status).toBe('offline');

    srv.setFault('faulty', 'gql-500');
    await expect(resolveTwitch('faulty', opts(srv))).rejects.toMatchObject({ name: 'ResolveError', code: 'http', status: 500 });

    srv.setFault('faulty', 'none');
    expect((await fetchSegmentHead(segUrl)).bytes.length).toBeGreaterThan(0);
    srv.removeChannel('faulty');
    expect((await resolveTwitch('faulty', opts(srv))).status).toBe('offline');
  });

  it('rejects bad channel setups with a clear message', () => {
    expect(() => srv.addChannel('x', { variants: { '480p': seg480 } })).toThrow(/invalid Twitch channel name "x"/);
    expect(() => srv.addChannel('chan_a', { variants: { '480p': seg480 } })).toThrow(/already exists/);
    expect(() => srv.addChannel('empty_ch', { variants: {} })).toThrow(/at least one variant/);
    expect(() => srv.addChannel('missing', { variants: { '480p': ['/no/such/seg.ts'] } })).toThrow(/cannot read segment \/no\/such\/seg\.ts/);
    expect(() => srv.addChannel('notts', { variants: { '480p': [join(seg480[0], '..', META_FILE)] } })).toThrow(/not an MPEG-TS segment/);
    expect(() => srv.addChannel('bad_variant', { variants: { '480p/x': seg480 } })).toThrow(/variant name/);
    expect(() => srv.setFault('chan_a', 'bogus' as never)).toThrow(/unknown fault "bogus"/);
    expect(() => srv.setLive('ghost', true)).toThrow(/unknown channel "ghost"/);
    expect(() => srv.mediaPlaylistUrl('chan_a', '1080p')).toThrow(/no variant "1080p"/);
  });

  it('server CPU per 1000 captures (playlist + segment) from a keep-alive client', async () => {
    const names = Array.from({ length: 50 }, (_, i) => `load_${String(i).padStart(3, '0')}`);
    for (const n of names) srv.addChannel(n, { variants: { '720p60': seg720, '480p': seg480 } });
    const urls480 = names.map((n) => srv.mediaPlaylistUrl(n, '480p'));
    const urls720 = names.map((n) => srv.mediaPlaylistUrl(n, '720p60'));
    // The client runs in its own process so its CPU is not charged to the server. 'head' reads
    // only the first 16 KB of each segment and cancels, as the capture engine does.
    const client = `
      const [urlsJson, mode] = process.argv.slice(1); const urls = JSON.parse(urlsJson);
      const N = 1000; let next = 0; let bytes = 0; let statuses = new Set();
      async function worker() {
        while (next < N) {
          const u = urls[next++ % urls.length];
          const pl = await (await fetch(u)).text();
          const uri = pl.trim().split('\\n').filter((l) => !l.startsWith('#')).pop();
          const res = await fetch(new URL(uri, u));
          statuses.add(res.status);
          let n = 0;
          if (mode === 'full') n = (await res.arrayBuffer()).byteLength;
          else {
            const r = res.body.getReader();
            while (n < 16384) { const { done, value } = await r.read(); if (done) break; n += value.length; }
            await r.cancel();
          }
          bytes += n;
        }
      }
      await Promise.all(Array.from({ length: 8 }, worker));
      console.log(JSON.stringify({ bytes, statuses: [...statuses] }));`;
    const run = async (mode: 'full' | 'head', urls: string[]) => {
      const before = srv.stats();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const out = await new Promise<string>((resolve, reject) => {
        const p = spawn(process.execPath, ['--input-type=module', '-e', client, JSON.stringify(urls), mode], { stdio: ['ignore', 'pipe', 'pipe'] });
        let o = '';
        let e = '';
        p.stdout.on('data', (d) => (o += d));
        p.stderr.on('data', (d) => (e += d));
        p.on('close', (code) => (code === 0 ? resolve(o) : reject(new Error(`client exited ${code}: ${e}`))));
      });
      const wallMs = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const cpuMs = (cpu.user + cpu.system) / 1000;
      const after = srv.stats();
      const { bytes, statuses } = JSON.parse(out) as { bytes: number; statuses: number[] };
      expect(statuses).toEqual([200]);
      expect(after.segmentRequests - before.segmentRequests).toBe(1000);
      expect(after.requests - before.requests).toBe(2000);
      const sent = after.bytesSent - before.bytesSent;
      expect(sent).toBeGreaterThanOrEqual(bytes);
      console.log(
        `live-hls server (${mode} reads): ${cpuMs.toFixed(0)} ms CPU per 1000 captures = 1000 playlist + 1000 segment requests; ` +
          `client read ${(bytes / 1000 / 1024).toFixed(1)} KB/segment, server sent ${(sent / 1000 / 1024).toFixed(1)} KB/capture; ` +
          `${((2000 / wallMs) * 1000).toFixed(0)} req/s over ${wallMs.toFixed(0)} ms wall`,
      );
      return { cpuMs, bytes };
    };
    const mean = (files: string[]) => files.reduce((a, f) => a + statSync(f).size, 0) / files.length;
    const full = await run('full', urls480);
    // Sequence n serves file n % 3, whole.
    expect(full.bytes / 1000).toBeGreaterThan(0.9 * Math.min(...seg480.map((f) => statSync(f).size)));
    // Early cancel on the bigger 720p segments: the client really stopped short of the end.
    const head = await run('head', urls720);
    expect(head.bytes / 1000).toBeLessThan(0.8 * mean(seg720));
    // The bench needs 500 channels / 3 s ≈ 167 captures/s; at this bar that is ≤ 25 % of one core.
    expect(full.cpuMs).toBeLessThan(1500);
    expect(head.cpuMs).toBeLessThan(1500);
    for (const n of names) srv.removeChannel(n);
  });
});
