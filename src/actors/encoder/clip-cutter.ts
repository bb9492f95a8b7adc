/**
 * Cuts a clip from buffered segments without re-encoding: ffmpeg's concat demuxer over the
 * segment files, `-c copy` into MP4 (faststart, so a browser can play it while loading). Runs
 * as a child process, so neither this worker nor the main thread does the work.
 */
import { spawn } from 'node:child_process';
import { rename, rm, stat, writeFile } from 'node:fs/promises';
import { clipFile, clipInfoFile, type ClipInfo } from '../../shared/clip-library.js';
import type { Segment } from './clip-buffer.js';

export interface CutRequest {
  id: string;
  title: string;
  startedAt: Date;
  segments: Segment[];
  dir: string;
  ffmpegPath: string;
  timeoutMs: number;
}

function run(ffmpegPath: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(ffmpegPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => { stderr = (stderr + d).slice(-4000); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => { clearTimeout(timer); resolve({ code: null, stderr: error.message }); });
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, stderr }); });
  });
}

/** concat demuxer list: one `file` line per segment, quoted for its parser. */
function concatList(segments: Segment[]): string {
  return segments.map((s) => `file '${s.file.replace(/'/g, "'\\''")}'\n`).join('');
}

export async function cutClip(r: CutRequest): Promise<ClipInfo> {
  const list = `${clipFile(r.dir, r.id)}.txt`;
  const tmp = `${clipFile(r.dir, r.id)}.part`;
  await writeFile(list, concatList(r.segments), { mode: 0o600 });
  try {
    const result = await run(r.ffmpegPath, [
      '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
      '-f', 'concat', '-safe', '0', '-i', list,
      '-map', '0', '-c', 'copy', '-movflags', '+faststart', '-f', 'mp4', tmp,
    ], r.timeoutMs);
    if (result.code !== 0) throw new Error(`ffmpeg could not cut the clip (exit ${String(result.code)}): ${result.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    await rename(tmp, clipFile(r.dir, r.id));
    const info: ClipInfo = {
      id: r.id,
      title: r.title,
      started_at: r.startedAt.toISOString(),
      duration_s: Math.round(r.segments.reduce((a, s) => a + (s.end - s.start), 0) * 1000) / 1000,
      bytes: (await stat(clipFile(r.dir, r.id))).size,
      made_at: new Date().toISOString(),
    };
    // Written last: a clip is listed only once its file is complete.
    await writeFile(clipInfoFile(r.dir, r.id), JSON.stringify(info), { mode: 0o600 });
    return info;
  } finally {
    await rm(list, { force: true });
    await rm(tmp, { force: true });
  }
}
