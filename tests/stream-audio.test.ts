/**
 * A captured stream's audio under the show: a scene video layer with `"audio": true` makes the
 * encoder mix that stream's audio in. The layer rules alone, then the real service with a
 * local HLS playlist (a tone) as the stream, checked on the output with volumedetect.
 * Needs `npx tsc -p .` first.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { streamsWithAudio } from '../src/services/stream-audio/service.js';
import { resolveFfmpeg } from '../src/shared/ffmpeg.js';
import type { EncoderStats } from '../src/actors/encoder/index.js';
import { ADMIN_TOKEN, startHarness, type Harness } from './helpers/service-harness.js';
import { exec } from './helpers/rtmp-server.js';
import { volumeOf } from './helpers/encoder-actor.js';

const dir = mkdtempSync(path.join(tmpdir(), 'ringcast-stream-audio-'));
let h: Harness | undefined;
afterAll(async () => {
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('stream audio: which layers', () => {
  it('visible video layers with audio: true, by stream name ({capture} or a string); playlists only; no repeats; at most 4', () => {
    const skipped: string[] = [];
    const layers = [
      { id: 'a', type: 'video', props: { source: { capture: 'https://cdn.example/a.m3u8' }, audio: true } },
      { id: 'b', type: 'video', props: { source: '/streams/b.m3u8', audio: true } },
      { id: 'c', type: 'video', props: { source: '/streams/c.m3u8' } },
      { id: 'd', type: 'video', visible: false, props: { source: '/streams/d.m3u8', audio: true } },
      { id: 'e', type: 'video', props: { source: { capture: 'some_twitch_channel' }, audio: true } },
      { id: 'f', type: 'image', props: { source: '/streams/f.m3u8', audio: true } },
      { id: 'a2', type: 'video', props: { source: { capture: 'https://cdn.example/a.m3u8' }, audio: true } },
    ];
    expect(streamsWithAudio({ layers }, (n) => skipped.push(n))).toEqual([
      { name: 'https://cdn.example/a.m3u8', url: 'https://cdn.example/a.m3u8' },
      { name: '/streams/b.m3u8', url: '/streams/b.m3u8' },
    ]);
    expect(skipped).toEqual(['some_twitch_channel']);
    const many = Array.from({ length: 6 }, (_, i) => ({ id: `v${i}`, type: 'video', props: { source: `/s/${i}.m3u8`, audio: true } }));
    expect(streamsWithAudio({ layers: many })).toHaveLength(4);
    expect(streamsWithAudio(undefined)).toEqual([]);
  });
});

describe('stream audio through the service', () => {
  it('a video layer with audio: true brings its stream\'s tone into the output; silence before', async () => {
    const playlist = path.join(dir, 'cam.m3u8');
    const r = await exec(resolveFfmpeg().path, ['-hide_banner', '-y', '-f', 'lavfi', '-i', 'testsrc=size=160x90:rate=15:duration=20', '-f', 'lavfi', '-i', 'sine=frequency=660:sample_rate=48000:duration=20',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '15', '-c:a', 'aac', '-f', 'hls', '-hls_time', '1', '-hls_list_size', '0', '-hls_segment_filename', path.join(dir, 'cam-%03d.ts'), playlist], 60_000);
    expect(r.code, r.stderr).toBe(0);
    const out = path.join(dir, 'show.mp4');
    h = await startHarness(['--output', out, '--compose-width', '320', '--compose-height', '180', '--x264-preset', 'ultrafast', '--no-capture', '--no-clips']);
    const base = `http://127.0.0.1:${h.service.port}`;
    await new Promise((ok) => setTimeout(ok, 2_500));
    const layer = { id: 'cam', type: 'video', width: 160, height: 90, transform: { x: 0, y: 0 }, props: { source: playlist, audio: true } };
    const res = await fetch(`${base}/api/scene/layers`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(layer) });
    expect(res.status, await res.text()).toBe(201);
    const deadline = Date.now() + 10_000;
    let stats: EncoderStats | undefined;
    while (Date.now() < deadline) {
      stats = (await h.service.supervisor.call('encoder', 'stats')) as EncoderStats;
      if (stats.streamAudio.length > 0) break;
      await new Promise((ok) => setTimeout(ok, 200));
    }
    expect(stats!.streamAudio).toEqual([{ name: playlist, active: true }]);
    await new Promise((ok) => setTimeout(ok, 5_000));
    await h.close();
    h = undefined;
    expect((await volumeOf(out)).max).toBeLessThan(-80); // before the layer asked for audio
    expect((await volumeOf(path.join(dir, 'show.part1.mp4'))).mean).toBeGreaterThan(-30);
  }, 90_000);
});
