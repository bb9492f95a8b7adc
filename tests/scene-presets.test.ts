/**
 * Scene presets designed for 1080p: for every preset (and the multistream wall with 1, 3 and 9
 * streams), the layout geometry a viewer sees — every text at least 24 px tall at 1080p, no two
 * layers overlapping, no two text boxes overlapping, every layer and text inside the frame — and
 * no unbound placeholder layer. Then each preset is rendered with live data and checked for
 * pixels in the places the layout promises (not an empty or black frame).
 */
import { describe, expect, it } from 'vitest';
import { buildPresetScene, SCENE_PRESETS, WALL_MAX, type ScenePreset } from '../src/shared/scene/presets.js';
import { captureSourceOf, type Layer, type Scene } from '../src/shared/scene/model.js';
import { layerTextBoxes } from '../src/actors/compositor/render/text-boxes.js';
import { SceneRenderer } from '../src/actors/compositor/render/renderer.js';
import { metricTitle } from '../src/actors/compositor/render/metrics-panel.js';

interface Rect { x: number; y: number; w: number; h: number }
const rectOf = (l: Layer): Rect => ({ x: l.transform.x - l.transform.anchor[0] * l.width * l.transform.scale, y: l.transform.y - l.transform.anchor[1] * l.height * l.transform.scale, w: l.width * l.transform.scale, h: l.height * l.transform.scale });
const overlaps = (a: Rect, b: Rect) => a.x < b.x + b.w - 0.5 && b.x < a.x + a.w - 0.5 && a.y < b.y + b.h - 0.5 && b.y < a.y + a.h - 0.5;
const inside = (a: Rect, outer: Rect) => a.x >= outer.x - 0.5 && a.y >= outer.y - 0.5 && a.x + a.w <= outer.x + outer.w + 0.5 && a.y + a.h <= outer.y + outer.h + 0.5;

const streams = (n: number) => Array.from({ length: n }, (_, i) => `/data/demo-hls/demo${i + 1}/live.m3u8`);

function checkGeometry(scene: Scene): void {
  const frame = { x: 0, y: 0, w: scene.width, h: scene.height };
  const minText = (24 * scene.height) / 1080;
  const layers = scene.layers.filter((l) => l.visible);
  const rects = layers.map(rectOf);
  const texts: Array<{ layer: string; box: Rect; font: number }> = [];
  layers.forEach((l, i) => {
    expect(inside(rects[i], frame), `layer ${l.id} inside the frame`).toBe(true);
    for (let j = 0; j < i; j++) expect(overlaps(rects[i], rects[j]), `layers ${l.id} and ${layers[j].id} overlap`).toBe(false);
    for (const b of layerTextBoxes(l, Math.round(minText))) {
      const s = l.transform.scale;
      const box = { x: rects[i].x + b.x * s, y: rects[i].y + b.y * s, w: b.w * s, h: b.h * s };
      expect(b.font * s, `text in ${l.id} is ${(b.font * s).toFixed(1)} px`).toBeGreaterThanOrEqual(minText - 0.01);
      expect(box.h, `text box in ${l.id} shorter than its font`).toBeGreaterThanOrEqual(b.font * s);
      expect(inside(box, rects[i]), `text in ${l.id} cut off by its layer`).toBe(true);
      texts.push({ layer: l.id, box, font: b.font * s });
    }
  });
  for (let i = 0; i < texts.length; i++) {
    for (let j = 0; j < i; j++) expect(overlaps(texts[i].box, texts[j].box), `text in ${texts[i].layer} overlaps text in ${texts[j].layer}`).toBe(false);
  }
  // No placeholder drawn without a bound source.
  for (const l of layers) {
    if (l.type === 'host' || l.type === 'assistant' || l.type === 'visualFeed') expect(typeof l.props.src, `${l.id} is an unbound placeholder`).toBe('string');
    if (l.type === 'video') expect(l.props.source, `${l.id} is a video layer without a source`).toBeDefined();
  }
}

describe('scene presets at 1080p', () => {
  const cases: Array<[ScenePreset, number]> = [['training', 0], ['training', 1], ['multistream', 0], ['multistream', 1], ['multistream', 3], ['multistream', WALL_MAX], ['intermission', 0]];
  it.each(cases)('%s with %i streams: text >= 24 px, nothing overlapping, nothing cut off', (name, n) => {
    const scene = buildPresetScene(name, { width: 1920, height: 1080, fps: 30, streams: streams(n) });
    expect(scene.layers.length).toBeGreaterThan(3);
    checkGeometry(scene);
  });

  it('names metrics as a viewer reads them, not as raw keys', () => {
    expect(metricTitle('ppo/kl_divergence_approx')).toBe('KL divergence approx');
    expect(metricTitle('ppo/policy_loss')).toBe('Policy loss');
    expect(metricTitle('win_rate')).toBe('Win rate');
  });

  it('scales to 720p and keeps the geometry (text >= 16 px there)', () => {
    for (const name of SCENE_PRESETS) checkGeometry(buildPresetScene(name, { width: 1280, height: 720, fps: 60, streams: streams(WALL_MAX) }));
  });

  it('binds the training tile to the first stream and the wall to at most 9 streams', () => {
    const t = buildPresetScene('training', { width: 1920, height: 1080, fps: 30, streams: streams(4) });
    expect(t.layers.map(captureSourceOf).filter(Boolean)).toEqual([streams(1)[0]]);
    const m = buildPresetScene('multistream', { width: 1920, height: 1080, fps: 30, streams: streams(12) });
    expect(m.layers.map(captureSourceOf).filter(Boolean)).toEqual(streams(9));
    for (const name of SCENE_PRESETS) {
      for (const type of ['host', 'assistant', 'visualFeed']) expect(buildPresetScene(name, { width: 1920, height: 1080, fps: 30, streams: [] }).layers.some((l) => l.type === type)).toBe(false);
    }
  });

  it('renders each preset with live data: panels drawn where the layout puts them', () => {
    const renderer = new SceneRenderer(960, 540);
    const board = Array.from({ length: 9 }, () => Array(9).fill(''));
    board[6][2] = 'P';
    const now = Date.now();
    const messages = {
      game_state: { type: 'game_state', timestamp: now, data: { sfen: 'lnsgkgsnl/1r5b1/ppppppppp/9/9/2P6/PP1PPPPPP/1B5R1/LNSGKGSNL w - 2', move_count: 95, board, hands: { black: {}, white: {} } } },
      ppo_metrics: { type: 'ppo_metrics', timestamp: now, data: { step: 10, values: { 'ppo/policy_loss': 0.5, 'ppo/entropy': 2 }, health: { status: 'healthy' }, metrics: {}, explanation: 'Updates are small and steady.' } },
      milestone: { type: 'milestone', timestamp: now, data: { name: 'loss_below_1', message: 'policy loss fell below 1' } },
    };
    const frame = { width: 64, height: 36, rgba: new Uint8Array(64 * 36 * 4).fill(200), at: now - 4000 };
    for (const name of SCENE_PRESETS) {
      const scene = buildPresetScene(name, { width: 960, height: 540, fps: 30, streams: ['s1'] });
      renderer.render(scene, 0, { messages, frames: {}, captured: { s1: frame }, streams: new Map(), now });
      const px = renderer.rgba();
      for (const l of scene.layers.filter((x) => x.type !== 'text' && x.type !== 'overlay')) {
        const r = rectOf(l);
        const cx = Math.round(r.x + r.w / 2), cy = Math.round(r.y + r.h / 2);
        const i = (cy * 960 + cx) * 4;
        // The background is #0d141c; a drawn panel / board / frame is not.
        expect([px[i], px[i + 1], px[i + 2]], `${name}: ${l.id} drawn`).not.toEqual([0x0d, 0x14, 0x1c]);
      }
    }
  });
});

describe('--scene / compose.scene', () => {
  it('names a preset; anything else is a config error naming the presets', async () => {
    const { loadConfig, ConfigError } = await import('../src/shared/config.js');
    expect(loadConfig(['--scene', 'multistream'], {}).compose.scene).toBe('multistream');
    expect(loadConfig([], { RINGCAST_SCENE: 'intermission' }).compose.scene).toBe('intermission');
    expect(loadConfig([], {}).compose.scene).toBeUndefined();
    expect(() => loadConfig(['--scene', 'party'], {})).toThrow(ConfigError);
    expect(() => loadConfig(['--scene', 'party'], {})).toThrow(/training.*multistream.*intermission/);
  });
});
