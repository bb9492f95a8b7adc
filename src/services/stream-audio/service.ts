/**
 * Captured streams' audio under the show: a scene video layer with `"audio": true` in its
 * props has its stream's audio mixed in by the encoder (`setStreamAudio`). The scene is read
 * from the state store about once a second (one small SQLite read; the scene service stays
 * unaware of audio), and the encoder is told only when the set changes or it restarted.
 *
 * A layer's stream is `props.source` as a stream name (`{"capture": name}`, or the name as a
 * string). Names that are HLS playlists (http(s) URLs, local .m3u8 paths) are played as they
 * are; a Twitch channel name needs the capture actor's resolver, which does not answer for
 * audio yet, so it is skipped with a warning.
 */
import type { Logger } from 'pino';
import type { StateStore } from '../../shared/state-store.js';
import { ENCODER } from '../../topology.js';

const POLL_MS = 1_000;
/** The encoder mixes at most this many (see actors/encoder/audio-sources.ts). */
const MAX_SOURCES = 4;

export interface StreamAudioSource { name: string; url: string }

interface SceneLike { layers?: Array<{ id?: unknown; type?: unknown; visible?: unknown; props?: Record<string, unknown> }> }

/** Where a stream's audio can be read, or undefined when its name is not a playlist. */
export function playlistOf(name: string): string | undefined {
  if (/^https?:\/\/\S+$/i.test(name)) return name;
  if (name.startsWith('/') && name.toLowerCase().endsWith('.m3u8')) return name;
  return undefined;
}

/** The streams whose visible video layers ask for their audio, in layer order, without repeats. */
export function streamsWithAudio(scene: SceneLike | undefined, onSkipped: (name: string) => void = () => {}): StreamAudioSource[] {
  const out: StreamAudioSource[] = [];
  for (const layer of scene?.layers ?? []) {
    if (layer.type !== 'video' || layer.visible === false || layer.props?.audio !== true) continue;
    const source = layer.props.source;
    const name = typeof source === 'string' ? source : typeof (source as { capture?: unknown } | undefined)?.capture === 'string' ? (source as { capture: string }).capture : undefined;
    if (!name || out.some((s) => s.name === name)) continue;
    const url = playlistOf(name);
    if (!url) onSkipped(name);
    else if (out.length < MAX_SOURCES) out.push({ name, url });
  }
  return out;
}

export interface StreamAudioDeps {
  store: StateStore;
  supervisor: {
    actorNames(): string[];
    call(actor: string, method: string, args?: unknown[], timeoutMs?: number): Promise<unknown>;
    on(event: 'actor-started', listener: (actor: string, incarnation: number) => void): unknown;
  };
  log: Logger;
}

export function startStreamAudio(d: StreamAudioDeps): { close(): void } {
  let sent: string | undefined;
  const warned = new Set<string>();
  let busy = false;
  d.supervisor.on('actor-started', (actor) => { if (actor === ENCODER) sent = undefined; });
  const tick = async () => {
    if (busy || !d.supervisor.actorNames().includes(ENCODER)) return;
    const wanted = streamsWithAudio(d.store.get<SceneLike>('scene', 'current'), (name) => {
      if (warned.has(name) || warned.size > 100) return;
      warned.add(name);
      d.log.warn({ stream: name }, 'a video layer asks for the audio of a stream that is not an HLS playlist URL or path; its audio is left out');
    });
    const key = JSON.stringify(wanted);
    if (key === sent) return;
    busy = true;
    try {
      await d.supervisor.call(ENCODER, 'setStreamAudio', [wanted]);
      sent = key;
    } catch (error) {
      d.log.warn({ err: (error as Error).message }, 'the encoder did not take the streams\' audio; trying again');
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), POLL_MS);
  timer.unref();
  return { close: () => clearInterval(timer) };
}
