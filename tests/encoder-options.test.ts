/**
 * Encoder option validation, the ffmpeg command line it builds, part naming after
 * restarts, and the -progress parser.
 */
import { describe, expect, it } from 'vitest';
import { buildFfmpegArgs, classifyOutput, firstPart, partName, validateEncoderOptions, type EncoderOptions } from '../src/actors/encoder/options.js';
import { ProgressParser } from '../src/actors/encoder/progress.js';

const base: EncoderOptions = {
  inRing: 'frames', width: 1280, height: 720, fps: 30, outputs: ['rtmp://live.example/app/key'], bitrateKbps: 4500,
  preset: 'veryfast', keyframeSeconds: 2, encoder: 'auto', audio: 'silence',
};

describe('encoder options', () => {
  it('classifies outputs and refuses what it cannot write, naming it', () => {
    expect(classifyOutput('rtmps://x/app/k', 2)).toMatchObject({ kind: 'rtmp', format: 'flv' });
    expect(classifyOutput('/tmp/a.MP4', 2)).toMatchObject({ kind: 'file', format: 'mp4' });
    expect(classifyOutput('a.mkv', 2)).toMatchObject({ kind: 'file', format: 'matroska' });
    expect(classifyOutput('hls/live.m3u8', 4)).toMatchObject({ kind: 'hls', format: 'hls', options: expect.arrayContaining(['hls_time=4']) });
    expect(() => classifyOutput('srt://x:9000', 2)).toThrow(/output "srt:\/\/x:9000": only rtmp/);
    expect(() => classifyOutput('out.avi', 2)).toThrow(/output "out.avi": unknown kind/);
    expect(() => classifyOutput('a|b.mp4', 2)).toThrow(/contains '\|'/);
  });

  it('validates every field with a message naming it', () => {
    expect(validateEncoderOptions(base)).toHaveLength(1);
    expect(() => validateEncoderOptions({ ...base, width: 1279 })).toThrow(/must be even/);
    expect(() => validateEncoderOptions({ ...base, fps: 0 })).toThrow(/"fps" must be an integer/);
    expect(() => validateEncoderOptions({ ...base, preset: 'warp' })).toThrow(/unknown preset "warp"/);
    expect(() => validateEncoderOptions({ ...base, keyframeSeconds: 0 })).toThrow(/"keyframeSeconds"/);
    expect(() => validateEncoderOptions({ ...base, audio: '' })).toThrow(/"audio" must be 'silence', 'none', a file path or an http\(s\) URL/);
    expect(() => validateEncoderOptions({ ...base, outputs: [] })).toThrow(/"outputs" must list at least one target/);
    expect(() => validateEncoderOptions({ ...base, encoder: 'x; rm -rf' })).toThrow(/"encoder" must be 'auto' or an ffmpeg encoder name/);
  });

  it('one output: the muxer directly, rawvideo from the pipe, GOP = fps x keyframeSeconds', () => {
    const args = buildFfmpegArgs(base, 'libx264', validateEncoderOptions(base), 0);
    const line = args.join(' ');
    expect(line).toContain('-f rawvideo -pix_fmt rgba -s 1280x720 -framerate 30 -thread_queue_size 4 -i pipe:0');
    expect(line).toContain('-f lavfi -i anullsrc=channel_layout=stereo:sample_rate=48000');
    expect(line).toContain('-c:v libx264 -preset veryfast -tune zerolatency -g 60 -keyint_min 60 -sc_threshold 0 -b:v 4500k');
    expect(line).toContain('-c:a aac');
    expect(line).toContain('-progress pipe:2');
    expect(args.slice(-5)).toEqual(['-f', 'flv', '-flvflags', 'no_duration_filesize', 'rtmp://live.example/app/key']);
    expect(args).not.toContain('tee');
    expect(args[0]).toBe('-y');
  });

  it('several outputs: one tee, RTMP aborts (→ restart), files ignore failures; restarts write .partN files and append HLS', () => {
    const o = { ...base, outputs: ['rtmp://a/live/k', '/rec/show.mp4', '/www/live.m3u8'], audio: 'none' as const };
    const outs = validateEncoderOptions(o);
    const first = buildFfmpegArgs(o, 'libx264', outs, 0);
    expect(first).not.toContain('anullsrc=channel_layout=stereo:sample_rate=48000');
    expect(first.slice(-4, -1)).toEqual(['+global_header', '-f', 'tee']);
    expect(first.at(-1)).toBe('[f=flv:onfail=ignore:flvflags=no_duration_filesize]rtmp://a/live/k|[f=mp4:onfail=ignore]/rec/show.mp4|'
      + '[f=hls:onfail=ignore:hls_time=2:hls_list_size=10:hls_flags=delete_segments+independent_segments]/www/live.m3u8');
    const third = buildFfmpegArgs(o, 'libx264', outs, 2);
    expect(third.at(-1)).toContain('[f=mp4:onfail=ignore]/rec/show.part2.mp4');
    expect(third.at(-1)).toContain('hls_flags=delete_segments+independent_segments+append_list+discont_start]/www/live.m3u8');
  });

  it('part names; a restarted actor continues after the parts on disk', () => {
    expect(partName('/rec/show.mp4', 0)).toBe('/rec/show.mp4');
    expect(partName('/rec/show.mp4', 3)).toBe('/rec/show.part3.mp4');
    const outs = validateEncoderOptions({ ...base, outputs: ['/rec/show.mp4'] });
    const disk = new Set(['/rec/show.mp4', '/rec/show.part1.mp4', '/rec/show.part2.mp4']);
    expect(firstPart(outs, 0, (p) => disk.has(p))).toBe(0);
    expect(firstPart(outs, 1, (p) => disk.has(p))).toBe(3);
  });
});

describe('ffmpeg -progress parser', () => {
  it('reads report blocks split anywhere, keeps log lines bounded', () => {
    const reports: number[] = [];
    const p = new ProgressParser((h) => reports.push(h.frame), 3);
    const text = [
      '[libx264 @ 0x1] using cpu capabilities: MMX2', 'frame=30', 'fps=29.97', 'stream_0_0_q=23.0', 'bitrate= 812.4kbits/s',
      'total_size=102400', 'out_time_us=1000000', 'dup_frames=0', 'drop_frames=2', 'speed=1.01x', 'progress=continue',
      'warn a', 'warn b', 'warn c', 'frame=60', 'bitrate=N/A', 'speed=N/A', 'progress=end', '',
    ].join('\n');
    for (let i = 0; i < text.length; i += 7) p.push(text.slice(i, i + 7));
    expect(reports).toEqual([30, 60]);
    expect(p.health).toMatchObject({ frame: 60, fps: 29.97, bitrateKbps: 0, totalBytes: 102400, outTimeS: 1, dropFrames: 2, speed: 0, reports: 2 });
    expect(p.log()).toEqual(['warn a', 'warn b', 'warn c']);
  });
});
