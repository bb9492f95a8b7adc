/**
 * The compose benchmark's wall baseline: how a user would build the same 3×3 wall of live
 * streams with ffmpeg alone, in a process of its own: the same 9 HLS playlists as inputs (read
 * at their native rate, -re), each scaled to a 640×360 tile, `xstack`ed into 1920×1080, encoded
 * with the product's H.264 settings (h264EncoderArgs: libx264 veryfast, 4500 kbit/s, 2 s
 * keyframes) plus AAC silence, into a file. Measured over the window after a warm-up: frames
 * out, CPU and peak RSS of ffmpeg.
 *
 *   node dist/bench/compose/xstack-child.js '{"streams":[...9 playlists],"durationS":10,"output":"/tmp/x.mp4"}'
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { h264EncoderArgs, resolveFfmpeg } from '../../src/shared/ffmpeg.js';
import { liveProcCpu, procPeakRssBytes } from '../lib/proc.js';

export interface XstackSpec { streams: string[]; durationS: number; output: string }
export interface XstackResult {
  /** Output frames in the window, and those a steady 30 fps would have made. */
  frames: number;
  expected: number;
  droppedPct: number;
  cpuCores: number;
  cpuSecondsPerFrame: number;
  rssMb: number;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as XstackSpec;
const WARMUP_S = 4;
const FPS = 30;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


/** xstack layout of a cols×rows grid of equal tiles. */
function layout(n: number, cols: number): string {
  return Array.from({ length: n }, (_, i) => {
    const c = i % cols, r = Math.floor(i / cols);
    const x = c === 0 ? '0' : Array.from({ length: c }, () => 'w0').join('+');
    const y = r === 0 ? '0' : Array.from({ length: r }, () => 'h0').join('+');
    return `${x}_${y}`;
  }).join('|');
}

async function main(): Promise<XstackResult> {
  const n = spec.streams.length;
  const cols = Math.ceil(Math.sqrt(n));
  const enc = h264EncoderArgs('libx264', { fps: FPS, bitrateKbps: 4500, preset: 'veryfast', keyframeSeconds: 2 });
  const scale = spec.streams.map((_, i) => `[${i}:v]scale=640:360,setsar=1,fps=${FPS}[v${i}]`).join(';');
  const filter = `${scale};${spec.streams.map((_, i) => `[v${i}]`).join('')}xstack=inputs=${n}:layout=${layout(n, cols)}:fill=black,scale=1920:1080,${enc.filter}[v]`;
  const args = [
    '-y', '-hide_banner', '-nostdin', '-loglevel', 'error', '-nostats', '-progress', 'pipe:1',
    ...spec.streams.flatMap((p) => ['-re', '-i', p]),
    '-f', 'lavfi', '-i', 'anullsrc=channel_layout=stereo:sample_rate=48000',
    '-filter_complex', filter, '-map', '[v]', '-map', `${n}:a`,
    ...enc.codec, '-c:a', 'aac', '-b:a', '128k', '-ar', '48000',
    '-t', String(WARMUP_S + spec.durationS + 2), '-f', 'mp4', spec.output,
  ];
  const ff = spawn(resolveFfmpeg().path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let frames = 0;
  let stderr = '';
  ff.stdout.on('data', (d: Buffer) => {
    for (const m of String(d).matchAll(/^frame=(\d+)/gm)) frames = Number(m[1]);
  });
  ff.stderr.on('data', (d: Buffer) => { stderr = (stderr + String(d)).slice(-2000); });
  const exited = new Promise<number | null>((r) => ff.once('exit', (code) => r(code)));
  try {
    // Warm-up: every input opened and the first frames out.
    for (let i = 0; i < 200 && frames === 0 && ff.exitCode === null; i++) await sleep(100);
    if (ff.exitCode !== null) throw new Error(`ffmpeg exited early (${ff.exitCode}): ${stderr}`);
    await sleep(WARMUP_S * 1000);
    const f0 = frames, c0 = liveProcCpu(ff.pid!).cpuMs / 1000, t0 = performance.now();
    await sleep(spec.durationS * 1000);
    const f1 = frames, c1 = liveProcCpu(ff.pid!).cpuMs / 1000, wall = (performance.now() - t0) / 1000;
    const rss = (procPeakRssBytes(ff.pid!) ?? NaN) / 2 ** 20;
    const out = f1 - f0, expected = Math.round(wall * FPS);
    return {
      frames: out, expected, droppedPct: expected > 0 ? Math.max(0, (100 * (expected - out)) / expected) : NaN,
      cpuCores: (c1 - c0) / wall, cpuSecondsPerFrame: out > 0 ? (c1 - c0) / out : Infinity, rssMb: rss,
    };
  } finally {
    ff.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    rmSync(spec.output, { force: true });
  }
}

main().then(
  (result) => process.send?.({ type: 'result', result }, () => process.exit(0)),
  (err: Error) => process.send?.({ type: 'failed', error: err.stack ?? err.message }, () => process.exit(1)),
);
