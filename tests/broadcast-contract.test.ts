/**
 * The broadcast contract, checked from outside: `node dist/src/main.js --demo --output show.mp4`
 * (what `npm start -- --output show.mp4` runs) as its own process. GET /api/scene has no visible
 * host/assistant/visualFeed layer without a source and no video layer without one; the default
 * scene binds a captured demo stream, and ringcast_compositor_video_frames_total with that
 * stream as `source` grows; every preset is switched to over REST and a frame of each is pulled
 * from the encoder's output (tests/artifacts/broadcast-<preset>.png, for a person to look at);
 * the file is 1920×1080, 30 fps, H.264 + AAC.
 * Needs the compiled service (`npx tsc -p .`) and ffmpeg.
 */
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveFfmpeg } from '../src/shared/ffmpeg.js';
import { cleanupMainProcesses, listeningPort, runMain, tempDir } from './helpers/main-process.js';
import { ffprobe } from './helpers/rtmp-server.js';

const run = promisify(execFile);
const ADMIN = 'contract-admin-token-0123456789';
const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterEach(() => cleanupMainProcesses());

interface SceneJson { layers: Array<{ id: string; type: string; visible: boolean; props: Record<string, unknown> }> }

function drawnFrames(metrics: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of metrics.matchAll(/^ringcast_compositor_video_frames_total\{([^}]*)\} (\d+)/gm)) {
    const source = /source="([^"]*)"/.exec(m[1])?.[1];
    if (source) out.set(source, (out.get(source) ?? 0) + Number(m[2]));
  }
  return out;
}

describe('broadcast contract: --demo --output show.mp4', () => {
  it('captured streams on air, no placeholders, every preset pulled from the output, 1920x1080 30 fps H.264 + AAC', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'show.mp4');
    const svc = runMain(['--demo', '--port', '0', '--data-dir', dir, '--output', file, '--demo-streams', '2', '--interval', '1'], { RINGCAST_ADMIN_TOKEN: ADMIN });
    const port = await listeningPort(svc, 60_000);
    const base = `http://127.0.0.1:${port}`;
    const get = async (p: string) => fetch(`${base}${p}`, { headers: { authorization: `Bearer ${ADMIN}` } });

    // The demo streams register once made (ffmpeg, in the background); the training preset then binds the first.
    let scene: SceneJson | undefined;
    let stream: string | undefined;
    for (let i = 0; i < 240 && !stream; i++) {
      scene = (await (await get('/api/scene')).json()) as SceneJson;
      stream = scene.layers.map((l) => (l.props.source as { capture?: string } | undefined)?.capture).find((s) => typeof s === 'string');
      if (!stream) await sleep(500);
    }
    expect(stream, `no captured stream bound in ${JSON.stringify(scene?.layers.map((l) => l.id))}\n${svc.out.join('').slice(-3000)}`).toBeDefined();
    for (const l of scene!.layers.filter((x) => x.visible)) {
      if (['host', 'assistant', 'visualFeed'].includes(l.type)) expect(l.props.src, `placeholder ${l.id} without a source`).toBeDefined();
      if (l.type === 'video') expect(l.props.source, `video layer ${l.id} without a source`).toBeDefined();
    }

    // Frames of that stream are drawn, and keep being drawn.
    let first = 0;
    for (let i = 0; i < 120 && first === 0; i++) {
      first = drawnFrames(await (await get('/metrics')).text()).get(stream!) ?? 0;
      if (first === 0) await sleep(500);
    }
    expect(first, 'ringcast_compositor_video_frames_total for the captured stream').toBeGreaterThan(0);
    await sleep(3_000);
    const second = drawnFrames(await (await get('/metrics')).text()).get(stream!) ?? 0;
    expect(second).toBeGreaterThan(first);

    // Each preset for ~4 s of output. Where a switch lands in the file: the frames the encoder
    // has sent to ffmpeg by then (fresh + duplicate; each is one output frame at 30 fps), not the
    // wall clock (a busy machine encodes slower than real time).
    const sent = async () => {
      const text = await (await get('/metrics')).text();
      let n = 0;
      for (const m of text.matchAll(/^ringcast_encoder_frames_total\{[^}]*result="(fresh|duplicate)"[^}]*\} (\d+)/gm)) n += Number(m[2]);
      return n;
    };
    const marks: Array<{ name: string; at: number }> = [{ name: 'training', at: (await sent()) / 30 }];
    await sleep(4_000);
    for (const name of ['multistream', 'intermission']) {
      const res = await fetch(`${base}/api/scene/preset`, { method: 'PUT', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
      expect(res.status, await res.clone().text()).toBe(200);
      marks.push({ name, at: (await sent()) / 30 });
      await sleep(4_000);
    }
    const end = (await sent()) / 30;
    const unknown = await fetch(`${base}/api/scene/preset`, { method: 'PUT', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'nope' }) });
    expect(unknown.status).toBe(400);
    svc.child.kill('SIGTERM');
    const exit = await svc.exited;
    expect(exit.code, svc.out.join('').slice(-2000)).toBe(0);

    const probe = await ffprobe(file);
    const video = probe.streams.find((s) => s.codec_type === 'video')!;
    const audio = probe.streams.find((s) => s.codec_type === 'audio');
    expect(video).toMatchObject({ codec_name: 'h264', width: 1920, height: 1080 });
    expect(video.r_frame_rate).toBe('30/1');
    expect(audio?.codec_name).toBe('aac');

    // A frame from the middle of each preset's stretch.
    mkdirSync(ARTIFACTS, { recursive: true });
    for (let i = 0; i < marks.length; i++) {
      const from = marks[i].at, to = i + 1 < marks.length ? marks[i + 1].at : end;
      expect(to - from, `${marks[i].name}: too few frames encoded to look at`).toBeGreaterThan(0.5);
      const t = (from + to) / 2;
      const png = path.join(ARTIFACTS, `broadcast-${marks[i].name}.png`);
      await run(resolveFfmpeg().path, ['-v', 'error', '-y', '-ss', t.toFixed(2), '-i', file, '-frames:v', '1', png], { timeout: 30_000 });
      const { stdout } = await run(resolveFfmpeg().path, ['-v', 'error', '-i', png, '-vf', 'scale=32:18', '-pix_fmt', 'gray', '-f', 'rawvideo', '-'], { encoding: 'buffer', timeout: 15_000 });
      const px = [...(stdout as Buffer)];
      // A composed frame, not a flat one: the panels and the board differ from the background.
      expect(Math.max(...px) - Math.min(...px), `${marks[i].name} frame is flat`).toBeGreaterThan(40);
    }
  }, 240_000);
});
