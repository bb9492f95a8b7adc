// Keyframe extraction from real ffmpeg-made MPEG-TS segments, and the long-lived decoder:
// right picture for the right job (also when jobs from differently sized streams interleave),
// a keyframe that yields no picture fails alone, stalls and dead processes fail cleanly.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractKeyframe, nalTypes, readUe, splitNals, TsKeyframeExtractor, KeyframeError } from '../src/actors/capture/ts-keyframe.js';
import { DecoderPool, KeyframeDecoder, isSentinelFrame, makeSentinel, DecoderError } from '../src/actors/capture/keyframe-decoder.js';
import { resolveFfmpeg } from '../src/shared/ffmpeg.js';

const ffmpeg = resolveFfmpeg().path;
const dir = mkdtempSync(join(tmpdir(), 'rc-decoder-'));

/** One 2 s MPEG-TS segment of a solid colour (with AAC audio, like Twitch). */
function segment(name: string, color: string, size: string, extra: string[] = []): Uint8Array {
  const file = join(dir, `${name}.ts`);
  execFileSync(ffmpeg, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `color=c=${color}:size=${size}:rate=30`, '-f', 'lavfi', '-i', 'sine',
    '-t', '2', '-c:v', 'libx264', '-preset', 'veryfast', '-g', '60', '-bf', '2', '-c:a', 'aac', ...extra, '-f', 'mpegts', file]);
  return new Uint8Array(readFileSync(file));
}

let red: Uint8Array;
let blue: Uint8Array;
let green720: Uint8Array;
let sentinel: Uint8Array;

beforeAll(async () => {
  red = segment('red', 'red', '426x240');
  blue = segment('blue', 'blue', '426x240');
  green720 = segment('green', '0x00ff00', '1280x720');
  sentinel = await makeSentinel(ffmpeg);
}, 60_000);

function pixel(rgb: Uint8Array, width: number, x: number, y: number): [number, number, number] {
  const o = (y * width + x) * 3;
  return [rgb[o], rgb[o + 1], rgb[o + 2]];
}

describe('TS keyframe extraction', () => {
  it('takes SPS, PPS and the IDR slice of the first access unit, reading only the start of the segment', () => {
    const kf = extractKeyframe(red);
    expect(nalTypes(kf.annexB)).toEqual([7, 8, 5]);
    expect(kf.bytesUsed).toBeLessThan(red.length);
    expect(kf.bytesUsed % 188).toBe(0);
  });

  it('gives the same keyframe when bytes arrive in small chunks, and stops at the keyframe', () => {
    const whole = extractKeyframe(red);
    const x = new TsKeyframeExtractor();
    let got = null;
    let fed = 0;
    for (let off = 0; off < red.length && !got; off += 1000) {
      got = x.push(red.subarray(off, off + 1000));
      fed = Math.min(off + 1000, red.length);
    }
    expect(got).not.toBeNull();
    expect(Buffer.from(got!.annexB).equals(Buffer.from(whole.annexB))).toBe(true);
    expect(fed).toBeLessThan(red.length);
  });

  it('skips a leading ID3 tag', () => {
    const id3 = new Uint8Array(40);
    id3.set([0x49, 0x44, 0x33, 4, 0, 0, 0, 0, 0, 30]);
    const withTag = new Uint8Array(id3.length + red.length);
    withTag.set(id3);
    withTag.set(red, id3.length);
    expect(nalTypes(extractKeyframe(withTag).annexB)).toEqual([7, 8, 5]);
  });

  it('names what is wrong: garbage, truncated keyframe, no video', () => {
    const garbage = new Uint8Array(5000).map((_, i) => (i * 31 + 7) & 0xff);
    expect(() => extractKeyframe(garbage)).toThrow(KeyframeError);
    // Cut inside the keyframe's PES packet: incomplete only if we know the segment was cut.
    const head = red.subarray(0, 188 * 8);
    expect(() => extractKeyframe(head, false)).toThrow(/did not end|truncated/);
    const audioOnly = join(dir, 'audio.ts');
    execFileSync(ffmpeg, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'sine', '-t', '1', '-c:a', 'aac', '-f', 'mpegts', audioOnly]);
    expect(() => extractKeyframe(new Uint8Array(readFileSync(audioOnly)))).toThrow(/no H.264 video/);
  });

  it('splits Annex B into NAL units with 3- and 4-byte start codes', () => {
    const b = new Uint8Array([0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 9, 9]);
    expect(splitNals(b).map((u) => Array.from(u))).toEqual([[0x67, 1, 2], [0x68, 3], [0x65, 9, 9]]);
  });
});

describe('long-lived keyframe decoder', () => {
  const W = 160;
  const H = 90;
  let pool: DecoderPool;
  beforeAll(() => {
    pool = new DecoderPool(2, { ffmpegPath: ffmpeg, width: W, height: H, sentinel });
  });
  afterAll(() => pool.close());

  const decode = async (kf: Uint8Array, p: { decode: DecoderPool['decode'] } = pool) => {
    let frame: Uint8Array | null = null;
    await p.decode(kf, (rgb) => { frame = rgb.slice(); });
    return frame!;
  };

  it('returns the picture scaled to W x H', async () => {
    const f = await decode(extractKeyframe(red).annexB);
    expect(f.length).toBe(W * H * 3);
    const [r, g, b] = pixel(f, W, 80, 45);
    expect(r).toBeGreaterThan(200);
    expect(g).toBeLessThan(60);
    expect(b).toBeLessThan(60);
    expect(isSentinelFrame(f, W, H)).toBe(false);
  });

  it('gives every job its own picture when streams of different sizes interleave', async () => {
    const kfs = { red: extractKeyframe(red).annexB, blue: extractKeyframe(blue).annexB, green: extractKeyframe(green720).annexB };
    const order = ['red', 'blue', 'green', 'green', 'red', 'blue', 'blue', 'red', 'green', 'red', 'blue', 'green'] as const;
    const frames = await Promise.all(order.map((c) => decode(kfs[c])));
    frames.forEach((f, i) => {
      const [r, g, b] = pixel(f, W, 80, 45);
      const seen = r > 200 && g < 80 ? 'red' : b > 200 && r < 80 ? 'blue' : g > 200 && r < 80 ? 'green' : `rgb(${r},${g},${b})`;
      expect(seen, `job ${i}`).toBe(order[i]);
    });
  });

  // Parameter sets plus an IDR slice header naming picture parameter set 200 (first_mb 0,
  // slice_type 7, pps_id 200): a new picture that cannot decode.
  const badSliceKeyframe = () => {
    const units = splitNals(extractKeyframe(blue).annexB);
    return new Uint8Array([0, 0, 0, 1, ...units[0], 0, 0, 0, 1, ...units[1], 0, 0, 0, 1, 0x65, 0x88, 0x01, 0x93, 0xff, 0xff, 0xff, 0xff]);
  };
  const colour = (f: Uint8Array) => {
    const [r, g, b] = pixel(f, W, 80, 45);
    return r > 200 && g < 80 ? 'red' : b > 200 && r < 80 ? 'blue' : `rgb(${r},${g},${b})`;
  };

  it('with a sentinel after every job, a keyframe that yields no picture fails alone', async () => {
    const d = new KeyframeDecoder({ ffmpegPath: ffmpeg, width: W, height: H, sentinel, syncEvery: 1 });
    try {
      const results = await Promise.allSettled([decode(extractKeyframe(red).annexB, d), d.decode(badSliceKeyframe(), () => undefined), decode(extractKeyframe(blue).annexB, d)]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(((results[1] as PromiseRejectedResult).reason as DecoderError).code).toBe('no-picture');
      expect(colour((results[0] as PromiseFulfilledResult<Uint8Array>).value)).toBe('red');
      expect(colour((results[2] as PromiseFulfilledResult<Uint8Array>).value)).toBe('blue');
      expect(d.stats.noPicture).toBe(1);
    } finally {
      d.close();
    }
  });

  it('with sparse sentinels, a missing picture is caught at the next sentinel and later jobs are right again', async () => {
    const d = new KeyframeDecoder({ ffmpegPath: ffmpeg, width: W, height: H, sentinel, syncEvery: 8 });
    try {
      const first = await Promise.allSettled([decode(extractKeyframe(red).annexB, d), d.decode(badSliceKeyframe(), () => undefined), decode(extractKeyframe(blue).annexB, d)]);
      // Exactly one of the three fails (the shift is detected, not silently carried on).
      expect(first.filter((r) => r.status === 'rejected')).toHaveLength(1);
      expect(d.stats.noPicture).toBe(1);
      const later = await Promise.all([decode(extractKeyframe(blue).annexB, d), decode(extractKeyframe(red).annexB, d)]);
      expect(later.map(colour)).toEqual(['blue', 'red']);
    } finally {
      d.close();
    }
  });

  it('the extractor refuses a keyframe whose slice names a parameter set it does not carry', () => {
    // Wrap the bad keyframe's NAL units back into a TS-free check through the same rule.
    const units = splitNals(badSliceKeyframe());
    expect(readUe(units[2], 1, 3)[2]).toBe(200);
    expect(readUe(units[1], 1, 1)[0]).toBe(0);
  });

  it('kills a decoder that stops answering, fails its jobs, and starts a fresh one', async () => {
    const silent = join(dir, 'silent-ffmpeg.sh');
    writeFileSync(silent, '#!/bin/sh\ncat > /dev/null\n');
    chmodSync(silent, 0o755);
    const d = new KeyframeDecoder({ ffmpegPath: silent, width: W, height: H, sentinel, stallMs: 300 });
    try {
      const t0 = Date.now();
      await expect(d.decode(extractKeyframe(red).annexB, () => undefined)).rejects.toMatchObject({ code: 'stalled' });
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(d.stats.stalls).toBe(1);
      expect(d.pid).toBeUndefined();
    } finally {
      d.close();
    }
  });

  it('reports a decoder that cannot run, and backs off before retrying', async () => {
    const d = new KeyframeDecoder({ ffmpegPath: '/bin/false', width: W, height: H, sentinel });
    try {
      await expect(d.decode(extractKeyframe(red).annexB, () => undefined)).rejects.toMatchObject({ code: 'exited' });
      await expect(d.decode(extractKeyframe(red).annexB, () => undefined)).rejects.toThrow(/restarting after 1 failures/);
      expect(d.stats.restarts).toBe(1);
    } finally {
      d.close();
    }
  });

  it('recognises its sentinel picture', async () => {
    const d = new KeyframeDecoder({ ffmpegPath: ffmpeg, width: W, height: H, sentinel, idleFlushMs: 5 });
    try {
      // Decode the sentinel as if it were a job: it comes out, is taken for a sentinel, and
      // the job therefore counts as "no picture" (a stream can never be mistaken for one).
      await expect(d.decode(sentinel, () => undefined)).rejects.toMatchObject({ code: 'no-picture' });
    } finally {
      d.close();
    }
  });
});
