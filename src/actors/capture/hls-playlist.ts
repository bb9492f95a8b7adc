// HLS playlist parsing for Twitch capture: master playlists (which variant to capture)
// and media playlists (their segments, and which one is the newest).
//
// Pure functions only: text in, plain objects out. Network access lives in
// twitch-resolver.ts / segment-fetch.ts so these rules can be tested on strings.
//
// Quality rule (pickVariant), documented here because the scheduler and the
// REST config both rely on it:
//   * "best"  -> the video variant with the greatest (height, frameRate, bandwidth).
//   * "worst" -> the video variant with the smallest (height, frameRate, bandwidth).
//   * "audio_only" -> only the audio variant; never picked for any other request.
//   * "<h>p" / "<h>p<fps>" (e.g. "480p", "720p60"): an exact name match first
//     (case-insensitive; " (source)" suffixes ignored). Otherwise the *nearest lower*
//     variant: the greatest (height, fps) that is <= (h, fps-or-30) compared
//     lexicographically — so "720p" with only "720p60" and "480p" on offer gives
//     "480p", because 720p60 costs more than what was asked. If nothing is lower,
//     the smallest video variant is returned (match "higher"), since capturing a
//     too-large frame beats capturing nothing.
//   * Any other name: exact match or null.

export class PlaylistError extends Error {
  /** 1-based line number of the offending line (0 when the whole document is at fault). */
  readonly line: number;
  readonly text: string;
  constructor(message: string, line: number, text: string) {
    super(line > 0 ? `${message} at line ${line}: ${JSON.stringify(text)}` : message);
    this.name = 'PlaylistError';
    this.line = line;
    this.text = text;
  }
}

export interface Variant {
  name: string;
  url: string;
  bandwidth: number;
  resolution?: { width: number; height: number };
  frameRate?: number;
  codecs?: string;
  /** True for Twitch's source rendition (GROUP-ID "chunked" or NAME "... (source)"). */
  source: boolean;
  audioOnly: boolean;
}

export interface ByteRange {
  length: number;
  offset: number;
}

/** HLS's "<length>[@<offset>]" (EXT-X-BYTERANGE, EXT-X-MAP's BYTERANGE); null when malformed. */
export function parseByteRange(text: string): { length: number; offset?: number } | null {
  const m = /^(\d+)(?:@(\d+))?$/.exec(text.trim());
  return m ? { length: Number(m[1]), ...(m[2] !== undefined ? { offset: Number(m[2]) } : {}) } : null;
}

export interface Segment {
  url: string;
  duration: number;
  sequence: number;
  isAd: boolean;
  isPrefetch: boolean;
  title?: string;
  programDateTime?: number;
  /** EXT-X-MAP: the init section, optionally a byte range of its URI. */
  map?: { url: string; byteRange?: ByteRange };
  /** EXT-X-BYTERANGE: the segment is this part of its URI (single-file renditions). */
  byteRange?: ByteRange;
}

export interface DateRange {
  id: string;
  className?: string;
  start: number;
  /** ms; undefined = open-ended. */
  end?: number;
}

export interface MediaPlaylist {
  targetDuration?: number;
  mediaSequence: number;
  endList: boolean;
  segments: Segment[];
  dateRanges: DateRange[];
}

/** Parse an attribute list (`A=1,B="x,y",C=0x1F`) into a map; quoted values keep commas. */
export function parseAttributes(input: string, lineNo = 0, line = input): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /\s*([A-Z0-9-]+)=("([^"]*)"|[^",]*)\s*(,|$)/gy;
  let pos = 0;
  while (pos < input.length) {
    re.lastIndex = pos;
    const m = re.exec(input);
    if (!m || m[0].length === 0) throw new PlaylistError('malformed attribute list', lineNo, line);
    out[m[1]] = m[3] !== undefined ? m[3] : m[2];
    pos = re.lastIndex;
  }
  return out;
}

function resolveUrl(uri: string, base: string, lineNo: number, line: string): string {
  try {
    return new URL(uri, base).toString();
  } catch {
    throw new PlaylistError('unresolvable URI', lineNo, line);
  }
}

function lines(text: string): string[] {
  const ls = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  if ((ls[0] ?? '').trim() !== '#EXTM3U') throw new PlaylistError('playlist does not start with #EXTM3U', 1, ls[0] ?? '');
  return ls;
}

function num(value: string | undefined, lineNo: number, line: string, what: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new PlaylistError(`bad ${what}`, lineNo, line);
  return n;
}

export function parseMasterPlaylist(text: string, baseUrl: string): Variant[] {
  const ls = lines(text);
  // Twitch's older masters name renditions via EXT-X-MEDIA NAME keyed by the VIDEO group id.
  const mediaNames = new Map<string, string>();
  const variants: Variant[] = [];
  let pending: { attrs: Record<string, string>; lineNo: number; line: string } | undefined;
  for (let i = 1; i < ls.length; i++) {
    const line = ls[i].trim();
    const lineNo = i + 1;
    if (line === '') continue;
    if (line.startsWith('#EXT-X-MEDIA:')) {
      const a = parseAttributes(line.slice('#EXT-X-MEDIA:'.length), lineNo, line);
      if (a['TYPE'] === 'VIDEO' && a['GROUP-ID'] && a['NAME']) mediaNames.set(a['GROUP-ID'], a['NAME']);
    } else if (line.startsWith('#EXT-X-STREAM-INF:')) {
      if (pending) throw new PlaylistError('EXT-X-STREAM-INF without a URI', pending.lineNo, pending.line);
      pending = { attrs: parseAttributes(line.slice('#EXT-X-STREAM-INF:'.length), lineNo, line), lineNo, line };
    } else if (line.startsWith('#EXTINF')) {
      throw new PlaylistError('EXTINF in a master playlist', lineNo, line);
    } else if (line.startsWith('#')) {
      continue; // other tags (EXT-X-TWITCH-INFO, comments) carry nothing we need
    } else {
      if (!pending) throw new PlaylistError('URI without EXT-X-STREAM-INF', lineNo, line);
      variants.push(buildVariant(pending.attrs, resolveUrl(line, baseUrl, lineNo, line), mediaNames, pending.lineNo, pending.line));
      pending = undefined;
    }
  }
  if (pending) throw new PlaylistError('EXT-X-STREAM-INF without a URI', pending.lineNo, pending.line);
  return variants;
}

function buildVariant(
  a: Record<string, string>,
  url: string,
  mediaNames: Map<string, string>,
  lineNo: number,
  line: string,
): Variant {
  const bandwidth = num(a['BANDWIDTH'], lineNo, line, 'BANDWIDTH');
  if (bandwidth === undefined) throw new PlaylistError('EXT-X-STREAM-INF without BANDWIDTH', lineNo, line);
  let resolution: Variant['resolution'];
  if (a['RESOLUTION'] !== undefined) {
    const m = /^(\d+)x(\d+)$/.exec(a['RESOLUTION']);
    if (!m) throw new PlaylistError('bad RESOLUTION', lineNo, line);
    resolution = { width: Number(m[1]), height: Number(m[2]) };
  }
  const frameRate = num(a['FRAME-RATE'], lineNo, line, 'FRAME-RATE');
  const codecs = a['CODECS'];
  const group = a['VIDEO'];
  const rawName = a['IVS-NAME'] ?? (group ? mediaNames.get(group) : undefined) ?? group;
  const source = group === 'chunked' || /\(source\)/i.test(rawName ?? '');
  const audioOnly =
    rawName === 'audio_only' ||
    (!resolution && codecs !== undefined && codecs.split(',').every((c) => c.trim().startsWith('mp4a')));
  let name = rawName?.replace(/\s*\(source\)\s*$/i, '').trim();
  // "chunked" is a group id, not a quality; derive a name from the geometry instead.
  if (!name || name === 'chunked') name = audioOnly ? 'audio_only' : deriveName(resolution, frameRate) ?? `${bandwidth}bps`;
  return { name, url, bandwidth, resolution, frameRate, codecs, source, audioOnly };
}

function deriveName(res: Variant['resolution'], fps: number | undefined): string | undefined {
  if (!res) return undefined;
  // streamlink's convention: the "p60" suffix only above 30 fps.
  return fps !== undefined && fps > 30.5 ? `${res.height}p${Math.round(fps)}` : `${res.height}p`;
}

function rank(v: Variant): [number, number, number] {
  const fps = v.frameRate ?? parseQuality(v.name)?.fps ?? 30;
  const height = v.resolution?.height ?? parseQuality(v.name)?.height ?? 0;
  return [height, fps, v.bandwidth];
}

function cmp(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/** "720p60" -> {height:720,fps:60}; "480p" -> {height:480,fps:30}. */
export function parseQuality(q: string): { height: number; fps: number } | undefined {
  const m = /^(\d+)p(\d+)?$/i.exec(q.trim());
  if (!m) return undefined;
  return { height: Number(m[1]), fps: m[2] ? Number(m[2]) : 30 };
}

export interface VariantPick {
  variant: Variant;
  match: 'exact' | 'lower' | 'higher';
}

export function pickVariant(variants: readonly Variant[], quality: string): VariantPick | null {
  const q = quality.trim().toLowerCase();
  if (q === 'audio_only') {
    const a = variants.find((v) => v.audioOnly);
    return a ? { variant: a, match: 'exact' } : null;
  }
  const video = variants.filter((v) => !v.audioOnly).sort((x, y) => cmp(rank(x), rank(y)));
  if (video.length === 0) return null;
  if (q === 'best') return { variant: video[video.length - 1], match: 'exact' };
  if (q === 'worst') return { variant: video[0], match: 'exact' };
  const exact = video.find((v) => v.name.toLowerCase() === q);
  if (exact) return { variant: exact, match: 'exact' };
  const want = parseQuality(q);
  if (!want) return null;
  const lower = video.filter((v) => cmp(rank(v).slice(0, 2), [want.height, want.fps]) <= 0);
  if (lower.length > 0) return { variant: lower[lower.length - 1], match: 'lower' };
  return { variant: video[0], match: 'higher' };
}

export function isMasterPlaylist(text: string): boolean {
  return /^#EXT-X-STREAM-INF:/m.test(text);
}

function parseDate(value: string | undefined, lineNo: number, line: string): number | undefined {
  if (value === undefined) return undefined;
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new PlaylistError('bad date', lineNo, line);
  return t;
}

export function parseMediaPlaylist(text: string, baseUrl: string): MediaPlaylist {
  const ls = lines(text);
  const pl: MediaPlaylist = { mediaSequence: 0, endList: false, segments: [], dateRanges: [] };
  let seq: number | undefined;
  let inf: { duration: number; title?: string; lineNo: number; line: string } | undefined;
  let nextPdt: number | undefined; // explicit EXT-X-PROGRAM-DATE-TIME for the next segment
  let map: Segment['map'];
  // EXT-X-BYTERANGE applies to the next URI; without "@offset" a range starts where the
  // previous range of the same URI ended (RFC 8216 4.3.2.2).
  let nextRange: { length: number; offset?: number; lineNo: number; line: string } | undefined;
  const rangeEnds = new Map<string, number>();
  const push = (url: string, duration: number, isPrefetch: boolean, title?: string) => {
    if (seq === undefined) seq = pl.mediaSequence;
    const prev = pl.segments[pl.segments.length - 1];
    // Program date time carries forward: a segment without its own tag starts where the last one ended.
    const pdt = nextPdt ?? (prev?.programDateTime !== undefined ? prev.programDateTime + prev.duration * 1000 : undefined);
    pl.segments.push({
      url,
      duration,
      sequence: seq++,
      isAd: title !== undefined && title.includes('Amazon'),
      isPrefetch,
      ...(title ? { title } : {}),
      ...(pdt !== undefined ? { programDateTime: pdt } : {}),
      ...(map ? { map } : {}),
      ...(byteRange ? { byteRange } : {}),
    });
    nextPdt = undefined;
  };
  let byteRange: Segment['byteRange'];
  const takeRange = (url: string): void => {
    byteRange = undefined;
    if (!nextRange) return;
    const offset = nextRange.offset ?? rangeEnds.get(url);
    if (offset === undefined) throw new PlaylistError('EXT-X-BYTERANGE without an offset, and no earlier range of this URI', nextRange.lineNo, nextRange.line);
    byteRange = { length: nextRange.length, offset };
    rangeEnds.set(url, offset + nextRange.length);
    nextRange = undefined;
  };
  for (let i = 1; i < ls.length; i++) {
    const line = ls[i].trim();
    const lineNo = i + 1;
    if (line === '') continue;
    if (!line.startsWith('#')) {
      if (!inf) throw new PlaylistError('segment URI without EXTINF', lineNo, line);
      const url = resolveUrl(line, baseUrl, lineNo, line);
      takeRange(url);
      push(url, inf.duration, false, inf.title);
      inf = undefined;
      continue;
    }
    const colon = line.indexOf(':');
    const tag = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1);
    switch (tag) {
      case '#EXTINF': {
        if (inf) throw new PlaylistError('EXTINF without a segment URI', inf.lineNo, inf.line);
        const comma = value.indexOf(',');
        const durText = comma < 0 ? value : value.slice(0, comma);
        const duration = num(durText, lineNo, line, 'EXTINF duration');
        if (duration === undefined) throw new PlaylistError('bad EXTINF duration', lineNo, line);
        const title = comma < 0 ? undefined : value.slice(comma + 1).trim() || undefined;
        inf = { duration, title, lineNo, line };
        break;
      }
      case '#EXT-X-MEDIA-SEQUENCE': {
        if (!/^\d+$/.test(value.trim())) throw new PlaylistError('bad EXT-X-MEDIA-SEQUENCE', lineNo, line);
        if (pl.segments.length > 0) throw new PlaylistError('EXT-X-MEDIA-SEQUENCE after segments', lineNo, line);
        pl.mediaSequence = Number(value.trim());
        break;
      }
      case '#EXT-X-TARGETDURATION':
        pl.targetDuration = num(value, lineNo, line, 'EXT-X-TARGETDURATION');
        break;
      case '#EXT-X-PROGRAM-DATE-TIME':
        nextPdt = parseDate(value.trim(), lineNo, line);
        break;
      case '#EXT-X-DATERANGE': {
        const a = parseAttributes(value, lineNo, line);
        const start = parseDate(a['START-DATE'], lineNo, line);
        if (!a['ID'] || start === undefined) throw new PlaylistError('EXT-X-DATERANGE needs ID and START-DATE', lineNo, line);
        const dur = num(a['DURATION'] ?? a['PLANNED-DURATION'], lineNo, line, 'DATERANGE DURATION');
        const end = dur !== undefined ? start + dur * 1000 : parseDate(a['END-DATE'], lineNo, line);
        pl.dateRanges.push({ id: a['ID'], className: a['CLASS'], start, end });
        break;
      }
      case '#EXT-X-BYTERANGE': {
        const r = parseByteRange(value);
        if (!r) throw new PlaylistError('EXT-X-BYTERANGE must be <length>[@<offset>]', lineNo, line);
        nextRange = { ...r, lineNo, line };
        break;
      }
      case '#EXT-X-MAP': {
        const a = parseAttributes(value, lineNo, line);
        if (!a['URI']) throw new PlaylistError('EXT-X-MAP without URI', lineNo, line);
        let range: ByteRange | undefined;
        if (a['BYTERANGE'] !== undefined) {
          const r = parseByteRange(a['BYTERANGE']);
          if (!r) throw new PlaylistError('EXT-X-MAP BYTERANGE must be <length>[@<offset>]', lineNo, line);
          range = { length: r.length, offset: r.offset ?? 0 }; // a MAP range without an offset starts at 0 (RFC 8216 4.3.2.5)
        }
        map = { url: resolveUrl(a['URI'], baseUrl, lineNo, line), ...(range ? { byteRange: range } : {}) };
        break;
      }
      case '#EXT-X-TWITCH-PREFETCH': {
        if (value.trim() === '') throw new PlaylistError('EXT-X-TWITCH-PREFETCH without URI', lineNo, line);
        // Prefetch segments have no EXTINF; assume they last as long as the previous one.
        const prev = pl.segments[pl.segments.length - 1];
        byteRange = undefined;
        push(resolveUrl(value.trim(), baseUrl, lineNo, line), prev?.duration ?? pl.targetDuration ?? 2, true);
        break;
      }
      case '#EXT-X-ENDLIST':
        pl.endList = true;
        break;
      default:
        break; // unknown tags are legal in HLS and must be ignored
    }
  }
  if (inf) throw new PlaylistError('EXTINF without a segment URI', inf.lineNo, inf.line);
  markAds(pl);
  return pl;
}

/** Twitch stitched ads: DATERANGE with CLASS twitch-stitched-ad or ID stitched-ad-*. */
export function isAdDateRange(d: DateRange): boolean {
  return d.className === 'twitch-stitched-ad' || d.id.startsWith('stitched-ad-');
}

// Date ranges may be declared anywhere in the playlist, so ads are marked after the whole
// text is read. A prefetch segment with no date inherits its predecessor's ad state.
function markAds(pl: MediaPlaylist): void {
  const ads = pl.dateRanges.filter(isAdDateRange);
  let prev: Segment | undefined;
  for (const s of pl.segments) {
    const t = s.programDateTime;
    if (!s.isAd && t !== undefined) s.isAd = ads.some((d) => d.start <= t && (d.end === undefined || t < d.end));
    else if (!s.isAd && s.isPrefetch && prev) s.isAd = prev.isAd;
    prev = s;
  }
}

export function newestSegment(
  pl: MediaPlaylist,
  opts: { skipAds?: boolean; usePrefetch?: boolean } = {},
): Segment | undefined {
  const skipAds = opts.skipAds ?? true;
  const usePrefetch = opts.usePrefetch ?? false;
  for (let i = pl.segments.length - 1; i >= 0; i--) {
    const s = pl.segments[i];
    if (s.isPrefetch && !usePrefetch) continue;
    if (s.isAd && skipAds) continue;
    return s;
  }
  return undefined;
}
