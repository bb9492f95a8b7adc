/**
 * The service's one ffmpeg decision, made at start: which binary (logged and exported as
 * `ringcast_ffmpeg_info{path,version,source}`), or why there is none. Without ffmpeg the
 * service still runs; the parts that need it (capture, the encoder, the demo HLS streams)
 * report `unavailable: ffmpeg not found (…)` instead of taking the whole service down.
 */
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import type { Config } from '../../shared/config.js';
import { ffmpegAvailability, type FfmpegAvailability } from '../../shared/ffmpeg.js';
import { CAPTURE, ENCODER } from '../../topology.js';

export interface FfmpegStatus {
  readonly availability: FfmpegAvailability;
  /** The configured parts that need ffmpeg (capture, encoder). */
  readonly needed: string[];
  /** Per part that needs ffmpeg and has none: `unavailable: ffmpeg not found (…)`. */
  details(): Record<string, string>;
  /** Exports `ringcast_ffmpeg_info` and `ringcast_ffmpeg_available` in the main thread's registry. */
  register(registry: Registry): void;
}

export function ffmpegNeeds(config: Config): string[] {
  const needed: string[] = [];
  if (config.capture.enabled) needed.push(CAPTURE);
  if (config.compose.outputs.length > 0) needed.push(ENCODER);
  return needed;
}

export function resolveServiceFfmpeg(config: Config, log: Logger): FfmpegStatus {
  const availability = ffmpegAvailability();
  const needed = ffmpegNeeds(config);
  if (availability.ok) {
    const f = availability.ffmpeg;
    log.info({ ffmpeg: f }, `ffmpeg ${f.version} (${f.source}) at ${f.path}`);
  } else if (needed.length > 0) {
    log.warn({ reason: availability.reason, unavailable: needed }, `${needed.join(' and ')} unavailable: ${availability.reason}; everything else runs`);
  } else {
    log.info({ reason: availability.reason }, 'no ffmpeg (not needed by this configuration)');
  }
  const register = (registry: Registry) => {
    const info = new Gauge({ name: 'ringcast_ffmpeg_info', help: 'The ffmpeg binary in use (1), by path, version and source (env, system, npm)', labelNames: ['path', 'version', 'source'], registers: [registry] });
    if (availability.ok) info.set({ path: availability.ffmpeg.path, version: availability.ffmpeg.version, source: availability.ffmpeg.source }, 1);
    new Gauge({ name: 'ringcast_ffmpeg_available', help: '1 when a working ffmpeg was found at start (capture and the encoder need one)', registers: [registry] })
      .set(availability.ok ? 1 : 0);
  };
  const details = (): Record<string, string> => {
    if (availability.ok) return {};
    return Object.fromEntries(needed.map((part) => [part, `unavailable: ${availability.reason}`]));
  };
  return { availability, needed, details, register };
}
