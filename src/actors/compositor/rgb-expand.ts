/**
 * Packed RGB24 → straight RGBA (alpha 255), the one copy a captured frame takes on its way
 * from the capture ring to the renderer (Skia's ImageData wants RGBA and refuses shared memory,
 * so a copy out of the ring is needed either way; it widens the pixels as it goes).
 *
 * Why capture stays RGB24 (`npm run bench -- video-upload`, bench/reports/video-upload.json):
 * widening a 640×360 frame costs ~0.2–0.5 ms where copying an RGBA one would cost ~0.03 ms, but
 * it is paid only for frames a scene shows (a few per second: one per shown stream per capture
 * interval), while RGBA capture would make every decode pipe, ring write and analysis read of
 * every stream a third bigger. Per second of show the widening is well under 0.1 % of a core.
 */
export function rgbToRgba(src: Uint8Array, dst: Uint8Array, pixels: number): void {
  const out = new Uint32Array(dst.buffer, dst.byteOffset, pixels);
  let p = 0;
  // Aligned fast path: 3 little-endian source words hold 4 pixels.
  if (src.byteOffset % 4 === 0) {
    const words = Math.floor(pixels / 4);
    const inp = new Uint32Array(src.buffer, src.byteOffset, words * 3);
    for (let w = 0, i = 0; w < words; w++, i += 3) {
      const a = inp[i], b = inp[i + 1], c = inp[i + 2];
      out[p++] = (a | 0xff000000) >>> 0;
      out[p++] = ((a >>> 24) | ((b & 0xffff) << 8) | 0xff000000) >>> 0;
      out[p++] = ((b >>> 16) | ((c & 0xff) << 16) | 0xff000000) >>> 0;
      out[p++] = ((c >>> 8) | 0xff000000) >>> 0;
    }
  }
  for (let s = p * 3; p < pixels; p++, s += 3) {
    out[p] = (src[s] | (src[s + 1] << 8) | (src[s + 2] << 16) | 0xff000000) >>> 0;
  }
}
