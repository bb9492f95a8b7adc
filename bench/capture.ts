/**
 * Capture benchmark: K live channels (50, 100, 200, 500) of H.264 HLS on loopback, one capture
 * per channel every 3 s, through our pipeline (cached Twitch-style resolution → media playlist →
 * first keyframe only, streamed → long-lived decoders → frame ring → analysis worker) and, in the
 * same run, the naive pipeline (one ffmpeg process per capture reading the media playlist).
 *
 * The load generator (bench/capture/hls-server.ts) runs in a child process, so its CPU is not
 * charged to either pipeline (and is reported per window); it serves pre-encoded segments as
 * rotating live playlists, CONTENTS different encodes each marked with its number, channel i
 * serving content i % CONTENTS, and each captured frame is checked for its channel's marker.
 * The fake parses nothing with product code (bench/lib/live-hls.ts).
 *
 * Missed deadlines are counted from outside both pipelines (bench/capture/deadlines.ts): from
 * the arrival times of good frames (right marker) per channel, so retries, overruns, errors and
 * wrong frames all count; the engine's own view is kept as engine_missed_pct_*.
 * Each configuration runs a warm-up (one interval, so the spread first deadlines are behind us)
 * and then a measured window; figures are deltas over the window.
 *
 * CPU per capture: ours = this process (all threads, the analysis worker included) + the decoder
 * processes (from /proc); naive = this process + its exited ffmpeg children (cutime/cstime). The
 * naive pipeline gets the media playlist URL directly (no resolution) and does no analysis, so
 * the ratio favours it.
 *
 * Figures: missed_pct_<K>_480p, cpu_ms_per_capture_<K>_480p, latency_p50/p99_ms_<K>_480p,
 * bytes_per_capture_<K>_480p, rss_mb_<K>_480p, captures_per_s_<K>_480p, errors_<K>_480p, the same
 * for naive where it ran, the 720p60 search (largest K with ≤ 1 % missed), and the headline
 * figures missed_pct_500_480p, cpu_ms_per_capture_480p (at 500), max_channels_720p,
 * ratio_vs_naive (naive CPU per capture ÷ ours, at 50 channels where neither is saturated).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { percentile, sig } from './lib/stats.js';
import type { BenchOptions, BenchResult } from './lib/types.js';
import { SlotRing } from '../src/shared/slot-ring.js';
import { resolveFfmpeg } from '../src/shared/ffmpeg.js';
import { CaptureEngine } from '../src/actors/capture/engine.js';
import { CaptureScheduler } from '../src/actors/capture/scheduler.js';
import { createAnalysisPool } from '../src/actors/capture/analysis/pool.js';
import { loadTemplateSet } from '../src/actors/capture/analysis/templates.js';
import { chan, chanIndex } from './capture/names.js';
import { DeadlineTracker } from './capture/deadlines.js';
import { readMarker } from './lib/live-hls.js';
import { liveProcCpu, procRssBytes } from './lib/proc.js';

const W = 640;
const H = 360;
const INTERVAL_MS = 3000;
const MAX_CONCURRENT = 32;
const DECODERS = Math.max(1, cpus().length);
const MISSED_BAR_PCT = 1;
/** Distinct segment contents; channel i serves content i % CONTENTS (see hls-server.ts). */
const CONTENTS = 8;

interface Server {
  gqlUrl: string;
  usherUrl: string;
  playlist480: string;
  playlist720: string;
  pid: number;
  proc: ChildProcessByStdio<Writable, Readable, null>;
}

interface Measured {
  /** Deadlines with no good frame, % of those due (DeadlineTracker). */
  missedPct: number;
  /** What the pipeline's own scheduler counted (ours) or the shared scheduler (naive). */
  engineMissedPct: number;
  /** Frames that carried another channel's marker (or none): not counted as delivered. */
  wrongFrames: number;
  /** Frames overwritten in the ring before they could be checked (counted as delivered). */
  unverified: number;
  /** CPU of the load-generator process during the window, % of one core. */
  loadgenCpuPct: number;
  captures: number;
  capturesPerS: number;
  errors: number;
  cpuMsPerCapture: number;
  p50: number;
  p99: number;
  bytesPerCapture: number;
  rssMb: number;
}

const here = path.dirname(fileURLToPath(import.meta.url));

async function startServer(count: number): Promise<Server> {
  const dir = path.join(tmpdir(), 'ringcast-bench-capture');
  const proc = spawn(process.execPath, [path.join(here, 'capture', 'hls-server.js'), JSON.stringify({ dir, count, contents: CONTENTS })], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: proc.stdout });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    proc.once('exit', (code) => reject(new Error(`hls server exited (${code})`)));
  });
  return { ...(JSON.parse(first) as Omit<Server, 'proc'>), proc };
}

async function stopServer(s: Server): Promise<{ cpuMs: number }> {
  const lines = createInterface({ input: s.proc.stdout });
  const done = new Promise<string>((resolve) => lines.once('line', resolve));
  s.proc.stdin.end();
  return JSON.parse(await done) as { cpuMs: number };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Does this W x H RGB frame carry the marker of `stream`'s content? */
function belongsTo(stream: string, rgb: Uint8Array): boolean {
  const i = chanIndex(stream);
  return i >= 0 && readMarker(rgb, W, H) === i % CONTENTS;
}

async function measureOurs(server: Server, k: number, quality: '480p' | '720p60', windowS: number): Promise<Measured> {
  const ring = SlotRing.create({ name: 'bench.capture', slots: 48, slotBytes: W * H * 3, mode: 'latest' });
  const pool = createAnalysisPool({ ring: ring.sab, templates: await loadTemplateSet(''), threads: 1, maxQueue: 256 });
  const latencies: number[] = [];
  let measuring = false;
  let errors = 0;
  let wrongFrames = 0;
  let unverified = 0;
  const deadlines = new DeadlineTracker(INTERVAL_MS);
  const errorKinds = new Map<string, number>();
  const engine = new CaptureEngine({
    ffmpegPath: resolveFfmpeg().path, ring, width: W, height: H, intervalMs: INTERVAL_MS, maxConcurrent: MAX_CONCURRENT,
    quality, decoders: DECODERS, resolve: { gqlUrl: server.gqlUrl, usherUrl: server.usherUrl },
    analyze: (slot, frame) => pool.analyze({ slot, frame, width: W, height: H }),
    onResult: (r) => {
      if (r.status === 'ok') {
        let good = false;
        const read = ring.readSlot(r.slot, r.frame, (view) => { good = belongsTo(r.stream, view); });
        if (!read) good = true; // overwritten by a newer frame before we looked: delivered, not checkable
        if (good) deadlines.frame(r.stream, performance.now());
        if (!measuring) return;
        if (!read) unverified++;
        if (!good) wrongFrames++;
        latencies.push(r.ms.total);
      } else if (measuring) {
        errors++;
        const key = r.status === 'error' ? `${r.stage}/${r.code}` : r.status;
        errorKinds.set(key, (errorKinds.get(key) ?? 0) + 1);
      }
    },
  });
  await engine.start();
  const streams = Array.from({ length: k }, (_, i) => chan(i));
  engine.setStreams(streams.map((name) => ({ name, priority: 50 })));
  await sleep(INTERVAL_MS + 1000);
  const s0 = engine.stats();
  const g0 = liveProcCpu(server.pid);
  const c0 = process.cpuUsage();
  const d0 = engine.stats().decoderCpuMs;
  measuring = true;
  let rss = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < windowS * 1000) {
    await sleep(1000);
    rss = Math.max(rss, process.memoryUsage().rss + decoderPids(engine).reduce((n, pid) => n + (procRssBytes(pid) ?? 0), 0));
  }
  measuring = false;
  const t1 = performance.now();
  const g1 = liveProcCpu(server.pid);
  const s1 = engine.stats();
  const c1 = process.cpuUsage(c0);
  const cpuMs = (c1.user + c1.system) / 1000 + (s1.decoderCpuMs - d0);
  const wallS = (performance.now() - t0) / 1000;
  await engine.stop();
  await pool.close();
  const captures = s1.captures - s0.captures;
  const attempts = s1.attempts - s0.attempts;
  const missed = s1.missed - s0.missed;
  if (errorKinds.size > 0) console.error(`  errors: ${[...errorKinds].map(([k2, v]) => `${k2} ${v}`).join(', ')}`);
  return {
    missedPct: deadlines.missed(streams, t0, t1).pct,
    engineMissedPct: attempts + missed > 0 ? (missed / (attempts + missed)) * 100 : 0,
    wrongFrames,
    unverified,
    loadgenCpuPct: ((g1.cpuMs - g0.cpuMs) / (t1 - t0)) * 100,
    captures,
    capturesPerS: captures / wallS,
    errors,
    cpuMsPerCapture: captures > 0 ? cpuMs / captures : Infinity,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    bytesPerCapture: captures > 0 ? (s1.bytesFetched - s0.bytesFetched) / captures : 0,
    rssMb: rss / 2 ** 20,
  };
}

function decoderPids(engine: CaptureEngine): number[] {
  // The pool is private to the engine; the bench peeks for RSS only.
  const pool = (engine as unknown as { pool: { decoders: Array<{ pid: number | undefined }> } | null }).pool;
  return pool ? pool.decoders.map((d) => d.pid).filter((p): p is number => p !== undefined) : [];
}

/** One ffmpeg per capture, reading the live media playlist, one frame out as raw RGB. */
async function measureNaive(server: Server, k: number, windowS: number): Promise<Measured> {
  const ffmpeg = resolveFfmpeg().path;
  const sched = new CaptureScheduler({ intervalMs: INTERVAL_MS, maxConcurrent: MAX_CONCURRENT });
  const streams = Array.from({ length: k }, (_, i) => chan(i));
  for (const name of streams) sched.add(name, { priority: 50 });
  const deadlines = new DeadlineTracker(INTERVAL_MS);
  const latencies: number[] = [];
  let measuring = false;
  let errors = 0;
  let wrongFrames = 0;
  let stopped = false;
  let live = 0;
  const one = (name: string) => {
    const t = performance.now();
    sched.started(name);
    live++;
    const p = spawn(ffmpeg, ['-hide_banner', '-loglevel', 'error', '-live_start_index', '-1', '-i', server.playlist480.replace('{name}', name),
      '-frames:v', '1', '-vf', `scale=${W}:${H}`, '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let bytes = 0;
    const frame = Buffer.alloc(W * H * 3);
    p.stdout.on('data', (d: Buffer) => { if (bytes < frame.length) d.copy(frame, bytes); bytes += d.length; });
    const timer = setTimeout(() => p.kill('SIGKILL'), 15_000);
    p.on('close', () => {
      clearTimeout(timer);
      live--;
      const ok = bytes >= W * H * 3;
      const good = ok && belongsTo(name, frame);
      if (good) deadlines.frame(name, performance.now());
      if (measuring) {
        if (ok) latencies.push(performance.now() - t);
        else errors++;
        if (ok && !good) wrongFrames++;
      }
      if (!stopped) sched.finished(name, ok ? 'ok' : { error: 'no frame' });
    });
  };
  const tick = setInterval(() => { for (const n of sched.due()) one(n); }, 10);
  await sleep(INTERVAL_MS + 1000);
  const s0 = sched.stats();
  const p0 = liveProcCpu();
  const g0 = liveProcCpu(server.pid);
  measuring = true;
  const t0 = performance.now();
  let rss = 0;
  while (performance.now() - t0 < windowS * 1000) {
    await sleep(1000);
    rss = Math.max(rss, process.memoryUsage().rss);
  }
  measuring = false;
  const t1 = performance.now();
  const g1 = liveProcCpu(server.pid);
  const s1 = sched.stats();
  stopped = true;
  clearInterval(tick);
  const wallS = (performance.now() - t0) / 1000;
  // Children's CPU lands in cutime when they are reaped: wait for the stragglers.
  for (let i = 0; i < 200 && live > 0; i++) await sleep(50);
  const p1 = liveProcCpu();
  const captures = s1.captures - s0.captures;
  const attempts = s1.attempts - s0.attempts;
  const missed = s1.missed - s0.missed;
  // The stragglers' CPU is in the delta too; count their captures as well (they ran).
  const counted = captures + Math.max(0, attempts - captures - errors);
  return {
    missedPct: deadlines.missed(streams, t0, t1).pct,
    engineMissedPct: attempts + missed > 0 ? (missed / (attempts + missed)) * 100 : 0,
    wrongFrames,
    unverified: 0,
    loadgenCpuPct: ((g1.cpuMs - g0.cpuMs) / (t1 - t0)) * 100,
    captures,
    capturesPerS: captures / wallS,
    errors,
    cpuMsPerCapture: counted > 0 ? (p1.cpuMs - p0.cpuMs + p1.childrenCpuMs - p0.childrenCpuMs) / counted : Infinity,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    bytesPerCapture: NaN,
    rssMb: rss / 2 ** 20,
  };
}

function line(label: string, m: Measured): void {
  console.error(`${label}: ${m.captures} captures (${m.capturesPerS.toFixed(1)}/s), missed ${m.missedPct.toFixed(2)} % (scheduler ${m.engineMissedPct.toFixed(2)} %), wrong frames ${m.wrongFrames}, errors ${m.errors}, load gen ${m.loadgenCpuPct.toFixed(0)} % cpu, `
    + `cpu ${m.cpuMsPerCapture.toFixed(2)} ms/capture, latency p50 ${m.p50.toFixed(0)} ms p99 ${m.p99.toFixed(0)} ms, `
    + `${Number.isNaN(m.bytesPerCapture) ? '' : `${(m.bytesPerCapture / 1024).toFixed(0)} KiB/capture, `}rss ${m.rssMb.toFixed(0)} MB`);
}

export async function run({ quick }: BenchOptions): Promise<BenchResult> {
  const windowS = quick ? 12 : 60;
  const counts = [50, 100, 200, 500];
  // The naive pipeline runs wherever ours does: its missed deadlines are the figure beside its cost.
  const naiveCounts = counts;
  const search720 = quick ? [200, 500, 700, 1000] : [100, 200, 300, 500, 600, 700, 800, 1000];
  const figures: Record<string, number> = {};
  const baseline: Record<string, number> = {};
  const series: Record<string, Array<[number, number]>> = {};
  const notes: string[] = [
    `${windowS} s measured per configuration after a ${INTERVAL_MS / 1000 + 1} s warm-up; interval ${INTERVAL_MS / 1000} s, max ${MAX_CONCURRENT} concurrent, ${DECODERS} decoders, frames ${W}x${H} RGB, 1 analysis worker`,
    'naive = one ffmpeg per capture (-live_start_index -1 -i <media playlist> -frames:v 1), same scheduler and concurrency, no resolution, no analysis',
    `missed_pct_*: deadlines (one per channel per ${INTERVAL_MS / 1000} s) that got no good frame within half an interval, counted from frame arrival times outside both pipelines (retries, overruns, errors and wrong-channel frames included); engine_missed_pct_*: the scheduler's own count. ${CONTENTS} distinct segment contents, channel i serving content i % ${CONTENTS}; wrong_frames_*: frames whose marker was not their channel's`,
    `load average before: ${loadavg().map((x) => x.toFixed(2)).join('/')}`,
  ];
  const server = await startServer(Math.max(...counts, ...search720));
  try {
    const put = (key: string, m: Measured, base?: Measured) => {
      const entries: Array<[string, number, number | undefined]> = [
        [`missed_pct_${key}`, m.missedPct, base?.missedPct],
        [`cpu_ms_per_capture_${key}`, m.cpuMsPerCapture, base?.cpuMsPerCapture],
        [`latency_p50_ms_${key}`, m.p50, base?.p50],
        [`latency_p99_ms_${key}`, m.p99, base?.p99],
        [`captures_per_s_${key}`, m.capturesPerS, base?.capturesPerS],
        [`errors_${key}`, m.errors, base?.errors],
        [`rss_mb_${key}`, m.rssMb, base?.rssMb],
        [`engine_missed_pct_${key}`, m.engineMissedPct, base?.engineMissedPct],
        [`wrong_frames_${key}`, m.wrongFrames, base?.wrongFrames],
        [`unverified_frames_${key}`, m.unverified, undefined],
        [`loadgen_cpu_pct_${key}`, m.loadgenCpuPct, base?.loadgenCpuPct],
      ];
      if (!Number.isNaN(m.bytesPerCapture)) entries.push([`bytes_per_capture_${key}`, m.bytesPerCapture, undefined]);
      for (const [name, v, b] of entries) {
        figures[name] = sig(v);
        if (b !== undefined && Number.isFinite(b)) baseline[name] = sig(b);
      }
      if (base) {
        // The naive figures under their own names too, so a reader (and the README) can quote them.
        for (const [name, v] of [['missed_pct', base.missedPct], ['cpu_ms_per_capture', base.cpuMsPerCapture], ['wrong_frames', base.wrongFrames], ['loadgen_cpu_pct', base.loadgenCpuPct], ['latency_p50_ms', base.p50]] as const) {
          figures[`naive_${name}_${key}`] = sig(v);
        }
        figures[`ratio_vs_naive_${key}`] = sig(base.cpuMsPerCapture / m.cpuMsPerCapture);
      }
      const channels = Number(key.split('_')[0]);
      const q = key.split('_')[1];
      const point = (s: string, v: number) => { if (Number.isFinite(v)) (series[s] ??= []).push([channels, sig(v)]); };
      point(`ours_cpu_ms_per_capture_${q}`, m.cpuMsPerCapture);
      point(`ours_missed_pct_${q}`, m.missedPct);
      if (base) {
        point(`naive_cpu_ms_per_capture_${q}`, base.cpuMsPerCapture);
        point(`naive_missed_pct_${q}`, base.missedPct);
      }
    };
    const results480 = new Map<number, Measured>();
    for (const k of counts) {
      const ours = await measureOurs(server, k, '480p', windowS);
      line(`ours  ${k} ch 480p`, ours);
      results480.set(k, ours);
      let naive: Measured | undefined;
      if (naiveCounts.includes(k)) {
        naive = await measureNaive(server, k, windowS);
        line(`naive ${k} ch 480p`, naive);
        if (k === 50) figures.ratio_vs_naive = sig(naive.cpuMsPerCapture / ours.cpuMsPerCapture);
      }
      put(`${k}_480p`, ours, naive);
    }
    const at500 = results480.get(500)!;
    figures.missed_pct_500_480p = sig(at500.missedPct);
    figures.cpu_ms_per_capture_480p = sig(at500.cpuMsPerCapture);
    let max720 = 0;
    for (const k of search720) {
      const m = await measureOurs(server, k, '720p60', windowS);
      line(`ours  ${k} ch 720p60`, m);
      put(`${k}_720p`, m);
      if (m.missedPct > MISSED_BAR_PCT || m.errors > m.captures * 0.01) break;
      max720 = k;
    }
    figures.max_channels_720p = max720;
    notes.push(`720p60 search stopped at the first K over ${MISSED_BAR_PCT} % missed (or 1 % errors); tried ${search720.join(', ')}`);
  } finally {
    const s = await stopServer(server).catch(() => ({ cpuMs: NaN }));
    notes.push(`load generator CPU over the whole run: ${(s.cpuMs / 1000).toFixed(1)} s (separate process)`);
    notes.push(`load average after: ${loadavg().map((x) => x.toFixed(2)).join('/')}`);
  }
  return { figures, baseline, notes, series };
}
