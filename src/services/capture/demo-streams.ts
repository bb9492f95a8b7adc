/**
 * Built-in demo streams for `npm start` (the demo has no Twitch to capture): a few local live
 * HLS streams made with ffmpeg's test sources. Each is 3 pre-encoded 2 s MPEG-TS segments
 * (made once, kept in <dataDir>/demo-hls) and a playlist file rewritten every 2 s so the
 * media sequence advances like a live stream. They are registered as local playlist paths,
 * which stay valid whatever port the service runs on.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SEGMENTS = 3;
const SEGMENT_SECONDS = 2;
const WINDOW = 3;

/** lavfi sources that look different from each other (and move, so frames are not "frozen"). */
const SOURCES = [
  'testsrc2=size=640x360:rate=30',
  'mandelbrot=size=640x360:rate=30',
  'life=size=640x360:rate=30:mold=10:ratio=0.1:death_color=#C83232:life_color=#00ff00',
  'smptehdbars=size=640x360:rate=30',
  'cellauto=size=640x360:rate=30:rule=110',
  'rgbtestsrc=size=640x360:rate=30',
];

export interface DemoStreams {
  /** Absolute playlist paths, ready for the stream registry. */
  playlists: string[];
  stop(): void;
}

async function encode(ffmpegPath: string, dir: string, source: string): Promise<void> {
  if (existsSync(path.join(dir, `seg${SEGMENTS - 1}.ts`))) return;
  mkdirSync(dir, { recursive: true });
  await run(ffmpegPath, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', source, '-f', 'lavfi', '-i', 'sine=frequency=440',
    '-t', String(SEGMENTS * SEGMENT_SECONDS), '-c:v', 'libx264', '-preset', 'veryfast', '-b:v', '800k', '-g', String(30 * SEGMENT_SECONDS),
    '-keyint_min', String(30 * SEGMENT_SECONDS), '-sc_threshold', '0', '-c:a', 'aac', '-f', 'segment', '-segment_time', String(SEGMENT_SECONDS),
    '-segment_format', 'mpegts', '-reset_timestamps', '0', path.join(dir, 'seg%d.ts')], { timeout: 60_000 });
}

function writePlaylist(dir: string, sequence: number): void {
  let text = `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:${SEGMENT_SECONDS}\n#EXT-X-MEDIA-SEQUENCE:${sequence}\n`;
  for (let s = sequence; s < sequence + WINDOW; s++) text += `#EXTINF:${SEGMENT_SECONDS}.000,live\nseg${s % SEGMENTS}.ts\n`;
  // Write-then-rename: a capture reading the playlist never sees half a file.
  const tmp = path.join(dir, 'live.m3u8.tmp');
  writeFileSync(tmp, text);
  renameSync(tmp, path.join(dir, 'live.m3u8'));
}

export async function startDemoStreams(o: { dir: string; count: number; ffmpegPath: string }): Promise<DemoStreams> {
  const dirs = Array.from({ length: o.count }, (_, i) => path.resolve(o.dir, `demo${i + 1}`));
  // One at a time: start-up shares the CPU with everything else starting.
  for (let i = 0; i < dirs.length; i++) await encode(o.ffmpegPath, dirs[i], SOURCES[i % SOURCES.length]);
  const t0 = Date.now();
  const tick = () => {
    const sequence = Math.floor((Date.now() - t0) / (SEGMENT_SECONDS * 1000));
    for (const d of dirs) writePlaylist(d, sequence);
  };
  tick();
  const timer = setInterval(tick, 1000);
  timer.unref();
  return { playlists: dirs.map((d) => path.join(d, 'live.m3u8')), stop: () => clearInterval(timer) };
}
