/**
 * Frame producers for the compose benchmark: the same scene rendered two ways.
 *   raw:  SceneRenderer → RGBA readback → ffmpeg rawvideo (what the compositor/encoder do)
 *   png:  SceneRenderer → PNG per frame → ffmpeg image2pipe (the common naive approach)
 *
 * The scene is the showcase (board + heatmap, metrics panel with sparklines, animated
 * title/host/LIVE badge, a video layer) fed live-like data at the rates the service
 * produces it: metrics at 10 Hz, the heatmap at 2 Hz, a move every second, and a new
 * 1280x720 video frame every output frame (four synthetic frames cycled, each passed as
 * a new frame object so the renderer uploads it, as it would a capture frame).
 */
import { createCanvas } from '@napi-rs/canvas';
import { SceneRenderer, type LiveData, type VideoFrame } from '../../src/actors/compositor/render/renderer.js';
import { defaultShowcaseScene } from '../../src/shared/scene/model.js';
import { buildPresetScene, type ScenePreset } from '../../src/shared/scene/presets.js';
import type { FrameProducer } from './pipeline.js';

const VIDEO_W = 1280;
const VIDEO_H = 720;
const VIDEO_FRAMES = 4;

export interface Producers { raw: FrameProducer; png: FrameProducer; describe: string }

/**
 * `video: false` leaves the video layer without a source, as the service has without capture.
 * `preset`: that scene preset instead of the showcase, its stream tile fed a new 640×360 frame
 * every 3 s (the product's capture interval), as captured frames arrive.
 */
export async function sceneProducers(width: number, height: number, fps: number, opts: { video?: boolean; preset?: ScenePreset } = {}): Promise<Producers> {
  const withVideo = opts.video ?? true;
  const scene = opts.preset ? buildPresetScene(opts.preset, { width, height, fps, streams: ['synthetic'] }) : defaultShowcaseScene(width, height, fps);
  const renderer = new SceneRenderer(width, height, { layerTiming: 'record' });
  const video = syntheticVideo();
  const data: LiveData = { messages: {}, frames: {}, captured: {}, streams: new Map() };
  const feed = (n: number) => {
    const t = n / fps;
    const tick = (hz: number) => Math.floor(t * hz) !== Math.floor(((n - 1) / fps) * hz) || n === 0;
    // New message objects only when the data changes, as the gateway delivers them.
    if (tick(10)) data.messages.ppo_metrics = { type: 'ppo_metrics', timestamp: 0, data: metricsAt(Math.floor(t * 10)) };
    if (tick(2)) data.messages.board_heatmap = { type: 'board_heatmap', timestamp: 0, data: { grid: heatmapAt(Math.floor(t * 2)) } };
    if (tick(1)) data.messages.game_state = { type: 'game_state', timestamp: 0, data: { board: boardAt(Math.floor(t)) } };
    if (withVideo && !opts.preset) {
      const v = video[n % VIDEO_FRAMES];
      data.frames.main = { width: v.width, height: v.height, rgba: v.rgba } satisfies VideoFrame;
    }
    if (opts.preset && tick(1 / 3)) {
      const v = video[Math.floor(t / 3) % VIDEO_FRAMES];
      data.captured!.synthetic = { width: v.width, height: v.height, rgba: v.rgba, at: Date.now() };
    }
    renderer.render(scene, n, data);
  };
  return {
    raw: { frame(n) { feed(n); return renderer.rgba(); } },
    png: { frame(n) { feed(n); return renderer.png(); } },
    describe: `SceneRenderer, defaultShowcaseScene (${scene.layers.length} layers: ${scene.layers.map((l) => l.id).join(', ')}), ${withVideo ? '720p video source' : 'no video source'}`,
  };
}

function syntheticVideo(): VideoFrame[] {
  const canvas = createCanvas(VIDEO_W, VIDEO_H);
  const ctx = canvas.getContext('2d');
  const frames: VideoFrame[] = [];
  for (let i = 0; i < VIDEO_FRAMES; i++) {
    const g = ctx.createLinearGradient(0, 0, VIDEO_W, VIDEO_H);
    g.addColorStop(0, `hsl(${i * 90},70%,35%)`);
    g.addColorStop(1, `hsl(${i * 90 + 120},70%,15%)`);
    ctx.fillStyle = g;
    ctx.fillRect(0, 0, VIDEO_W, VIDEO_H);
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(100 + i * 250, 300, 160, 160);
    frames.push({ width: VIDEO_W, height: VIDEO_H, rgba: canvas.data() });
  }
  return frames;
}

export function metricsAt(step: number): { step: number; values: Record<string, number> } {
  return {
    step,
    values: {
      policy_loss: 0.5 * Math.exp(-step / 300) + 0.05 * Math.sin(step / 7),
      value_loss: 0.8 * Math.exp(-step / 500) + 0.03 * Math.cos(step / 5),
      entropy: 2 - step / 1000 + 0.1 * Math.sin(step / 11),
      kl: 0.01 + 0.005 * Math.sin(step / 3),
    },
  };
}

export function heatmapAt(k: number): number[][] {
  return Array.from({ length: 9 }, (_, r) => Array.from({ length: 9 }, (_, c) => (Math.sin(r * 0.7 + c * 0.5 + k) + 1) / 2));
}

const START = [
  ['l', 'n', 's', 'g', 'k', 'g', 's', 'n', 'l'],
  ['', 'r', '', '', '', '', '', 'b', ''],
  ['p', 'p', 'p', 'p', 'p', 'p', 'p', 'p', 'p'],
  ['', '', '', '', '', '', '', '', ''],
  ['', '', '', '', '', '', '', '', ''],
  ['', '', '', '', '', '', '', '', ''],
  ['P', 'P', 'P', 'P', 'P', 'P', 'P', 'P', 'P'],
  ['', 'B', '', '', '', '', '', 'R', ''],
  ['L', 'N', 'S', 'G', 'K', 'G', 'S', 'N', 'L'],
];

/** The start position with one pawn pushed per move, alternating sides: the board changes once a second. */
export function boardAt(move: number): string[][] {
  const b = START.map((row) => row.slice());
  const file = move % 9;
  if (move % 2 === 0) { b[6][file] = ''; b[5][file] = 'P'; } else { b[2][file] = ''; b[3][file] = 'p'; }
  return b;
}
