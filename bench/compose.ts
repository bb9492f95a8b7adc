/**
 * Compose benchmark: the broadcast rendered and encoded live at 1080p30 on the product path,
 * fed by real captures of local live HLS streams, against what a user would otherwise run, in
 * the same run, each in a process of its own (one at a time, so they do not share the CPU):
 *
 *   training   ours: the `training` preset (board, PPO panel, prediction game, one captured-
 *              stream tile) — feed actor → compositor actor → 5-slot frame ring → encoder actor →
 *              ffmpeg with the product's arguments and AAC silence, the capture actor capturing
 *              the 9 streams every 3 s into its RGB ring (bench/compose/product-child.ts);
 *              baseline: a Node process rendering the same preset with the same renderer and
 *              piping raw RGBA to ffmpeg with the same arguments (bench/compose/raw-pipe-child.ts).
 *   wall       ours: the `multistream` preset with all 9 streams on the wall, same path;
 *              baseline: ffmpeg alone, `xstack` of the same 9 HLS inputs, same H.264 settings
 *              (bench/compose/xstack-child.ts).
 *
 * The 9 streams are the service's demo HLS fakes (src/services/capture/demo-streams.ts: lavfi
 * test sources, 2 s segments, a playlist advancing like a live one), made once in /tmp.
 *
 * Figures: dropped_pct_1080p30 / wall_dropped_pct_1080p30 (ticks without a fresh frame),
 * render p50/p99, CPU per output frame (ours: the process with all its threads + the encoder's
 * ffmpeg + the capture decoders), wall_ratio_vs_ffmpeg_xstack (CPU per output frame, ours /
 * xstack), peak RSS.
 */
import { fork } from 'node:child_process';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { resolveFfmpeg } from '../src/shared/ffmpeg.js';
import { startDemoStreams } from '../src/services/capture/demo-streams.js';
import { sig } from './lib/stats.js';
import type { BenchOptions, BenchResult } from './lib/types.js';
import type { RunResult } from './compose/pipeline.js';
import type { ComposeSpec, ProductResult } from './compose/product-child.js';
import type { XstackResult, XstackSpec } from './compose/xstack-child.js';

function inChild<T>(script: string, spec: ComposeSpec | XstackSpec, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = fork(new URL(script, import.meta.url), [JSON.stringify(spec)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${script} did not finish in ${timeoutMs} ms`)); }, timeoutMs);
    child.on('message', (m: { type: string; result?: T; error?: string }) => {
      if (m.type === 'result') { clearTimeout(timer); resolve(m.result!); } else if (m.type === 'failed') { clearTimeout(timer); reject(new Error(`${script}: ${m.error}`)); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${script} exited (${code}) without a result`)); });
  });
}

export async function run({ quick }: BenchOptions): Promise<BenchResult> {
  const durationS = quick ? 15 : 60;
  const figures: Record<string, number> = {};
  const baseline: Record<string, number> = {};
  const load = () => loadavg().map((x) => x.toFixed(2)).join('/');
  const notes: string[] = [
    `${durationS} s per run after a warm-up, 1920x1080 at 30 fps; libx264 veryfast 4500 kbit/s, 2 s keyframes, AAC silence on every path (the product's ffmpeg arguments / h264EncoderArgs)`,
    'ours captures each stream every 3 s (the product default) and shows its newest keyframe: the wall is a wall of live stills with freshness badges, not 9 full-motion videos; the xstack baseline decodes and shows all 9 streams at full frame rate, so it does more work per output frame by design',
    'CPU per output frame, ours = the Node process (all actors and workers) + the encoder ffmpeg + the capture decoders; xstack = the one ffmpeg',
    `load average before: ${load()} on ${(await import('node:os')).cpus().length} CPUs (other helpers share this machine)`,
  ];
  const ffmpegPath = resolveFfmpeg().path;
  const hls = await startDemoStreams({ dir: path.join(tmpdir(), 'ringcast-bench-hls'), count: 9, ffmpegPath });
  const out = (kind: string) => path.join(tmpdir(), `ringcast-compose-${process.pid}-${kind}.mp4`);
  const limit = (durationS + 120) * 1000;
  const put = (name: string, a: number, b?: number) => {
    figures[name] = sig(a);
    if (b !== undefined) baseline[name] = sig(b);
  };
  const spec = (kind: string, preset: 'training' | 'multistream'): ComposeSpec => ({ width: 1920, height: 1080, fps: 30, durationS, output: out(kind), preset, streams: hls.playlists });
  const oursCpuPerFrame = (r: ProductResult) => {
    const frames = r.fresh + r.duplicated;
    return frames > 0 ? ((r.cpuOursCores + r.cpuFfmpegCores + r.cpuDecodersCores) * durationS) / frames : Infinity;
  };
  const describe = (label: string, r: ProductResult) => console.error(`${label}: ${r.fresh}/${r.ticks} fresh (dup ${r.duplicated}, encoder dropped ${r.encoderDropped}: backpressure ${r.encoderByReason.droppedBackpressure}, offline ${r.encoderByReason.droppedOffline}, late ${r.encoderByReason.skippedLate}, superseded ${r.encoderByReason.superseded}, frame lead ${r.encoderPhase.leadMs} ms of ${r.encoderPhase.targetLeadMs} (${r.encoderPhase.observed} used, ${r.encoderPhase.ignored} ignored), jitter buffer ${r.encoderJitter ? `${r.encoderJitter.frames} frame (passed over since start: ${r.encoderJitter.passedFull} full, ${r.encoderJitter.passedBacklog} backlog)` : 'none'}, torn risk ${r.tornRisk}; compositor skipped ${r.compositorSkipped}, ring full ${r.compositorDropped}), render p50 ${r.renderP50Ms} p99 ${r.renderP99Ms} ms, cpu ${r.cpuOursCores.toFixed(2)}+${r.cpuFfmpegCores.toFixed(2)}+${r.cpuDecodersCores.toFixed(2)} cores, rss ${r.rssOursMb.toFixed(0)}+${r.rssFfmpegMb.toFixed(0)} MB, captures ${r.captures}, capture frames taken ${r.captureFrames}`);
  try {
    // training at 1080p30: ours vs the raw pipe
    const ours = await inChild<ProductResult>('./compose/product-child.js', spec('training', 'training'), limit);
    describe('training product path', ours);
    const { streams: _unused, ...rawSpec } = spec('rawpipe', 'training');
    const base = await inChild<RunResult>('./compose/raw-pipe-child.js', rawSpec, limit);
    console.error(`training raw pipe: rendered ${base.rendered}/${base.due} (late ${base.droppedLate}, busy ${base.droppedBusy}), render p50 ${base.renderP50Ms.toFixed(1)} p99 ${base.renderP99Ms.toFixed(1)} ms, cpu ${base.cpuOursCores.toFixed(2)}+${base.cpuFfmpegCores.toFixed(2)} cores`);
    put('dropped_pct_1080p30', ours.ticks > 0 ? (100 * (ours.ticks - ours.fresh)) / ours.ticks : NaN, base.droppedPct);
    put('render_p50_ms_1080p', ours.renderP50Ms, base.renderP50Ms);
    put('render_p99_ms_1080p', ours.renderP99Ms, base.renderP99Ms);
    put('end_to_end_fps_1080p30', ours.fresh / durationS, base.endToEndFps);
    // The raw pipe's frames out: those it piped (it does not repeat frames); its wall time is the run's.
    put('cpu_ms_per_frame_1080p30', 1000 * oursCpuPerFrame(ours), base.rendered > 0 ? (1000 * (base.cpuOursCores + base.cpuFfmpegCores) * durationS) / base.rendered : Infinity);
    put('rss_mb', ours.rssOursMb + ours.rssFfmpegMb, base.rssOursMb + base.rssFfmpegMb);
    put('cpu_ours_cores', ours.cpuOursCores, base.cpuOursCores);
    put('cpu_ffmpeg_cores', ours.cpuFfmpegCores, base.cpuFfmpegCores);
    put('cpu_decoders_cores', ours.cpuDecodersCores);
    put('duplicated_1080p30', ours.duplicated);
    put('encoder_dropped_1080p30', ours.encoderDropped);
    put('compositor_skipped_1080p30', ours.compositorSkipped);
    put('captures_1080p30', ours.captures);

    // the 9-stream wall: ours vs ffmpeg xstack
    const wall = await inChild<ProductResult>('./compose/product-child.js', spec('wall', 'multistream'), limit);
    describe('wall product path', wall);
    const xs = await inChild<XstackResult>('./compose/xstack-child.js', { streams: hls.playlists, durationS, output: out('xstack') }, limit);
    console.error(`wall ffmpeg xstack: ${xs.frames}/${xs.expected} frames, cpu ${xs.cpuCores.toFixed(2)} cores, ${(1000 * xs.cpuSecondsPerFrame).toFixed(1)} ms/frame, rss ${xs.rssMb.toFixed(0)} MB`);
    const wallCpu = oursCpuPerFrame(wall);
    put('wall_dropped_pct_1080p30', wall.ticks > 0 ? (100 * (wall.ticks - wall.fresh)) / wall.ticks : NaN, xs.droppedPct);
    put('wall_render_p50_ms', wall.renderP50Ms);
    put('wall_render_p99_ms', wall.renderP99Ms);
    put('wall_cpu_ms_per_frame', 1000 * wallCpu, 1000 * xs.cpuSecondsPerFrame);
    put('wall_cpu_cores', wall.cpuOursCores + wall.cpuFfmpegCores + wall.cpuDecodersCores, xs.cpuCores);
    put('wall_rss_mb', wall.rssOursMb + wall.rssFfmpegMb, xs.rssMb);
    put('wall_captures', wall.captures);
    put('wall_capture_frames_drawn', wall.captureFrames);
    figures.wall_ratio_vs_ffmpeg_xstack = sig(wallCpu / xs.cpuSecondsPerFrame);
  } finally {
    hls.stop();
  }
  notes.push(`load average after: ${load()}`);
  notes.push('720p60 and the showcase scene are no longer measured here: the service starts from the presets');
  return { figures, baseline, notes };
}
