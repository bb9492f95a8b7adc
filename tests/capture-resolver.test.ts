import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { newestSegment, parseMediaPlaylist } from '../src/actors/capture/hls-playlist.js';
import { fetchSegmentHead } from '../bench/lib/segment-head.js';
import {
  isValidChannel,
  parseSource,
  PLAYBACK_ACCESS_TOKEN_HASH,
  resolveSource,
  resolveTwitch,
  ResolveError,
  TWITCH_WEB_CLIENT_ID,
  usherPlaylistUrl,
  type ResolveOptions,
} from '../src/actors/capture/twitch-resolver.js';
import { masterPlaylist, startFakeTwitch, type FakeTwitch } from './helpers/fake-twitch.js';

let fake: FakeTwitch;
let opts: ResolveOptions;
beforeAll(async () => {
  fake = await startFakeTwitch({ live_one: true, offline_one: false });
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  fake.requests.length = 0;
  fake.statusOverrides.clear();
  fake.delays.clear();
  fake.bodies.clear();
  opts = { gqlUrl: fake.gqlUrl, usherUrl: fake.usherUrl, timeoutMs: 1000, quality: 'best' };
});

describe('channel names and sources', () => {
  it('validates channel names (3-25 of [a-z0-9_], any case)', () => {
    for (const ok of ['abc', 'Some_Streamer_01', 'a'.repeat(25)]) expect(isValidChannel(ok)).toBe(true);
    for (const bad of ['ab', 'a'.repeat(26), 'has-dash', 'spa ce', '', 'ümlaut']) expect(isValidChannel(bad)).toBe(false);
  });

  it('classifies URLs, files and channels', () => {
    expect(parseSource('https://cdn.example/live/index.m3u8')).toEqual({ kind: 'url', url: 'https://cdn.example/live/index.m3u8' });
    expect(parseSource('HTTP://h:8080/a.m3u8').kind).toBe('url');
    expect(parseSource('/srv/hls/master.m3u8')).toEqual({ kind: 'file', path: '/srv/hls/master.m3u8' });
    expect(parseSource('local.m3u8')).toEqual({ kind: 'file', path: 'local.m3u8' });
    expect(parseSource('file:///tmp/x.m3u8')).toEqual({ kind: 'file', path: '/tmp/x.m3u8' });
    expect(parseSource('file:///tmp/with%20space.m3u8')).toEqual({ kind: 'file', path: '/tmp/with space.m3u8' });
    expect(parseSource('  Dota2TI ')).toEqual({ kind: 'twitch', channel: 'dota2ti' });
    // Pasted channel page URLs are channels, not HLS URLs.
    expect(parseSource('https://www.twitch.tv/Dota2TI/')).toEqual({ kind: 'twitch', channel: 'dota2ti' });
    expect(parseSource('https://twitch.tv/abc')).toEqual({ kind: 'twitch', channel: 'abc' });
    expect(() => parseSource('https://www.twitch.tv/videos/123')).toThrow(/not a Twitch channel URL/);
    expect(() => parseSource('no!')).toThrow(ResolveError);
    expect(() => parseSource('no!')).toThrow(/invalid Twitch channel/);
  });

  it('rejects a bad channel before any request', async () => {
    await expect(resolveTwitch('x', opts)).rejects.toMatchObject({ code: 'bad-source' });
    await expect(resolveTwitch('bad/name', opts)).rejects.toBeInstanceOf(ResolveError);
    expect(fake.requests).toHaveLength(0);
  });
});

describe('resolveTwitch', () => {
  it('posts the PlaybackAccessToken persisted query exactly as streamlink does', async () => {
    await resolveTwitch('Live_One', opts);
    const gql = fake.requests.find((r) => r.path === '/gql');
    expect(gql?.method).toBe('POST');
    expect(gql?.headers['client-id']).toBe(TWITCH_WEB_CLIENT_ID);
    expect(JSON.parse(gql!.body)).toEqual({
      operationName: 'PlaybackAccessToken',
      extensions: { persistedQuery: { version: 1, sha256Hash: PLAYBACK_ACCESS_TOKEN_HASH } },
      variables: { isLive: true, login: 'live_one', isVod: false, vodID: '', playerType: 'embed', platform: 'site' },
    });
    expect(PLAYBACK_ACCESS_TOKEN_HASH).toBe('ed230aa1e33e07eebb8928504583da78a5173989fadfb1ac94be06a04f3cdbe9');
  });

  it('uses a custom client id when given', async () => {
    await resolveTwitch('live_one', { ...opts, clientId: 'abc123' });
    expect(fake.requests[0].headers['client-id']).toBe('abc123');
  });

  it('gets the usher playlist with sig, token, p and the listed flags, then picks a variant', async () => {
    const r = await resolveTwitch('live_one', { ...opts, quality: '720p60', random: () => 0.123456 });
    const usher = fake.requests.find((q) => q.path.startsWith('/api/v2/channel/hls/'));
    expect(usher?.path).toBe('/api/v2/channel/hls/live_one.m3u8');
    const q = Object.fromEntries(usher!.query);
    expect(q).toEqual({
      platform: 'web',
      allow_source: 'true',
      allow_audio_only: 'true',
      playlist_include_framerate: 'true',
      supported_codecs: 'h264',
      sig: 'sig-live_one',
      token: JSON.stringify({ channel: 'live_one', expires: 1 }),
      p: '123456',
    });
    expect(r.status).toBe('live');
    if (r.status !== 'live') return;
    expect(r.source).toEqual({ kind: 'twitch', channel: 'live_one' });
    expect(r.masterUrl.startsWith(`${fake.url}/api/v2/channel/hls/live_one.m3u8?`)).toBe(true);
    expect(r.variant.name).toBe('720p60');
    expect(r.match).toBe('exact');
    // Relative "../../../../media/..." resolved against the usher URL.
    expect(r.variant.url).toBe(`${fake.url}/media/live_one/720p60.m3u8`);
    expect(r.variants.map((v) => v.name)).toEqual(['1080p60', '720p60', '480p', '160p', 'audio_only']);
  });

  it('p is random by default', async () => {
    await resolveTwitch('live_one', opts);
    await resolveTwitch('live_one', opts);
    const ps = fake.requests.filter((r) => r.path.endsWith('.m3u8')).map((r) => r.query.get('p'));
    expect(ps).toHaveLength(2);
    for (const p of ps) expect(p).toMatch(/^\d+$/);
  });

  it('falls back to the nearest lower quality', async () => {
    const r = await resolveTwitch('live_one', { ...opts, quality: '720p' });
    expect(r).toMatchObject({ status: 'live', variant: { name: '480p' }, match: 'lower' });
  });

  it('throws no-variant for an unknown quality', async () => {
    await expect(resolveTwitch('live_one', { ...opts, quality: 'ultra' })).rejects.toMatchObject({ code: 'no-variant' });
  });

  it('null token means offline without touching usher', async () => {
    const r = await resolveTwitch('offline_one', opts);
    expect(r).toEqual({ status: 'offline', source: { kind: 'twitch', channel: 'offline_one' } });
    expect(fake.requests.map((q) => q.path)).toEqual(['/gql']);
  });

  it('usher 404 means offline', async () => {
    fake.statusOverrides.set('/api/v2/channel/hls/live_one.m3u8', 404);
    expect((await resolveTwitch('live_one', opts)).status).toBe('offline');
  });

  it('follows a channel going offline and coming back', async () => {
    fake.setLive('flappy', true);
    expect((await resolveTwitch('flappy', opts)).status).toBe('live');
    fake.setLive('flappy', false);
    expect((await resolveTwitch('flappy', opts)).status).toBe('offline');
    fake.setLive('flappy', true);
    const back = await resolveTwitch('flappy', { ...opts, quality: '480p' });
    expect(back).toMatchObject({ status: 'live', variant: { url: `${fake.url}/media/flappy/480p30.m3u8` } });
  });

  it('bad statuses become ResolveError carrying the status', async () => {
    fake.statusOverrides.set('/gql', 500);
    await expect(resolveTwitch('live_one', opts)).rejects.toMatchObject({ name: 'ResolveError', code: 'http', status: 500 });
    fake.statusOverrides.clear();
    fake.statusOverrides.set('/api/v2/channel/hls/live_one.m3u8', 403);
    await expect(resolveTwitch('live_one', opts)).rejects.toMatchObject({ code: 'http', status: 403 });
  });

  it('garbage token responses and master playlists become bad-response', async () => {
    fake.bodies.set('/gql', 'not json');
    await expect(resolveTwitch('live_one', opts)).rejects.toMatchObject({ code: 'bad-response' });
    fake.bodies.set('/gql', JSON.stringify({ data: {} }));
    await expect(resolveTwitch('live_one', opts)).rejects.toMatchObject({ code: 'bad-response' });
    fake.bodies.set('/gql', JSON.stringify({ data: { streamPlaybackAccessToken: { value: 1 } } }));
    await expect(resolveTwitch('live_one', opts)).rejects.toMatchObject({ code: 'bad-response' });
    fake.bodies.clear();
    fake.bodies.set('/api/v2/channel/hls/live_one.m3u8', '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=x\na.m3u8\n');
    const err = await resolveTwitch('live_one', opts).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'bad-response' });
    expect((err as Error).message).toContain('line 2');
  });

  it('times out on a slow gql or usher with a short deadline', async () => {
    fake.delays.set('/gql', 1000);
    const t0 = Date.now();
    await expect(resolveTwitch('live_one', { ...opts, timeoutMs: 100 })).rejects.toMatchObject({ code: 'timeout' });
    expect(Date.now() - t0).toBeLessThan(800);
    fake.delays.clear();
    fake.delays.set('/api/v2/channel/hls/live_one.m3u8', 1000);
    await expect(resolveTwitch('live_one', { ...opts, timeoutMs: 100 })).rejects.toMatchObject({ code: 'timeout' });
  });

  it('an outer abort signal cancels resolution', async () => {
    fake.delays.set('/gql', 1000);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await expect(resolveTwitch('live_one', { ...opts, timeoutMs: 5000, signal: ac.signal })).rejects.toMatchObject({ code: 'network' });
  });

  it('an already-aborted signal fails before any request', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(resolveTwitch('live_one', { ...opts, signal: ac.signal })).rejects.toMatchObject({ code: 'network' });
    await expect(fetchSegmentHead(`${fake.url}/seg/1.ts`, { signal: ac.signal })).rejects.toMatchObject({ code: 'network' });
    expect(fake.requests).toHaveLength(0);
  });

  it('connection refused is a network error', async () => {
    await expect(resolveTwitch('live_one', { ...opts, gqlUrl: 'http://127.0.0.1:1/gql' })).rejects.toMatchObject({ code: 'network' });
  });

  it('accepts an injected fetch', async () => {
    const seen: string[] = [];
    const f: typeof fetch = async (input, init) => {
      seen.push(`${init?.method ?? 'GET'} ${String(input)}`);
      return fetch(input, init);
    };
    await resolveTwitch('live_one', { ...opts, fetch: f });
    expect(seen[0]).toBe(`POST ${fake.gqlUrl}`);
    expect(seen[1]).toMatch(/^GET http:\/\/127\.0\.0\.1:\d+\/api\/v2\/channel\/hls\/live_one\.m3u8\?/);
  });
});

describe('usherPlaylistUrl', () => {
  it('appends the usher path to a base, or fills a {channel} template', () => {
    const tok = { value: '{"a":1}', signature: 's' };
    expect(usherPlaylistUrl('https://usher.ttvnw.net/', 'abc', tok, () => 0)).toMatch(
      /^https:\/\/usher\.ttvnw\.net\/api\/v2\/channel\/hls\/abc\.m3u8\?platform=web&/,
    );
    const t = new URL(usherPlaylistUrl('http://h/custom/{channel}/pl.m3u8', 'abc', tok, () => 0.5));
    expect(t.pathname).toBe('/custom/abc/pl.m3u8');
    expect(t.searchParams.get('token')).toBe('{"a":1}'); // JSON survives URL encoding
    expect(t.searchParams.get('p')).toBe('500000');
  });
});

describe('resolveSource (direct URLs and files)', () => {
  it('a direct master URL skips the token step', async () => {
    fake.bodies.set('/direct/master.m3u8', masterPlaylist('live_one'));
    const r = await resolveSource(`${fake.url}/direct/master.m3u8`, { quality: '480p' });
    expect(r).toMatchObject({ status: 'live', variant: { name: '480p', url: `${fake.url}/media/live_one/480p30.m3u8` } });
    expect(fake.requests.some((q) => q.path === '/gql')).toBe(false);
  });

  it('a direct media playlist URL is its own single variant', async () => {
    const url = `${fake.url}/media/live_one/480p30.m3u8`;
    const r = await resolveSource(url, { quality: '720p60' });
    expect(r).toMatchObject({ status: 'live', masterUrl: url, variant: { url, name: 'live' } });
  });

  it('a direct URL that 404s is offline, other statuses throw, non-playlists are bad-response', async () => {
    expect((await resolveSource(`${fake.url}/direct/none.m3u8`)).status).toBe('offline');
    fake.statusOverrides.set('/direct/err.m3u8', 502);
    await expect(resolveSource(`${fake.url}/direct/err.m3u8`)).rejects.toMatchObject({ code: 'http', status: 502 });
    fake.bodies.set('/direct/html.m3u8', '<html></html>');
    await expect(resolveSource(`${fake.url}/direct/html.m3u8`)).rejects.toMatchObject({ code: 'bad-response' });
  });

  it('a channel name goes through the Twitch path', async () => {
    const r = await resolveSource('LIVE_ONE', opts);
    expect(r.status).toBe('live');
    expect(fake.requests[0].path).toBe('/gql');
  });

  it('a master playlist file resolves variants relative to the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringcast-hls-'));
    const p = join(dir, 'master.m3u8');
    writeFileSync(p, '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=852x480\nv480/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=1280x720\nv720/index.m3u8\n');
    const r = await resolveSource(p, { quality: '480p' });
    expect(r).toMatchObject({ status: 'live', variant: { name: '480p', url: pathToFileURL(join(dir, 'v480/index.m3u8')).toString() } });
    expect((await resolveSource(join(dir, 'missing.m3u8'))).status).toBe('offline');
  });
});

describe('end to end against the fake: resolve, read the live window, fetch the newest segment head', () => {
  it('skips ads and prefetch by default and follows the window as it rotates', async () => {
    fake.setLive('e2e_chan', true);
    const ch = fake.channels.get('e2e_chan')!;
    ch.sequence = 200;
    ch.adSequences = new Set([203]);
    const r = await resolveTwitch('e2e_chan', { ...opts, quality: '480p' });
    if (r.status !== 'live') throw new Error('expected live');
    const read = async () => parseMediaPlaylist(await (await fetch(r.variant.url)).text(), r.variant.url);

    let seg = newestSegment(await read());
    expect(seg?.sequence).toBe(202); // 203 is an ad, 204/205 are prefetch
    fake.advance('e2e_chan', 2);
    const pl = await read();
    expect(pl.mediaSequence).toBe(202);
    seg = newestSegment(pl);
    expect(seg?.sequence).toBe(205);
    expect(newestSegment(pl, { usePrefetch: true })?.sequence).toBe(207);

    const head = await fetchSegmentHead(seg!.url, { maxBytes: 64 * 1024, timeoutMs: 1000 });
    expect(head).toMatchObject({ truncated: true, status: 200 });
    expect(head.bytes.length).toBe(64 * 1024);
    expect(head.bytes[0]).toBe(0x47);

    fake.setLive('e2e_chan', false);
    expect((await fetch(r.variant.url)).status).toBe(404);
    expect((await resolveTwitch('e2e_chan', opts)).status).toBe('offline');
  });
});
