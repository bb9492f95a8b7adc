// Twitch channel -> HLS variant, the way streamlink does it: a PlaybackAccessToken
// persisted GraphQL query, then the usher master playlist signed with that token.
// Endpoints are parameters so tests (and --twitch-gql-url / --twitch-usher-url)
// can point them at a local fake. Direct m3u8 URLs and files skip the token step.

import { readFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isMasterPlaylist, parseMasterPlaylist, pickVariant, PlaylistError, type Variant } from './hls-playlist.js';
import { StageError } from './stage-error.js';

export const TWITCH_WEB_CLIENT_ID = 'kimne78kx3ncx6brgo4mv6wki5h1ko';
export const DEFAULT_GQL_URL = 'https://gql.twitch.tv/gql';
export const DEFAULT_USHER_URL = 'https://usher.ttvnw.net';
export const PLAYBACK_ACCESS_TOKEN_HASH = 'ed230aa1e33e07eebb8928504583da78a5173989fadfb1ac94be06a04f3cdbe9';

const CHANNEL_RE = /^[a-z0-9_]{3,25}$/i;

export type ResolveErrorCode = 'bad-source' | 'http' | 'timeout' | 'network' | 'bad-response' | 'no-variant';

export class ResolveError extends StageError<ResolveErrorCode> {
  override readonly name = 'ResolveError';
}

export type Source =
  | { kind: 'twitch'; channel: string }
  | { kind: 'url'; url: string }
  | { kind: 'file'; path: string };

export function isValidChannel(name: string): boolean {
  return CHANNEL_RE.test(name);
}

/**
 * Classify user input: an http(s) URL, a file (file:// URL, or anything containing a path
 * separator or ending in .m3u8), else a Twitch channel name (validated, lower-cased).
 * A "https://www.twitch.tv/<name>" page URL is a channel, not an HLS URL: users paste those.
 */
export function parseSource(input: string): Source {
  const s = input.trim();
  if (/^https?:\/\//i.test(s)) {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw new ResolveError('bad-source', `invalid URL: ${s}`);
    }
    if (/^((www|m)\.)?twitch\.tv$/i.test(u.hostname)) {
      const name = u.pathname.replace(/^\/+|\/+$/g, '');
      if (!isValidChannel(name)) throw new ResolveError('bad-source', `not a Twitch channel URL: ${s}`);
      return { kind: 'twitch', channel: name.toLowerCase() };
    }
    return { kind: 'url', url: u.toString() };
  }
  if (/^file:\/\//i.test(s)) {
    try {
      return { kind: 'file', path: fileURLToPath(s) };
    } catch {
      throw new ResolveError('bad-source', `invalid file URL: ${s}`);
    }
  }
  if (s.includes('/') || s.includes('\\') || /\.m3u8$/i.test(s)) return { kind: 'file', path: s };
  if (!isValidChannel(s)) throw new ResolveError('bad-source', `invalid Twitch channel name: ${JSON.stringify(s)}`);
  return { kind: 'twitch', channel: s.toLowerCase() };
}

export interface ResolveOptions {
  gqlUrl?: string;
  /** Base (".../api/v2/channel/hls/<channel>.m3u8" is appended) or a template containing "{channel}". */
  usherUrl?: string;
  clientId?: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
  quality?: string;
  /** Injected for deterministic `p` values in tests. */
  random?: () => number;
  signal?: AbortSignal;
}

export type ResolveResult =
  | {
      status: 'live';
      source: Source;
      /** The master playlist URL (for a media-playlist source, the playlist itself). */
      masterUrl: string;
      variant: Variant;
      variants: Variant[];
      match: 'exact' | 'lower' | 'higher';
    }
  | { status: 'offline'; source: Source };

export function usherPlaylistUrl(usherUrl: string, channel: string, token: { value: string; signature: string }, random: () => number): string {
  const base = usherUrl.includes('{channel}')
    ? usherUrl.replace('{channel}', encodeURIComponent(channel))
    : `${usherUrl.replace(/\/+$/, '')}/api/v2/channel/hls/${encodeURIComponent(channel)}.m3u8`;
  const u = new URL(base);
  const q = u.searchParams;
  q.set('platform', 'web');
  q.set('allow_source', 'true');
  q.set('allow_audio_only', 'true');
  q.set('playlist_include_framerate', 'true');
  q.set('supported_codecs', 'h264');
  q.set('sig', token.signature);
  q.set('token', token.value);
  // Random cache-buster, as the web player sends.
  q.set('p', String(Math.floor(random() * 1_000_000)));
  return u.toString();
}

export function playbackAccessTokenBody(channel: string): string {
  return JSON.stringify({
    operationName: 'PlaybackAccessToken',
    extensions: { persistedQuery: { version: 1, sha256Hash: PLAYBACK_ACCESS_TOKEN_HASH } },
    variables: { isLive: true, login: channel, isVod: false, vodID: '', playerType: 'embed', platform: 'site' },
  });
}

interface FetchedText {
  status: number;
  text: string;
}

/** One request with its own deadline covering headers *and* body. */
async function timedFetch(
  f: typeof fetch,
  url: string,
  init: RequestInit,
  timeoutMs: number,
  what: string,
  outer?: AbortSignal,
): Promise<FetchedText> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const onOuter = () => ac.abort();
  // An already-aborted signal never fires 'abort' again, so honour it up front.
  if (outer?.aborted) ac.abort();
  else outer?.addEventListener('abort', onOuter, { once: true });
  try {
    const res = await f(url, { ...init, signal: ac.signal });
    const text = await res.text();
    return { status: res.status, text };
  } catch (err) {
    if (ac.signal.aborted && !outer?.aborted) throw new ResolveError('timeout', `${what} timed out after ${timeoutMs} ms`, undefined, { cause: err });
    if (outer?.aborted) throw new ResolveError('network', `${what} aborted`, undefined, { cause: err });
    throw new ResolveError('network', `${what} failed: ${(err as Error).message}`, undefined, { cause: err });
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', onOuter);
  }
}

export async function resolveSource(input: string | Source, opts: ResolveOptions = {}): Promise<ResolveResult> {
  const source = typeof input === 'string' ? parseSource(input) : input;
  if (source.kind === 'twitch') return resolveTwitch(source.channel, opts);
  const f = opts.fetch ?? fetch;
  const timeoutMs = opts.timeoutMs ?? 5000;
  let text: string;
  let url: string;
  if (source.kind === 'url') {
    url = source.url;
    const r = await timedFetch(f, url, { method: 'GET' }, timeoutMs, 'playlist', opts.signal);
    if (r.status === 404) return { status: 'offline', source };
    if (r.status !== 200) throw new ResolveError('http', `playlist returned HTTP ${r.status}`, r.status);
    text = r.text;
  } else {
    url = pathToFileURL(source.path).toString();
    try {
      text = await readFile(source.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { status: 'offline', source };
      throw new ResolveError('network', `cannot read ${source.path}: ${(err as Error).message}`, undefined, { cause: err });
    }
  }
  return fromPlaylist(source, url, text, opts.quality ?? 'best');
}

function fromPlaylist(source: Source, url: string, text: string, quality: string): ResolveResult {
  let variants: Variant[];
  try {
    if (isMasterPlaylist(text)) variants = parseMasterPlaylist(text, url);
    else {
      // A media playlist given directly: it is its own single variant.
      if (!text.trimStart().startsWith('#EXTM3U')) throw new PlaylistError('playlist does not start with #EXTM3U', 1, text.split('\n')[0] ?? '');
      variants = [{ name: 'live', url, bandwidth: 0, source: true, audioOnly: false }];
      return { status: 'live', source, masterUrl: url, variant: variants[0], variants, match: 'exact' };
    }
  } catch (err) {
    if (err instanceof PlaylistError) throw new ResolveError('bad-response', `bad master playlist: ${err.message}`, undefined, { cause: err });
    throw err;
  }
  const pick = pickVariant(variants, quality);
  if (!pick) throw new ResolveError('no-variant', `no variant for quality ${JSON.stringify(quality)} (have ${variants.map((v) => v.name).join(', ')})`);
  return { status: 'live', source, masterUrl: url, variant: pick.variant, variants, match: pick.match };
}

export async function resolveTwitch(channelInput: string, opts: ResolveOptions = {}): Promise<ResolveResult> {
  if (!isValidChannel(channelInput)) throw new ResolveError('bad-source', `invalid Twitch channel name: ${JSON.stringify(channelInput)}`);
  const channel = channelInput.toLowerCase();
  const source: Source = { kind: 'twitch', channel };
  const f = opts.fetch ?? fetch;
  const timeoutMs = opts.timeoutMs ?? 5000;

  const tok = await timedFetch(
    f,
    opts.gqlUrl ?? DEFAULT_GQL_URL,
    {
      method: 'POST',
      headers: { 'Client-ID': opts.clientId ?? TWITCH_WEB_CLIENT_ID, 'Content-Type': 'text/plain;charset=UTF-8' },
      body: playbackAccessTokenBody(channel),
    },
    timeoutMs,
    'access token request',
    opts.signal,
  );
  if (tok.status !== 200) throw new ResolveError('http', `access token request returned HTTP ${tok.status}`, tok.status);
  let token: { value: string; signature: string } | null;
  try {
    const body = JSON.parse(tok.text) as { data?: { streamPlaybackAccessToken?: { value?: unknown; signature?: unknown } | null } };
    const t = body.data?.streamPlaybackAccessToken;
    if (t === null) token = null;
    else if (t && typeof t.value === 'string' && typeof t.signature === 'string') token = { value: t.value, signature: t.signature };
    else throw new Error('missing data.streamPlaybackAccessToken');
  } catch (err) {
    throw new ResolveError('bad-response', `bad access token response: ${(err as Error).message}`, undefined, { cause: err });
  }
  if (token === null) return { status: 'offline', source };

  const masterUrl = usherPlaylistUrl(opts.usherUrl ?? DEFAULT_USHER_URL, channel, token, opts.random ?? Math.random);
  const pl = await timedFetch(f, masterUrl, { method: 'GET' }, timeoutMs, 'usher playlist', opts.signal);
  if (pl.status === 404) return { status: 'offline', source };
  if (pl.status !== 200) throw new ResolveError('http', `usher playlist returned HTTP ${pl.status}`, pl.status);
  const r = fromPlaylist(source, masterUrl, pl.text, opts.quality ?? 'best');
  return r;
}
