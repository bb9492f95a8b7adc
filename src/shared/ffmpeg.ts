/**
 * The one place that decides which ffmpeg / ffprobe binary ringcast runs, and which
 * H.264 encoder it can use.
 *
 * Binary resolution order (first candidate that runs `-version` wins):
 *   ffmpeg:  FFMPEG_PATH → `ffmpeg` on PATH (the system's) → `@ffmpeg-installer/ffmpeg` (npm)
 *   ffprobe: FFPROBE_PATH → `ffprobe` on PATH → `@ffprobe-installer/ffprobe` (npm)
 * The system binary comes first because distribution builds are newer and fuller; the npm
 * packages ship a static binary inside the package (nothing is downloaded at install), so a
 * machine with only Node still has one. A candidate that exists but does not run (wrong
 * architecture, a broken install, a stub) is skipped and named in the error. An env override
 * is the operator's explicit choice: when it does not run, that is the answer (no silent
 * fall-through to another binary).
 *
 * Hardware encoders: ffmpeg builds list `h264_nvenc`, `h264_vaapi` and `h264_qsv` even
 * on machines with no such hardware (Debian's does), so being listed proves nothing. An
 * encoder counts only if it is listed AND a one-second trial encode with the exact
 * arguments the encoder actor would use succeeds. The probe runs once per process.
 */
import { execFile, spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';

export type FfmpegSource = 'env' | 'system' | 'npm';

export interface ResolvedBinary {
  path: string;
  source: FfmpegSource;
  /** What `-version` printed after "ffmpeg version " / "ffprobe version ". */
  version: string;
}

export interface ResolveOptions {
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Loads an optional package by name; returns undefined when absent. Injected by tests. */
  loadModule?: (name: string) => unknown;
}

export class FfmpegNotFoundError extends Error {
  override readonly name = 'FfmpegNotFoundError';
}

/** How an operator gets a working ffmpeg; part of every "not found" message. */
export const FFMPEG_FIX = 'run `npm install` (ships @ffmpeg-installer/ffmpeg), `apt-get install ffmpeg`, or set FFMPEG_PATH to a working ffmpeg';
const FFPROBE_FIX = 'run `npm install` (ships @ffprobe-installer/ffprobe), `apt-get install ffmpeg`, or set FFPROBE_PATH to a working ffprobe';

const require = createRequire(import.meta.url);

function loadOptional(name: string): unknown {
  try {
    return require(name);
  } catch {
    return undefined;
  }
}

function isExecutable(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** The installer packages export `{ path }`; a bare string is accepted too. */
function pathFromPackage(mod: unknown): string | undefined {
  if (typeof mod === 'string') return mod;
  if (mod !== null && typeof mod === 'object') {
    const m = mod as { path?: unknown; default?: unknown };
    if (typeof m.path === 'string') return m.path;
    if (typeof m.default === 'string') return m.default;
  }
  return undefined;
}

/**
 * Runs `<bin> -version`; returns the version string, or why the binary does not run.
 * Synchronous on purpose: it runs once per process (results are cached) and callers
 * resolve the binary before they can do anything with it.
 */
export function binaryVersion(path: string, tool: 'ffmpeg' | 'ffprobe'): { version: string } | { error: string } {
  if (!isExecutable(path)) return { error: `${path} is not an executable file` };
  const r = spawnSync(path, ['-hide_banner', '-version'], { timeout: 10_000, encoding: 'utf8', killSignal: 'SIGKILL', maxBuffer: 1 << 20 });
  if (r.error) return { error: `${path} -version failed: ${r.error.message}` };
  if (r.status !== 0) return { error: `${path} -version exited ${r.status ?? r.signal}` };
  const m = new RegExp(`^${tool} version (\\S+)`).exec(r.stdout);
  if (!m) return { error: `${path} -version did not print "${tool} version …"` };
  return { version: m[1] };
}

interface ToolSpec {
  tool: 'ffmpeg' | 'ffprobe';
  envVar: string;
  pkg: string;
  fix: string;
}

function resolveTool(spec: ToolSpec, options: ResolveOptions | undefined): ResolvedBinary {
  const env = options?.env ?? process.env;
  const load = options?.loadModule ?? loadOptional;
  const override = env[spec.envVar];
  if (override !== undefined && override !== '') {
    const v = binaryVersion(override, spec.tool);
    if ('error' in v) throw new FfmpegNotFoundError(`${spec.tool} not found (${spec.envVar}=${override} does not run: ${v.error}; point ${spec.envVar} at a working ${spec.tool} or unset it to use the system or npm one)`);
    return { path: override, source: 'env', version: v.version };
  }
  const skipped: string[] = [];
  const candidates: Array<{ path: string | undefined; source: FfmpegSource }> = [
    { path: onPath(spec.tool, env), source: 'system' },
    { path: pathFromPackage(load(spec.pkg)), source: 'npm' },
  ];
  for (const c of candidates) {
    if (c.path === undefined) continue;
    const v = binaryVersion(c.path, spec.tool);
    if ('version' in v) return { path: c.path, source: c.source, version: v.version };
    skipped.push(v.error);
  }
  const tried = skipped.length > 0 ? `skipped: ${skipped.join('; ')}; ` : `none on PATH, no ${spec.pkg}; `;
  throw new FfmpegNotFoundError(`${spec.tool} not found (${tried}${spec.fix})`);
}

let cachedFfmpeg: ResolvedBinary | undefined;
let cachedFfprobe: ResolvedBinary | undefined;

export function resolveFfmpeg(options?: ResolveOptions): ResolvedBinary {
  if (options === undefined && cachedFfmpeg) return cachedFfmpeg;
  const found = resolveTool({ tool: 'ffmpeg', envVar: 'FFMPEG_PATH', pkg: '@ffmpeg-installer/ffmpeg', fix: FFMPEG_FIX }, options);
  if (options === undefined) cachedFfmpeg = found;
  return found;
}

export function resolveFfprobe(options?: ResolveOptions): ResolvedBinary {
  if (options === undefined && cachedFfprobe) return cachedFfprobe;
  const found = resolveTool({ tool: 'ffprobe', envVar: 'FFPROBE_PATH', pkg: '@ffprobe-installer/ffprobe', fix: FFPROBE_FIX }, options);
  if (options === undefined) cachedFfprobe = found;
  return found;
}

export type FfmpegAvailability = { ok: true; ffmpeg: ResolvedBinary } | { ok: false; reason: string };

/**
 * The resolved ffmpeg, or why there is none, phrased for an operator
 * ("ffmpeg not found (… how to fix …)"). The service degrades on `ok: false`
 * instead of refusing to start: only capture, the encoder and the demo streams need ffmpeg.
 */
export function ffmpegAvailability(options?: ResolveOptions): FfmpegAvailability {
  try {
    return { ok: true, ffmpeg: resolveFfmpeg(options) };
  } catch (error) {
    if (error instanceof FfmpegNotFoundError) return { ok: false, reason: error.message };
    throw error;
  }
}

/**
 * Options that differ between the ffmpeg builds ringcast meets: the npm build (a 2018
 * snapshot) predates `-fps_mode` (5.1) and `-stats_period` (4.4). Read once per binary
 * from `-h long`.
 */
export interface FfmpegFeatures {
  fpsMode: boolean;
  statsPeriod: boolean;
}

const featureCache = new Map<string, FfmpegFeatures>();

export function ffmpegFeatures(path: string): FfmpegFeatures {
  let f = featureCache.get(path);
  if (!f) {
    const r = spawnSync(path, ['-hide_banner', '-h', 'long'], { timeout: 10_000, encoding: 'utf8', killSignal: 'SIGKILL', maxBuffer: 8 << 20 });
    const text = r.stdout ?? '';
    f = { fpsMode: /^-fps_mode\b/m.test(text), statsPeriod: /^-stats_period\b/m.test(text) };
    featureCache.set(path, f);
  }
  return f;
}

/** `-fps_mode passthrough` where the build knows it, its older spelling elsewhere. */
export function passthroughFrameRateArgs(features: FfmpegFeatures): string[] {
  return features.fpsMode ? ['-fps_mode', 'passthrough'] : ['-vsync', 'passthrough'];
}

export interface EncoderInfo {
  name: string;
  kind: 'video' | 'audio' | 'subtitle';
  description: string;
}

function run(bin: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: timeoutMs, maxBuffer: 4 << 20, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : null) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Parses `ffmpeg -encoders` lines such as ` V....D libx264  libx264 H.264 / AVC ...`. */
export function parseEncoderList(text: string): EncoderInfo[] {
  const out: EncoderInfo[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s([VAS])[F.][S.][X.][B.][D.]\s+(\S+)\s+(.*)$/.exec(line);
    if (!m || m[2] === '=') continue;
    out.push({ name: m[2], kind: m[1] === 'V' ? 'video' : m[1] === 'A' ? 'audio' : 'subtitle', description: m[3].trim() });
  }
  return out;
}

export async function listEncoders(ffmpegPath = resolveFfmpeg().path): Promise<EncoderInfo[]> {
  const r = await run(ffmpegPath, ['-hide_banner', '-encoders'], 10_000);
  if (r.code !== 0) throw new Error(`${ffmpegPath} -encoders failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return parseEncoderList(r.stdout);
}

export const HARDWARE_ENCODERS = ['h264_nvenc', 'h264_vaapi', 'h264_qsv'] as const;
export const VAAPI_DEVICE = '/dev/dri/renderD128';

export interface H264Settings {
  fps: number;
  bitrateKbps: number;
  /** x264 preset name (ultrafast … veryslow); mapped to the nearest hardware preset. */
  preset: string;
  keyframeSeconds: number;
}

export interface EncoderArgs {
  /** Global/input-side arguments (before the first -i). */
  global: string[];
  /** Video filter the encoder needs (e.g. upload to the GPU), or undefined. */
  filter: string | undefined;
  /** -c:v and codec options. */
  codec: string[];
}

const X264_PRESETS = ['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow', 'slower', 'veryslow'];
// NVENC (ffmpeg >= 4.4) presets p1 (fastest) .. p7 (best).
const NVENC_FOR_X264 = ['p1', 'p1', 'p2', 'p3', 'p4', 'p4', 'p5', 'p6', 'p7'];
// QSV accepts veryfast .. veryslow.
const QSV_FOR_X264 = ['veryfast', 'veryfast', 'veryfast', 'faster', 'fast', 'medium', 'slow', 'slower', 'veryslow'];

export function checkPreset(preset: string): number {
  const i = X264_PRESETS.indexOf(preset);
  if (i < 0) throw new Error(`unknown preset "${preset}"; use one of ${X264_PRESETS.join(', ')}`);
  return i;
}

/**
 * The arguments that make encoder `name` produce constant-GOP H.264 from yuv420p/rgba
 * input. Shared by the probe and the encoder actor so the trial proves what will run.
 */
export function h264EncoderArgs(name: string, s: H264Settings): EncoderArgs {
  const p = checkPreset(s.preset);
  const gop = String(Math.max(1, Math.round(s.fps * s.keyframeSeconds)));
  const rate = [`-b:v`, `${s.bitrateKbps}k`, '-maxrate', `${s.bitrateKbps}k`, '-bufsize', `${s.bitrateKbps * 2}k`];
  // Fixed GOP with no scene-cut keyframes: ingest servers (Twitch) want a keyframe every N seconds exactly.
  const gopArgs = ['-g', gop, '-keyint_min', gop];
  switch (name) {
    case 'libx264':
      return {
        global: [], filter: 'format=yuv420p',
        codec: ['-c:v', 'libx264', '-preset', s.preset, '-tune', 'zerolatency', ...gopArgs, '-sc_threshold', '0', ...rate, '-pix_fmt', 'yuv420p'],
      };
    case 'h264_nvenc':
      return {
        global: [], filter: 'format=yuv420p',
        codec: ['-c:v', 'h264_nvenc', '-preset', NVENC_FOR_X264[p], ...gopArgs, '-forced-idr', '1', '-no-scenecut', '1', ...rate, '-pix_fmt', 'yuv420p'],
      };
    case 'h264_vaapi':
      return {
        global: ['-vaapi_device', VAAPI_DEVICE], filter: 'format=nv12,hwupload',
        codec: ['-c:v', 'h264_vaapi', ...gopArgs, ...rate],
      };
    case 'h264_qsv':
      return {
        global: [], filter: 'format=nv12',
        codec: ['-c:v', 'h264_qsv', '-preset', QSV_FOR_X264[p], ...gopArgs, ...rate],
      };
    default:
      // Any other listed encoder the operator names explicitly: pass it through untuned.
      return { global: [], filter: 'format=yuv420p', codec: ['-c:v', name, ...gopArgs, ...rate, '-pix_fmt', 'yuv420p'] };
  }
}

export interface EncoderTrial {
  name: string;
  listed: boolean;
  ok: boolean;
  ms: number;
  /** Last lines of ffmpeg's stderr when the trial failed. */
  error?: string;
}

export interface HardwareProbe {
  ffmpeg: ResolvedBinary;
  /** Hardware encoders that are listed and passed the trial, in preference order. */
  working: string[];
  /** What the encoder actor uses for `encoder: 'auto'`. */
  chosen: string;
  trials: EncoderTrial[];
}

/** One-second trial encode of a test pattern, discarding the output. */
export async function trialEncode(name: string, ffmpegPath = resolveFfmpeg().path, timeoutMs = 20_000): Promise<EncoderTrial> {
  const a = h264EncoderArgs(name, { fps: 30, bitrateKbps: 1000, preset: 'veryfast', keyframeSeconds: 1 });
  const args = [
    '-hide_banner', '-nostdin', '-loglevel', 'error', ...a.global,
    '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=30', '-t', '1',
    ...(a.filter ? ['-vf', a.filter] : []), ...a.codec, '-f', 'null', '-',
  ];
  const t0 = performance.now();
  const r = await run(ffmpegPath, args, timeoutMs);
  const ms = Math.round(performance.now() - t0);
  if (r.code === 0) return { name, listed: true, ok: true, ms };
  const tail = r.stderr.trim().split('\n').slice(-3).join(' | ');
  return { name, listed: true, ok: false, ms, error: r.code === null ? `timed out or killed after ${ms} ms ${tail}`.trim() : `exit ${r.code}: ${tail}` };
}

let probeCache: Promise<HardwareProbe> | undefined;

/**
 * Which hardware H.264 encoder works here (cached for the process: the answer does not
 * change while we run, and each trial costs a second or more). `fresh` re-probes.
 */
export function probeHardwareEncoders(fresh = false): Promise<HardwareProbe> {
  if (!probeCache || fresh) {
    probeCache = (async () => {
      const ffmpeg = resolveFfmpeg();
      const listed = new Set((await listEncoders(ffmpeg.path)).map((e) => e.name));
      const trials: EncoderTrial[] = [];
      // Sequential, not parallel: trials on one GPU would contend, and a failure is fast.
      for (const name of HARDWARE_ENCODERS) {
        trials.push(listed.has(name) ? await trialEncode(name, ffmpeg.path) : { name, listed: false, ok: false, ms: 0 });
      }
      const working = trials.filter((t) => t.ok).map((t) => t.name);
      if (working.length === 0 && !listed.has('libx264')) {
        throw new Error(`${ffmpeg.path} has no working hardware H.264 encoder and no libx264`);
      }
      return { ffmpeg, working, chosen: working[0] ?? 'libx264', trials };
    })();
    // A failed probe (ffmpeg missing) is not cached, so a later call can succeed.
    probeCache.catch(() => { probeCache = undefined; });
  }
  return probeCache;
}
