/**
 * Compose benchmark: the showcase scene rendered and encoded live at 1080p30 and 720p60,
 * against the naive baseline (a PNG per frame piped to ffmpeg), in the same run.
 *
 * Each configuration runs `durationS` (quick: 10 s, full: 120 s) on a wall-clock frame
 * clock (bench/compose/pipeline.ts explains the drop rules); ours first, then the
 * baseline, one at a time so they do not share the CPU. Output goes to a file in /tmp
 * that is deleted after measuring. Encoder: libx264 `-preset veryfast -tune zerolatency`.
 *
 * Figures: dropped_pct_1080p30, render_p99_ms_1080p, rss_mb (ours + ffmpeg, peak),
 * encode_speed_x (ffmpeg's ×realtime; a live feed caps it near 1), ratio_vs_baseline
 * (end-to-end fps ours / baseline at 1080p30), the same for 720p60, and CPU.
 */
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { sig } from './lib/stats.js';
import type { BenchOptions, BenchResult } from './lib/types.js';
import { runPipeline, type RunResult } from './compose/pipeline.js';
import { sceneProducers } from './compose/producers.js';

const PRESET = 'veryfast';
/** Live output: no lookahead or B-frames (lower latency, ~1/3 of x264's memory at 1080p). */
const TUNE = 'zerolatency';

const CONFIGS = [
  { key: '1080p30', width: 1920, height: 1080, fps: 30 },
  { key: '720p60', width: 1280, height: 720, fps: 60 },
] as const;

export async function run({ quick }: BenchOptions): Promise<BenchResult> {
  const durationS = quick ? 10 : 120;
  const figures: Record<string, number> = {};
  const baseline: Record<string, number> = {};
  const notes: string[] = [`libx264 -preset ${PRESET} -tune ${TUNE}, ${durationS} s per configuration, wall-clock frame clock; baseline = PNG per frame via image2pipe`];
  // The machine may be shared: the load around the run says how much the numbers can be trusted.
  const load = () => loadavg().map((x) => x.toFixed(2)).join('/');
  notes.push(`load average before: ${load()}`);
  for (const c of CONFIGS) {
    const producers = await sceneProducers(c.width, c.height, c.fps);
    notes.push(`${c.key}: ${producers.describe}`);
    const output = (kind: string) => path.join(tmpdir(), `ringcast-compose-${process.pid}-${c.key}-${kind}.mp4`);
    const ours = await runPipeline({ label: `${c.key} raw`, width: c.width, height: c.height, fps: c.fps, durationS, input: 'raw', preset: PRESET, tune: TUNE, output: output('raw') }, producers.raw);
    const base = await runPipeline({ label: `${c.key} png`, width: c.width, height: c.height, fps: c.fps, durationS, input: 'png', preset: PRESET, tune: TUNE, output: output('png') }, producers.png);
    report(ours);
    report(base);
    const suffix = c.key === '1080p30' ? '' : `_${c.key}`;
    const put = (name: string, a: number, b?: number) => {
      figures[name] = sig(a);
      if (b !== undefined) baseline[name] = sig(b);
    };
    put(`dropped_pct_${c.key}`, ours.droppedPct, base.droppedPct);
    put(`render_p50_ms_${c.key === '1080p30' ? '1080p' : '720p'}`, ours.renderP50Ms, base.renderP50Ms);
    put(`render_p99_ms_${c.key === '1080p30' ? '1080p' : '720p'}`, ours.renderP99Ms, base.renderP99Ms);
    put(`end_to_end_fps_${c.key}`, ours.endToEndFps, base.endToEndFps);
    put(`encode_speed_x${suffix}`, ours.encodeSpeedX, base.encodeSpeedX);
    put(`rss_mb${suffix}`, ours.rssOursMb + ours.rssFfmpegMb, base.rssOursMb + base.rssFfmpegMb);
    put(`rss_ours_mb${suffix}`, ours.rssOursMb);
    put(`rss_ffmpeg_mb${suffix}`, ours.rssFfmpegMb);
    put(`cpu_ours_cores${suffix}`, ours.cpuOursCores, base.cpuOursCores);
    put(`cpu_ffmpeg_cores${suffix}`, ours.cpuFfmpegCores, base.cpuFfmpegCores);
    put(`dropped_late_${c.key}`, ours.droppedLate, base.droppedLate);
    put(`dropped_busy_${c.key}`, ours.droppedBusy, base.droppedBusy);
    // How much more of the frame clock we deliver than the naive approach.
    figures[`ratio_vs_baseline${suffix}`] = sig(base.endToEndFps > 0 ? ours.endToEndFps / base.endToEndFps : Infinity);
  }
  notes.push(`load average after: ${load()}`);
  return { figures, baseline, notes };
}

function report(r: RunResult): void {
  console.error(`${r.label}: rendered ${r.rendered}/${r.due} (late ${r.droppedLate}, busy ${r.droppedBusy}), render p50 ${r.renderP50Ms.toFixed(1)} ms p99 ${r.renderP99Ms.toFixed(1)} ms, `
    + `encoded ${r.encodedFrames} at ${r.encodeSpeedX}x, ${r.endToEndFps.toFixed(1)} fps end to end, cpu ${r.cpuOursCores.toFixed(2)}+${r.cpuFfmpegCores.toFixed(2)} cores, `
    + `rss ${r.rssOursMb.toFixed(0)}+${r.rssFfmpegMb.toFixed(0)} MB, ${r.outputBytes} bytes out`);
}
