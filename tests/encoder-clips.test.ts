/**
 * Instant-replay clips in the encoder actor: the segment buffer next to a real output, clips
 * cut from it without re-encoding (valid MP4s of the asked length within one keyframe
 * interval, by ffprobe), the 409 cases, the buffer and storage bounds.
 * Needs the compiled actor: run `npx tsc -p .` first.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { ClipResult } from '../src/actors/encoder/clips.js';
import { enforceClipBounds, listClips } from '../src/shared/clip-library.js';
import { ffprobe, keyframeTimes } from './helpers/rtmp-server.js';
import { startFedEncoder, type EncoderUnderTest } from './helpers/encoder-actor.js';

const dir = mkdtempSync(join(tmpdir(), 'ringcast-clips-'));
let enc: EncoderUnderTest | undefined;
afterEach(async () => {
  await enc?.stop();
  enc = undefined;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const clip = async (e: EncoderUnderTest, before_s: number, after_s: number, title?: string) =>
  (await e.supervisor.call('encoder', 'clip', [{ before_s, after_s, title }], (after_s + 30) * 1000)) as ClipResult;

describe('encoder clips', () => {
  it('cuts keyframe-aligned MP4s of the asked length from the buffer; too early is a 409; the buffer stays bounded', async () => {
    const clipsDir = join(dir, 'a');
    const keyframeSeconds = 1;
    enc = await startFedEncoder({ outputs: [join(dir, 'a.mp4')], keyframeSeconds, clips: { dir: clipsDir, bufferSeconds: 6, maxCount: 2, maxBytes: 100 << 20 } });
    await sleep(2_500);
    const early = await clip(enc, 5, 1);
    expect(early).toMatchObject({ ok: false, status: 409, error: expect.stringMatching(/clip buffer holds \d+\.\d s .*before_s=5 needs/) });
    await sleep(9_000);
    const made = await clip(enc, 4, 1, 'the big moment');
    if (!made.ok) throw new Error(made.error);
    expect(made.clip).toMatchObject({ title: 'the big moment', id: expect.stringMatching(/^clip-/) });
    expect(Math.abs(made.clip.duration_s - 5)).toBeLessThanOrEqual(keyframeSeconds);
    const file = join(clipsDir, `${made.clip.id}.mp4`);
    const probe = await ffprobe(file);
    expect(probe.format?.format_name).toMatch(/mp4/);
    expect(probe.streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
    const duration = Number(probe.format?.duration);
    expect(Math.abs(duration - 5)).toBeLessThanOrEqual(keyframeSeconds);
    expect(Math.abs(duration - made.clip.duration_s)).toBeLessThan(0.2);
    // Starts on a keyframe (no re-encode: copied segments begin with one).
    const { keys } = await keyframeTimes(file);
    expect(keys[0]).toBeLessThan(0.05);
    expect((await listClips(clipsDir)).map((c) => c.id)).toEqual([made.clip.id]);
    // More than the buffer holds: 409.
    const tooLong = await clip(enc, 30, 0);
    expect(tooLong).toMatchObject({ ok: false, status: 409 });
    // Bounded: about bufferSeconds + one keyframe interval of segments on disk, the rest pruned.
    const all = await enc.stats();
    // Through the tee ffmpeg reports no bitrate; the segments on disk give it (600 kbit/s asked).
    expect(all.health.bitrateKbps).toBeGreaterThan(100);
    const stats = all.clips!;
    expect(stats.bufferedSeconds).toBeLessThanOrEqual(6 + 2 * keyframeSeconds);
    const runDirs = readdirSync(join(clipsDir, '.buffer'));
    const segs = runDirs.flatMap((d) => readdirSync(join(clipsDir, '.buffer', d)).filter((f) => f.endsWith('.ts')));
    expect(segs.length).toBeLessThanOrEqual(6 / keyframeSeconds + 3);
    expect(await enc.supervisor.metrics()).toMatch(/ringcast_clips_segments_pruned_total\{actor="encoder"\} [1-9]/);
    // Bounded storage: maxCount 2, so a third clip deletes the oldest, counted.
    const second = await clip(enc, 2, 0, 'second');
    const third = await clip(enc, 2, 0, 'third');
    expect(second.ok && third.ok).toBe(true);
    expect((await listClips(clipsDir)).map((c) => c.title)).toEqual(['second', 'third']);
    expect(existsSync(file)).toBe(false);
    expect(existsSync(join(clipsDir, `${made.clip.id}.json`))).toBe(false);
    expect(await enc.supervisor.metrics()).toMatch(/ringcast_clips_deleted_total\{actor="encoder"\} 1\b/);
    await enc.stop();
    enc = undefined;
    // The buffer goes with the encoder; the clips stay.
    expect(existsSync(join(clipsDir, '.buffer'))).toBe(false);
    expect((await listClips(clipsDir)).length).toBe(2);
  });

  it('storage bound by bytes: the oldest clips go until the rest fit', async () => {
    const d = join(dir, 'bytes');
    mkdirSync(d);
    const put = (id: string, at: string, bytes: number) => {
      writeFileSync(join(d, `${id}.mp4`), Buffer.alloc(bytes));
      writeFileSync(join(d, `${id}.json`), JSON.stringify({ id, title: id, started_at: at, duration_s: 1, bytes }));
    };
    put('clip-20260101-000001-aaaaaa', '2026-01-01T00:00:01.000Z', 400);
    put('clip-20260101-000002-bbbbbb', '2026-01-01T00:00:02.000Z', 400);
    put('clip-20260101-000003-cccccc', '2026-01-01T00:00:03.000Z', 400);
    writeFileSync(join(d, 'notes.json'), '{}'); // not a clip: never listed, never deleted
    expect(await enforceClipBounds(d, 10, 900)).toBe(1);
    expect((await listClips(d)).map((c) => c.title)).toEqual(['clip-20260101-000002-bbbbbb', 'clip-20260101-000003-cccccc']);
    expect(existsSync(join(d, 'clip-20260101-000001-aaaaaa.mp4'))).toBe(false);
    expect(existsSync(join(d, 'notes.json'))).toBe(true);
  });
});
