/**
 * One render → ffmpeg run at a fixed frame clock, measured.
 *
 * The clock is wall time: frame n is due at start + n/fps. At each tick the frame is
 * dropped (and counted) when
 *   - the clock has already passed the NEXT frame's slot (we fell behind rendering), or
 *   - ffmpeg has not yet accepted enough of the frames already written (`inFlight`, default
 *     4 — the slot count of the service's compositor→encoder frame ring — may wait: the
 *     encoder is behind); a fixed number of frames in flight, never a growing queue;
 * otherwise it is rendered and written. So memory stays bounded whatever the speed, and
 * "dropped" is exactly what a live output would lose.
 *
 * One warm-up frame goes through before the clock starts (encoder start-up is not a drop).
 * Measured: render ms per frame (render + readback, or render + PNG encode for the
 * baseline), ffmpeg's own progress (frames, speed ×realtime), our and ffmpeg's CPU time
 * (process.cpuUsage, /proc/<pid>/stat utime+stime) and peak RSS (sampled; ffmpeg's VmHWM).
 */
import { spawn } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import { resolveFfmpeg } from '../../src/shared/ffmpeg.js';
import { percentile } from '../lib/stats.js';
import { procCpu, procPeakRssBytes } from '../lib/proc.js';

export interface FrameProducer {
  /** Renders frame n and returns the bytes to write (raw RGBA or one PNG); fresh bytes each call (they sit in the pipe). */
  frame(n: number): Uint8Array;
}

export interface RunSpec {
  label: string;
  width: number;
  height: number;
  fps: number;
  durationS: number;
  /** 'raw': RGBA frames; 'png': one PNG per frame (image2pipe). */
  input: 'raw' | 'png';
  preset: string;
  /** x264 tune, e.g. zerolatency (no lookahead or B-frames: live latency and memory). */
  tune?: string;
  output: string;
  /** Frames allowed in the pipe at once (default 4, like the service's frame slot ring). */
  inFlight?: number;
  /** The whole ffmpeg argument list instead of the one built here (progress must go to pipe:1). */
  ffmpegArgs?: string[];
}

export interface RunResult {
  label: string;
  due: number;
  rendered: number;
  droppedLate: number;
  droppedBusy: number;
  droppedPct: number;
  renderP50Ms: number;
  renderP99Ms: number;
  encodedFrames: number;
  encodeSpeedX: number;
  endToEndFps: number;
  /** CPU time over wall time, in cores (1 = one core busy). */
  cpuOursCores: number;
  cpuFfmpegCores: number;
  rssOursMb: number;
  rssFfmpegMb: number;
  outputBytes: number;
}

export async function runPipeline(spec: RunSpec, producer: FrameProducer): Promise<RunResult> {
  const input = spec.input === 'raw'
    ? ['-f', 'rawvideo', '-pix_fmt', 'rgba', '-s', `${spec.width}x${spec.height}`, '-framerate', String(spec.fps), '-i', 'pipe:0']
    : ['-f', 'image2pipe', '-c:v', 'png', '-framerate', String(spec.fps), '-i', 'pipe:0'];
  const args = [
    '-hide_banner', '-loglevel', 'error', '-nostats', '-progress', 'pipe:1', '-y', ...input,
    '-c:v', 'libx264', '-preset', spec.preset, ...(spec.tune ? ['-tune', spec.tune] : []), '-pix_fmt', 'yuv420p', '-g', String(spec.fps * 2), '-b:v', spec.height >= 1080 ? '6M' : '4M',
    '-f', 'mp4', spec.output,
  ];
  const ff = spawn(resolveFfmpeg().path, spec.ffmpegArgs ?? args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const pid = ff.pid!;
  let progressText = '';
  let lastSpeed = 0;
  let lastFrame = 0;
  ff.stdout.setEncoding('utf8');
  ff.stdout.on('data', (chunk: string) => {
    progressText += chunk;
    let nl: number;
    while ((nl = progressText.indexOf('\n')) >= 0) {
      const line = progressText.slice(0, nl).trim();
      progressText = progressText.slice(nl + 1);
      if (line.startsWith('speed=')) { const v = parseFloat(line.slice(6)); if (Number.isFinite(v)) lastSpeed = v; }
      else if (line.startsWith('frame=')) lastFrame = Number(line.slice(6)) || lastFrame;
    }
  });
  let stderr = '';
  ff.stderr.on('data', (c: Buffer) => { if (stderr.length < 4096) stderr += c.toString(); });
  const exited = new Promise<number>((resolve) => ff.once('close', (code) => resolve(code ?? -1)));
  ff.stdin.on('error', () => { /* ffmpeg exiting early shows up as its exit code */ });

  const interval = 1000 / spec.fps;
  const due = Math.round(spec.durationS * spec.fps);
  const renderMs = new Float64Array(due);
  let rendered = 0;
  let droppedLate = 0;
  let droppedBusy = 0;
  const maxInFlight = spec.inFlight ?? 4;
  let pending = 0; // frames written to the pipe, not yet accepted by ffmpeg
  let rssOurs = process.memoryUsage().rss;
  let ffCpu = 0;
  let rssFf = 0;
  const sample = () => {
    rssOurs = Math.max(rssOurs, process.memoryUsage().rss);
    // Once ffmpeg has exited /proc has nothing: keep the last reading.
    const cpu = procCpu(pid);
    if (cpu) ffCpu = cpu.cpuMs / 1000;
    const peak = procPeakRssBytes(pid);
    if (peak !== undefined) rssFf = peak / 2 ** 20;
  };
  const sampler = setInterval(sample, 250);
  const written = () => { pending--; };

  // Warm-up, not counted: ffmpeg and x264 initialise on the first frame (a live encoder
  // is started before the show, so this start-up is not a steady-state drop).
  await new Promise<void>((resolve) => ff.stdin.write(producer.frame(0), () => resolve()));

  const cpu0 = process.cpuUsage();
  const t0 = performance.now() + 50;
  for (let n = 0; n < due; n++) {
    const slot = t0 + n * interval;
    let now = performance.now();
    if (now < slot) {
      await new Promise((r) => setTimeout(r, slot - now));
      now = performance.now();
    } else {
      // Let the pipe and the sampler run even when we are behind.
      await new Promise((r) => setImmediate(r));
    }
    if (now > slot + interval) { droppedLate++; continue; }
    if (pending >= maxInFlight) { droppedBusy++; continue; }
    const r0 = performance.now();
    const bytes = producer.frame(n);
    renderMs[rendered++] = performance.now() - r0;
    pending++;
    ff.stdin.write(bytes, written);
  }
  const feedEnd = performance.now();
  sample();
  ff.stdin.end();
  const code = await exited;
  clearInterval(sampler);
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (code !== 0) throw new Error(`ffmpeg (${spec.label}) exited with ${code}: ${stderr.trim()}`);
  let outputBytes = 0;
  try { outputBytes = statSync(spec.output).size; } finally { rmSync(spec.output, { force: true }); }
  const samples = renderMs.subarray(0, rendered);
  const dropped = droppedLate + droppedBusy;
  return {
    label: spec.label,
    due,
    rendered,
    droppedLate,
    droppedBusy,
    droppedPct: (100 * dropped) / due,
    renderP50Ms: percentile(samples, 50),
    renderP99Ms: percentile(samples, 99),
    encodedFrames: Math.max(0, lastFrame - 1), // minus the warm-up frame
    encodeSpeedX: lastSpeed,
    // Frames out of the encoder per second of the run (feeding plus the encoder's tail).
    endToEndFps: (Math.max(0, lastFrame - 1) * 1000) / wall,
    cpuOursCores: (cpu.user + cpu.system) / 1000 / (feedEnd - t0),
    cpuFfmpegCores: ffCpu / (wall / 1000),
    rssOursMb: rssOurs / 2 ** 20,
    rssFfmpegMb: rssFf,
    outputBytes,
  };
}
