import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  newestSegment,
  parseAttributes,
  parseMasterPlaylist,
  parseMediaPlaylist,
  pickVariant,
  PlaylistError,
  type Variant,
} from '../src/actors/capture/hls-playlist.js';
import { looksLikeMedia, SegmentFetchError } from '../src/actors/capture/segment-fetch.js';
import { fetchSegmentHead } from '../bench/lib/segment-head.js';
import { masterPlaylist, mediaPlaylist, SEGMENT_BYTES, startFakeTwitch, tsBytes, type FakeTwitch } from './helpers/fake-twitch.js';

const BASE = 'https://edge.example/api/v2/channel/hls/chan.m3u8?sig=x';

describe('parseAttributes', () => {
  it('keeps commas inside quoted values and unquotes them', () => {
    expect(parseAttributes('BANDWIDTH=1,CODECS="avc1.4D401F,mp4a.40.2",FRAME-RATE=30.000')).toEqual({
      BANDWIDTH: '1',
      CODECS: 'avc1.4D401F,mp4a.40.2',
      'FRAME-RATE': '30.000',
    });
  });
  it('rejects garbage', () => {
    expect(() => parseAttributes('BANDWIDTH=1,,lower=2', 7, 'line')).toThrow(PlaylistError);
  });
});

describe('parseMasterPlaylist', () => {
  const variants = parseMasterPlaylist(masterPlaylist('chan'), BASE);

  it('reads every variant with names, geometry, frame rate and codecs', () => {
    expect(variants.map((v) => v.name)).toEqual(['1080p60', '720p60', '480p', '160p', 'audio_only']);
    const v720 = variants[1];
    expect(v720).toMatchObject({
      bandwidth: 3_000_000,
      resolution: { width: 1280, height: 720 },
      frameRate: 60,
      codecs: 'avc1.4D401F,mp4a.40.2',
      source: false,
      audioOnly: false,
    });
    // Twitch's source rendition is named via EXT-X-MEDIA (GROUP-ID chunked) with a "(source)" suffix.
    expect(variants[0]).toMatchObject({ name: '1080p60', source: true });
    expect(variants[4]).toMatchObject({ name: 'audio_only', audioOnly: true, resolution: undefined });
  });

  it('resolves absolute-path and dot-dot relative URIs against the playlist URL', () => {
    expect(variants[0].url).toBe('https://edge.example/media/chan/chunked.m3u8');
    expect(variants[1].url).toBe('https://edge.example/media/chan/720p60.m3u8');
    const rel = parseMasterPlaylist('#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=5,RESOLUTION=640x360\nlow/index.m3u8\n', 'http://h/a/b/master.m3u8');
    expect(rel[0].url).toBe('http://h/a/b/low/index.m3u8');
    const abs = parseMasterPlaylist('#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=5\nhttps://other.cdn/x.m3u8\n', 'http://h/a/master.m3u8');
    expect(abs[0].url).toBe('https://other.cdn/x.m3u8');
  });

  it('derives names from geometry when there is no IVS-NAME or media NAME', () => {
    const v = parseMasterPlaylist(
      [
        '#EXTM3U',
        '#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720,FRAME-RATE=59.940',
        'a.m3u8',
        '#EXT-X-STREAM-INF:BANDWIDTH=1000000,RESOLUTION=852x480,FRAME-RATE=30.000',
        'b.m3u8',
        '#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x360',
        'c.m3u8',
      ].join('\n'),
      'http://h/m.m3u8',
    );
    expect(v.map((x) => x.name)).toEqual(['720p60', '480p', '360p']);
  });

  it('names the failing line for malformed input', () => {
    const bad = (text: string, line: number) => {
      try {
        parseMasterPlaylist(text, BASE);
      } catch (err) {
        expect(err).toBeInstanceOf(PlaylistError);
        expect((err as PlaylistError).line).toBe(line);
        expect((err as Error).message).toContain(`line ${line}`);
        return;
      }
      throw new Error('expected a PlaylistError');
    };
    bad('not a playlist\n', 1);
    bad('#EXTM3U\n#EXT-X-STREAM-INF:RESOLUTION=1x1\na.m3u8\n', 2); // no BANDWIDTH
    bad('#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=wide\na.m3u8\n', 2);
    bad('#EXTM3U\n\n#EXT-X-STREAM-INF:BANDWIDTH=abc\na.m3u8\n', 3);
    bad('#EXTM3U\norphan.m3u8\n', 2);
    bad('#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n', 2); // dangling STREAM-INF
  });
});

describe('pickVariant', () => {
  const all = parseMasterPlaylist(masterPlaylist('chan'), BASE);
  const name = (vs: Variant[], q: string) => pickVariant(vs, q)?.variant.name;

  it('best / worst skip audio_only', () => {
    expect(pickVariant(all, 'best')).toMatchObject({ variant: { name: '1080p60' }, match: 'exact' });
    expect(name(all, 'worst')).toBe('160p');
    expect(name(all, 'BEST')).toBe('1080p60');
  });
  it('audio_only only when asked, and null when absent', () => {
    expect(name(all, 'audio_only')).toBe('audio_only');
    expect(pickVariant(all.filter((v) => !v.audioOnly), 'audio_only')).toBeNull();
  });
  it('exact names match case-insensitively', () => {
    expect(pickVariant(all, '720P60')).toMatchObject({ variant: { name: '720p60' }, match: 'exact' });
    expect(name(all, '480p')).toBe('480p');
  });
  it('falls back to the nearest lower variant (height, then fps)', () => {
    // 720p (30 fps) is lower than 720p60, so the nearest lower is 480p.
    expect(pickVariant(all, '720p')).toMatchObject({ variant: { name: '480p' }, match: 'lower' });
    expect(pickVariant(all, '900p60')).toMatchObject({ variant: { name: '720p60' }, match: 'lower' });
    expect(name(all, '480p60')).toBe('480p');
    expect(name(all, '360p')).toBe('160p');
    expect(name(all, '4320p60')).toBe('1080p60');
  });
  it('takes the smallest video variant when nothing is lower', () => {
    expect(pickVariant(all, '144p')).toMatchObject({ variant: { name: '160p' }, match: 'higher' });
  });
  it('returns null for unknown names and for audio-only streams asked for video', () => {
    expect(pickVariant(all, 'potato')).toBeNull();
    expect(pickVariant(all.filter((v) => v.audioOnly), 'best')).toBeNull();
  });
});

const LIVE = [
  '#EXTM3U',
  '#EXT-X-TARGETDURATION:2',
  '#EXT-X-MEDIA-SEQUENCE:500',
  '#EXT-X-DATERANGE:ID="stitched-ad-1",CLASS="twitch-stitched-ad",START-DATE="2026-01-01T00:00:02.000Z",DURATION=4.000',
  '#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000Z',
  '#EXTINF:2.000,live',
  'seg500.ts',
  '#EXTINF:2.000,live', // pdt carried forward: 00:00:02 -> inside the ad range
  'seg501.ts',
  '#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:04.000Z',
  '#EXTINF:2.000,live',
  'seg502.ts',
  '#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:06.000Z',
  '#EXTINF:2.002,live',
  'https://cdn.example/abs/seg503.ts',
  '#EXT-X-TWITCH-PREFETCH:seg504.ts',
  '#EXT-X-TWITCH-PREFETCH:seg505.ts',
  '',
].join('\n');

describe('parseMediaPlaylist', () => {
  const pl = parseMediaPlaylist(LIVE, 'https://edge.example/v1/playlist/abc.m3u8');

  it('numbers segments from EXT-X-MEDIA-SEQUENCE and resolves URIs', () => {
    expect(pl.mediaSequence).toBe(500);
    expect(pl.targetDuration).toBe(2);
    expect(pl.endList).toBe(false);
    expect(pl.segments.map((s) => s.sequence)).toEqual([500, 501, 502, 503, 504, 505]);
    expect(pl.segments[0].url).toBe('https://edge.example/v1/playlist/seg500.ts');
    expect(pl.segments[3].url).toBe('https://cdn.example/abs/seg503.ts');
    expect(pl.segments[3].duration).toBeCloseTo(2.002);
  });

  it('marks segments inside a stitched-ad DATERANGE as ads, using carried-forward dates', () => {
    expect(pl.segments.map((s) => s.isAd)).toEqual([false, true, true, false, false, false]);
    expect(pl.segments[1].programDateTime).toBe(Date.parse('2026-01-01T00:00:02.000Z'));
  });

  it('marks prefetch lines and gives them the previous duration', () => {
    expect(pl.segments.filter((s) => s.isPrefetch).map((s) => s.url)).toEqual([
      'https://edge.example/v1/playlist/seg504.ts',
      'https://edge.example/v1/playlist/seg505.ts',
    ]);
    expect(pl.segments[4].duration).toBeCloseTo(2.002);
  });

  it('newestSegment skips prefetch unless asked and ads unless told not to', () => {
    expect(newestSegment(pl)?.sequence).toBe(503);
    expect(newestSegment(pl, { usePrefetch: true })?.sequence).toBe(505);
    const adTail = parseMediaPlaylist(LIVE.replace('DURATION=4.000', 'DURATION=100'), 'http://h/p.m3u8');
    // Everything from 501 on is an ad, including prefetch.
    expect(adTail.segments.map((s) => s.isAd)).toEqual([false, true, true, true, true, true]);
    expect(newestSegment(adTail, { usePrefetch: true })?.sequence).toBe(500);
    expect(newestSegment(adTail, { skipAds: false })?.sequence).toBe(503);
    expect(newestSegment(parseMediaPlaylist('#EXTM3U\n', 'http://h/'))).toBeUndefined();
  });

  it('detects ads by ID prefix alone, by CLASS alone, and by an Amazon EXTINF title', () => {
    const mk = (dr: string) =>
      parseMediaPlaylist(
        `#EXTM3U\n${dr}\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00Z\n#EXTINF:2,\na.ts\n#EXTINF:2,\nb.ts\n`,
        'http://h/p.m3u8',
      ).segments.map((s) => s.isAd);
    expect(mk('#EXT-X-DATERANGE:ID="stitched-ad-9",START-DATE="2026-01-01T00:00:00Z",DURATION=2')).toEqual([true, false]);
    expect(mk('#EXT-X-DATERANGE:ID="x",CLASS="twitch-stitched-ad",START-DATE="2026-01-01T00:00:02Z",END-DATE="2026-01-01T00:00:04Z"')).toEqual([false, true]);
    // Open-ended range covers everything after its start.
    expect(mk('#EXT-X-DATERANGE:ID="stitched-ad-o",START-DATE="2026-01-01T00:00:01Z"')).toEqual([false, true]);
    // A non-ad daterange (e.g. Twitch's session marker) is not an ad.
    expect(mk('#EXT-X-DATERANGE:ID="source-123",CLASS="twitch-session",START-DATE="2026-01-01T00:00:00Z",DURATION=10')).toEqual([false, false]);
    const amazon = parseMediaPlaylist('#EXTM3U\n#EXTINF:2,Amazon|123\na.ts\n#EXTINF:2,live\nb.ts\n', 'http://h/');
    expect(amazon.segments.map((s) => s.isAd)).toEqual([true, false]);
    expect(amazon.segments[0].title).toBe('Amazon|123');
  });

  it('carries EXT-X-MAP to following segments and reads ENDLIST (fMP4 VOD-style)', () => {
    const fm = parseMediaPlaylist(
      '#EXTM3U\n#EXT-X-VERSION:7\n#EXTINF:2,\nnomap.m4s\n#EXT-X-MAP:URI="init-0.mp4",BYTERANGE="720@0"\n#EXTINF:2,\na.m4s\n#EXTINF:2,\nb.m4s\n#EXT-X-ENDLIST\n',
      'https://h/v/index.m3u8',
    );
    expect(fm.endList).toBe(true);
    expect(fm.segments[0].map).toBeUndefined();
    expect(fm.segments[1].map).toEqual({ url: 'https://h/v/init-0.mp4', byteRange: { length: 720, offset: 0 } });
    expect(fm.segments[2].map?.url).toBe('https://h/v/init-0.mp4');
    expect(fm.mediaSequence).toBe(0);
    expect(fm.segments.map((s) => s.sequence)).toEqual([0, 1, 2]);
  });

  it('EXT-X-BYTERANGE: the range belongs to the next URI; without @offset it follows the previous range of that URI', () => {
    const pl = parseMediaPlaylist([
      '#EXTM3U', '#EXT-X-VERSION:4',
      '#EXTINF:1,', '#EXT-X-BYTERANGE:1000@0', 'all.ts',
      '#EXTINF:1,', '#EXT-X-BYTERANGE:500', 'all.ts',
      '#EXTINF:1,', 'other.ts',
      '#EXTINF:1,', '#EXT-X-BYTERANGE:300', 'all.ts',
      '#EXT-X-TWITCH-PREFETCH:next.ts', '',
    ].join('\n'), 'http://h/v/');
    expect(pl.segments.map((x) => [x.url, x.byteRange])).toEqual([
      ['http://h/v/all.ts', { length: 1000, offset: 0 }],
      ['http://h/v/all.ts', { length: 500, offset: 1000 }],
      ['http://h/v/other.ts', undefined],
      ['http://h/v/all.ts', { length: 300, offset: 1500 }],
      ['http://h/v/next.ts', undefined],
    ]);
    expect(() => parseMediaPlaylist('#EXTM3U\n#EXTINF:1,\n#EXT-X-BYTERANGE:500\na.ts\n', 'http://h/')).toThrow(/EXT-X-BYTERANGE without an offset, and no earlier range of this URI/);
    expect(() => parseMediaPlaylist('#EXTM3U\n#EXTINF:1,\n#EXT-X-BYTERANGE:5x0\na.ts\n', 'http://h/')).toThrow(/EXT-X-BYTERANGE must be <length>\[@<offset>\]/);
    // EXT-X-MAP's BYTERANGE goes through the same parser; without an offset it starts at 0.
    expect(parseMediaPlaylist('#EXTM3U\n#EXT-X-MAP:URI="i.mp4",BYTERANGE="828"\n#EXTINF:1,\na.m4s\n', 'http://h/').segments[0].map)
      .toEqual({ url: 'http://h/i.mp4', byteRange: { length: 828, offset: 0 } });
    expect(() => parseMediaPlaylist('#EXTM3U\n#EXT-X-MAP:URI="i.mp4",BYTERANGE="ten@3"\n', 'http://h/')).toThrow(/EXT-X-MAP BYTERANGE must be <length>\[@<offset>\]/);
  });

  it('accepts CRLF line endings and a BOM, ignores unknown tags', () => {
    const pl2 = parseMediaPlaylist('\uFEFF#EXTM3U\r\n#EXT-X-TWITCH-ELAPSED-SECS:1.0\r\n#EXTINF:2,\r\na.ts\r\n', 'http://h/');
    expect(pl2.segments).toHaveLength(1);
  });

  it('throws PlaylistError naming the line for malformed media playlists', () => {
    const lineOf = (text: string) => {
      try {
        parseMediaPlaylist(text, 'http://h/');
      } catch (err) {
        expect(err).toBeInstanceOf(PlaylistError);
        return (err as PlaylistError).line;
      }
      return -1;
    };
    expect(lineOf('#EXT-X-VERSION:3\n')).toBe(1);
    expect(lineOf('#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:-4\n')).toBe(2);
    expect(lineOf('#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:abc\n')).toBe(2);
    expect(lineOf('#EXTM3U\n#EXTINF:two,\na.ts\n')).toBe(2);
    expect(lineOf('#EXTM3U\n#EXTINF:2,\n#EXTINF:2,\na.ts\n')).toBe(2);
    expect(lineOf('#EXTM3U\na.ts\n')).toBe(2);
    expect(lineOf('#EXTM3U\n#EXTINF:2,\na.ts\n#EXTINF:2,\n')).toBe(4);
    expect(lineOf('#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:yesterday\n')).toBe(2);
    expect(lineOf('#EXTM3U\n#EXT-X-DATERANGE:CLASS="twitch-stitched-ad"\n')).toBe(2);
    expect(lineOf('#EXTM3U\n#EXT-X-MAP:BYTERANGE="1@0"\n')).toBe(2);
    expect(lineOf('#EXTM3U\n#EXT-X-TWITCH-PREFETCH:\n')).toBe(2);
    expect(lineOf('#EXTM3U\n#EXTINF:2,\na.ts\n#EXT-X-MEDIA-SEQUENCE:5\n')).toBe(4);
  });

  it('follows the fake server live window as it rotates', () => {
    const ch = { live: true, sequence: 10, adSequences: new Set([13]) };
    const a = parseMediaPlaylist(mediaPlaylist(ch), 'http://h/media/c/480p30.m3u8');
    expect(newestSegment(a)?.sequence).toBe(12); // 13 is an ad
    ch.sequence = 12;
    const b = parseMediaPlaylist(mediaPlaylist(ch), 'http://h/media/c/480p30.m3u8');
    expect(b.segments.map((s) => [s.sequence, s.isAd, s.isPrefetch])).toEqual([
      [12, false, false],
      [13, true, false],
      [14, false, false],
      [15, false, false],
      [16, false, true],
      [17, false, true],
    ]);
    expect(newestSegment(b)?.url).toBe('http://h/seg/15.ts');
  });
});

describe('segment fetch', () => {
  let fake: FakeTwitch;
  beforeAll(async () => {
    fake = await startFakeTwitch({ chan: true });
  });
  afterAll(async () => {
    await fake.close();
  });

  it('reads only the first maxBytes of a large segment and reports truncation', async () => {
    const r = await fetchSegmentHead(`${fake.url}/seg/7.ts`, { timeoutMs: 2000 });
    expect(r.status).toBe(200);
    expect(r.truncated).toBe(true);
    expect(r.bytes.length).toBe(300 * 1024);
    expect(Buffer.from(r.bytes).equals(tsBytes(SEGMENT_BYTES, 7).subarray(0, 300 * 1024))).toBe(true);
    expect(r.ms).toBeGreaterThanOrEqual(0);
    const small = await fetchSegmentHead(`${fake.url}/seg/7.ts`, { maxBytes: 1000 });
    expect(small.bytes.length).toBe(1000);
  });

  it('returns the whole segment when it is under the limit', async () => {
    const r = await fetchSegmentHead(`${fake.url}/seg/small.ts`);
    expect(r).toMatchObject({ truncated: false, status: 200 });
    expect(r.bytes.length).toBe(1880);
  });

  it('maps 404 and 5xx to http errors with the status', async () => {
    await expect(fetchSegmentHead(`${fake.url}/seg/nope`)).rejects.toMatchObject({ name: 'SegmentFetchError', code: 'http', status: 404 });
    fake.statusOverrides.set('/seg/1.ts', 503);
    await expect(fetchSegmentHead(`${fake.url}/seg/1.ts`)).rejects.toMatchObject({ code: 'http', status: 503 });
    fake.statusOverrides.delete('/seg/1.ts');
  });

  it('times out when headers never come, and when the body stalls', async () => {
    fake.delays.set('/seg/2.ts', 2000);
    const t0 = Date.now();
    await expect(fetchSegmentHead(`${fake.url}/seg/2.ts`, { timeoutMs: 150 })).rejects.toMatchObject({ code: 'timeout' });
    expect(Date.now() - t0).toBeLessThan(1500);
    fake.delays.delete('/seg/2.ts');
    await expect(fetchSegmentHead(`${fake.url}/seg/slow.ts`, { timeoutMs: 150 })).rejects.toMatchObject({ code: 'timeout' });
  });

  it('reports a connection dropped mid-body as a network error, not a timeout', async () => {
    const err = await fetchSegmentHead(`${fake.url}/seg/truncated.ts`, { timeoutMs: 2000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SegmentFetchError);
    expect((err as SegmentFetchError).code).toBe('network');
    // ...but if the limit is reached before the drop, the head is still usable.
    const head = await fetchSegmentHead(`${fake.url}/seg/truncated.ts`, { maxBytes: 500, timeoutMs: 2000 });
    expect(head).toMatchObject({ truncated: true });
    expect(head.bytes.length).toBe(500);
  });

  it('rejects garbage and empty bodies, unless validation is off', async () => {
    await expect(fetchSegmentHead(`${fake.url}/seg/garbage.ts`)).rejects.toMatchObject({ code: 'garbage' });
    await expect(fetchSegmentHead(`${fake.url}/seg/empty.ts`)).rejects.toMatchObject({ code: 'empty' });
    const raw = await fetchSegmentHead(`${fake.url}/seg/garbage.ts`, { validate: false });
    expect(raw.bytes.length).toBeGreaterThan(0);
    expect((await fetchSegmentHead(`${fake.url}/init.mp4`)).bytes.length).toBe(16);
  });

  it('network errors for refused connections', async () => {
    await expect(fetchSegmentHead('http://127.0.0.1:1/seg.ts', { timeoutMs: 1000 })).rejects.toMatchObject({ code: 'network' });
  });

  it('reads file:// segments with the same limit and errors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringcast-seg-'));
    const p = join(dir, 'a.ts');
    writeFileSync(p, tsBytes(400 * 1024));
    const r = await fetchSegmentHead(pathToFileURL(p).toString());
    expect(r).toMatchObject({ truncated: true, status: 200 });
    expect(r.bytes.length).toBe(300 * 1024);
    await expect(fetchSegmentHead(pathToFileURL(join(dir, 'missing.ts')).toString())).rejects.toMatchObject({ code: 'http', status: 404 });
    writeFileSync(join(dir, 'g.ts'), 'hello world, definitely not video');
    await expect(fetchSegmentHead(pathToFileURL(join(dir, 'g.ts')).toString())).rejects.toMatchObject({ code: 'garbage' });
  });

  it('looksLikeMedia sniffs TS sync bytes, ID3 and fMP4 boxes', () => {
    expect(looksLikeMedia(tsBytes(400))).toBe(true);
    const brokenSync = tsBytes(400);
    brokenSync[188] = 0;
    expect(looksLikeMedia(brokenSync)).toBe(false);
    expect(looksLikeMedia(Buffer.from('ID3\x04\x00'))).toBe(true);
    expect(looksLikeMedia(Buffer.from('\0\0\0\x18stypmsdh'))).toBe(true);
    // A CMAF segment may open with its index or a producer reference time.
    expect(looksLikeMedia(Buffer.from('\0\0\0\x2csidx\0\0\0\0'))).toBe(true);
    expect(looksLikeMedia(Buffer.from('\0\0\0\x20prft\0\0\0\0'))).toBe(true);
    expect(looksLikeMedia(Buffer.from('\0\0\0\x2csidr\0\0\0\0'))).toBe(false);
    // Text beginning with "G" (0x47) must not pass as a TS packet.
    expect(looksLikeMedia(Buffer.from('GET / HTTP/1.1'))).toBe(false);
    expect(looksLikeMedia(Buffer.from('G'.repeat(100)))).toBe(false);
  });
});
