/**
 * Which audio inputs the next ffmpeg run gets, and what happens when one fails: the
 * configured one (`compose.audio`: silence, none, a file or a URL) and the audio of captured
 * streams whose video layer asks for it (`setStreamAudio`). A URL that ffmpeg cannot open
 * ends the run (ffmpeg names it in its last lines): it is left out of every later run, so the
 * show comes back with the rest (a failed configured URL becomes silence). A URL that breaks
 * off mid-run is padded with silence by the filter graph. Both are logged and counted.
 * Stream URLs can carry access tokens in their query: those are redacted like stream keys.
 */
import type { Logger } from 'pino';
import type { Redactor } from './destinations.js';
import { audioInputKind } from './options.js';

export interface StreamAudio {
  /** The captured stream's name (what the scene layer binds to). */
  name: string;
  /** Its HLS URL. */
  url: string;
}

/** Mixing more than this many live inputs costs more than the 2-core box should give to audio. */
export const MAX_STREAM_AUDIO = 4;

export class AudioSources {
  errors = 0;
  private readonly failed = new Set<string>();
  private readonly erroredThisRun = new Set<string>();
  private streams: StreamAudio[] = [];

  constructor(private readonly base: string, private readonly redactor: Redactor, private readonly log: Logger) {}

  private urls(): string[] {
    return [...(audioInputKind(this.base) === 'url' ? [this.base] : []), ...this.streams.map((s) => s.url)];
  }

  /** The inputs for the run about to start. */
  forRun(): { audio: string; streams: string[] } {
    this.erroredThisRun.clear();
    const audio = audioInputKind(this.base) === 'url' && this.failed.has(this.base) ? 'silence' : this.base;
    return { audio, streams: this.streams.filter((s) => !this.failed.has(s.url)).map((s) => s.url) };
  }

  /** Replaces the stream sources; true when they changed (the caller restarts ffmpeg to apply them). */
  setStreams(list: unknown): boolean {
    if (!Array.isArray(list) || list.length > MAX_STREAM_AUDIO) throw new Error(`stream audio: an array of at most ${MAX_STREAM_AUDIO} {name, url}`);
    const next: StreamAudio[] = list.map((s: unknown) => {
      const { name, url } = (s ?? {}) as { name?: unknown; url?: unknown };
      // An http(s) URL, or an absolute local playlist path (the built-in demo streams are files).
      const ok = typeof url === 'string' && (/^https?:\/\/\S+$/i.test(url) || (url.startsWith('/') && url.toLowerCase().endsWith('.m3u8')));
      if (typeof name !== 'string' || name === '' || !ok) throw new Error('stream audio: each entry needs a "name" and an http(s) "url" or an absolute .m3u8 path');
      return { name, url };
    });
    const same = next.length === this.streams.length && next.every((s, i) => s.url === this.streams[i].url && s.name === this.streams[i].name);
    if (same) return false;
    for (const s of next) {
      const query = s.url.includes('?') ? s.url.slice(s.url.indexOf('?') + 1) : '';
      if (query) this.redactor.add(query);
      this.failed.delete(s.url); // a stream asked for again gets another try
    }
    this.streams = next;
    return true;
  }

  private failedUrl(url: string, why: string, final: boolean): void {
    if (final) this.failed.add(url);
    if (this.erroredThisRun.has(url)) return;
    this.erroredThisRun.add(url);
    this.errors++;
    const stream = this.streams.find((s) => s.url === url);
    this.log.error({ audio: stream ? `stream ${stream.name}` : this.redactor.apply(url), why: why.slice(0, 300) }, final ? 'audio input could not be opened; the show goes on without it' : 'audio input broke off; silence in its place');
  }

  /** An ffmpeg log line (already redacted) that names an audio URL: it broke off mid-run. */
  onLogLine(line: string): void {
    for (const url of this.urls()) if (line.includes(this.redactor.apply(url))) this.failedUrl(url, line, false);
  }

  /** A run ended unexpectedly: a URL named in its last lines could not be opened. */
  onExit(log: readonly string[]): void {
    for (const url of this.urls()) {
      const line = log.find((l) => l.includes(this.redactor.apply(url)));
      if (line) this.failedUrl(url, line, true);
    }
  }

  stats(): { audio: string; streamAudio: Array<{ name: string; active: boolean }> } {
    const kind = audioInputKind(this.base);
    return {
      audio: kind === 'url' && this.failed.has(this.base) ? 'silence (audio URL failed)' : kind,
      streamAudio: this.streams.map((s) => ({ name: s.name, active: !this.failed.has(s.url) })),
    };
  }
}
