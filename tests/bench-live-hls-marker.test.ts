// The per-content mark the capture benchmark checks each captured frame against (bench/lib/live-hls.ts).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeSegments, readMarker } from '../bench/lib/live-hls.js';
import { resolveFfmpeg } from '../src/shared/ffmpeg.js';

const dir = mkdtempSync(path.join(tmpdir(), 'ringcast-marker-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The first picture of a segment, scaled as the capture benchmark scales it, as RGB24. */
function firstFrame(file: string, w: number, h: number): Uint8Array {
  const r = spawnSync(resolveFfmpeg().path, ['-hide_banner', '-loglevel', 'error', '-i', file, '-frames:v', '1', '-vf', `scale=${w}:${h}`, '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], { maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`ffmpeg: ${r.stderr.toString()}`);
  return new Uint8Array(r.stdout);
}

describe('segment marks', () => {
  it('reads back the mark an encode carries, through noise, compression and scaling', async () => {
    const a = await encodeSegments({ dir, width: 852, height: 480, fps: 30, bitrateKbps: 1400, noise: 8, segments: 1, marker: 0xa5 });
    const b = await encodeSegments({ dir, width: 852, height: 480, fps: 30, bitrateKbps: 1400, noise: 8, segments: 1, marker: 0x3c });
    expect(a[0]).not.toBe(b[0]); // distinct content, distinct cache entries
    expect(readMarker(firstFrame(a[0], 640, 360), 640, 360)).toBe(0xa5);
    expect(readMarker(firstFrame(b[0], 640, 360), 640, 360)).toBe(0x3c);
    expect(readMarker(firstFrame(a[0], 852, 480), 852, 480)).toBe(0xa5);
  }, 120_000);

  it('reads no mark from a picture without clear black and white cells, and refuses a mark out of range', async () => {
    const grey = new Uint8Array(640 * 360 * 3).fill(128);
    expect(readMarker(grey, 640, 360)).toBe(-1);
    expect(readMarker(new Uint8Array(10), 640, 360)).toBe(-1); // truncated frame
    await expect(encodeSegments({ dir, width: 852, height: 480, marker: 256 })).rejects.toThrow(/marker must be an integer in 0\.\.255/);
  });
});
