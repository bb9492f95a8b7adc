/**
 * Encoder options, their validation (a bad option fails at start with a message naming
 * it) and the ffmpeg command line they turn into.
 *
 * Outputs go through one ffmpeg process with the `tee` muxer: the picture is converted
 * and encoded ONCE, then muxed to every target. Encoding per output (one process each)
 * would multiply the dominant cost, x264 at 1080p, by the number of targets, which a
 * 2-core box cannot afford when streaming to Twitch and X at once. The price is shared
 * fate, softened: every slave is `onfail=ignore`, so a full disk or one dropped RTMP
 * destination does not end the others; the actor notices a dropped destination in ffmpeg's
 * log and restarts the process after a backoff to reconnect it (the others see a gap of
 * about a second each time). After a restart, file outputs get a `.partN` name so the
 * finished part is never overwritten. With a single target the
 * muxer is used directly (no tee), so ffmpeg can report the output bitrate.
 */
import { basename, dirname, extname, join, resolve } from 'node:path';
import { checkPreset, h264EncoderArgs, type FfmpegFeatures, type ResolvedBinary } from '../../shared/ffmpeg.js';
import { DESTINATION_PRESETS, isDestinationName, type ResolvedDestination } from './destinations.js';

export interface EncoderOptions {
  /** Slot ring of RGBA frames (slotBytes >= width * height * 4), latest or queue mode. */
  inRing: string;
  width: number;
  height: number;
  fps: number;
  /** rtmp://…, rtmps://…, *.mp4 / *.flv / *.mkv files, *.m3u8 for local HLS, or a destination name (twitch, youtube, x). */
  outputs: string[];
  /** Destination names in `outputs` resolved to URLs with their stream keys (see destinations.ts). */
  destinations?: Record<string, ResolvedDestination>;
  bitrateKbps: number;
  /** x264 preset name; mapped to the nearest preset of a hardware encoder. */
  preset: string;
  keyframeSeconds: number;
  /** 'auto' = the hardware probe's choice (libx264 when no hardware encoder works). */
  encoder: 'auto' | string;
  /** 'silence' (AAC silence), 'none' (no audio track), or a file path / http(s) URL played in a loop under the show. */
  audio: string;
  /** Gain of a file/URL audio input (0–2, default 1). */
  audioVolume?: number;
  /** Instant-replay clips (absent: no segment buffer, no clips). */
  clips?: ClipOptions;
  /** A fan-out ring of overlay messages: each milestone there cuts a clip (needs `clips`). */
  milestoneRing?: string;
  /** Restart backoff (defaults 500 ms doubling to 10 s). */
  restartInitialMs?: number;
  restartMaxMs?: number;
  /** How long stop() lets ffmpeg finish its files after stdin closes (default 5000). */
  stopTimeoutMs?: number;
  /** The ffmpeg the service resolved (defaults to resolving it in this thread). */
  ffmpeg?: ResolvedBinary;
  /** Set when the service found no usable ffmpeg: the actor only drains its ring and reports this. */
  unavailable?: string;
}

export interface ClipOptions {
  /** Where finished clips go (`<dataDir>/clips`); the segment buffer lives in its `.buffer` folder. */
  dir: string;
  bufferSeconds: number;
  maxCount: number;
  maxBytes: number;
}

/** The segment buffer's folder inside the clips folder (a name no clip id can take). */
export const clipBufferDir = (clipsDir: string): string => join(clipsDir, '.buffer');

export type OutputKind = 'rtmp' | 'file' | 'hls' | 'segments';

export interface OutputTarget {
  kind: OutputKind;
  /** Where ffmpeg writes (a destination's URL includes its stream key: never log this). */
  target: string;
  /** What may be shown: as configured (a destination's name and its base URL, no key). */
  shown: string;
  /** ffmpeg muxer. */
  format: string;
  /** Extra tee-slave options (key=value). */
  options: string[];
}

const FILE_FORMATS: Record<string, string> = { '.mp4': 'mp4', '.flv': 'flv', '.mkv': 'matroska' };

export function classifyOutput(configured: string, keyframeSeconds: number, destinations: Record<string, ResolvedDestination> = {}): OutputTarget {
  if (typeof configured !== 'string' || configured === '') throw new Error('encoder: outputs entries must be non-empty strings');
  if (isDestinationName(configured)) {
    const name = configured.toLowerCase();
    const d = destinations[name];
    if (!d) throw new Error(`encoder: output "${configured}" has no resolved stream key (the service resolves RINGCAST_STREAM_KEY_${name.toUpperCase()} at start)`);
    const base = d.url.slice(0, -d.key.length - 1);
    return { ...classifyUrl(d.url, keyframeSeconds), shown: `${name} (${base || DESTINATION_PRESETS[name].url}/<key>)` };
  }
  return classifyUrl(configured, keyframeSeconds);
}

function classifyUrl(target: string, keyframeSeconds: number): OutputTarget {
  const shown = target;
  // tee separates slaves with '|' and options with ':' inside [...]; rather than escape, refuse.
  if (/[|[\]]/.test(target)) throw new Error(`encoder: output "${target}" contains '|', '[' or ']', which the tee muxer cannot take`);
  if (/^rtmps?:\/\//i.test(target)) return { kind: 'rtmp', target, shown, format: 'flv', options: ['onfail=abort', 'flvflags=no_duration_filesize'] };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) throw new Error(`encoder: output "${target}": only rtmp:// and rtmps:// URLs are supported`);
  const ext = extname(target).toLowerCase();
  if (ext === '.m3u8') {
    return {
      kind: 'hls', target, shown, format: 'hls',
      options: ['onfail=ignore', `hls_time=${keyframeSeconds}`, 'hls_list_size=10', 'hls_flags=delete_segments+independent_segments'],
    };
  }
  const format = FILE_FORMATS[ext];
  if (!format) throw new Error(`encoder: output "${target}": unknown kind; use rtmp://…, a .mp4/.flv/.mkv file or a .m3u8 playlist`);
  return { kind: 'file', target, shown, format, options: ['onfail=ignore'] };
}

function positiveInt(o: Record<string, unknown>, key: string, max: number): void {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) throw new Error(`encoder: "${key}" must be an integer in 1 .. ${max} (got ${String(v)})`);
}

export function validateEncoderOptions(o: EncoderOptions): OutputTarget[] {
  if (o === null || typeof o !== 'object') throw new Error('encoder: options object required');
  const rec = o as unknown as Record<string, unknown>;
  if (typeof o.inRing !== 'string' || o.inRing === '') throw new Error('encoder: "inRing" must name a slot ring');
  positiveInt(rec, 'width', 7680);
  positiveInt(rec, 'height', 4320);
  // yuv420p needs even dimensions; failing here beats an ffmpeg exit on every restart.
  if (o.width % 2 !== 0 || o.height % 2 !== 0) throw new Error(`encoder: width and height must be even for yuv420p (got ${o.width}x${o.height})`);
  positiveInt(rec, 'fps', 120);
  positiveInt(rec, 'bitrateKbps', 100_000);
  if (typeof o.preset !== 'string') throw new Error('encoder: "preset" must be a string');
  checkPreset(o.preset);
  if (!(typeof o.keyframeSeconds === 'number' && o.keyframeSeconds > 0 && o.keyframeSeconds <= 20)) {
    throw new Error(`encoder: "keyframeSeconds" must be in (0, 20] (got ${String(o.keyframeSeconds)})`);
  }
  if (typeof o.encoder !== 'string' || !/^[a-z0-9_]+$/.test(o.encoder)) throw new Error(`encoder: "encoder" must be 'auto' or an ffmpeg encoder name (got ${String(o.encoder)})`);
  if (typeof o.audio !== 'string' || o.audio === '') throw new Error(`encoder: "audio" must be 'silence', 'none', a file path or an http(s) URL (got ${String(o.audio)})`);
  if (o.audioVolume !== undefined && !(typeof o.audioVolume === 'number' && o.audioVolume >= 0 && o.audioVolume <= 2)) {
    throw new Error(`encoder: "audioVolume" must be a number in 0 .. 2 (got ${String(o.audioVolume)})`);
  }
  if (!Array.isArray(o.outputs) || o.outputs.length === 0) throw new Error('encoder: "outputs" must list at least one target');
  const outputs = o.outputs.map((t) => classifyOutput(t, o.keyframeSeconds, o.destinations));
  if (o.clips) {
    positiveInt(o.clips as unknown as Record<string, unknown>, 'bufferSeconds', 3600);
    outputs.push(segmentOutput(clipBufferDir(o.clips.dir), o.keyframeSeconds));
  }
  return outputs;
}

/** The clip buffer's output: MPEG-TS segments cut on keyframes, listed (with stream times) in segments.csv. */
export const SEGMENT_LIST = 'segments.csv';
export const SEGMENT_PATTERN = 'seg-%06d.ts';

function segmentOutput(dir: string, keyframeSeconds: number): OutputTarget {
  // tee separates its slave options with ':', so the folder must not contain one.
  if (/[:|[\]]/.test(dir)) throw new Error(`encoder: clip buffer folder "${dir}" contains ':', '|', '[' or ']', which the tee muxer cannot take`);
  return {
    kind: 'segments', target: join(dir, SEGMENT_PATTERN), shown: 'clip buffer', format: 'segment',
    options: ['onfail=ignore', `segment_time=${keyframeSeconds}`, 'segment_format=mpegts', `segment_list=${join(dir, SEGMENT_LIST)}`, 'segment_list_type=csv', 'segment_list_flags=+live'],
  };
}

/** 'silence' / 'none', or the file path / URL of an audio input. */
export function audioInputKind(audio: string): 'silence' | 'none' | 'url' | 'file' {
  if (audio === 'silence' || audio === 'none') return audio;
  return /^https?:\/\//i.test(audio) ? 'url' : 'file';
}

/** out.mp4 → out.part2.mp4 for the third run (part 0 keeps the configured name). */
export function partName(target: string, part: number): string {
  if (part === 0) return target;
  const ext = extname(target);
  return join(dirname(target), `${basename(target, ext)}.part${part}${ext}`);
}

/**
 * The ffmpeg argument list for one run. `part` numbers the run for file names; HLS keeps
 * its playlist and appends (a discontinuity marks the restart) so players keep going.
 */
export function buildFfmpegArgs(o: EncoderOptions, encoderName: string, outputs: OutputTarget[], part: number, features: Pick<FfmpegFeatures, 'statsPeriod'> = { statsPeriod: true }, audio: string = o.audio, streamAudio: readonly string[] = []): string[] {
  const enc = h264EncoderArgs(encoderName, { fps: o.fps, bitrateKbps: o.bitrateKbps, preset: o.preset, keyframeSeconds: o.keyframeSeconds });
  const args = [
    // -y: without it ffmpeg stops at an existing file (it cannot ask: no terminal). Which
    // name a run writes is decided by `part` (see partName and the actor's firstPart).
    '-y', '-hide_banner', '-nostdin', '-loglevel', 'warning', '-nostats', '-progress', 'pipe:2',
    // Older builds (the npm one) lack -stats_period and report every 0.5 s, which is fine.
    ...(features.statsPeriod ? ['-stats_period', '1'] : []),
    ...enc.global,
    // Frame-count timestamps: the actor writes exactly one frame per frame-clock tick, so
    // PTS n/fps is a steady cadence by construction. A small input queue bounds what
    // ffmpeg buffers on its side when the encoder falls behind (then our pipe fills and
    // the actor drops frames instead).
    '-f', 'rawvideo', '-pix_fmt', 'rgba', '-s', `${o.width}x${o.height}`, '-framerate', String(o.fps), '-thread_queue_size', '4', '-i', 'pipe:0',
  ];
  args.push(...audioArgs(audio, o.audioVolume ?? 1, enc.filter, streamAudio));
  args.push(...enc.codec);
  if (audio !== 'none' || streamAudio.length > 0) args.push('-c:a', 'aac', '-b:a', '128k', '-ar', '48000', '-shortest');
  const muxerOptions = (out: OutputTarget): string[] => {
    const opts = out.kind === 'segments' ? out.options.map((kv) => (kv.startsWith('segment_list=') ? `segment_list=${join(dirname(out.target), `run-${part}`, SEGMENT_LIST)}` : kv)) : [...out.options];
    if (out.kind === 'hls' && part > 0) opts[opts.findIndex((x) => x.startsWith('hls_flags='))] += '+append_list+discont_start';
    return opts;
  };
  const targetOf = (out: OutputTarget) => (out.kind === 'file' ? partName(out.target, part) : out.kind === 'segments' ? join(dirname(out.target), `run-${part}`, basename(out.target)) : out.target);
  if (outputs.length === 1) {
    // One target: the muxer directly. Through tee, ffmpeg cannot see the output's size,
    // so -progress would report no bitrate, our main stream-health figure.
    const out = outputs[0];
    args.push('-f', out.format);
    for (const kv of muxerOptions(out)) {
      const eq = kv.indexOf('=');
      if (kv.slice(0, eq) !== 'onfail') args.push(`-${kv.slice(0, eq)}`, kv.slice(eq + 1));
    }
    args.push(targetOf(out));
    return args;
  }
  // tee slaves cannot ask for global headers themselves; flv and mp4 need SPS/PPS there.
  args.push('-flags', '+global_header', '-f', 'tee');
  // Beside other outputs an RTMP destination that drops is let go (onfail=ignore) so the
  // others carry on; the actor sees the tee's "Slave muxer #i failed" line and restarts
  // ffmpeg later (with backoff) to bring it back.
  const teeOptions = (out: OutputTarget) => muxerOptions(out).map((kv) => (out.kind === 'rtmp' && kv === 'onfail=abort' ? 'onfail=ignore' : kv));
  args.push(outputs.map((out) => `[${[`f=${out.format}`, ...teeOptions(out)].join(':')}]${targetOf(out)}`).join('|'));
  return args;
}

/** The options that make every audio input a 48 kHz stereo float stream that never ends (apad). */
const NORMALISE = 'aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo,apad';
/** A network source may stall or drop: reconnect, and give up on a read after 10 s (then apad keeps silence going). */
const NETWORK_INPUT = ['-reconnect', '1', '-reconnect_streamed', '1', '-reconnect_delay_max', '5', '-rw_timeout', '10000000'];

/**
 * The audio inputs (from input 1 on) and the maps: AAC silence from lavfi; or a file / URL
 * looped (`-stream_loop -1`) at `volume`; plus the audio of captured streams (live HLS URLs).
 * Each is padded with silence once it ends or fails mid-show (apad), so the show never
 * loses its track; several are mixed (amix scales each by 1/n while all are running, which
 * apad guarantees, so `volume=n` afterwards gives each its own level). `-shortest` (added by
 * the caller) ends the output with the video.
 */
function audioArgs(audio: string, volume: number, videoFilter: string | undefined, streams: readonly string[]): string[] {
  const kind = audioInputKind(audio);
  const vf = videoFilter ? ['-vf', videoFilter] : [];
  if (streams.length === 0 && kind === 'none') return ['-map', '0:v', ...vf];
  if (streams.length === 0 && kind === 'silence') return ['-f', 'lavfi', '-i', 'anullsrc=channel_layout=stereo:sample_rate=48000', '-map', '0:v', '-map', '1:a', ...vf];
  const inputs: string[] = [];
  const graph: string[] = [];
  const labels: string[] = [];
  const add = (input: string[], filter: string) => {
    const n = labels.length + 1;
    inputs.push(...input);
    graph.push(`[${n}:a]${filter}[a${n}]`);
    labels.push(`[a${n}]`);
  };
  // file: keeps a name with ':' from being read as a protocol.
  if (kind === 'url') add([...NETWORK_INPUT, '-stream_loop', '-1', '-i', audio], `volume=${volume},${NORMALISE}`);
  if (kind === 'file') add(['-stream_loop', '-1', '-i', `file:${resolve(audio)}`], `volume=${volume},${NORMALISE}`);
  for (const url of streams) add(url.startsWith('/') ? ['-i', `file:${url}`] : [...NETWORK_INPUT, '-i', url], NORMALISE);
  if (labels.length === 1) graph[0] = graph[0].replace(/\[a1\]$/, '[aout]');
  else graph.push(`${labels.join('')}amix=inputs=${labels.length}:duration=first:dropout_transition=0,volume=${labels.length}[aout]`);
  return [...inputs, '-filter_complex', graph.join(';'), '-map', '0:v', '-map', '[aout]', ...vf];
}

/**
 * The part number a restarted actor starts at: after every part already on disk, so a
 * crash-restart never overwrites the recording it was making. A first start (incarnation
 * 0) writes the configured names, replacing files from an earlier session as `ffmpeg -y`
 * would.
 */
export function firstPart(outputs: OutputTarget[], incarnation: number, exists: (path: string) => boolean): number {
  if (incarnation === 0) return 0;
  const files = outputs.filter((o) => o.kind === 'file');
  let part = 1;
  while (part < 10_000 && files.some((f) => exists(partName(f.target, part)))) part++;
  return part;
}
