/**
 * ffmpeg binary resolution order and the hardware-encoder probe on this machine.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FfmpegNotFoundError, ffmpegAvailability, ffmpegFeatures, h264EncoderArgs, listEncoders, parseEncoderList, passthroughFrameRateArgs, probeHardwareEncoders, resolveFfmpeg, resolveFfprobe, trialEncode } from '../src/shared/ffmpeg.js';

const dir = mkdtempSync(join(tmpdir(), 'ringcast-ffmpeg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A stand-in binary that answers `-version` like the real tool (or fails, when `works` is false). */
function fakeBinary(sub: string, name: string, works = true, tool = name.includes('probe') ? 'ffprobe' : 'ffmpeg'): string {
  const d = join(dir, sub);
  const path = join(d, name);
  writeFileSync(path, works ? `#!/bin/sh\necho "${tool} version fake-${sub} Copyright"\nexit 0\n` : '#!/bin/sh\necho "Illegal instruction" >&2\nexit 132\n', { flag: 'w' });
  chmodSync(path, 0o755);
  return path;
}

for (const sub of ['env', 'installer', 'bin', 'broken', 'empty', 'probes']) mkdirSync(join(dir, sub), { recursive: true });

const none = () => undefined;

describe('resolveFfmpeg', () => {
  const envBin = fakeBinary('env', 'my-ffmpeg');
  const installerBin = fakeBinary('installer', 'ffmpeg');
  const pathBin = fakeBinary('bin', 'ffmpeg');
  const brokenBin = fakeBinary('broken', 'ffmpeg', false);
  const modules = (m: Record<string, unknown>) => (name: string) => m[name];
  const npm = modules({ '@ffmpeg-installer/ffmpeg': { path: installerBin, version: '4.1' } });

  it('FFMPEG_PATH wins over PATH and the npm package', () => {
    const r = resolveFfmpeg({ env: { FFMPEG_PATH: envBin, PATH: join(dir, 'bin') }, loadModule: npm });
    expect(r).toEqual({ path: envBin, source: 'env', version: 'fake-env' });
  });

  it('then a working system ffmpeg on PATH, then the npm one', () => {
    expect(resolveFfmpeg({ env: { PATH: join(dir, 'bin') }, loadModule: npm })).toEqual({ path: pathBin, source: 'system', version: 'fake-bin' });
    expect(resolveFfmpeg({ env: { PATH: join(dir, 'empty') }, loadModule: npm })).toEqual({ path: installerBin, source: 'npm', version: 'fake-installer' });
  });

  it('a system ffmpeg that does not run (-version fails) is skipped for the npm one; so is an empty PATH entry', () => {
    const env = { PATH: `:${join(dir, 'empty')}:${join(dir, 'broken')}` };
    expect(resolveFfmpeg({ env, loadModule: npm })).toEqual({ path: installerBin, source: 'npm', version: 'fake-installer' });
  });

  it('an npm package whose binary is missing or broken is skipped, and named in the error', () => {
    expect(() => resolveFfmpeg({ env: { PATH: join(dir, 'broken') }, loadModule: modules({ '@ffmpeg-installer/ffmpeg': { path: join(dir, 'installer', 'missing') } }) }))
      .toThrow(new RegExp(`ffmpeg not found \\(skipped: ${brokenBin} -version exited 132; ${join(dir, 'installer', 'missing')} is not an executable file; run \`npm install\``));
  });

  it('a FFMPEG_PATH that does not run is the answer (named, with the fix), not a silent fall-through', () => {
    expect(() => resolveFfmpeg({ env: { FFMPEG_PATH: '/nope/ffmpeg', PATH: join(dir, 'bin') }, loadModule: npm }))
      .toThrow(/ffmpeg not found \(FFMPEG_PATH=\/nope\/ffmpeg does not run: \/nope\/ffmpeg is not an executable file; point FFMPEG_PATH at a working ffmpeg/);
    expect(() => resolveFfmpeg({ env: { FFMPEG_PATH: brokenBin, PATH: join(dir, 'bin') }, loadModule: npm })).toThrow(/-version exited 132/);
  });

  it('nothing anywhere → FfmpegNotFoundError with how to fix it; ffmpegAvailability reports it instead of throwing', () => {
    expect(() => resolveFfmpeg({ env: { PATH: join(dir, 'empty') }, loadModule: none })).toThrow(FfmpegNotFoundError);
    expect(() => resolveFfmpeg({ env: { PATH: join(dir, 'empty') }, loadModule: none })).toThrow(/ffmpeg not found \(none on PATH, no @ffmpeg-installer\/ffmpeg; run `npm install`.*apt-get install ffmpeg.*FFMPEG_PATH/);
    const a = ffmpegAvailability({ env: { PATH: join(dir, 'empty') }, loadModule: none });
    expect(a.ok).toBe(false);
    expect(!a.ok && a.reason).toMatch(/^ffmpeg not found \(/);
  });

  it('ffprobe: FFPROBE_PATH, then PATH, then @ffprobe-installer/ffprobe', () => {
    const probe = fakeBinary('bin', 'ffprobe');
    const npmProbe = fakeBinary('probes', 'ffprobe');
    const load = modules({ '@ffprobe-installer/ffprobe': { path: npmProbe } });
    expect(resolveFfprobe({ env: { FFPROBE_PATH: probe, PATH: join(dir, 'empty') }, loadModule: load })).toEqual({ path: probe, source: 'env', version: 'fake-bin' });
    expect(resolveFfprobe({ env: { PATH: join(dir, 'bin') }, loadModule: load })).toEqual({ path: probe, source: 'system', version: 'fake-bin' });
    expect(resolveFfprobe({ env: { PATH: join(dir, 'empty') }, loadModule: load })).toEqual({ path: npmProbe, source: 'npm', version: 'fake-probes' });
    expect(() => resolveFfprobe({ env: { PATH: join(dir, 'empty') }, loadModule: none })).toThrow(/ffprobe not found/);
  });

  it('on this machine: the system ffmpeg when /usr/bin/ffmpeg runs, else the npm one (which runs)', () => {
    const r = resolveFfmpeg();
    if (process.env.FFMPEG_PATH) expect(r.source).toBe('env');
    else if (spawnSync('/usr/bin/ffmpeg', ['-version']).status === 0) expect(r).toMatchObject({ path: '/usr/bin/ffmpeg', source: 'system' });
    else expect(r).toMatchObject({ source: 'npm', path: expect.stringMatching(/node_modules\/@ffmpeg-installer\//) });
    expect(r.version).toMatch(/^\S+$/);
    expect(resolveFfmpeg()).toBe(r); // cached
    const probe = resolveFfprobe();
    expect(spawnSync(probe.path, ['-version']).status).toBe(0);
  });

  it('reads which newer options the build knows (-fps_mode, -stats_period) and spells passthrough accordingly', () => {
    const f = ffmpegFeatures(resolveFfmpeg().path);
    const help = spawnSync(resolveFfmpeg().path, ['-hide_banner', '-h', 'long'], { encoding: 'utf8' }).stdout;
    expect(f).toEqual({ fpsMode: help.includes('\n-fps_mode '), statsPeriod: help.includes('\n-stats_period ') });
    expect(passthroughFrameRateArgs({ fpsMode: true, statsPeriod: true })).toEqual(['-fps_mode', 'passthrough']);
    expect(passthroughFrameRateArgs({ fpsMode: false, statsPeriod: false })).toEqual(['-vsync', 'passthrough']);
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
    // Debian's ffmpeg lists nvenc/vaapi/qsv (the npm build lists none); this box has no GPU and no /dev/dri.
    if (resolveFfmpeg().source === 'system') expect(listed.has('h264_nvenc')).toBe(true);
    expect(probe.working).toEqual([]);
    expect(probe.chosen).toBe('libx264');
    expect(await probeHardwareEncoders()).toBe(probe); // cached: trials run once per process
    // And libx264 passes the same trial the probe uses.
    expect(await trialEncode('libx264')).toMatchObject({ name: 'libx264', ok: true });
  }, 30_000);
});
