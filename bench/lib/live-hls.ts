/**
 * Local live HLS "channels" that look like Twitch to the capture code, for the capture tests
 * and as the load side of `bench/capture`.
 *
 * Two halves:
 *  - `encodeSegments` runs ffmpeg once to make a few real H.264/AAC MPEG-TS segments (keyframe
 *    at every segment start, optionally with PNG templates drawn at known places), cached on
 *    disk by an options hash so tests and benchmark re-runs do not pay for encoding again.
 *  - `startLiveHls` serves any number of channels from those few files on 127.0.0.1: the
 *    PlaybackAccessToken gql endpoint, the usher master playlist, rotating live media
 *    playlists and the segments, with per-channel offline state and injected faults.
 *
 * The server is the load generator of the capture benchmark, so it must stay cheap next to
 * the thing being measured: segment bodies are shared in-memory Buffers, playlist text is
 * built at most once per (channel session, variant, sequence), routing is plain string
 * work (no URL objects on the hot path), keep-alive is on and nothing is logged per request.
 */

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { resolveFfmpeg } from '../../src/shared/ffmpeg.js';

// This fake parses nothing with the capture code it serves: a fake that shared the product's
// parsers would agree with the system under test by construction, bugs included. What Twitch
// itself fixes (the persisted-query hash its web player sends, channel name rules, the IVS
// variant names) is written out here from Twitch's side.

/** sha256 of the PlaybackAccessToken persisted query, as Twitch's web player sends it. */
const TWITCH_PLAYBACK_ACCESS_TOKEN_HASH = 'ed230aa1e33e07eebb8928504583da78a5173989fadfb1ac94be06a04f3cdbe9';
/** Twitch logins: 3-25 letters, digits or underscores. */
const isTwitchLogin = (name: string): boolean => /^[a-z0-9_]{3,25}$/i.test(name);
/** IVS variant names: "480p" (30 fps) or "720p60". */
function variantQuality(name: string): { height: number; fps: number } | undefined {
  const m = /^(\d+)p(\d+)?$/i.exec(name.trim());
  return m ? { height: Number(m[1]), fps: m[2] ? Number(m[2]) : 30 } : undefined;
}
/** MPEG-TS (sync byte every 188 bytes) or fragmented MP4 (a box type at bytes 4..8). */
function isMediaSegment(b: Uint8Array): boolean {
  if (b.length >= 188 && b[0] === 0x47 && (b.length < 376 || b[188] === 0x47)) return true;
  if (b.length < 8) return false;
  const box = String.fromCharCode(b[4], b[5], b[6], b[7]);
  return box === 'ftyp' || box === 'styp' || box === 'moof';
}

/**
 * The H.264 elementary stream of a TS segment's video PID (stream id 0xE0), payloads joined:
 * enough to find the SPS, written independently of the product's keyframe extractor.
 */
function videoElementaryStream(ts: Uint8Array): Uint8Array {
  let videoPid = -1;
  const parts: Uint8Array[] = [];
  for (let at = 0; at + 188 <= ts.length; at += 188) {
    if (ts[at] !== 0x47) throw new Error(`no TS sync byte at offset ${at}`);
    const pid = ((ts[at + 1] & 0x1f) << 8) | ts[at + 2];
    const start = (ts[at + 1] & 0x40) !== 0;
    const afc = (ts[at + 3] >> 4) & 3;
    let off = at + 4;
    if (afc & 2) off += 1 + ts[at + 4];
    if (!(afc & 1) || off >= at + 188) continue;
    const payload = ts.subarray(off, at + 188);
    if (videoPid < 0 && start && payload[0] === 0 && payload[1] === 0 && payload[2] === 1 && payload[3] === 0xe0) videoPid = pid;
    if (pid === videoPid) parts.push(start ? payload.subarray(9 + payload[8]) : payload);
  }
  if (videoPid < 0) throw new Error('no video PES (stream id 0xE0)');
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------

export interface Overlay {
  png: string;
  x: number;
  y: number;
  w: number;
  h: number;
} // pixels in the output size

export interface EncodeOptions {
  dir: string;
  width: number;
  height: number;
  fps?: number /*30*/;
  segmentSeconds?: number /*2*/;
  segments?: number /*3*/;
  bitrateKbps?: number;
  source?: 'testsrc2' | 'still' | 'black';
  noise?: number /* 0 = none; makes keyframes realistic-size */;
  overlays?: Overlay[];
  bframes?: number /*2*/;
  /** 0..255: drawn as 8 white (1) / black (0) squares along the top, so a decoded frame says which content it is (readMarker). */
  marker?: number;
}

/** Where marker bit k sits, as fractions of the frame (so any scaled copy of the frame can be read). */
export function markerCell(k: number): { cx: number; cy: number; size: number } {
  // Square cells one twelfth of the height (of a 16:9 frame), 1.5 cells apart, half a cell from the top-left corner.
  const size = 1 / 12;
  const width = (size * 9) / 16;
  return { cx: width * (1 + 1.5 * k), cy: size, size };
}

/**
 * The marker in an RGB24 frame of any size (the centre of each cell, by luminance), or -1 when
 * a cell is neither clearly white nor clearly black (no marker there, or a broken picture).
 */
export function readMarker(rgb: Uint8Array, width: number, height: number): number {
  let value = 0;
  for (let k = 0; k < 8; k++) {
    const c = markerCell(k);
    const x = Math.round(c.cx * width);
    const y = Math.round(c.cy * height);
    const i = (y * width + x) * 3;
    if (i + 2 >= rgb.length) return -1;
    const luma = 0.299 * rgb[i] + 0.587 * rgb[i + 1] + 0.114 * rgb[i + 2];
    if (luma > 170) value |= 1 << k;
    else if (luma > 85) return -1;
  }
  return value;
}

/** What encodeSegments learnt about its output; the server reads it to write an honest master playlist. */
export interface SegmentMeta {
  width: number;
  height: number;
  fps: number;
  segmentSeconds: number;
  /** RFC 6381 codecs string as Twitch's master playlists carry it, e.g. "avc1.64001F,mp4a.40.2". */
  codecs: string;
  files: string[];
}

export const META_FILE = 'meta.json';
/** Bump when what is stored beside the segments (meta.json) changes; args changes key themselves. */
const RECIPE_VERSION = 1;
const FFMPEG_TIMEOUT_MS = 10 * 60_000;

const isInt = (v: number) => Number.isInteger(v);

function checkOptions(o: EncodeOptions): Required<Omit<EncodeOptions, 'bitrateKbps' | 'marker'>> & { bitrateKbps?: number; marker?: number } {
  if (typeof o.dir !== 'string' || o.dir === '') throw new Error('encodeSegments: dir is required');
  const fps = o.fps ?? 30;
  const segmentSeconds = o.segmentSeconds ?? 2;
  const segments = o.segments ?? 3;
  const noise = o.noise ?? 0;
  const bframes = o.bframes ?? 2;
  const source = o.source ?? 'testsrc2';
  // x264 with yuv420p needs even dimensions; say so instead of letting ffmpeg fail cryptically.
  for (const [k, v] of [['width', o.width], ['height', o.height]] as const) {
    if (!isInt(v) || v < 16 || v > 4096 || v % 2 !== 0) throw new Error(`encodeSegments: ${k} must be an even integer in 16..4096, got ${v}`);
  }
  if (!(fps > 0 && fps <= 120)) throw new Error(`encodeSegments: fps must be in (0, 120], got ${fps}`);
  if (!(segmentSeconds > 0 && segmentSeconds <= 20)) throw new Error(`encodeSegments: segmentSeconds must be in (0, 20], got ${segmentSeconds}`);
  // A keyframe must open every segment, so a segment must be a whole number of frames (the GOP).
  if (!isInt(fps * segmentSeconds)) throw new Error(`encodeSegments: fps*segmentSeconds must be a whole number of frames, got ${fps * segmentSeconds}`);
  if (!isInt(segments) || segments < 1 || segments > 100) throw new Error(`encodeSegments: segments must be an integer in 1..100, got ${segments}`);
  if (!isInt(noise) || noise < 0 || noise > 100) throw new Error(`encodeSegments: noise must be an integer in 0..100, got ${noise}`);
  if (!isInt(bframes) || bframes < 0 || bframes > 16) throw new Error(`encodeSegments: bframes must be an integer in 0..16, got ${bframes}`);
  if (source !== 'testsrc2' && source !== 'still' && source !== 'black') throw new Error(`encodeSegments: unknown source ${JSON.stringify(source)}`);
  if (o.bitrateKbps !== undefined && !(isInt(o.bitrateKbps) && o.bitrateKbps >= 50 && o.bitrateKbps <= 100_000)) {
    throw new Error(`encodeSegments: bitrateKbps must be an integer in 50..100000, got ${o.bitrateKbps}`);
  }
  if (o.marker !== undefined && !(isInt(o.marker) && o.marker >= 0 && o.marker <= 255)) throw new Error(`encodeSegments: marker must be an integer in 0..255, got ${o.marker}`);
  const overlays = o.overlays ?? [];
  overlays.forEach((ov, i) => {
    const what = `encodeSegments: overlays[${i}] (${ov.png})`;
    if (![ov.x, ov.y, ov.w, ov.h].every(isInt)) throw new Error(`${what}: x, y, w, h must be integers`);
    if (ov.w < 1 || ov.h < 1) throw new Error(`${what}: w and h must be >= 1`);
    // Tests assert "template drawn at (x,y,w,h)"; a clipped template would make that a lie.
    if (ov.x < 0 || ov.y < 0 || ov.x + ov.w > o.width || ov.y + ov.h > o.height) {
      throw new Error(`${what}: rectangle ${ov.x},${ov.y} ${ov.w}x${ov.h} is not inside the ${o.width}x${o.height} frame`);
    }
  });
  return { dir: o.dir, width: o.width, height: o.height, fps, segmentSeconds, segments, noise, bframes, source, overlays, bitrateKbps: o.bitrateKbps, ...(o.marker !== undefined ? { marker: o.marker } : {}) };
}

function videoSource(source: string, w: number, h: number, fps: number): string {
  switch (source) {
    case 'black':
      return `color=c=black:size=${w}x${h}:rate=${fps}`;
    case 'still':
      // testsrc2's first frame repeated: detailed (so it hashes like a real picture) but frozen.
      return `testsrc2=size=${w}x${h}:rate=${fps},trim=end_frame=1,loop=loop=-1:size=1:start=0`;
    default:
      return `testsrc2=size=${w}x${h}:rate=${fps}`;
  }
}

/** The ffmpeg command line; exported so a test or the bench report can show what ran. */
export function encodeArgs(o: ReturnType<typeof checkOptions>, outPattern: string): string[] {
  const gop = o.fps * o.segmentSeconds;
  const total = o.segments * o.segmentSeconds;
  const inputs = ['-f', 'lavfi', '-i', videoSource(o.source, o.width, o.height, o.fps), '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'];
  // Noise goes on the background only: it is there to give keyframes a realistic size, and
  // the templates should stay the exact pixels tests look for.
  const graph = [`[0:v]format=yuv420p${o.noise > 0 ? `,noise=alls=${o.noise}:allf=t` : ''}[b0]`];
  o.overlays.forEach((ov, i) => {
    inputs.push('-loop', '1', '-i', ov.png);
    graph.push(`[${i + 2}:v]scale=${ov.w}:${ov.h},format=rgba[o${i}]`, `[b${i}][o${i}]overlay=x=${ov.x}:y=${ov.y}:eof_action=repeat[b${i + 1}]`);
  });
  const boxes = o.marker === undefined ? '' : Array.from({ length: 8 }, (_, k) => {
    const c = markerCell(k);
    const size = Math.round(c.size * o.height);
    const x = Math.round(c.cx * o.width - size / 2);
    const y = Math.round(c.cy * o.height - size / 2);
    return `,drawbox=x=${x}:y=${y}:w=${size}:h=${size}:color=${(o.marker! >> k) & 1 ? 'white' : 'black'}:t=fill`;
  }).join('');
  graph.push(`[b${o.overlays.length}]format=yuv420p${boxes}[v]`);
  const rate = o.bitrateKbps !== undefined
    ? ['-b:v', `${o.bitrateKbps}k`, '-maxrate', `${o.bitrateKbps}k`, '-bufsize', `${o.bitrateKbps * 2}k`]
    : ['-crf', '23'];
  return [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
    ...inputs,
    '-filter_complex', graph.join(';'),
    '-map', '[v]', '-map', '1:a', '-t', String(total),
    // Closed fixed GOP = one IDR per segment, as Twitch requires of broadcasters (2 s keyframes).
    '-c:v', 'libx264', '-preset', 'veryfast', '-profile:v', 'high', '-pix_fmt', 'yuv420p',
    '-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0', '-bf', String(o.bframes),
    '-force_key_frames', `expr:gte(t,n_forced*${o.segmentSeconds})`, '-forced-idr', '1',
    ...rate,
    '-c:a', 'aac', '-b:a', '128k', '-ac', '2', '-ar', '48000',
    // The segment muxer cuts at the first keyframe at/after each boundary; the small delta
    // absorbs float rounding so the cut lands on the keyframe exactly at k*segmentSeconds.
    '-f', 'segment', '-segment_time', String(o.segmentSeconds), '-segment_time_delta', String(0.5 / o.fps),
    '-segment_format', 'mpegts', outPattern,
  ];
}

function runFfmpeg(args: string[]): Promise<void> {
  const bin = resolveFfmpeg().path;
  return new Promise((resolve, reject) => {
    const p = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let tail = '';
    p.stderr.setEncoding('utf8');
    p.stderr.on('data', (s: string) => void (tail = (tail + s).slice(-4000)));
    const timer = setTimeout(() => p.kill('SIGKILL'), FFMPEG_TIMEOUT_MS);
    p.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`encodeSegments: cannot run ${bin}: ${err.message}`));
    });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`encodeSegments: ffmpeg ${signal ? `killed by ${signal}` : `exited ${code}`}: ${tail.trim().split('\n').slice(-5).join(' | ')}`));
    });
  });
}

/** "avc1.PPCCLL" from the SPS (profile_idc, constraint flags, level_idc follow the NAL header). */
function codecsFromSegment(bytes: Uint8Array, file: string): string {
  let b: Uint8Array;
  try {
    b = videoElementaryStream(bytes);
  } catch (err) {
    throw new Error(`encodeSegments: ${file} has no usable video stream: ${(err as Error).message}`);
  }
  for (let i = 0; i + 7 < b.length; i++) {
    if (b[i] === 0 && b[i + 1] === 0 && b[i + 2] === 1 && (b[i + 3] & 0x1f) === 7) {
      const hex = (n: number) => n.toString(16).toUpperCase().padStart(2, '0');
      return `avc1.${hex(b[i + 4])}${hex(b[i + 5])}${hex(b[i + 6])},mp4a.40.2`;
    }
  }
  throw new Error(`encodeSegments: ${file}: keyframe without an SPS`);
}

const inflight = new Map<string, Promise<string[]>>();

async function cached(outDir: string): Promise<string[] | undefined> {
  try {
    const meta = JSON.parse(await readFile(join(outDir, META_FILE), 'utf8')) as SegmentMeta;
    const files = meta.files.map((f) => join(outDir, f));
    return files.every((f) => existsSync(f)) ? files : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Encodes `segments` MPEG-TS segments (H.264 High, keyframe at every segment start, GOP =
 * segmentSeconds, AAC audio like Twitch), one ffmpeg run, returns the segment files (and keeps
 * them cached by an options hash so re-runs are free).
 */
export async function encodeSegments(o: EncodeOptions): Promise<string[]> {
  const opts = checkOptions(o);
  const overlayHashes = await Promise.all(
    opts.overlays.map(async (ov) => {
      let png: Buffer;
      try {
        png = await readFile(ov.png);
      } catch (err) {
        throw new Error(`encodeSegments: cannot read overlay ${ov.png}: ${(err as Error).message}`);
      }
      // Hash the contents, not the path: an edited template must not hit a stale cache.
      return { sha: createHash('sha256').update(png).digest('hex') };
    }),
  );
  // Key on the exact ffmpeg command (with PNG paths replaced by content hashes), so any change
  // to the recipe or the options re-encodes and nothing stale is ever served from the cache.
  const keyed = { ...opts, overlays: opts.overlays.map((ov, i) => ({ ...ov, png: overlayHashes[i].sha })) };
  const key = createHash('sha256')
    .update(JSON.stringify({ v: RECIPE_VERSION, ffmpeg: resolveFfmpeg().path, args: encodeArgs(keyed, 'OUT') }))
    .digest('hex')
    .slice(0, 20);
  const { dir } = opts;
  const outDir = resolvePath(dir, `hls-${key}`);
  const running = inflight.get(outDir);
  if (running) return running;
  const job = (async () => {
    const hit = await cached(outDir);
    if (hit) return hit;
    await mkdir(dir, { recursive: true });
    // Encode into a private directory and rename it into place, so a concurrent encoder in
    // another process (tests and bench share the cache) never sees half-written files.
    const tmp = resolvePath(dir, `.tmp-hls-${key}-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(tmp, { recursive: true });
    try {
      await runFfmpeg(encodeArgs(opts, join(tmp, 'seg%03d.ts')));
      const names = (await readdir(tmp)).filter((f) => /^seg\d+\.ts$/.test(f)).sort();
      if (names.length !== opts.segments) {
        throw new Error(`encodeSegments: ffmpeg wrote ${names.length} segments, expected ${opts.segments} (keyframes not on segment boundaries?)`);
      }
      let codecs = '';
      for (const n of names) codecs = codecsFromSegment(await readFile(join(tmp, n)), n);
      const meta: SegmentMeta = { width: opts.width, height: opts.height, fps: opts.fps, segmentSeconds: opts.segmentSeconds, codecs, files: names };
      await writeFile(join(tmp, META_FILE), JSON.stringify(meta, null, 1));
      try {
        await rename(tmp, outDir);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw err;
        // Someone else finished first: theirs is identical (same options hash), use it.
      }
      const done = await cached(outDir);
      if (!done) throw new Error(`encodeSegments: ${outDir} is incomplete after encoding`);
      return done;
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  })();
  inflight.set(outDir, job);
  try {
    return await job;
  } finally {
    inflight.delete(outDir);
  }
}

// ---------------------------------------------------------------------------------------
// Serving
// ---------------------------------------------------------------------------------------

export type ChannelFault = 'none' | 'segment-404' | 'segment-timeout' | 'truncated' | 'garbage' | 'playlist-404' | 'gql-500';
const FAULTS: readonly ChannelFault[] = ['none', 'segment-404', 'segment-timeout', 'truncated', 'garbage', 'playlist-404', 'gql-500'];

export interface ChannelSetup {
  variants: Record<string, string[]> /* IVS-NAME e.g. '480p' | '720p60' -> segment files */;
  live?: boolean;
  fault?: ChannelFault;
}

export interface LiveHlsServer {
  url: string;
  gqlUrl: string;
  usherUrl: string; // pass gqlUrl/usherUrl to resolveTwitch / the service flags
  addChannel(name: string, setup: ChannelSetup): void; // segments are read once into memory and shared between channels
  removeChannel(name: string): void;
  setLive(name: string, live: boolean): void; // offline: gql token null AND usher 404, as Twitch does
  setFault(name: string, fault: ChannelFault): void;
  mediaPlaylistUrl(name: string, variant: string): string; // direct media playlist URL (for "direct HLS URL" sources and the naive baseline)
  stats(): { requests: number; segmentRequests: number; bytesSent: number };
  close(): Promise<void>;
}

interface VariantData {
  name: string;
  files: Buffer[];
  width: number;
  height: number;
  fps: number;
  codecs: string;
  bandwidth: number;
}

/** One live broadcast. Going offline and back starts a new one with new URLs, as on Twitch. */
interface Session {
  id: string;
  /** Wall time at which sequence `offset` began; randomised so channels tick out of step. */
  start: number;
  offset: number;
  master: string;
  /** Last playlist built per variant: rebuilt once per segment tick, not per request. */
  memo: Map<string, { seq: number; text: string }>;
}

interface Channel {
  name: string;
  variants: Map<string, VariantData>;
  live: boolean;
  fault: ChannelFault;
  token: { value: string; signature: string };
  session: Session | undefined;
}

/** Segments older than this many behind the live edge 404, like an expired CDN object. */
const RETENTION_SEGMENTS = 60;
const PREFETCH = 2;
const TRUNCATE_BYTES = 20 * 1024;
const MAX_GQL_BODY = 64 * 1024;
const VARIANT_RE = /^[A-Za-z0-9_]{1,32}$/;
/** Session path segment meaning "the current broadcast" (ids are b<n><hex>, so no clash). */
const STABLE_SESSION = 'live';

function readMeta(file: string): SegmentMeta | undefined {
  const p = join(dirname(file), META_FILE);
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as SegmentMeta;
  } catch (err) {
    throw new Error(`live-hls: bad ${p}: ${(err as Error).message}`);
  }
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  const b = JSON.stringify(body);
  res.writeHead(status, [['content-type', 'application/json'], ['content-length', String(Buffer.byteLength(b))]]).end(b);
};
const text = (res: ServerResponse, status: number, body: string, type = 'text/plain') =>
  void res.writeHead(status, [['content-type', type], ['content-length', String(Buffer.byteLength(body))]]).end(body);
const M3U8 = 'application/vnd.apple.mpegurl';

export async function startLiveHls(o: { segmentSeconds?: number /*2*/; window?: number /*4*/; slowMs?: number /*timeout fault delay, 30000*/ } = {}): Promise<LiveHlsServer> {
  const segmentSeconds = o.segmentSeconds ?? 2;
  const window = o.window ?? 4;
  const slowMs = o.slowMs ?? 30_000;
  if (!(segmentSeconds > 0 && segmentSeconds <= 20)) throw new Error(`startLiveHls: segmentSeconds must be in (0, 20], got ${segmentSeconds}`);
  if (!isInt(window) || window < 1 || window > 30) throw new Error(`startLiveHls: window must be an integer in 1..30, got ${window}`);
  if (!(slowMs >= 0)) throw new Error(`startLiveHls: slowMs must be >= 0, got ${slowMs}`);
  const segMs = segmentSeconds * 1000;
  const extinf = `#EXTINF:${segmentSeconds.toFixed(3)},live`;
  const secret = randomBytes(16);

  const channels = new Map<string, Channel>();
  /** Segment bytes by absolute path: read once, shared by every channel that uses the file. */
  const fileCache = new Map<string, Buffer>();
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let closedBytes = 0;
  let requests = 0;
  let segmentRequests = 0;
  let sessionCounter = 0;
  // Random bytes that fail the TS sniff (no 0x47 at packet starts): what a captive portal or
  // a broken CDN node might hand back with a 200.
  const garbage = randomBytes(256 * 1024);
  for (let i = 0; i < garbage.length; i += 188) if (garbage[i] === 0x47) garbage[i] = 0x48;

  const server = createServer({ noDelay: true, keepAlive: true }, (req, res) => {
    requests++;
    try {
      route(req, res);
    } catch (err) {
      if (!res.headersSent) text(res, 500, `live-hls: ${(err as Error).message}`);
      else res.destroy();
    }
  });
  // Capture clients poll every few seconds; keep their connections instead of re-handshaking.
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 65_000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => {
      closedBytes += s.bytesWritten;
      sockets.delete(s);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const sequenceNow = (s: Session) => s.offset + Math.floor((Date.now() - s.start) / segMs);

  function newSession(ch: Channel): Session {
    const id = `b${++sessionCounter}${randomBytes(3).toString('hex')}`;
    const s: Session = {
      id,
      start: Date.now() - Math.random() * segMs,
      offset: window + Math.floor(Math.random() * 1_000_000),
      master: '',
      memo: new Map(),
    };
    s.master = masterPlaylist(ch, s);
    return s;
  }

  /** As usher serves it: source rendition first in the "chunked" group, the rest named by IVS-NAME. */
  function masterPlaylist(ch: Channel, s: Session): string {
    const vs = [...ch.variants.values()].sort((a, b) => b.height - a.height || b.fps - a.fps || b.bandwidth - a.bandwidth);
    const out = ['#EXTM3U', `#EXT-X-TWITCH-INFO:NODE="video-edge-local",MANIFEST-NODE-TYPE="weaver_cluster",BROADCAST-ID="${s.id}",CLUSTER="local"`];
    vs.forEach((v, i) => {
      const uri = `${url}/hls/${ch.name}/${s.id}/${v.name}.m3u8`;
      const fps = `FRAME-RATE=${v.fps.toFixed(3)}`;
      if (v.name === 'audio_only') {
        out.push(`#EXT-X-STREAM-INF:BANDWIDTH=${v.bandwidth},CODECS="mp4a.40.2",VIDEO="audio_only",IVS-NAME="audio_only"`, uri);
      } else if (i === 0) {
        // Twitch's source rendition: no IVS-NAME; its name comes from EXT-X-MEDIA NAME "... (source)".
        out.push(
          `#EXT-X-MEDIA:TYPE=VIDEO,GROUP-ID="chunked",NAME="${v.name} (source)",AUTOSELECT=YES,DEFAULT=YES`,
          `#EXT-X-STREAM-INF:BANDWIDTH=${v.bandwidth},RESOLUTION=${v.width}x${v.height},CODECS="${v.codecs}",VIDEO="chunked",${fps}`,
          uri,
        );
      } else {
        // Twitch's group ids always carry the frame rate ("480p30") even when the name does not ("480p").
        const group = /^\d+p$/.test(v.name) ? `${v.name}${Math.round(v.fps)}` : v.name;
        out.push(
          `#EXT-X-MEDIA:TYPE=VIDEO,GROUP-ID="${group}",NAME="${v.name}",AUTOSELECT=YES,DEFAULT=YES`,
          `#EXT-X-STREAM-INF:BANDWIDTH=${v.bandwidth},RESOLUTION=${v.width}x${v.height},CODECS="${v.codecs}",VIDEO="${group}",${fps},IVS-NAME="${v.name}"`,
          uri,
        );
      }
    });
    return out.join('\n') + '\n';
  }

  function mediaPlaylist(s: Session, variant: string, newest: number): string {
    const memo = s.memo.get(variant);
    if (memo && memo.seq === newest) return memo.text;
    const first = newest - window + 1;
    // Sequence n is "newest" from start+(n-offset)*segMs on, and it is newest because it has
    // just *finished*: so it began one segment earlier (the prefetch ones are still being made).
    const iso = (seq: number) => new Date(s.start + (seq - s.offset - 1) * segMs).toISOString();
    const out = [
      '#EXTM3U',
      '#EXT-X-VERSION:3',
      `#EXT-X-TARGETDURATION:${Math.ceil(segmentSeconds)}`,
      `#EXT-X-MEDIA-SEQUENCE:${first}`,
      `#EXT-X-TWITCH-LIVE-SEQUENCE:${newest}`,
    ];
    // Segment URIs are relative to the playlist (/hls/<channel>/<session>/<variant>.m3u8),
    // so they resolve to /hls/<channel>/<session>/<variant>/<sequence>.ts.
    for (let q = first; q <= newest; q++) out.push(`#EXT-X-PROGRAM-DATE-TIME:${iso(q)}`, extinf, `${variant}/${q}.ts`);
    for (let q = newest + 1; q <= newest + PREFETCH; q++) out.push(`#EXT-X-TWITCH-PREFETCH:${variant}/${q}.ts`);
    const t = out.join('\n') + '\n';
    s.memo.set(variant, { seq: newest, text: t });
    return t;
  }

  function route(req: IncomingMessage, res: ServerResponse): void {
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    if (path.startsWith('/hls/')) return void serveHls(req, res, path);
    if (path === '/gql') return void serveGql(req, res);
    if (path.startsWith('/api/v2/channel/hls/')) return void serveUsher(res, path, q < 0 ? '' : raw.slice(q + 1));
    text(res, 404, 'not found');
  }

  function serveGql(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'POST') return text(res, 405, 'gql wants POST');
    // Twitch refuses gql calls without a Client-ID; a resolver that forgot it must fail here too.
    if (!req.headers['client-id']) return json(res, 400, { error: 'Bad Request', status: 400, message: 'The "Client-ID" header is missing from the request.' });
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_GQL_BODY) req.destroy();
      else parts.push(c);
    });
    req.on('end', () => {
      let body: { operationName?: unknown; extensions?: { persistedQuery?: { sha256Hash?: unknown } }; variables?: { login?: unknown } };
      try {
        body = JSON.parse(Buffer.concat(parts).toString('utf8'));
      } catch {
        return json(res, 400, { error: 'Bad Request', status: 400, message: 'body is not JSON' });
      }
      if (body?.operationName !== 'PlaybackAccessToken' || body.extensions?.persistedQuery?.sha256Hash !== TWITCH_PLAYBACK_ACCESS_TOKEN_HASH) {
        return json(res, 200, { errors: [{ message: 'PersistedQueryNotFound' }] });
      }
      const login = typeof body.variables?.login === 'string' ? body.variables.login.toLowerCase() : '';
      const ch = channels.get(login);
      if (ch?.fault === 'gql-500') return json(res, 500, { error: 'Internal Server Error', status: 500, message: 'service error' });
      const token = ch?.live ? { value: ch.token.value, signature: ch.token.signature, __typename: 'PlaybackAccessToken' } : null;
      json(res, 200, { data: { streamPlaybackAccessToken: token }, extensions: { operationName: 'PlaybackAccessToken' } });
    });
  }

  function serveUsher(res: ServerResponse, path: string, query: string): void {
    const m = /^\/api\/v2\/channel\/hls\/([A-Za-z0-9_]+)\.m3u8$/.exec(path);
    const ch = m ? channels.get(m[1].toLowerCase()) : undefined;
    if (!ch || !ch.live || !ch.session) {
      return json(res, 404, [{ url: path, error: 'twirp error not_found: transcode does not exist', error_code: 'transcode_does_not_exist', type: 'error' }]);
    }
    const p = new URLSearchParams(query);
    // Real usher checks the token it signed; so must the fake, or a resolver bug would pass.
    if (p.get('sig') !== ch.token.signature || p.get('token') !== ch.token.value) {
      return json(res, 403, [{ url: path, error: 'Unauthorized', error_code: 'unauthorized', type: 'error' }]);
    }
    text(res, 200, ch.session.master, M3U8);
  }

  function serveHls(req: IncomingMessage, res: ServerResponse, path: string): void {
    // /hls/<channel>/<session>/<variant>.m3u8  |  /hls/<channel>/<session>/<variant>/<seq>.ts
    const parts = path.split('/');
    const ch = channels.get(parts[2] ?? '');
    const s = ch?.live ? ch.session : undefined;
    const isSegment = parts.length === 6 && parts[5].endsWith('.ts');
    if (isSegment) segmentRequests++;
    // The broadcast id in usher's URLs dies with the broadcast, as on Twitch; STABLE_SESSION is
    // the alias mediaPlaylistUrl hands out, which follows whatever broadcast is current.
    if (!ch || !s || (parts[3] !== s.id && parts[3] !== STABLE_SESSION)) return text(res, 404, 'no such broadcast');
    if (parts.length === 5 && parts[4].endsWith('.m3u8')) {
      const variant = parts[4].slice(0, -5);
      if (!ch.variants.has(variant)) return text(res, 404, 'no such variant');
      if (ch.fault === 'playlist-404') return text(res, 404, 'playlist fault');
      return text(res, 200, mediaPlaylist(s, variant, sequenceNow(s)), M3U8);
    }
    if (!isSegment) return text(res, 404, 'not found');
    const v = ch.variants.get(parts[4]);
    const seqText = parts[5].slice(0, -3);
    const seq = /^\d{1,15}$/.test(seqText) ? Number(seqText) : -1;
    const newest = sequenceNow(s);
    if (!v || seq < 0 || seq > newest + PREFETCH || seq < newest - RETENTION_SEGMENTS) return text(res, 404, 'no such segment');
    const body = v.files[seq % v.files.length];
    switch (ch.fault) {
      case 'segment-404':
        return text(res, 404, 'segment fault');
      case 'segment-timeout': {
        // Withhold even the headers: the client's deadline, not the server, must end it.
        const t = setTimeout(() => {
          timers.delete(t);
          sendSegment(res, body);
        }, slowMs);
        timers.add(t);
        res.on('close', () => {
          clearTimeout(t);
          timers.delete(t);
        });
        return;
      }
      case 'truncated':
        // Promise the whole segment, deliver a little, then drop the connection mid-body.
        res.writeHead(200, [['content-type', 'video/mp2t'], ['content-length', String(body.length)]]);
        res.write(body.subarray(0, Math.min(TRUNCATE_BYTES, body.length - 1)), () => res.destroy());
        return;
      case 'garbage':
        return sendSegment(res, garbage.subarray(0, Math.min(garbage.length, body.length)));
      default:
        return sendSegment(res, body);
    }
  }

  /**
   * One write of a shared Buffer: nothing is copied per request, and a client that cancels
   * after the first few hundred KB just closes the socket; Node drops the unsent rest.
   */
  function sendSegment(res: ServerResponse, body: Buffer): void {
    res.writeHead(200, [['content-type', 'video/mp2t'], ['content-length', String(body.length)]]);
    res.end(body);
  }

  function get(name: string): Channel {
    const ch = channels.get(name.toLowerCase());
    if (!ch) throw new Error(`live-hls: unknown channel ${JSON.stringify(name)}`);
    return ch;
  }

  function loadFile(file: string): Buffer {
    const abs = resolvePath(file);
    let b = fileCache.get(abs);
    if (!b) {
      try {
        b = readFileSync(abs);
      } catch (err) {
        throw new Error(`live-hls: cannot read segment ${abs}: ${(err as Error).message}`);
      }
      if (!isMediaSegment(b)) throw new Error(`live-hls: ${abs} is not an MPEG-TS segment`);
      fileCache.set(abs, b);
    }
    return b;
  }

  function loadVariant(name: string, files: string[]): VariantData {
    if (!VARIANT_RE.test(name)) throw new Error(`live-hls: variant name ${JSON.stringify(name)} must match ${VARIANT_RE}`);
    if (!Array.isArray(files) || files.length === 0) throw new Error(`live-hls: variant ${name} has no segment files`);
    const buffers = files.map(loadFile);
    const meta = readMeta(files[0]);
    if (meta && Math.abs(meta.segmentSeconds - segmentSeconds) > 1e-9) {
      // EXTINF would lie about every segment's length, and playlists would rotate at the wrong pace.
      throw new Error(`live-hls: variant ${name} segments last ${meta.segmentSeconds} s but the server rotates every ${segmentSeconds} s`);
    }
    const q = variantQuality(name);
    // Without encodeSegments' meta.json, trust the name: "480p" = 852x480 at 30 fps, as Twitch.
    const height = meta?.height ?? q?.height ?? 0;
    const width = meta?.width ?? (Math.floor((height * 16) / 9) & ~1);
    const fps = meta?.fps ?? q?.fps ?? 30;
    const peak = Math.max(...buffers.map((b) => b.length));
    return {
      name,
      files: buffers,
      width,
      height,
      fps,
      codecs: meta?.codecs ?? 'avc1.64001F,mp4a.40.2',
      bandwidth: Math.round((peak * 8) / segmentSeconds),
    };
  }

  const api: LiveHlsServer = {
    url,
    gqlUrl: `${url}/gql`,
    usherUrl: url,
    addChannel(nameIn, setup) {
      if (!isTwitchLogin(nameIn)) throw new Error(`live-hls: invalid Twitch channel name ${JSON.stringify(nameIn)}`);
      const name = nameIn.toLowerCase();
      if (channels.has(name)) throw new Error(`live-hls: channel ${name} already exists; removeChannel it first`);
      const fault = setup.fault ?? 'none';
      if (!FAULTS.includes(fault)) throw new Error(`live-hls: unknown fault ${JSON.stringify(fault)}`);
      const entries = Object.entries(setup.variants ?? {});
      if (entries.length === 0) throw new Error(`live-hls: channel ${name} needs at least one variant`);
      const variants = new Map(entries.map(([v, files]) => [v, loadVariant(v, files)]));
      const value = JSON.stringify({ channel: name, channel_id: createHash('sha1').update(name).digest('hex').slice(0, 8), expires: 4102444800 });
      const signature = createHash('sha1').update(secret).update(value).digest('hex');
      const ch: Channel = { name, variants, live: setup.live ?? true, fault, token: { value, signature }, session: undefined };
      if (ch.live) ch.session = newSession(ch);
      channels.set(name, ch);
    },
    removeChannel(name) {
      get(name);
      channels.delete(name.toLowerCase());
    },
    setLive(name, live) {
      const ch = get(name);
      if (live === ch.live) return;
      ch.live = live;
      ch.session = live ? newSession(ch) : undefined;
    },
    setFault(name, fault) {
      if (!FAULTS.includes(fault)) throw new Error(`live-hls: unknown fault ${JSON.stringify(fault)}`);
      get(name).fault = fault;
    },
    mediaPlaylistUrl(name, variant) {
      const ch = get(name);
      if (!ch.variants.has(variant)) throw new Error(`live-hls: channel ${ch.name} has no variant ${JSON.stringify(variant)} (has ${[...ch.variants.keys()].join(', ')})`);
      // Stable across offline/online (404 while offline), so a "direct HLS URL" source can be
      // configured once; usher's master points at the per-broadcast URL instead.
      return `${url}/hls/${ch.name}/${STABLE_SESSION}/${variant}.m3u8`;
    },
    stats() {
      let live = 0;
      for (const s of sockets) live += s.bytesWritten;
      return { requests, segmentRequests, bytesSent: closedBytes + live };
    },
    close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      return new Promise<void>((r) => {
        // Withheld (timeout-fault) and idle keep-alive sockets would hold close() open.
        for (const s of sockets) s.destroy();
        server.close(() => r());
      });
    },
  };
  return api;
}
