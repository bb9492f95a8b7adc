/**
 * Test helpers for the encoder: a real RTMP server on a free loopback port, run as the current
 * user from a temp prefix — Debian's nginx with its RTMP module when that runs here, else
 * node-media-server from npm (a dev dependency), so the RTMP tests run on any machine — and
 * ffprobe/ffmpeg wrappers that read media back.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { resolveFfmpeg, resolveFfprobe } from '../../src/shared/ffmpeg.js';
import { reservePort } from '../../src/shared/reserve-port.js';

export const NGINX = process.env.NGINX_PATH ?? '/usr/sbin/nginx';
export const RTMP_MODULE = process.env.NGINX_RTMP_MODULE ?? '/usr/lib/nginx/modules/ngx_rtmp_module.so';

export type RtmpServerKind = 'nginx' | 'node-media-server';

/** nginx-rtmp when its binary runs and the module is installed, else node-media-server. */
export function rtmpServerKind(): RtmpServerKind {
  if (existsSync(RTMP_MODULE) && spawnSync(NGINX, ['-v'], { timeout: 10_000 }).status === 0) return 'nginx';
  return 'node-media-server';
}


function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

export interface RtmpServer {
  kind: RtmpServerKind;
  port: number;
  url(key: string): string;
  /** Stop the server (SIGKILL: an abrupt outage, as a crashed server or network cut looks). */
  kill(): Promise<void>;
  /** Start it again on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
  errorLog(): string;
}

export async function startRtmpServer(kind: RtmpServerKind = rtmpServerKind()): Promise<RtmpServer> {
  const dir = mkdtempSync(join(tmpdir(), 'ringcast-rtmp-'));
  const port = await reservePort('127.0.0.1', 0);
  const spawnServer = kind === 'nginx' ? nginxCommand(dir, port) : nodeMediaServerCommand(dir, port);
  let child: ChildProcess | undefined;
  const start = async () => {
    const c = spawnServer();
    let stderr = '';
    c.stderr?.on('data', (d) => { stderr += String(d); });
    child = c;
    const deadline = Date.now() + 10_000;
    while (!(await portOpen(port))) {
      if (c.exitCode !== null || Date.now() > deadline) {
        c.kill('SIGKILL');
        throw new Error(`${kind} RTMP did not start on 127.0.0.1:${port}: ${stderr.trim()} ${existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8').slice(-500) : ''}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const kill = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    kind,
    port,
    url: (key) => `rtmp://127.0.0.1:${port}/live/${key}`,
    kill,
    start,
    async close() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
    errorLog: () => (existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : ''),
  };
}

function nginxCommand(dir: string, port: number): () => ChildProcess {
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, [
    `load_module ${RTMP_MODULE};`,
    'daemon off;',
    'master_process off;',
    `error_log ${join(dir, 'error.log')} info;`,
    `pid ${join(dir, 'nginx.pid')};`,
    'events { worker_connections 64; }',
    'rtmp {',
    '  server {',
    `    listen 127.0.0.1:${port};`,
    '    chunk_size 4096;',
    '    application live { live on; record off; }',
    '  }',
    '}',
    '',
  ].join('\n'));
  return () => spawn(NGINX, ['-p', dir, '-e', join(dir, 'error.log'), '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** node-media-server's own CLI in a child process (so kill() is as abrupt as nginx's). */
function nodeMediaServerCommand(dir: string, port: number): () => ChildProcess {
  const app = join(dirname(createRequire(import.meta.url).resolve('node-media-server')), '..', 'bin', 'app.js');
  const conf = join(dir, 'nms.json');
  // RTMP only on loopback: no HTTP/admin listener, no recording.
  writeFileSync(conf, JSON.stringify({ bind: '127.0.0.1', rtmp: { port }, store: { path: join(dir, 'data') }, record: { auto: false, path: join(dir, 'record') }, webadmin: { enable: false } }));
  return () => spawn(process.execPath, [app, '-c', conf, '--no-admin'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

export interface ExecResult { code: number | null; stdout: string; stderr: string }

export function exec(bin: string, args: string[], timeoutMs: number): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: timeoutMs, maxBuffer: 64 << 20, killSignal: 'SIGKILL', encoding: 'buffer' }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : null) : 0;
      resolve({ code, stdout: stdout.toString('latin1'), stderr: stderr.toString('utf8') });
    });
  });
}

export interface ProbeStream { codec_name: string; codec_type: string; width?: number; height?: number; r_frame_rate?: string; avg_frame_rate?: string; pix_fmt?: string; nb_frames?: string }
export interface ProbeResult { streams: ProbeStream[]; format?: { duration?: string; format_name?: string } }

/** `ffprobe -show_streams -show_format -of json` on a file or URL. */
export async function ffprobe(input: string, extra: string[] = [], timeoutMs = 15_000): Promise<ProbeResult> {
  const r = await exec(resolveFfprobe().path, ['-v', 'error', ...extra, '-show_streams', '-show_format', '-of', 'json', input], timeoutMs);
  if (r.code !== 0) throw new Error(`ffprobe ${input} failed (exit ${r.code}): ${r.stderr.trim().slice(-400)}`);
  return JSON.parse(r.stdout) as ProbeResult;
}

/** Pulls a live RTMP stream back; resolves with the probe or rejects after the timeout. */
export function ffprobeRtmp(url: string, timeoutMs = 10_000): Promise<ProbeResult> {
  return ffprobe(url, ['-rw_timeout', String(timeoutMs * 1000), '-analyzeduration', '1500000', '-probesize', '2000000'], timeoutMs + 2_000);
}

/** pts_time of every video keyframe (`pkt_pts_time` in ffprobe before 5.0, the npm build's). */
export async function keyframeTimes(file: string): Promise<{ keys: number[]; frames: number }> {
  const r = await exec(resolveFfprobe().path, ['-v', 'error', '-select_streams', 'v', '-show_frames', '-show_entries', 'frame=key_frame,pts_time,pkt_pts_time', '-of', 'json', file], 30_000);
  if (r.code !== 0) throw new Error(`ffprobe -show_frames ${file} failed: ${r.stderr.trim().slice(-400)}`);
  const frames = (JSON.parse(r.stdout) as { frames: Array<{ key_frame: number; pts_time?: string; pkt_pts_time?: string }> }).frames;
  return { keys: frames.filter((f) => f.key_frame === 1).map((f) => Number(f.pts_time ?? f.pkt_pts_time)), frames: frames.length };
}

/** RGB of the pixel at (x, y) of the frame shown at `t` seconds. */
export async function pixelAt(file: string, t: number, x: number, y: number): Promise<[number, number, number]> {
  const r = await exec(resolveFfmpeg().path, ['-v', 'error', '-ss', String(t), '-i', file, '-frames:v', '1', '-vf', `crop=2:2:${x}:${y}`, '-pix_fmt', 'rgb24', '-f', 'rawvideo', '-'], 15_000);
  if (r.code !== 0 || r.stdout.length < 3) throw new Error(`ffmpeg could not decode ${file} at ${t}s: ${r.stderr.trim().slice(-400)}`);
  return [r.stdout.charCodeAt(0), r.stdout.charCodeAt(1), r.stdout.charCodeAt(2)];
}
