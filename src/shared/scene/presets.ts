/**
 * Scenes a streamer puts on air, designed on a 1920×1080 grid and scaled to the output size:
 *
 *   training      the board (heatmap, top-move arrows), move number and side to move, the PPO
 *                 panel (readable names, health colour, trends, explanation), a captured-stream
 *                 tile when a stream is registered, the prediction game and the milestone banner
 *   multistream   a wall of captured streams (name and analysis label on each), board in a corner
 *   intermission  a "back soon" card over the training panel
 *
 * Every text is at least 24 px at 1080p, no two layers overlap and all lie inside the frame
 * (tests/scene-presets.test.ts checks the geometry of every preset).
 */
import { parseScene, type Scene } from './model.js';
import type { ScenePreset } from './preset-names.js';

export { isScenePreset, SCENE_PRESETS, type ScenePreset } from './preset-names.js';

export interface PresetInputs {
  width: number;
  height: number;
  fps: number;
  /** Registered capture streams, in the order they should appear (the first is the training tile). */
  streams: string[];
}

/** Most tiles on the multistream wall (3×3). */
export const WALL_MAX = 9;

const METRICS = ['ppo/policy_loss', 'ppo/value_loss', 'ppo/entropy', 'ppo/kl_divergence_approx'];

interface Grid {
  X: (v: number) => number;
  Y: (v: number) => number;
  S: (v: number) => number;
}

function grid(width: number, height: number): Grid {
  const kx = width / 1920;
  const ky = height / 1080;
  const k = Math.min(kx, ky);
  return { X: (v) => Math.round(v * kx), Y: (v) => Math.round(v * ky), S: (v) => Math.max(1, Math.round(v * k)) };
}

function header(g: Grid, title: string): unknown[] {
  const { X, Y, S } = g;
  return [
    {
      id: 'title', type: 'text', z: 40, width: X(1500), height: Y(70), transform: { x: X(40), y: Y(20) },
      props: { text: title, font: `bold ${S(46)}px "DejaVu Sans"`, color: '#f5f5f5' },
      animations: [{ kind: 'tween', property: 'opacity', from: 0, to: 1, duration: 0.6, easing: 'easeOutQuad' }],
    },
    {
      id: 'live', type: 'overlay', z: 60, width: S(140), height: S(56), transform: { x: X(1740), y: Y(27) },
      mask: { shape: 'roundRect', x: 0, y: 0, width: S(140), height: S(56), radius: S(12) },
      props: { color: '#d62828', label: 'LIVE' },
      animations: [{ kind: 'tween', property: 'opacity', from: 1, to: 0.55, duration: 0.9, easing: 'easeInOutSine', loop: 'infinite', yoyo: true }],
    },
  ];
}

function tile(id: string, stream: string, x: number, y: number, w: number, h: number, z: number, radius: number): unknown {
  return {
    id, type: 'video', z, width: w, height: h, transform: { x, y },
    mask: { shape: 'roundRect', x: 0, y: 0, width: w, height: h, radius },
    props: { source: { capture: stream }, fit: 'cover' },
  };
}

function training(i: PresetInputs): unknown[] {
  const g = grid(i.width, i.height);
  const { X, Y, S } = g;
  const layers: unknown[] = [
    ...header(g, 'ringcast — live shogi RL'),
    { id: 'board', type: 'board', z: 10, width: S(790), height: S(790), transform: { x: X(40), y: Y(105) }, props: { heatmap: true, arrows: true } },
    { id: 'game', type: 'game', z: 20, width: X(790), height: Y(70), transform: { x: X(40), y: Y(905) }, props: {} },
    {
      id: 'metrics', type: 'metrics', z: 20, width: X(1030), height: Y(470), transform: { x: X(850), y: Y(105) },
      props: { metrics: METRICS, title: 'PPO training', explanation: true },
    },
    { id: 'prediction', type: 'prediction', z: 20, width: X(1030 - (i.streams.length > 0 ? 570 : 0)), height: Y(310), transform: { x: X(850 + (i.streams.length > 0 ? 570 : 0)), y: Y(595) }, props: {} },
    { id: 'milestone', type: 'milestone', z: 70, width: X(1840), height: Y(75), transform: { x: X(40), y: Y(990) }, props: {} },
  ];
  if (i.streams.length > 0) layers.push(tile('stream', i.streams[0], X(850), Y(595), X(550), Y(310), 30, S(14)));
  return layers;
}

function multistream(i: PresetInputs): unknown[] {
  const g = grid(i.width, i.height);
  const { X, Y, S } = g;
  const streams = i.streams.slice(0, WALL_MAX);
  const layers: unknown[] = [
    ...header(g, 'ringcast — the streams we watch'),
    // Pieces in hand need a bigger board than a corner one to be readable: the corner leaves them out.
    { id: 'board', type: 'board', z: 10, width: S(560), height: S(560), transform: { x: X(1320), y: Y(105) }, props: { heatmap: true, arrows: true, hands: false } },
    { id: 'game', type: 'game', z: 20, width: X(560), height: Y(70), transform: { x: X(1320), y: Y(685) }, props: {} },
    { id: 'milestone', type: 'milestone', z: 70, width: X(1840), height: Y(75), transform: { x: X(40), y: Y(990) }, props: {} },
  ];
  if (streams.length === 0) {
    layers.push({
      id: 'no-streams', type: 'text', z: 20, width: X(1260), height: Y(80), transform: { x: X(40), y: Y(480) },
      props: { text: 'No streams registered: add some with POST /api/streams', font: `${S(36)}px "DejaVu Sans"`, color: '#b8c2cc', align: 'center' },
    });
    return layers;
  }
  // The wall: as many columns as make the tiles largest in a 1260×860 area, 16:9 tiles, 20 px gaps.
  const areaW = 1260, areaH = 860, gap = 20;
  let best = { cols: 1, rows: 1, w: 0, h: 0 };
  for (let cols = 1; cols <= streams.length; cols++) {
    const rows = Math.ceil(streams.length / cols);
    const w = Math.min((areaW - gap * (cols - 1)) / cols, ((areaH - gap * (rows - 1)) / rows) * (16 / 9));
    if (w > best.w) best = { cols, rows, w, h: (w * 9) / 16 };
  }
  const tw = Math.floor(best.w), th = Math.floor(best.h);
  // Centred in the area, so a short wall does not leave one side empty.
  const left = 40 + Math.floor((areaW - (best.cols * tw + (best.cols - 1) * gap)) / 2);
  const top = 105 + Math.floor((areaH - (best.rows * th + (best.rows - 1) * gap)) / 2);
  streams.forEach((s, k) => {
    const c = k % best.cols, r = Math.floor(k / best.cols);
    layers.push(tile(`wall-${k + 1}`, s, X(left + c * (tw + gap)), Y(top + r * (th + gap)), X(tw), Y(th), 30, S(12)));
  });
  return layers;
}

function intermission(i: PresetInputs): unknown[] {
  const g = grid(i.width, i.height);
  const { X, Y, S } = g;
  return [
    ...header(g, 'ringcast — live shogi RL'),
    {
      id: 'headline', type: 'text', z: 20, width: X(1600), height: Y(120), transform: { x: X(160), y: Y(200) },
      props: { text: 'Back in a moment', font: `bold ${S(84)}px "DejaVu Sans"`, color: '#ffffff', align: 'center' },
      animations: [{ kind: 'tween', property: 'opacity', from: 0, to: 1, duration: 1, easing: 'easeOutQuad' }],
    },
    {
      id: 'subline', type: 'text', z: 20, width: X(1600), height: Y(60), transform: { x: X(160), y: Y(340) },
      props: { text: 'the model keeps training meanwhile', font: `${S(38)}px "DejaVu Sans"`, color: '#b8c2cc', align: 'center' },
    },
    {
      id: 'metrics', type: 'metrics', z: 20, width: X(1000), height: Y(470), transform: { x: X(460), y: Y(440) },
      props: { metrics: METRICS, title: 'PPO training', explanation: true },
    },
    { id: 'milestone', type: 'milestone', z: 70, width: X(1840), height: Y(75), transform: { x: X(40), y: Y(990) }, props: {} },
  ];
}

/** The preset as a scene at the output size, bound to the given streams. */
export function buildPresetScene(name: ScenePreset, inputs: PresetInputs): Scene {
  const layers = name === 'training' ? training(inputs) : name === 'multistream' ? multistream(inputs) : intermission(inputs);
  return parseScene({ width: inputs.width, height: inputs.height, fps: inputs.fps, background: '#0d141c', layers, version: 0 });
}
