/**
 * ffmpeg binary resolution order and the hardware-encoder probe on this machine.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FfmpegNotFoundError, h264EncoderArgs, listEncoders, parseEncoderList, probeHardwareEncoders, resolveFfmpeg, resolveFfprobe, trialEncode } from '../src/shared/ffmpeg.js';

const dir = mkdtempSync(join(tmpdir(), 'ringcast-ffmpeg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fakeBinary(sub: string, name: string): string {
  const d = join(dir, sub);
  const path = join(d, name);
  writeFileSync(path, '#!/bin/sh\nexit 0\n', { flag: 'w' });
  chmodSync(path, 0o755);
  return path;
}

for (const sub of ['env', 'static', 'installer', 'bin', 'empty']) mkdirSync(join(dir, sub), { recursive: true });

const none = () => undefined;

describe('resolveFfmpeg', () => {
  const envBin = fakeBinary('env', 'my-ffmpeg');
  const staticBin = fakeBinary('static', 'ffmpeg');
  const installerBin = fakeBinary('installer', 'ffmpeg');
  const pathBin = fakeBinary('bin', 'ffmpeg');
  const modules = (m: Record<string, unknown>) => (name: string) => m[name];

  it('FFMPEG_PATH wins over packages and PATH', () => {
    const r = resolveFfmpeg({ env: { FFMPEG_PATH: envBin, PATH: join(dir, 'bin') }, loadModule: modules({ 'ffmpeg-static': staticBin }) });
    expect(r).toEqual({ path: envBin, source: 'env' });
  });

  it('then ffmpeg-static, then @ffmpeg-installer/ffmpeg, then PATH', () => {
    const env = { PATH: join(dir, 'bin') };
    expect(resolveFfmpeg({ env, loadModule: modules({ 'ffmpeg-static': staticBin, '@ffmpeg-installer/ffmpeg': { path: installerBin } }) }))
      .toEqual({ path: staticBin, source: 'ffmpeg-static' });
    expect(resolveFfmpeg({ env, loadModule: modules({ '@ffmpeg-installer/ffmpeg': { path: installerBin, version: '6' } }) }))
      .toEqual({ path: installerBin, source: '@ffmpeg-installer/ffmpeg' });
    expect(resolveFfmpeg({ env, loadModule: none })).toEqual({ path: pathBin, source: 'path' });
  });

  it('skips a package whose binary was never downloaded, and an empty PATH entry', () => {
    const env = { PATH: `:${join(dir, 'empty')}:${join(dir, 'bin')}` };
    expect(resolveFfmpeg({ env, loadModule: modules({ 'ffmpeg-static': join(dir, 'static', 'missing') }) })).toEqual({ path: pathBin, source: 'path' });
  });

  it('a bad FFMPEG_PATH is an error naming it, not a silent fall-through', () => {
    expect(() => resolveFfmpeg({ env: { FFMPEG_PATH: '/nope/ffmpeg', PATH: join(dir, 'bin') }, loadModule: none }))
      .toThrow(/FFMPEG_PATH=\/nope\/ffmpeg is not an executable file/);
  });

  it('nothing anywhere → FfmpegNotFoundError listing the options', () => {
    expect(() => resolveFfmpeg({ env: { PATH: join(dir, 'empty') }, loadModule: none })).toThrow(FfmpegNotFoundError);
    expect(() => resolveFfmpeg({ env: { PATH: join(dir, 'empty') }, loadModule: none })).toThrow(/FFMPEG_PATH.*ffmpeg-static.*PATH/);
  });

  it('ffprobe: FFPROBE_PATH, then PATH', () => {
    const probe = fakeBinary('bin', 'ffprobe');
    expect(resolveFfprobe({ env: { FFPROBE_PATH: envBin, PATH: join(dir, 'bin') } })).toEqual({ path: envBin, source: 'env' });
    expect(resolveFfprobe({ env: { PATH: join(dir, 'bin') } })).toEqual({ path: probe, source: 'path' });
    expect(() => resolveFfprobe({ env: { PATH: join(dir, 'empty') } })).toThrow(/ffprobe not found/);
  });

  it('on this machine (no override, no npm package): Debian ffmpeg from PATH', () => {
    const r = resolveFfmpeg();
    expect(r.path).toBe(process.env.FFMPEG_PATH ?? '/usr/bin/ffmpeg');
    expect(resolveFfmpeg()).toBe(r); // cached
  });
});

describe('encoders', () => {
  it('parses the -encoders table', () => {
    const list = parseEncoderList([
      'Encoders:', ' V..... = Video', ' ------',
      ' V....D libx264              libx264 H.264 / AVC / MPEG-4 AVC',
      ' A..... aac                  AAC (Advanced Audio Coding)',
      ' V....D h264_nvenc           NVIDIA NVENC H.264 encoder (codec h264)',
    ].join('\n'));
    expect(list).toEqual([
      { name: 'libx264', kind: 'video', description: 'libx264 H.264 / AVC / MPEG-4 AVC' },
      { name: 'aac', kind: 'audio', description: 'AAC (Advanced Audio Coding)' },
      { name: 'h264_nvenc', kind: 'video', description: 'NVIDIA NVENC H.264 encoder (codec h264)' },
    ]);
  });

  it('maps presets per encoder and rejects unknown ones', () => {
    const s = { fps: 30, bitrateKbps: 2500, preset: 'veryfast', keyframeSeconds: 2 };
    expect(h264EncoderArgs('libx264', s).codec).toEqual(expect.arrayContaining(['-preset', 'veryfast', '-g', '60', '-keyint_min', '60', '-sc_threshold', '0', '-b:v', '2500k']));
    expect(h264EncoderArgs('h264_nvenc', s).codec).toEqual(expect.arrayContaining(['-preset', 'p2', '-g', '60']));
    expect(h264EncoderArgs('h264_vaapi', s)).toMatchObject({ global: ['-vaapi_device', '/dev/dri/renderD128'], filter: 'format=nv12,hwupload' });
    expect(() => h264EncoderArgs('libx264', { ...s, preset: 'ludicrous' })).toThrow(/unknown preset "ludicrous"; use one of ultrafast/);
  });

  it('probe on this machine: listed hardware encoders fail their trial, so libx264 is chosen', async () => {
    const listed = new Set((await listEncoders()).map((e) => e.name));
    expect(listed.has('libx264')).toBe(true);
    const probe = await probeHardwareEncoders();
    expect(probe.trials.map((t) => t.name)).toEqual(['h264_nvenc', 'h264_vaapi', 'h264_qsv']);
    for (const trial of probe.trials) {
      expect(trial.listed).toBe(listed.has(trial.name));
      // The probe never claims an encoder whose trial did not succeed.
      if (!trial.ok) expect(probe.working).not.toContain(trial.name);
      if (trial.listed && !trial.ok) expect(trial.error).toMatch(/exit/);
    }
    // Debian's ffmpeg lists nvenc/vaapi/qsv; this box has no GPU and no /dev/dri.
    expect(listed.has('h264_nvenc')).toBe(true);
    expect(probe.working).toEqual([]);
    expect(probe.chosen).toBe('libx264');
    expect(await probeHardwareEncoders()).toBe(probe); // cached: trials run once per process
    // And libx264 passes the same trial the probe uses.
    expect(await trialEncode('libx264')).toMatchObject({ name: 'libx264', ok: true });
  }, 30_000);
});
