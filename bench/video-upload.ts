/**
 * Micro-benchmark: how should a captured frame reach the renderer? The capture ring holds RGB24
 * (what the decoders write and the analysis workers read); the renderer uploads RGBA. Either the
 * compositor widens RGB→RGBA while copying the frame out of the shared ring (the copy is needed
 * anyway: ImageData refuses shared memory), or capture writes RGBA and the compositor copies it.
 *
 *   rgb_expand_ms    copy + widen one 640×360 RGB frame from a SharedArrayBuffer (rgb-expand.ts)
 *   rgba_copy_ms     copy one 640×360 RGBA frame from a SharedArrayBuffer (the alternative)
 *   upload_ms        putImageData of the RGBA frame into a canvas (paid in both cases)
 *   ring_write_*_ms  what the capture side pays per frame to write RGB vs RGBA into its ring
 */
import { createCanvas, ImageData } from '@napi-rs/canvas';
import { rgbToRgba } from '../src/actors/compositor/rgb-expand.js';
import { sig } from './lib/stats.js';
import type { BenchOptions, BenchResult } from './lib/types.js';

function timeIt(iterations: number, fn: () => void): number {
  for (let i = 0; i < Math.min(20, iterations); i++) fn(); // warm up the JIT
  const times: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]; // median: robust to the other work on the machine
}

export async function run({ quick }: BenchOptions): Promise<BenchResult> {
  const w = 640, h = 360, px = w * h;
  const n = quick ? 100 : 500;
  const rgbShared = new Uint8Array(new SharedArrayBuffer(px * 3));
  const rgbaShared = new Uint8Array(new SharedArrayBuffer(px * 4));
  for (let i = 0; i < rgbShared.length; i++) rgbShared[i] = (i * 31) & 255;
  rgbaShared.set(rgbShared.subarray(0, rgbaShared.length > rgbShared.length ? rgbShared.length : rgbaShared.length));
  const privateRgba = new Uint8Array(px * 4);
  const privateRgb = new Uint8Array(px * 3);
  const canvas = createCanvas(w, h);
  const ctx = canvas.getContext('2d');

  const rgbExpand = timeIt(n, () => rgbToRgba(rgbShared, privateRgba, px));
  const rgbaCopy = timeIt(n, () => privateRgba.set(rgbaShared));
  const upload = timeIt(n, () => {
    ctx.putImageData(new ImageData(new Uint8ClampedArray(privateRgba.buffer), w, h), 0, 0);
    ctx.getImageData(0, 0, 1, 1); // rasterise
  });
  const writeRgb = timeIt(n, () => rgbShared.set(privateRgb));
  const writeRgba = timeIt(n, () => rgbaShared.set(privateRgba));
  return {
    figures: {
      rgb_expand_ms: sig(rgbExpand, 3),
      rgba_copy_ms: sig(rgbaCopy, 3),
      upload_ms: sig(upload, 3),
      ring_write_rgb_ms: sig(writeRgb, 3),
      ring_write_rgba_ms: sig(writeRgba, 3),
      frame_bytes_rgb: px * 3,
      frame_bytes_rgba: px * 4,
    },
    baseline: { rgb_expand_ms: sig(rgbaCopy, 3) },
    notes: [
      'Per captured frame shown on air: the compositor widens RGB→RGBA while copying it out of the capture ring (rgb_expand_ms) instead of copying RGBA (rgba_copy_ms).',
      'Capture writing RGBA instead would cost every decoded frame of every stream 4/3 the pipe bytes and ring write (ring_write_rgba_ms vs ring_write_rgb_ms) and the analysis workers 4/3 the reads.',
    ],
  };
}
