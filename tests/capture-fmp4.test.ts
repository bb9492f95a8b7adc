// fMP4 (CMAF) HLS segments: the init section parsed, the first keyframe pulled out of a
// segment as bytes arrive, and a capture of an fMP4 playlist over loopback HTTP (with an
// EXT-X-MAP byte range) and from files. All media made here by ffmpeg; the keyframe's decode
// is compared with ffmpeg's own decode of the same segment, byte for byte.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaptureEngine, type CaptureResult } from '../src/actors/capture/engine.js';
import { Fmp4KeyframeExtractor, parseFmp4Init } from '../src/actors/capture/fmp4-keyframe.js';
import { fetchInitSection, fetchKeyframe } from '../src/actors/capture/keyframe-fetch.js';
import { SegmentFetchError } from '../src/actors/capture/segment-fetch.js';
import { KeyframeError, nalTypes } from '../src/actors/capture/ts-keyframe.js';
import { resolveFfmpeg } from '../src/shared/ffmpeg.js';
import { SlotRing } from '../src/shared/slot-ring.js';
import { pollUntil } from './helpers/poll.js';

const FFMPEG = resolveFfmpeg().path;
const W = 320;
const H = 180;
let dir: string;
let server: Server;
let base: string;
const served = { ranges: [] as string[], bytes: 0 };

const ffmpeg = (args: string[], input?: Uint8Array): Buffer =>
  execFileSync(FFMPEG, ['-hide_banner', '-loglevel', 'error', ...args], { input, maxBuffer: 64 * 1024 * 1024 });

/** ffmpeg's own first picture of init + segment, as RGB. */
const firstPicture = (init: Buffer, segment: Buffer): Buffer =>
  ffmpeg(['-f', 'mp4', '-i', 'pipe:0', '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], Buffer.concat([init, segment]));
/** The picture of a bare Annex B keyframe, as RGB. */
const annexBPicture = (annexB: Uint8Array): Buffer =>
  ffmpeg(['-f', 'h264', '-i', 'pipe:0', '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], Buffer.from(annexB));

const file = (name: string) => join(dir, name);
const segmentsOf = (prefix: string) => readdirSync(dir).filter((f) => f.startsWith(prefix) && f.endsWith('.m4s')).sort();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ringcast-fmp4-'));
  // H.264 with B-frames, 1 s fragments; a moving picture so each segment's first frame differs.
  ffmpeg(['-f', 'lavfi', '-i', `testsrc2=size=${W}x${H}:rate=30`, '-t', '3', '-c:v', 'libx264', '-g', '30', '-bf', '2', '-pix_fmt', 'yuv420p',
    '-f', 'hls', '-hls_time', '1', '-hls_segment_type', 'fmp4', '-hls_fmp4_init_filename', 'avc_init.mp4',
    '-hls_segment_filename', file('avc%d.m4s'), '-hls_playlist_type', 'vod', file('avc.m3u8')]);
  // One fragmented MP4 file holding its own moov (no separate init section).
  ffmpeg(['-f', 'lavfi', '-i', `testsrc2=size=${W}x${H}:rate=30`, '-t', '1', '-c:v', 'libx264', '-g', '30', '-pix_fmt', 'yuv420p',
    '-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-f', 'mp4', file('selfinit.mp4')]);
  // HEVC: refused with the codec named.
  ffmpeg(['-f', 'lavfi', '-i', `testsrc2=size=${W}x${H}:rate=30`, '-t', '1', '-c:v', 'libx265', '-x265-params', 'log-level=none', '-tag:v', 'hvc1',
    '-f', 'hls', '-hls_time', '1', '-hls_segment_type', 'fmp4', '-hls_fmp4_init_filename', 'hevc_init.mp4',
    '-hls_segment_filename', file('hevc%d.m4s'), '-hls_playlist_type', 'vod', file('hevc.m3u8')]);
  // Single-file renditions: every segment (and, for fMP4, the init) is a byte range of one file.
  ffmpeg(['-f', 'lavfi', '-i', `testsrc2=size=${W}x${H}:rate=30`, '-t', '3', '-c:v', 'libx264', '-g', '30', '-bf', '2', '-pix_fmt', 'yuv420p',
    '-f', 'hls', '-hls_time', '1', '-hls_segment_type', 'fmp4', '-hls_flags', 'single_file', '-hls_segment_filename', file('single.m4s'),
    '-hls_playlist_type', 'vod', file('single.m3u8')]);
  ffmpeg(['-f', 'lavfi', '-i', `testsrc2=size=${W}x${H}:rate=30`, '-t', '3', '-c:v', 'libx264', '-g', '30', '-pix_fmt', 'yuv420p',
    '-f', 'hls', '-hls_time', '1', '-hls_flags', 'single_file', '-hls_segment_filename', file('single.ts'), '-hls_playlist_type', 'vod', file('singlets.m3u8')]);
  // The same playlist pointing at a URL whose server ignores Range (see the server below).
  writeFileSync(file('norange.m3u8'), readFileSync(file('single.m3u8'), 'utf8').replaceAll('single.m4s', 'single.m4s?norange'));
  // The same init section stored inside one file at an offset, for EXT-X-MAP BYTERANGE.
  const init = readFileSync(file('avc_init.mp4'));
  writeFileSync(file('packed.bin'), Buffer.concat([Buffer.alloc(1000, 7), init, Buffer.alloc(500, 9)]));
  const segs = segmentsOf('avc');
  writeFileSync(file('ranged.m3u8'), ['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-TARGETDURATION:1', '#EXT-X-MEDIA-SEQUENCE:0',
    `#EXT-X-MAP:URI="packed.bin",BYTERANGE="${init.length}@1000"`, ...segs.flatMap((s) => ['#EXTINF:1.0,', s]), ''].join('\n'));

  // Static files with Range support; counts what it sends.
  server = createServer((req, res) => {
    const name = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname.slice(1));
    let body: Buffer;
    try {
      body = readFileSync(file(name));
    } catch {
      res.writeHead(404).end('not found');
      return;
    }
    const ignoreRange = (req.url ?? '').endsWith('?norange');
    const range = ignoreRange ? null : /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (range) {
      served.ranges.push(`${name} ${range[1]}-${range[2]}`);
      body = body.subarray(Number(range[1]), Number(range[2]) + 1);
      res.writeHead(206, { 'content-length': body.length });
    } else {
      res.writeHead(200, { 'content-length': body.length });
    }
    res.write(body, () => { served.bytes += body.length; });
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('fMP4 init section', () => {
  it('finds the H.264 track: id, NAL length size, SPS/PPS, size', () => {
    const init = parseFmp4Init(readFileSync(file('avc_init.mp4')));
    expect(init).toMatchObject({ trackId: 1, codec: 'avc1', nalLengthSize: 4, width: W, height: H });
    expect(init.sps).toHaveLength(1);
    expect(init.pps).toHaveLength(1);
    expect(init.sps[0][0] & 0x1f).toBe(7);
    expect(init.pps[0][0] & 0x1f).toBe(8);
  });

  it('refuses HEVC naming the codec, and bytes that are not MP4 boxes', () => {
    expect(() => parseFmp4Init(readFileSync(file('hevc_init.mp4')))).toThrow(/video codec hvc1 is not H\.264/);
    expect(() => parseFmp4Init(new TextEncoder().encode('#EXTM3U\n#EXT-X-VERSION:7\n'))).toThrow(KeyframeError);
    expect(() => parseFmp4Init(readFileSync(file('avc0.m4s')))).toThrow(/no moov box \(boxes: .*moof.*mdat/);
  });
});

describe('fMP4 keyframe extraction', () => {
  it("each segment's keyframe decodes to exactly ffmpeg's first picture of that segment", () => {
    const initBytes = readFileSync(file('avc_init.mp4'));
    const init = parseFmp4Init(initBytes);
    const segs = segmentsOf('avc');
    expect(segs.length).toBeGreaterThanOrEqual(3);
    const pictures = new Set<string>();
    for (const s of segs) {
      const seg = readFileSync(file(s));
      const x = new Fmp4KeyframeExtractor(init);
      const kf = x.push(seg) ?? x.finish(true);
      expect(nalTypes(kf.annexB)).toEqual([7, 8, 5]);
      const ours = annexBPicture(kf.annexB);
      expect(ours.length).toBe(W * H * 3);
      expect(ours.equals(firstPicture(initBytes, seg)), `${s}: keyframe picture`).toBe(true);
      pictures.add(ours.toString('base64'));
    }
    expect(pictures.size).toBe(segs.length); // the pictures differ: each came from its own segment
  });

  it('byte by byte in small chunks: the same keyframe, and it stops well before the end of the segment', () => {
    const init = parseFmp4Init(readFileSync(file('avc_init.mp4')));
    const seg = readFileSync(file('avc1.m4s'));
    const whole = new Fmp4KeyframeExtractor(init).push(seg)!;
    for (const step of [1, 7, 1000]) {
      const x = new Fmp4KeyframeExtractor(init);
      let kf = null;
      let fed = 0;
      for (; fed < seg.length && !kf; fed += step) kf = x.push(seg.subarray(fed, fed + step));
      expect(kf, `step ${step}`).not.toBeNull();
      expect(Buffer.from(kf!.annexB).equals(Buffer.from(whole.annexB))).toBe(true);
      expect(fed).toBeLessThan(seg.length / 2);
      expect(kf!.bytesUsed).toBe(whole.bytesUsed);
    }
  });

  it('a fragmented MP4 carrying its own moov needs no init section', () => {
    const x = new Fmp4KeyframeExtractor();
    const kf = x.push(readFileSync(file('selfinit.mp4')))!;
    expect(kf).not.toBeNull();
    expect(annexBPicture(kf.annexB).length).toBe(W * H * 3);
  });

  it('truncated, corrupt and init-less segments fail with what is wrong', async () => {
    const init = parseFmp4Init(readFileSync(file('avc_init.mp4')));
    const seg = readFileSync(file('avc1.m4s'));
    const used = new Fmp4KeyframeExtractor(init).push(seg)!.bytesUsed;
    writeFileSync(file('cut.m4s'), seg.subarray(0, used - 100));
    const cut = await fetchKeyframe(pathToFileURL(file('cut.m4s')).toString(), { init }).catch((e: unknown) => e);
    expect(cut).toBeInstanceOf(SegmentFetchError);
    expect(cut).toMatchObject({ code: 'truncated', message: expect.stringMatching(/did not end within the bytes read/) });

    // The moof's size field says 4: smaller than its own header.
    const bad = Buffer.from(seg);
    const moofAt = bad.indexOf('moof') - 4;
    bad.writeUInt32BE(4, moofAt);
    const x = new Fmp4KeyframeExtractor(init);
    expect(x.push(bad)).toBeNull();
    expect(() => x.finish(true)).toThrow(/box "moof" at byte \d+ has an impossible size 4/);

    const noInit = await fetchKeyframe(pathToFileURL(file('avc1.m4s')).toString()).catch((e: unknown) => e);
    expect(noInit).toMatchObject({ code: 'garbage', message: expect.stringMatching(/without an init section/) });
  });
});

function makeEngine() {
  const ring = SlotRing.create({ name: 'test.fmp4', slots: 8, slotBytes: W * H * 3, mode: 'latest' });
  const results: CaptureResult[] = [];
  const engine = new CaptureEngine({
    ffmpegPath: FFMPEG, ring, width: W, height: H, intervalMs: 500, maxConcurrent: 4, quality: '480p', decoders: 1,
    resolve: { gqlUrl: 'http://127.0.0.1:1/gql', usherUrl: 'http://127.0.0.1:1/usher' }, fetchTimeoutMs: 2000,
    backoffInitialMs: 200, backoffMaxMs: 400, offlineRecheckMs: 300, onResult: (r) => results.push(r),
  });
  return { ring, results, engine };
}

describe('fMP4 over HTTP and in the capture engine', () => {
  it('fetchInitSection honours an EXT-X-MAP byte range', async () => {
    const init = readFileSync(file('avc_init.mp4'));
    const parsed = await fetchInitSection(`${base}/packed.bin`, { length: init.length, offset: 1000 });
    expect(parsed).toMatchObject({ trackId: 1, width: W, height: H });
    expect(served.ranges).toContain(`packed.bin 1000-${1000 + init.length - 1}`);
    // (A malformed BYTERANGE is the playlist parser's error: capture-hls.test.ts.)
    await expect(fetchInitSection(`${base}/packed.bin`, { length: 300 * 1024, offset: 0 })).rejects.toThrow(/init section of 307200 bytes is larger than 262144/);
    await expect(fetchInitSection(`${base}/missing.mp4`, undefined)).rejects.toMatchObject({ code: 'http', status: 404 });
  });

  it('captures fMP4 playlists over HTTP (init fetched once) and from files; HEVC fails as a named error', async () => {
    const { ring, results, engine } = makeEngine();
    const overHttp = `${base}/ranged.m3u8`;
    const fromFile = file('avc.m3u8');
    const hevc = `${base}/hevc.m3u8`;
    await engine.start();
    try {
      served.ranges.length = 0;
      engine.setStreams([{ name: overHttp, priority: 50 }, { name: fromFile, priority: 50 }, { name: hevc, priority: 50 }]);
      const okOf = (name: string) => results.filter((r): r is Extract<CaptureResult, { status: 'ok' }> => r.stream === name && r.status === 'ok');
      await pollUntil('two fMP4 captures of each stream and a HEVC error', 15_000,
        () => (okOf(overHttp).length >= 2 && okOf(fromFile).length >= 2 && results.some((r) => r.stream === hevc && r.status === 'error') ? true : undefined),
        () => results.map((r) => `${r.stream.slice(-12)} ${r.status} ${r.status === 'error' ? r.error : ''}`));
      await engine.stop(); // nothing more is written to the ring
      // The VOD playlists' newest segment is the last one; its picture is what the ring holds.
      const lastSeg = segmentsOf('avc').at(-1)!;
      // Decoded as the capture decoders decode (no loop filter, bilinear scaler), so the bytes must match.
      const want = ffmpeg(['-skip_loop_filter', 'all', '-f', 'mp4', '-i', 'pipe:0', '-frames:v', '1', '-vf', `scale=${W}:${H}:flags=bilinear`,
        '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], Buffer.concat([readFileSync(file('avc_init.mp4')), readFileSync(file(lastSeg))]));
      for (const r of [...okOf(overHttp), ...okOf(fromFile)]) expect(r.segment.url.endsWith(lastSeg)).toBe(true);
      const newest = results.filter((r): r is Extract<CaptureResult, { status: 'ok' }> => r.status === 'ok').at(-1)!;
      expect(ring.frameInSlot(newest.slot)).toBe(newest.frame);
      expect(Buffer.from(ring.slotView(newest.slot).subarray(0, W * H * 3)).equals(want)).toBe(true);
      // The init section is fetched once for all captures of the rendition.
      expect(served.ranges.filter((r) => r.startsWith('packed.bin'))).toHaveLength(1);
      const err = results.find((r) => r.stream === hevc && r.status === 'error') as Extract<CaptureResult, { status: 'error' }>;
      expect(err).toMatchObject({ stage: 'segment', code: 'garbage' });
      expect(err.error).toMatch(/video codec hvc1 is not H\.264/);
    } finally {
      await engine.stop();
    }
  }, 30_000);

  it('single-file renditions (EXT-X-BYTERANGE), fMP4 and TS, over HTTP and from files: the newest range is the one captured', async () => {
    const { ring, results, engine } = makeEngine();
    const names = [`${base}/single.m3u8`, file('single.m3u8'), `${base}/singlets.m3u8`, file('singlets.m3u8'), `${base}/norange.m3u8`];
    await engine.start();
    try {
      served.ranges.length = 0;
      engine.setStreams(names.map((name) => ({ name, priority: 50 })));
      const okOf = (name: string) => results.filter((r): r is Extract<CaptureResult, { status: 'ok' }> => r.stream === name && r.status === 'ok');
      await pollUntil('two captures of each single-file stream, and the Range-less server refused', 15_000,
        () => (names.slice(0, 4).every((n) => okOf(n).length >= 2) && results.some((r) => r.stream === names[4] && r.status === 'error') ? true : undefined),
        () => results.map((r) => `${r.stream.slice(-16)} ${r.status} ${r.status === 'error' ? r.error : ''}`));
      // Only the newest segment's range was asked for (and the init's, once).
      const lastRange = (playlist: string) => {
        const ranges = [...readFileSync(file(playlist), 'utf8').matchAll(/#EXT-X-BYTERANGE:(\d+)@(\d+)/g)].map((m) => ({ length: Number(m[1]), offset: Number(m[2]) }));
        return ranges[ranges.length - 1];
      };
      const m4s = lastRange('single.m3u8');
      const ts = lastRange('singlets.m3u8');
      const initLen = Number(readFileSync(file('single.m3u8'), 'utf8').match(/EXT-X-MAP:URI="single\.m4s",BYTERANGE="(\d+)@0"/)![1]);
      expect(new Set(served.ranges.filter((r) => r.startsWith('single.m4s ')))).toEqual(new Set([
        `single.m4s 0-${initLen - 1}`,
        `single.m4s ${m4s.offset}-${m4s.offset + m4s.length - 1}`,
      ]));
      expect(served.ranges.filter((r) => r.startsWith('single.ts '))).toContain(`single.ts ${ts.offset}-${ts.offset + ts.length - 1}`);
      const refused = results.find((r) => r.stream === names[4] && r.status === 'error') as Extract<CaptureResult, { status: 'error' }>;
      expect(refused).toMatchObject({ stage: 'segment', code: 'http' });
      expect(refused.error).toMatch(/ignored the Range request \(HTTP 200\) that EXT-X-BYTERANGE needs/);
      await engine.stop();
      // The ring's newest frame is the newest range's picture, decoded as the capture decoders decode.
      const newest = results.filter((r): r is Extract<CaptureResult, { status: 'ok' }> => r.status === 'ok').at(-1)!;
      const isTs = newest.segment.url.includes('.ts');
      const whole = readFileSync(file(isTs ? 'single.ts' : 'single.m4s'));
      const r = isTs ? ts : m4s;
      const input = isTs ? whole.subarray(r.offset, r.offset + r.length) : Buffer.concat([whole.subarray(0, initLen), whole.subarray(r.offset, r.offset + r.length)]);
      const want = ffmpeg(['-skip_loop_filter', 'all', '-f', isTs ? 'mpegts' : 'mp4', '-i', 'pipe:0', '-frames:v', '1', '-vf', `scale=${W}:${H}:flags=bilinear`,
        '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], input);
      expect(ring.frameInSlot(newest.slot)).toBe(newest.frame);
      expect(Buffer.from(ring.slotView(newest.slot).subarray(0, W * H * 3)).equals(want), `newest frame of ${newest.stream}`).toBe(true);
    } finally {
      await engine.stop();
    }
  }, 30_000);

  it('an init section that failed is fetched again: a rendition whose init is fixed recovers', async () => {
    copyFileSync(file('hevc_init.mp4'), file('swap_init.mp4'));
    writeFileSync(file('swap.m3u8'), ['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-TARGETDURATION:1', '#EXT-X-MEDIA-SEQUENCE:0',
      '#EXT-X-MAP:URI="swap_init.mp4"', ...segmentsOf('avc').flatMap((seg) => ['#EXTINF:1.0,', seg]), ''].join('\n'));
    const { results, engine } = makeEngine();
    const name = `${base}/swap.m3u8`;
    await engine.start();
    try {
      engine.setStreams([{ name, priority: 50 }]);
      await pollUntil('a failed capture with the HEVC init', 10_000, () => (results.some((r) => r.status === 'error') ? true : undefined));
      copyFileSync(file('avc_init.mp4'), file('swap_init.mp4'));
      await pollUntil('a capture once the init is H.264', 10_000, () => (results.some((r) => r.status === 'ok') ? true : undefined),
        () => results.map((r) => (r.status === 'error' ? r.error : r.status)));
    } finally {
      await engine.stop();
    }
  }, 30_000);
});
