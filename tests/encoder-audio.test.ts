/**
 * Audio under the show: silence by default, a looped file or URL at a volume, and a URL that
 * fails keeps the show running with silence (counted). Checked on the output with ffmpeg's
 * volumedetect. Needs the compiled actor: run `npx tsc -p .` first.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildFfmpegArgs, validateEncoderOptions, type EncoderOptions } from '../src/actors/encoder/options.js';
import { AudioSources } from '../src/actors/encoder/audio-sources.js';
import { Redactor } from '../src/actors/encoder/destinations.js';
import pino from 'pino';
import { exec } from './helpers/rtmp-server.js';
import { resolveFfmpeg } from '../src/shared/ffmpeg.js';
import { ffprobe } from './helpers/rtmp-server.js';
import { makeTone, startFedEncoder, volumeOf, type EncoderUnderTest } from './helpers/encoder-actor.js';

const dir = mkdtempSync(join(tmpdir(), 'ringcast-audio-'));
const tone = join(dir, 'tone.m4a');
let enc: EncoderUnderTest | undefined;
let server: Server | undefined;
beforeAll(async () => { await makeTone(tone, 2); });
afterEach(async () => {
  await enc?.stop();
  enc = undefined;
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function record(file: string, o: Partial<EncoderOptions>, ms = 5_000) {
  enc = await startFedEncoder({ outputs: [file], ...o });
  await sleep(ms);
  const stats = await enc.stats();
  const metrics = await enc.supervisor.metrics();
  await enc.stop();
  enc = undefined;
  return { stats, metrics };
}

describe('encoder audio', () => {
  it('the argument list: a file is looped, mixed at the volume and padded with silence; silence stays the default', () => {
    const base: EncoderOptions = { inRing: 'f', width: 320, height: 180, fps: 30, outputs: ['a.mp4'], bitrateKbps: 600, preset: 'ultrafast', keyframeSeconds: 1, encoder: 'libx264', audio: 'silence' };
    const silent = buildFfmpegArgs(base, 'libx264', validateEncoderOptions(base), 0).join(' ');
    expect(silent).toContain('-f lavfi -i anullsrc=channel_layout=stereo:sample_rate=48000 -map 0:v -map 1:a');
    const withFile = { ...base, audio: '/music/loop.mp3', audioVolume: 0.5 };
    const line = buildFfmpegArgs(withFile, 'libx264', validateEncoderOptions(withFile), 0).join(' ');
    expect(line).toContain('-stream_loop -1 -i file:/music/loop.mp3');
    expect(line).toContain('[1:a]volume=0.5,aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo,apad[aout]');
    expect(line).toContain('-map 0:v -map [aout]');
    expect(() => validateEncoderOptions({ ...base, audioVolume: 3 })).toThrow(/"audioVolume" must be a number in 0 \.\. 2/);
  });

  it('default: the output carries an AAC track of silence', async () => {
    const file = join(dir, 'silent.mp4');
    await record(file, {}, 4_000);
    const probe = await ffprobe(file);
    expect(probe.streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
    const v = await volumeOf(file);
    expect(v.max).toBeLessThan(-80);
  });

  it('a tone file, looped past its 2 s length, is heard in the output at about the asked volume', async () => {
    const file = join(dir, 'tone.mp4');
    const { stats } = await record(file, { audio: tone, audioVolume: 1 }, 6_000);
    expect(stats.audio).toBe('file');
    const whole = await volumeOf(file);
    expect(whole.mean).toBeGreaterThan(-30);
    // Looped: the last seconds (past the file's 2 s) are not silent either.
    const probe = await ffprobe(file);
    expect(Number(probe.format?.duration)).toBeGreaterThan(4);
    expect((await volumeOf(file, 3)).mean).toBeGreaterThan(-30);
    const quiet = join(dir, 'tone-quiet.mp4');
    await record(quiet, { audio: tone, audioVolume: 0.1 }, 4_000);
    const q = await volumeOf(quiet);
    // 0.1 is -20 dB.
    expect(whole.max - q.max).toBeGreaterThan(15);
    expect(whole.max - q.max).toBeLessThan(25);
  });

  it('a URL that serves audio is heard', async () => {
    const bytes = readFileSync(tone);
    server = createServer((_req, res) => { res.writeHead(200, { 'content-type': 'audio/mp4', 'content-length': bytes.length }); res.end(bytes); });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const file = join(dir, 'url.mp4');
    const { stats } = await record(file, { audio: `http://127.0.0.1:${port}/tone.m4a` }, 4_000);
    expect(stats.audio).toBe('url');
    expect(stats.audioErrors).toBe(0);
    expect((await volumeOf(file)).mean).toBeGreaterThan(-30);
  });

  it('a URL that fails: the show runs on with silence, the error is logged and counted', async () => {
    // A port nothing listens on.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const file = join(dir, 'fallback.mp4');
    const { stats, metrics } = await record(file, { audio: `http://127.0.0.1:${port}/gone.mp3` }, 5_000);
    expect(stats.audioErrors).toBeGreaterThanOrEqual(1);
    expect(stats.audio).toMatch(/^silence/);
    expect(stats.running).toBe(true);
    expect(metrics).toMatch(/ringcast_encoder_audio_errors_total\{actor="encoder"\} [1-9]/);
    // The first run could not open the URL; the show's file is the next part, with silent audio.
    const part = join(dir, 'fallback.part1.mp4');
    const out = await ffprobe(part).catch(() => ffprobe(file));
    expect(out.streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
    expect(Number(out.format?.duration)).toBeGreaterThan(2);
  });

  it('stream audio: the argument list mixes each captured stream under the show; a URL token is redacted', () => {
    const base: EncoderOptions = { inRing: 'f', width: 320, height: 180, fps: 30, outputs: ['a.mp4'], bitrateKbps: 600, preset: 'ultrafast', keyframeSeconds: 1, encoder: 'libx264', audio: 'silence' };
    const line = buildFfmpegArgs(base, 'libx264', validateEncoderOptions(base), 0, undefined, 'silence', ['http://h/a.m3u8', 'http://h/b.m3u8']).join(' ');
    expect(line).toContain('-i http://h/a.m3u8');
    expect(line).toContain('[1:a]aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo,apad[a1];[2:a]aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo,apad[a2];[a1][a2]amix=inputs=2:duration=first:dropout_transition=0,volume=2[aout]');
    expect(line).not.toContain('anullsrc');
    const redactor = new Redactor();
    const sources = new AudioSources('silence', redactor, pino({ level: 'silent' }));
    expect(sources.setStreams([{ name: 'cam1', url: 'https://usher.example/v.m3u8?sig=abc123&token=secretish' }])).toBe(true);
    expect(sources.setStreams([{ name: 'cam1', url: 'https://usher.example/v.m3u8?sig=abc123&token=secretish' }])).toBe(false);
    expect(redactor.apply('https://usher.example/v.m3u8?sig=abc123&token=secretish: 403 Forbidden')).toBe('https://usher.example/v.m3u8?<redacted>: 403 Forbidden');
    expect(() => sources.setStreams([{ name: 'x', url: 'file:///etc/passwd' }])).toThrow(/http\(s\) "url"/);
  });

  it('stream audio through the actor: a stream that serves audio is heard, one that fails is left out and counted', async () => {
    // A captured stream stand-in: HLS (video + a tone) served over HTTP.
    const hls = join(dir, 'hls');
    const r = await exec(resolveFfmpeg().path, ['-hide_banner', '-y', '-f', 'lavfi', '-i', 'testsrc=size=160x90:rate=15:duration=8', '-f', 'lavfi', '-i', 'sine=frequency=660:sample_rate=48000:duration=8',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '15', '-c:a', 'aac', '-f', 'hls', '-hls_time', '1', '-hls_list_size', '0', '-hls_segment_filename', join(dir, 'hls-%03d.ts'), `${hls}.m3u8`], 60_000);
    expect(r.code, r.stderr).toBe(0);
    server = createServer((req, res) => {
      const name = (req.url ?? '').split('?')[0].slice(1);
      if (!/^hls[-\w.]*$/.test(name)) { res.writeHead(404); res.end(); return; }
      try { const body = readFileSync(join(dir, name)); res.writeHead(200); res.end(body); } catch { res.writeHead(404); res.end(); }
    });
    await new Promise<void>((ok) => server!.listen(0, '127.0.0.1', ok));
    const port = (server.address() as { port: number }).port;
    const file = join(dir, 'streams.mp4');
    enc = await startFedEncoder({ outputs: [file] });
    await sleep(1_500);
    const set = await enc.supervisor.call('encoder', 'setStreamAudio', [[
      { name: 'cam1', url: `http://127.0.0.1:${port}/hls.m3u8?token=abcdef123` },
      { name: 'gone', url: `http://127.0.0.1:${port}/missing.m3u8` },
    ]]);
    expect(set).toEqual({ changed: true });
    await sleep(5_000);
    const stats = await enc.stats();
    expect(stats.streamAudio).toEqual([{ name: 'cam1', active: true }, { name: 'gone', active: false }]);
    expect(stats.audioErrors).toBeGreaterThanOrEqual(1);
    expect(stats.running).toBe(true);
    await enc.stop();
    enc = undefined;
    // part 0: silence before the streams were set; part 1: the run with cam1's tone.
    expect((await volumeOf(file)).max).toBeLessThan(-80);
    expect((await volumeOf(join(dir, 'streams.part1.mp4'))).mean).toBeGreaterThan(-30);
  }, 60_000);
});
