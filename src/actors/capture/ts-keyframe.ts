/**
 * Pull the first H.264 keyframe access unit out of an MPEG-TS byte stream, incrementally.
 *
 * Why: a Twitch segment opens with a keyframe, and decoding that one frame is all a capture
 * needs. Demuxing here (a few hundred µs of JS) lets the fetch stop as soon as the keyframe's
 * PES packet is complete (usually well under the first 300 KB), and lets one long-lived
 * decoder process take bare Annex B keyframes from many streams, instead of paying ffmpeg's
 * start-up, probing and demuxing (~60 ms CPU) for every capture.
 *
 * MPEG-TS facts used (ISO/IEC 13818-1): 188-byte packets starting 0x47; PID in bytes 1-2;
 * payload_unit_start_indicator (PUSI) marks a packet whose payload starts a PES packet or a
 * section (then with a pointer field); adaptation_field_control in byte 3. PAT (PID 0) maps
 * programs to PMT PIDs; the PMT lists elementary streams, H.264 being stream_type 0x1B. A
 * video PES packet carries one access unit; it ends where the next PUSI on its PID starts
 * (video PES_packet_length is usually 0 = unbounded), or at the end of the segment.
 */

export type KeyframeErrorCode = 'not-ts' | 'not-fmp4' | 'no-video' | 'unsupported-codec' | 'no-keyframe' | 'incomplete';

export class KeyframeError extends Error {
  readonly code: KeyframeErrorCode;
  constructor(code: KeyframeErrorCode, message: string) {
    super(message);
    this.name = 'KeyframeError';
    this.code = code;
  }
}

const PACKET = 188;
const STREAM_TYPE_H264 = 0x1b;
const NAL_IDR = 5;
const NAL_SPS = 7;
const NAL_PPS = 8;
/** Give up looking for a keyframe after this many video access units (a broken segment). */
const MAX_ACCESS_UNITS = 8;
/** Bound on one access unit; a 1080p keyframe is a few hundred KB. */
const MAX_AU_BYTES = 4 * 1024 * 1024;

export interface Keyframe {
  /** Annex B bytes: SPS, PPS (carried over from earlier units when the keyframe lacks them) and the IDR slices. */
  annexB: Uint8Array;
  /** TS bytes consumed up to the end of the keyframe's PES packet. */
  bytesUsed: number;
}

/** NAL unit types present in an Annex B buffer (start codes 00 00 01 / 00 00 00 01). */
export function nalTypes(b: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 0 && b[i + 1] === 0 && b[i + 2] === 1) {
      out.push(b[i + 3] & 0x1f);
      i += 3;
    }
  }
  return out;
}

/**
 * Feed TS bytes as they arrive with push(); it returns the keyframe as soon as its PES packet
 * is known to be complete, else null. finish() is called at the end of the segment (or of the
 * bytes we were willing to read) and either returns the keyframe or throws a KeyframeError.
 */
export class TsKeyframeExtractor {
  private carry = new Uint8Array(0);
  private consumed = 0;
  private pmtPid = -1;
  private videoPid = -1;
  private otherCodec = -1;
  private sectionBuf: Uint8Array[] = [];
  private au: Uint8Array[] = [];
  private auBytes = 0;
  private inAu = false;
  private unitsSeen = 0;
  private sps: Uint8Array[] = [];
  private pps: Uint8Array[] = [];
  private result: Keyframe | null = null;
  private failure: KeyframeError | null = null;
  private packetsSeen = 0;

  get done(): boolean {
    return this.result !== null || this.failure !== null;
  }

  push(chunk: Uint8Array): Keyframe | null {
    if (this.done) return this.result;
    let data: Uint8Array;
    if (this.carry.length > 0) {
      data = new Uint8Array(this.carry.length + chunk.length);
      data.set(this.carry);
      data.set(chunk, this.carry.length);
    } else {
      data = chunk;
    }
    let off = 0;
    // Segments may open with an ID3 tag (timed metadata); skip to the first sync byte that
    // is followed by another one a packet later.
    if (this.packetsSeen === 0) {
      while (off + PACKET < data.length && !(data[off] === 0x47 && data[off + PACKET] === 0x47)) off++;
      if (off + PACKET >= data.length && data.length - off < PACKET * 2) {
        this.carry = data.slice(off);
        this.consumed += off;
        return null;
      }
    }
    for (; off + PACKET <= data.length; off += PACKET) {
      if (data[off] !== 0x47) {
        this.failure = new KeyframeError('not-ts', `lost MPEG-TS sync at byte ${this.consumed + off}`);
        return null;
      }
      this.packetsSeen++;
      this.packet(data.subarray(off, off + PACKET), this.consumed + off + PACKET);
      if (this.done) return this.result;
    }
    this.consumed += off;
    this.carry = data.slice(off);
    return null;
  }

  /** End of input. `complete` = the whole segment was read (so the last PES packet is whole). */
  finish(complete: boolean): Keyframe {
    if (this.result) return this.result;
    if (this.failure) throw this.failure;
    if (this.packetsSeen === 0) throw new KeyframeError('not-ts', 'no MPEG-TS packets in the segment');
    if (this.videoPid < 0) {
      if (this.otherCodec >= 0) throw new KeyframeError('unsupported-codec', `video stream type 0x${this.otherCodec.toString(16)} is not H.264`);
      throw new KeyframeError('no-video', 'no H.264 video stream found (no PAT/PMT or no video entry)');
    }
    if (this.inAu && complete) {
      this.closeAu(this.consumed);
      if (this.result) return this.result;
    }
    if (this.failure) throw this.failure;
    if (this.inAu && !complete) throw new KeyframeError('incomplete', 'the keyframe did not end within the bytes read (truncated segment)');
    throw new KeyframeError('no-keyframe', `no keyframe in the first ${this.unitsSeen} video access units`);
  }

  private packet(p: Uint8Array, endOffset: number): void {
    const pid = ((p[1] & 0x1f) << 8) | p[2];
    const pusi = (p[1] & 0x40) !== 0;
    const afc = (p[3] >> 4) & 3;
    if (afc === 0 || afc === 2) return; // no payload
    let start = 4;
    if (afc === 3) start += 1 + p[4];
    if (start >= PACKET) return;
    const payload = p.subarray(start);
    if (pid === 0) this.section(payload, pusi, 'pat');
    else if (pid === this.pmtPid) this.section(payload, pusi, 'pmt');
    else if (pid === this.videoPid) this.video(payload, pusi, endOffset);
  }

  private section(payload: Uint8Array, pusi: boolean, which: 'pat' | 'pmt'): void {
    if (pusi) {
      const pointer = payload[0];
      this.sectionBuf = [payload.subarray(1 + pointer)];
    } else if (this.sectionBuf.length > 0) {
      this.sectionBuf.push(payload);
    } else {
      return;
    }
    const s = Buffer.concat(this.sectionBuf);
    if (s.length < 3) return;
    const sectionLength = ((s[1] & 0x0f) << 8) | s[2];
    if (s.length < 3 + sectionLength) return; // continues in the next packet
    this.sectionBuf = [];
    const end = 3 + sectionLength - 4; // minus CRC
    if (which === 'pat' && s[0] === 0x00) {
      for (let i = 8; i + 4 <= end; i += 4) {
        const program = (s[i] << 8) | s[i + 1];
        if (program === 0) continue; // network PID
        this.pmtPid = ((s[i + 2] & 0x1f) << 8) | s[i + 3];
        break;
      }
    } else if (which === 'pmt' && s[0] === 0x02) {
      const programInfoLength = ((s[10] & 0x0f) << 8) | s[11];
      for (let i = 12 + programInfoLength; i + 5 <= end;) {
        const type = s[i];
        const pid = ((s[i + 1] & 0x1f) << 8) | s[i + 2];
        const esInfo = ((s[i + 3] & 0x0f) << 8) | s[i + 4];
        if (type === STREAM_TYPE_H264 && this.videoPid < 0) this.videoPid = pid;
        else if ((type === 0x24 || type === 0x02 || type === 0x10) && this.otherCodec < 0) this.otherCodec = type;
        i += 5 + esInfo;
      }
    }
  }

  private video(payload: Uint8Array, pusi: boolean, endOffset: number): void {
    if (pusi) {
      if (this.inAu) {
        this.closeAu(endOffset - PACKET);
        if (this.done) return;
      }
      // PES header: 00 00 01 stream_id, length(2), flags(2), header_data_length(1).
      if (payload.length < 9 || payload[0] !== 0 || payload[1] !== 0 || payload[2] !== 1) {
        this.inAu = false;
        return;
      }
      const es = 9 + payload[8];
      this.inAu = true;
      this.au = [payload.subarray(es)];
      this.auBytes = payload.length - es;
    } else if (this.inAu) {
      this.au.push(payload); // a view: input chunks are never reused
      this.auBytes += payload.length;
      if (this.auBytes > MAX_AU_BYTES) {
        this.failure = new KeyframeError('no-keyframe', `a video access unit exceeded ${MAX_AU_BYTES} bytes`);
      }
    }
  }

  private closeAu(endOffset: number): void {
    this.inAu = false;
    this.unitsSeen++;
    const au = Buffer.concat(this.au);
    this.au = [];
    // One scan for all NAL units (this runs on every capture).
    const units = splitNals(au);
    let idr = false;
    const sps: Uint8Array[] = [];
    const pps: Uint8Array[] = [];
    for (const u of units) {
      const t = u[0] & 0x1f;
      if (t === NAL_IDR) idr = true;
      else if (t === NAL_SPS) sps.push(u);
      else if (t === NAL_PPS) pps.push(u);
    }
    if (sps.length > 0) this.sps = sps.map((u) => u.slice());
    if (pps.length > 0) this.pps = pps.map((u) => u.slice());
    if (idr) {
      const built = keyframeFromUnits(units, this.sps, this.pps);
      if (built instanceof KeyframeError) this.failure = built;
      else this.result = { annexB: built, bytesUsed: endOffset };
      return;
    }
    if (this.unitsSeen >= MAX_ACCESS_UNITS) {
      this.failure = new KeyframeError('no-keyframe', `no keyframe in the first ${this.unitsSeen} video access units`);
    }
  }
}

/**
 * The Annex B bytes a shared decoder gets for one keyframe access unit (`units`: its NAL
 * payloads): parameter sets (the unit's own, else the latest seen) and the IDR slices only;
 * SEI, AUD and filler are dropped so every keyframe is self-contained. Refused, as a
 * KeyframeError, when a parameter set is missing or a slice names a PPS we do not carry, since
 * such a job would yield no picture from the decoder (see keyframe-decoder.ts). Used by the
 * MPEG-TS and the fMP4 extractors.
 */
export function keyframeFromUnits(units: Uint8Array[], sps: Uint8Array[], pps: Uint8Array[]): Uint8Array | KeyframeError {
  if (sps.length === 0 || pps.length === 0) return new KeyframeError('no-keyframe', 'keyframe without SPS/PPS (parameter sets never seen)');
  const ppsIds = new Set(pps.map((u) => readUe(u, 1, 1)[0]));
  for (const u of units) {
    if ((u[0] & 0x1f) !== NAL_IDR) continue;
    const ref = readUe(u, 1, 3)[2];
    if (!ppsIds.has(ref)) return new KeyframeError('no-keyframe', `keyframe slice refers to picture parameter set ${ref}, which the segment does not carry`);
  }
  const keep = [...sps, ...pps, ...units.filter((u) => (u[0] & 0x1f) === NAL_IDR)];
  let n = 0;
  for (const u of keep) n += 4 + u.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const u of keep) {
    out[off + 3] = 1;
    out.set(u, off + 4);
    off += 4 + u.length;
  }
  return out;
}

/**
 * Reads `count` unsigned Exp-Golomb values from a NAL unit starting at byte `from`, skipping
 * emulation-prevention bytes (00 00 03). Returns -1 for values that run off the end.
 */
export function readUe(nal: Uint8Array, from: number, count: number): number[] {
  const bytes: number[] = [];
  for (let i = from, zeros = 0; i < nal.length && bytes.length < 32; i++) {
    if (zeros >= 2 && nal[i] === 3) {
      zeros = 0;
      continue;
    }
    zeros = nal[i] === 0 ? zeros + 1 : 0;
    bytes.push(nal[i]);
  }
  let bit = 0;
  const total = bytes.length * 8;
  const next = (): number => {
    const b = (bytes[bit >> 3] >> (7 - (bit & 7))) & 1;
    bit++;
    return b;
  };
  const out: number[] = [];
  for (let k = 0; k < count; k++) {
    let lz = 0;
    while (bit < total && next() === 0) lz++;
    if (bit + lz > total || lz > 31) {
      out.push(-1);
      continue;
    }
    let v = 0;
    for (let j = 0; j < lz; j++) v = v * 2 + next();
    out.push(2 ** lz - 1 + v);
  }
  return out;
}

/** NAL unit payloads (views, without start codes) of an Annex B buffer. */
export function splitNals(b: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let start = -1;
  const n = b.length;
  for (let i = 0; i + 2 < n; i++) {
    // Start codes are rare: skip fast unless b[i+2] could be the 01 of 00 00 01.
    if (b[i + 2] > 1) {
      i += 2;
      continue;
    }
    if (b[i] === 0 && b[i + 1] === 0 && b[i + 2] === 1) {
      if (start >= 0) {
        let end = i;
        if (end > start && b[end - 1] === 0) end--; // 4-byte start code
        out.push(b.subarray(start, end));
      }
      start = i + 3;
      i += 2;
    }
  }
  if (start >= 0 && start < n) out.push(b.subarray(start, n));
  return out;
}

/** One-shot helper over a whole buffer. */
export function extractKeyframe(ts: Uint8Array, complete = true): Keyframe {
  const x = new TsKeyframeExtractor();
  const r = x.push(ts);
  return r ?? x.finish(complete);
}
