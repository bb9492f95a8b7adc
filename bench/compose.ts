/**
 * Compose benchmark: the showcase scene rendered and encoded live at 1080p30 and 720p60, on the
 * product path against the usual approach, in the same run, each in a process of its own:
 *
 *   ours      compositor actor → frame slot ring (4 slots, drop-newest) → encoder actor → ffmpeg
 *             with the product's arguments and AAC silence (bench/compose/product-child.ts);
 *   baseline  one Node process rendering the same scene with the same SceneRenderer and piping
 *             raw RGBA frames to ffmpeg with the same arguments (bench/compose/raw-pipe-child.ts).
 *
 * Same overlay data at the service's rates, no video source in either. One at a time so they do
 * not share the CPU; output to a file in /tmp, deleted after measuring.
 *
 * Figures per configuration: dropped_pct_<cfg> (frame-clock ticks that got no new frame: the
 * encoder repeated or dropped one, or the baseline skipped it), render_p50/p99_ms_<1080p|720p>,
 * end_to_end_fps_<cfg>, CPU (ours = the whole process, all actors; ffmpeg separately), peak RSS,
 * ratio_vs_baseline (end-to-end fps ours / baseline).
 */
import { fork } from 'node:child_process';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { sig } from './lib/stats.js';
import type { BenchOptions, BenchResult } from './lib/types.js';
import type { RunResult } from './compose/pipeline.js';
import type { ComposeSpec, ProductResult } from './compose/product-child.js';

const CONFIGS = [
  { key: '1080p30', width: 1920, height: 1080, fps: 30 },
  { key: '720p60', width: 1280, height: 720, fps: 60 },
] as const;

function inChild<T>(script: string, spec: ComposeSpec, timeoutMs: number): Promise<T> {
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
  const durationS = quick ? 10 : 120;
  const figures: Record<string, number> = {};
  const baseline: Record<string, number> = {};
  const notes: string[] = [
    `${durationS} s per configuration after a warm-up; both paths: libx264 veryfast 4500 kbit/s, 2 s keyframes, AAC silence, the product's ffmpeg arguments (buildFfmpegArgs); the showcase scene with overlay data at 10/2/1 Hz and no video source`,
    'ours: compositor actor -> 4-slot frame ring (drop-newest) -> encoder actor, in one process (CPU = that process, all threads, feed actor included); baseline: a separate Node process rendering the same scene and piping raw RGBA to ffmpeg (the usual approach)',
    'dropped_pct: ours = encoder frame-clock ticks without a fresh frame (duplicates and drops), baseline = frames skipped late or with the pipe full',
  ];
  const load = () => loadavg().map((x) => x.toFixed(2)).join('/');
  notes.push(`load average before: ${load()}`);
  for (const c of CONFIGS) {
    const spec = (kind: string): ComposeSpec => ({ width: c.width, height: c.height, fps: c.fps, durationS, output: path.join(tmpdir(), `ringcast-compose-${process.pid}-${c.key}-${kind}.mp4`) });
    const limit = (durationS + 60) * 1000;
    const ours = await inChild<ProductResult>('./compose/product-child.js', spec('product'), limit);
    const base = await inChild<RunResult>('./compose/raw-pipe-child.js', spec('rawpipe'), limit);
    const oursDroppedPct = ours.ticks > 0 ? (100 * (ours.ticks - ours.fresh)) / ours.ticks : NaN;
    const oursFps = ours.fresh / durationS;
    console.error(`${c.key} product path: ${ours.fresh}/${ours.ticks} fresh (dup ${ours.duplicated}, encoder dropped ${ours.encoderDropped}; compositor skipped ${ours.compositorSkipped}, ring full ${ours.compositorDropped}), render p50 ${ours.renderP50Ms} p99 ${ours.renderP99Ms} ms, cpu ${ours.cpuOursCores.toFixed(2)}+${ours.cpuFfmpegCores.toFixed(2)} cores, rss ${ours.rssOursMb.toFixed(0)}+${ours.rssFfmpegMb.toFixed(0)} MB`);
    console.error(`${c.key} raw pipe: rendered ${base.rendered}/${base.due} (late ${base.droppedLate}, busy ${base.droppedBusy}), render p50 ${base.renderP50Ms.toFixed(1)} p99 ${base.renderP99Ms.toFixed(1)} ms, ${base.endToEndFps.toFixed(1)} fps, cpu ${base.cpuOursCores.toFixed(2)}+${base.cpuFfmpegCores.toFixed(2)} cores`);
    const suffix = c.key === '1080p30' ? '' : `_${c.key}`;
    const res = c.key === '1080p30' ? '1080p' : '720p';
    const put = (name: string, a: number, b?: number) => {
      figures[name] = sig(a);
      if (b !== undefined) baseline[name] = sig(b);
    };
    put(`dropped_pct_${c.key}`, oursDroppedPct, base.droppedPct);
    put(`render_p50_ms_${res}`, ours.renderP50Ms, base.renderP50Ms);
    put(`render_p99_ms_${res}`, ours.renderP99Ms, base.renderP99Ms);
    put(`end_to_end_fps_${c.key}`, oursFps, base.endToEndFps);
    put(`rss_mb${suffix}`, ours.rssOursMb + ours.rssFfmpegMb, base.rssOursMb + base.rssFfmpegMb);
    put(`rss_ours_mb${suffix}`, ours.rssOursMb, base.rssOursMb);
    put(`rss_ffmpeg_mb${suffix}`, ours.rssFfmpegMb, base.rssFfmpegMb);
    put(`cpu_ours_cores${suffix}`, ours.cpuOursCores, base.cpuOursCores);
    put(`cpu_ffmpeg_cores${suffix}`, ours.cpuFfmpegCores, base.cpuFfmpegCores);
    put(`duplicated_${c.key}`, ours.duplicated);
    put(`encoder_dropped_${c.key}`, ours.encoderDropped);
    put(`compositor_skipped_${c.key}`, ours.compositorSkipped);
    put(`compositor_ring_full_${c.key}`, ours.compositorDropped);
    put(`baseline_dropped_late_${c.key}`, base.droppedLate);
    put(`baseline_dropped_busy_${c.key}`, base.droppedBusy);
    put(`baseline_encode_speed_x${suffix}`, base.encodeSpeedX);
    figures[`ratio_vs_baseline${suffix}`] = sig(base.endToEndFps > 0 ? oursFps / base.endToEndFps : Infinity);
  }
  notes.push(`load average after: ${load()}`);
  return { figures, baseline, notes };
}
