/**
 * Pull the first H.264 keyframe out of a fragmented-MP4 (CMAF) HLS segment, incrementally:
 * the fMP4 counterpart of ts-keyframe.ts, for HLS sources whose playlists carry EXT-X-MAP
 * (LL-HLS and CMAF packagers, ffmpeg's `-hls_segment_type fmp4`, Twitch's "enhanced" variants
 * when they are H.264).
 *
 * ISO/IEC 14496-12 facts used. A box is size(4, big-endian) + type(4), size 1 = a 64-bit size
 * follows, size 0 = to the end of the file.
 * - Init section: moov > trak > tkhd (track_ID) and mdia > hdlr ('vide') and
 *   mdia > minf > stbl > stsd > avc1|avc3 > avcC (ISO/IEC 14496-15: NAL length size, SPS, PPS);
 *   moov > mvex > trex (per-track default sample size/flags).
 * - Media segment: [styp] [sidx] [prft/emsg] (moof mdat)+. moof > traf > tfhd (track_ID,
 *   optional base_data_offset / default sample size / default flags) and trun (sample count,
 *   data_offset, per-sample size/flags, first_sample_flags). A sample is a sync sample when
 *   sample_is_non_sync_sample (flag bit 16) is clear. Its bytes are length-prefixed NAL units
 *   at base + data_offset + the sizes of the samples before it; the base is the moof's first
 *   byte (default-base-is-moof, or no base given for the first traf) unless tfhd gives one.
 *
 * Reading stops as soon as the first sync sample's bytes have arrived: for a 480p segment
 * that is the moof plus one keyframe, like the TS path.
 */
import { KeyframeError, keyframeFromUnits, type Keyframe } from './ts-keyframe.js';

const NAL_SPS = 7;
const NAL_PPS = 8;
/** Fragments (moof) searched for a sync sample before giving up. */
const MAX_FRAGMENTS = 8;
/** Bound on one moof box (its sample tables); real ones are a few KB. */
const MAX_MOOF_BYTES = 1024 * 1024;
/** Bound on one keyframe sample. */
const MAX_SAMPLE_BYTES = 8 * 1024 * 1024;

export interface Fmp4Init {
  trackId: number;
  /** 'avc1' | 'avc3' (avc3 carries parameter sets in-band as well). */
  codec: string;
  /** Bytes of each NAL unit's length prefix (1, 2 or 4). */
  nalLengthSize: number;
  sps: Uint8Array[];
  pps: Uint8Array[];
  width: number;
  height: number;
  defaultSampleSize: number;
  defaultSampleFlags: number;
}

interface Box {
  type: string;
  /** Offset of the box's first byte in the buffer. */
  start: number;
  /** Offset of the payload (after the header). */
  body: number;
  /** Offset one past the box's last byte. */
  end: number;
}

const u32 = (b: Uint8Array, o: number): number => ((b[o] << 24) >>> 0) + (b[o + 1] << 16) + (b[o + 2] << 8) + b[o + 3];
const u16 = (b: Uint8Array, o: number): number => (b[o] << 8) | b[o + 1];
const fourcc = (b: Uint8Array, o: number): string => String.fromCharCode(b[o], b[o + 1], b[o + 2], b[o + 3]);

/**
 * The box header at `at`, or null when fewer than its header bytes are there. `limit` is the
 * end of the enclosing box (or of the data); a box claiming to run past a known end is an error.
 */
function boxAt(b: Uint8Array, at: number, limit: number, enclosed: boolean): Box | null {
  if (at + 8 > limit) return null;
  let size = u32(b, at);
  const type = fourcc(b, at + 4);
  let body = at + 8;
  if (size === 1) {
    if (at + 16 > limit) return null;
    const hi = u32(b, at + 8);
    if (hi > 0x1f_ffff) throw new KeyframeError('not-fmp4', `box ${JSON.stringify(type)} at byte ${at} is larger than 2^53 bytes`);
    size = hi * 2 ** 32 + u32(b, at + 12);
    body = at + 16;
  } else if (size === 0) {
    size = Number.MAX_SAFE_INTEGER - at; // to the end of the file
  }
  if (size < body - at) throw new KeyframeError('not-fmp4', `box ${JSON.stringify(type)} at byte ${at} has an impossible size ${size}`);
  if (!/^[\x20-\x7e]{4}$/.test(type)) throw new KeyframeError('not-fmp4', `no MP4 box at byte ${at} (type bytes ${JSON.stringify(type)})`);
  const end = at + size;
  if (enclosed && end > limit) throw new KeyframeError('not-fmp4', `box ${JSON.stringify(type)} at byte ${at} runs past its parent`);
  return { type, start: at, body, end };
}

/** Child boxes of [from, to) (all must be complete). */
function children(b: Uint8Array, from: number, to: number): Box[] {
  const out: Box[] = [];
  for (let at = from; at < to;) {
    const box = boxAt(b, at, to, true);
    if (!box) throw new KeyframeError('not-fmp4', `truncated box header at byte ${at}`);
    out.push(box);
    at = box.end;
  }
  return out;
}

const child = (b: Uint8Array, parent: Box, type: string, skip = 0): Box | undefined =>
  children(b, parent.body + skip, parent.end).find((c) => c.type === type);

/**
 * Parses an init section (ftyp + moov, or a moov found in a segment). Throws a KeyframeError
 * naming what is missing: no video track, a codec other than H.264, an encrypted track.
 */
export function parseFmp4Init(bytes: Uint8Array): Fmp4Init {
  const top = children(bytes, 0, bytes.length);
  const moov = top.find((x) => x.type === 'moov');
  if (!moov) throw new KeyframeError('not-fmp4', `init section has no moov box (boxes: ${top.map((x) => x.type).join(', ') || 'none'})`);
  const defaults = new Map<number, { size: number; flags: number }>();
  const mvex = child(bytes, moov, 'mvex');
  if (mvex) {
    for (const trex of children(bytes, mvex.body, mvex.end).filter((x) => x.type === 'trex')) {
      // version/flags(4) track_ID(4) sample_description_index(4) duration(4) size(4) flags(4)
      defaults.set(u32(bytes, trex.body + 4), { size: u32(bytes, trex.body + 16), flags: u32(bytes, trex.body + 20) });
    }
  }
  let otherVideo = '';
  for (const trak of children(bytes, moov.body, moov.end).filter((x) => x.type === 'trak')) {
    const mdia = child(bytes, trak, 'mdia');
    const hdlr = mdia && child(bytes, mdia, 'hdlr');
    if (!mdia || !hdlr || fourcc(bytes, hdlr.body + 8) !== 'vide') continue;
    const tkhd = child(bytes, trak, 'tkhd');
    if (!tkhd) throw new KeyframeError('not-fmp4', 'video track without a tkhd box');
    const trackId = u32(bytes, tkhd.body + (bytes[tkhd.body] === 1 ? 20 : 12));
    const minf = child(bytes, mdia, 'minf');
    const stbl = minf && child(bytes, minf, 'stbl');
    const stsd = stbl && child(bytes, stbl, 'stsd');
    if (!stsd) throw new KeyframeError('not-fmp4', 'video track without a sample description (stsd)');
    // stsd: version/flags(4) entry_count(4), then sample entries.
    const entry = children(bytes, stsd.body + 8, stsd.end)[0];
    if (!entry) throw new KeyframeError('not-fmp4', 'video track with an empty sample description');
    if (entry.type !== 'avc1' && entry.type !== 'avc3') {
      otherVideo = entry.type;
      continue;
    }
    // VisualSampleEntry: 78 bytes (reserved, data_reference_index, width@24, height@26, ...) then boxes.
    const width = u16(bytes, entry.body + 24);
    const height = u16(bytes, entry.body + 26);
    const avcC = children(bytes, entry.body + 78, entry.end).find((x) => x.type === 'avcC');
    if (!avcC) throw new KeyframeError('not-fmp4', `${entry.type} sample entry without an avcC box`);
    const c = avcC.body;
    const nalLengthSize = (bytes[c + 4] & 3) + 1;
    if (nalLengthSize === 3) throw new KeyframeError('not-fmp4', 'avcC NAL length size 3 is not valid');
    const sps: Uint8Array[] = [];
    const pps: Uint8Array[] = [];
    let at = c + 6;
    for (let i = 0, n = bytes[c + 5] & 0x1f; i < n; i++, at += 2 + u16(bytes, at)) sps.push(bytes.slice(at + 2, at + 2 + u16(bytes, at)));
    for (let i = 0, n = bytes[at++]; i < n; i++, at += 2 + u16(bytes, at)) pps.push(bytes.slice(at + 2, at + 2 + u16(bytes, at)));
    if (at > avcC.end) throw new KeyframeError('not-fmp4', 'avcC parameter sets run past the box');
    const d = defaults.get(trackId) ?? { size: 0, flags: 0 };
    return { trackId, codec: entry.type, nalLengthSize, sps, pps, width, height, defaultSampleSize: d.size, defaultSampleFlags: d.flags };
  }
  if (otherVideo === 'encv') throw new KeyframeError('unsupported-codec', 'the video track is encrypted (encv)');
  if (otherVideo) throw new KeyframeError('unsupported-codec', `video codec ${otherVideo} is not H.264 (avc1/avc3)`);
  throw new KeyframeError('no-video', 'init section has no video track');
}

/** Where the first sync sample of the video track lies, from one complete moof box. */
function findSyncSample(b: Uint8Array, moof: Box, init: Fmp4Init): { offset: number; size: number } | null {
  for (const traf of children(b, moof.body, moof.end).filter((x) => x.type === 'traf')) {
    const tfhd = child(b, traf, 'tfhd');
    if (!tfhd) throw new KeyframeError('not-fmp4', 'traf without a tfhd box');
    const flags = u32(b, tfhd.body) & 0xffffff;
    if (u32(b, tfhd.body + 4) !== init.trackId) continue;
    let at = tfhd.body + 8;
    let base = moof.start;
    if (flags & 0x01) {
      base = u32(b, at) * 2 ** 32 + u32(b, at + 4); // absolute: from the segment's first byte
      at += 8;
    }
    if (flags & 0x02) at += 4; // sample_description_index
    if (flags & 0x08) at += 4; // default_sample_duration
    let defaultSize = init.defaultSampleSize;
    let defaultFlags = init.defaultSampleFlags;
    if (flags & 0x10) { defaultSize = u32(b, at); at += 4; }
    if (flags & 0x20) { defaultFlags = u32(b, at); at += 4; }
    let dataEnd = base; // samples of a later trun without data_offset follow the previous ones
    for (const trun of children(b, traf.body, traf.end).filter((x) => x.type === 'trun')) {
      const tf = u32(b, trun.body) & 0xffffff;
      const count = u32(b, trun.body + 4);
      let p = trun.body + 8;
      let offset = dataEnd;
      if (tf & 0x001) {
        offset = base + (u32(b, p) | 0); // signed
        p += 4;
      }
      let firstFlags: number | undefined;
      if (tf & 0x004) { firstFlags = u32(b, p); p += 4; }
      const perSample = ((tf & 0x100) ? 4 : 0) + ((tf & 0x200) ? 4 : 0) + ((tf & 0x400) ? 4 : 0) + ((tf & 0x800) ? 4 : 0);
      if (p + count * perSample > trun.end) throw new KeyframeError('not-fmp4', `trun claims ${count} samples but holds fewer`);
      for (let i = 0; i < count; i++) {
        if (tf & 0x100) p += 4; // duration
        let size = defaultSize;
        if (tf & 0x200) { size = u32(b, p); p += 4; }
        let sampleFlags = i === 0 && firstFlags !== undefined ? firstFlags : defaultFlags;
        if (tf & 0x400) {
          const f = u32(b, p);
          p += 4;
          if (!(i === 0 && firstFlags !== undefined)) sampleFlags = f;
        }
        if (tf & 0x800) p += 4; // composition time offset
        const sync = (sampleFlags & 0x0001_0000) === 0;
        if (sync && size > 0) return { offset, size };
        offset += size;
      }
      dataEnd = offset;
    }
  }
  return null;
}

/** Length-prefixed NAL units of one sample → their payloads. */
function sampleNals(sample: Uint8Array, lengthSize: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < sample.length;) {
    if (at + lengthSize > sample.length) throw new KeyframeError('not-fmp4', 'a NAL length prefix runs past the keyframe sample');
    let n = 0;
    for (let k = 0; k < lengthSize; k++) n = n * 256 + sample[at + k];
    at += lengthSize;
    if (n === 0 || at + n > sample.length) throw new KeyframeError('not-fmp4', `a NAL unit of ${n} bytes does not fit the keyframe sample`);
    out.push(sample.subarray(at, at + n));
    at += n;
  }
  return out;
}

/**
 * Feed segment bytes as they arrive with push(); it returns the keyframe once the first sync
 * sample is complete. `init` is the track's init section (EXT-X-MAP); without one, a moov in
 * the segment itself is used. Same contract as TsKeyframeExtractor.
 */
export class Fmp4KeyframeExtractor {
  private buf = new Uint8Array(64 * 1024);
  private len = 0;
  /** Next top-level box to look at. */
  private at = 0;
  private fragments = 0;
  private want: { offset: number; size: number } | null = null;
  private result: Keyframe | null = null;
  private failure: KeyframeError | null = null;

  constructor(private init: Fmp4Init | null = null) {}

  get done(): boolean {
    return this.result !== null || this.failure !== null;
  }

  push(chunk: Uint8Array): Keyframe | null {
    if (this.done) return this.result;
    if (this.len + chunk.length > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + chunk.length));
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
    }
    this.buf.set(chunk, this.len);
    this.len += chunk.length;
    try {
      this.advance();
    } catch (err) {
      if (!(err instanceof KeyframeError)) throw err;
      this.failure = err;
    }
    return this.result;
  }

  /** End of input; `complete` = the whole segment was read. */
  finish(complete: boolean): Keyframe {
    if (this.result) return this.result;
    if (this.failure) throw this.failure;
    if (this.len === 0) throw new KeyframeError('not-fmp4', 'the segment is empty');
    if (this.want || !complete) throw new KeyframeError('incomplete', 'the keyframe did not end within the bytes read (truncated segment)');
    if (!this.init) throw new KeyframeError('not-fmp4', 'fMP4 segment without an init section (no EXT-X-MAP and no moov in the segment)');
    throw new KeyframeError('no-keyframe', `no sync sample of track ${this.init.trackId} in the first ${this.fragments} fragments`);
  }

  private advance(): void {
    const b = this.buf;
    for (;;) {
      if (this.want) {
        const { offset, size } = this.want;
        if (offset + size > this.len) return; // more bytes needed
        this.complete(b.subarray(offset, offset + size), offset + size);
        return;
      }
      const box = boxAt(b, this.at, this.len, false);
      if (!box) return;
      if (box.type === 'moof' || box.type === 'moov') {
        if (box.end - box.start > MAX_MOOF_BYTES) throw new KeyframeError('not-fmp4', `${box.type} box of ${box.end - box.start} bytes is implausibly large`);
        if (box.end > this.len) return; // wait for the whole box
        if (box.type === 'moov') {
          this.init ??= parseFmp4Init(b.subarray(0, box.end));
        } else {
          if (!this.init) throw new KeyframeError('not-fmp4', 'fMP4 segment without an init section (no EXT-X-MAP and no moov in the segment)');
          this.fragments++;
          const sample = findSyncSample(b, box, this.init);
          if (sample) {
            if (sample.size > MAX_SAMPLE_BYTES) throw new KeyframeError('no-keyframe', `keyframe sample of ${sample.size} bytes exceeds ${MAX_SAMPLE_BYTES}`);
            if (sample.offset < box.end) throw new KeyframeError('not-fmp4', `keyframe sample offset ${sample.offset} points inside its moof`);
            this.want = sample;
            continue;
          }
          if (this.fragments >= MAX_FRAGMENTS) throw new KeyframeError('no-keyframe', `no sync sample in the first ${this.fragments} fragments`);
        }
      } else if (this.at === 0 && !['ftyp', 'styp', 'sidx', 'prft', 'emsg', 'free', 'skip', 'uuid', 'moov', 'moof', 'mdat'].includes(box.type)) {
        throw new KeyframeError('not-fmp4', `segment starts with a ${JSON.stringify(box.type)} box, not an fMP4 fragment`);
      }
      // Other boxes (styp, sidx, mdat of a fragment without a keyframe, ...) are skipped.
      this.at = box.end;
      if (this.at > this.len) return; // the rest of a skipped box has not arrived; it need not
    }
  }

  private complete(sample: Uint8Array, end: number): void {
    const init = this.init!;
    const units = sampleNals(sample, init.nalLengthSize);
    if (!units.some((u) => (u[0] & 0x1f) === 5)) {
      throw new KeyframeError('no-keyframe', 'the sync sample holds no IDR slice (an open-GOP recovery point is not decodable alone)');
    }
    // avc3 (and some avc1 encoders) repeat the parameter sets in-band; those win.
    const sps = units.filter((u) => (u[0] & 0x1f) === NAL_SPS);
    const pps = units.filter((u) => (u[0] & 0x1f) === NAL_PPS);
    const built = keyframeFromUnits(units, sps.length > 0 ? sps : init.sps, pps.length > 0 ? pps : init.pps);
    if (built instanceof KeyframeError) throw built;
    this.result = { annexB: built, bytesUsed: end };
  }
}
