import { describe, expect, it } from 'vitest';
import { effectiveLayerAt } from '../src/shared/scene/evaluate.js';
import {
  applySceneOp, defaultShowcaseScene, emptyScene, LAYER_TYPES, MAX_LAYERS, parseLayer, parseScene, SceneError, type Scene,
} from '../src/shared/scene/model.js';

const rect = (id: string, extra: Record<string, unknown> = {}) => ({ id, type: 'overlay', width: 100, height: 50, ...extra });

function sceneError(fn: () => unknown): SceneError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SceneError);
    return e as SceneError;
  }
  throw new Error('expected a SceneError');
}

describe('parseLayer', () => {
  it('fills defaults', () => {
    const l = parseLayer({ id: 'a', type: 'text', width: 200, height: 40, props: { text: 'hi' } });
    expect(l).toEqual({
      id: 'a', type: 'text', z: 0, visible: true, opacity: 1, width: 200, height: 40, blend: 'normal',
      transform: { x: 0, y: 0, scale: 1, rotation: 0, anchor: [0, 0] },
      props: { text: 'hi', font: '48px "DejaVu Sans"', color: '#ffffff', align: 'left' },
    });
    expect(parseLayer({ id: 'v', type: 'video', width: 10, height: 10, props: { source: 'cam' } }).props).toEqual({ source: 'cam', fit: 'contain', offlineAfterSec: 20 });
  });

  it('accepts every layer type with its minimal props', () => {
    const props: Record<string, object> = { text: { text: '' }, image: { src: 'x.png' }, video: { source: 's' } };
    for (const type of LAYER_TYPES) expect(parseLayer({ id: type, type, width: 1, height: 1, props: props[type] ?? {} }).type).toBe(type);
  });

  it.each([
    [{ type: 'text', width: 1, height: 1 }, 'id'],
    [{ id: 'bad id!', type: 'text', width: 1, height: 1 }, 'id'],
    [{ id: 'a', type: 'sprite', width: 1, height: 1 }, 'type'],
    [{ id: 'a', type: 'overlay', width: 0, height: 1 }, 'width'],
    [{ id: 'a', type: 'overlay', width: 1 }, 'height'],
    [{ id: 'a', type: 'overlay', width: 1, height: 1, opacity: 1.5 }, 'opacity'],
    [{ id: 'a', type: 'overlay', width: 1, height: 1, transform: { scale: -1 } }, 'transform.scale'],
    [{ id: 'a', type: 'overlay', width: 1, height: 1, transform: { anchor: [0.5, 2] } }, 'transform.anchor[1]'],
    [{ id: 'a', type: 'overlay', width: 1, height: 1, transform: { skew: 3 } }, 'transform.skew'],
    [{ id: 'a', type: 'overlay', width: 1, height: 1, blend: 'glow' }, 'blend'],
    [{ id: 'a', type: 'overlay', width: 1, height: 1, mask: { shape: 'star' } }, 'mask.shape'],
    [{ id: 'a', type: 'overlay', width: 1, height: 1, mask: { shape: 'circle', cx: 1, cy: 1, r: -1 } }, 'mask.r'],
    [{ id: 'a', type: 'overlay', width: 1, height: 1, colour: 'red' }, 'colour'],
    [{ id: 'a', type: 'text', width: 1, height: 1, props: {} }, 'props.text'],
    [{ id: 'a', type: 'text', width: 1, height: 1, props: { text: 'x', align: 'justify' } }, 'props.align'],
    [{ id: 'a', type: 'image', width: 1, height: 1 }, 'props.src'],
    [{ id: 'a', type: 'overlay', width: 1, height: 1, props: { color: 'blurple' } }, 'props.color'],
    [{ id: 'a', type: 'text', width: 1, height: 1, props: { text: 'x', color: '#12' } }, 'props.color'],
    [{ id: 'a', type: 'video', width: 1, height: 1, props: { source: '' } }, 'props.source'],
    [{ id: 'a', type: 'metrics', width: 1, height: 1, props: { history: 1 } }, 'props.history'],
    [{ id: 'a', type: 'overlay', width: 1, height: 1, animations: [{ property: 'opacity', to: 1, duration: 1, easing: 'nope' }] }, 'animations[0].easing'],
    [{ id: 'a', type: 'overlay', width: 1, height: 1, animations: [{ property: 'blend', to: 1, duration: 1 }] }, 'animations[0].property'],
  ])('rejects %j at %s', (input, path) => {
    const e = sceneError(() => parseLayer(input));
    expect(e.path).toBe(path);
    expect(e.message.startsWith(`${path}: `)).toBe(true);
  });
});

describe('applySceneOp', () => {
  const base = (): Scene => emptyScene(640, 360, 30);

  it('add puts a layer without z on top; the input scene is untouched and version increments', () => {
    const s0 = base();
    const s1 = applySceneOp(s0, { op: 'add', layer: rect('a') });
    const s2 = applySceneOp(s1, { op: 'add', layer: rect('b') });
    const s3 = applySceneOp(s2, { op: 'add', layer: rect('c', { z: -5 }) });
    expect(s0.layers).toHaveLength(0);
    expect(s0.version).toBe(0);
    expect([s1.version, s2.version, s3.version]).toEqual([1, 2, 3]);
    expect(s3.layers.map((l) => `${l.id}@${l.z}`)).toEqual(['c@-5', 'a@0', 'b@1']);
  });

  it('update merges objects, validates the result and re-sorts by z', () => {
    let s = applySceneOp(base(), { op: 'add', layer: rect('a', { props: { label: 'x', color: '#111' } }) });
    s = applySceneOp(s, { op: 'add', layer: rect('b') });
    const before = s;
    s = applySceneOp(s, { op: 'update', id: 'a', patch: { z: 10, transform: { x: 5 }, props: { label: 'y' } } });
    expect(s.layers.map((l) => l.id)).toEqual(['b', 'a']);
    const a = s.layers[1];
    expect(a.transform).toEqual({ x: 5, y: 0, scale: 1, rotation: 0, anchor: [0, 0] });
    expect(a.props).toEqual({ label: 'y', color: '#111' });
    expect(before.layers[0].transform.x).toBe(0);
    s = applySceneOp(s, { op: 'update', id: 'a', patch: { mask: { shape: 'circle', cx: 1, cy: 1, r: 1 } } });
    expect(s.layers[1].mask).toEqual({ shape: 'circle', cx: 1, cy: 1, r: 1 });
    s = applySceneOp(s, { op: 'update', id: 'a', patch: { mask: null } });
    expect(s.layers[1].mask).toBeUndefined();
  });

  it('remove and reorder (first id = bottom)', () => {
    let s = base();
    for (const id of ['a', 'b', 'c']) s = applySceneOp(s, { op: 'add', layer: rect(id) });
    s = applySceneOp(s, { op: 'reorder', ids: ['c', 'a', 'b'] });
    expect(s.layers.map((l) => `${l.id}@${l.z}`)).toEqual(['c@0', 'a@1', 'b@2']);
    s = applySceneOp(s, { op: 'remove', id: 'a' });
    expect(s.layers.map((l) => l.id)).toEqual(['c', 'b']);
    expect(s.version).toBe(5);
  });

  it.each([
    [null, 'op', /must be an object/],
    [{ op: 'explode' }, 'op', /unknown op "explode"/],
    [{ op: 'add', layer: 'x' }, 'layer', /must be a layer object/],
    [{ op: 'add', layer: rect('a') }, 'layer.id', /already exists/],
    [{ op: 'add', layer: rect('n', { opacity: -1 }) }, 'layer.opacity', /greater than or equal to 0/],
    [{ op: 'update', id: 'zzz', patch: {} }, 'id', /no layer "zzz"/],
    [{ op: 'update', id: 7, patch: {} }, 'id', /layer id string/],
    [{ op: 'update', id: 'a', patch: 3 }, 'patch', /object of fields/],
    [{ op: 'update', id: 'a', patch: { id: 'b' } }, 'patch.id', /cannot be changed/],
    [{ op: 'update', id: 'a', patch: { transform: { rotation: 'lots' } } }, 'patch.transform.rotation', /number/],
    [{ op: 'update', id: 'a', patch: { props: { color: 5 } } }, 'patch.props.color', /string/],
    [{ op: 'remove', id: 'nope' }, 'id', /no layer "nope"/],
    [{ op: 'reorder', ids: 'a,b' }, 'ids', /array of every layer id/],
    [{ op: 'reorder', ids: ['a', 'x'] }, 'ids[1]', /no layer "x"/],
    [{ op: 'reorder', ids: ['a', 'a', 'b'] }, 'ids[1]', /listed twice/],
    [{ op: 'reorder', ids: ['a'] }, 'ids', /missing b/],
  ])('%j fails at %s', (op, path, message) => {
    let s = applySceneOp(base(), { op: 'add', layer: rect('a') });
    s = applySceneOp(s, { op: 'add', layer: rect('b') });
    const e = sceneError(() => applySceneOp(s, op));
    expect(e.path).toBe(path);
    expect(e.message).toMatch(message);
  });

  it('refuses more than MAX_LAYERS layers', () => {
    let s = base();
    for (let i = 0; i < MAX_LAYERS; i++) s = applySceneOp(s, { op: 'add', layer: rect(`l${i}`) });
    expect(sceneError(() => applySceneOp(s, { op: 'add', layer: rect('one-more') })).path).toBe('layer');
  });
});

describe('scenes', () => {
  it('parseScene validates the header, each layer and unique ids', () => {
    expect(sceneError(() => parseScene({ width: 8, height: 100, fps: 30 })).path).toBe('width');
    expect(sceneError(() => parseScene({ width: 100, height: 100, fps: 0 })).path).toBe('fps');
    expect(sceneError(() => parseScene({ width: 100, height: 100, fps: 30, background: 'nope' })).message).toMatch(/^background: "nope" is not a CSS colour/);
    expect(sceneError(() => parseScene({ width: 100, height: 100, fps: 30, layers: [rect('a'), { id: 'b' }] })).path).toBe('layers[1].type');
    expect(sceneError(() => parseScene({ width: 100, height: 100, fps: 30, layers: [rect('a'), rect('a')] })).path).toBe('layers[1].id');
    const s = parseScene(JSON.parse(JSON.stringify(defaultShowcaseScene(1280, 720, 60))));
    expect(s).toEqual(defaultShowcaseScene(1280, 720, 60)); // survives a JSON round trip (state store)
  });

  it('the showcase has a board, a metrics panel, a video slot and two animated layers (no placeholder), scaled to the size', () => {
    const s = defaultShowcaseScene(1920, 1080, 30);
    expect(s.layers.map((l) => l.type)).toEqual(expect.arrayContaining(['board', 'metrics', 'video']));
    expect(s.layers.some((l) => ['host', 'assistant', 'visualFeed'].includes(l.type))).toBe(false);
    expect(s.layers.filter((l) => l.animations?.length)).toHaveLength(2);
    const small = defaultShowcaseScene(960, 540, 30);
    const board = (sc: Scene) => sc.layers.find((l) => l.id === 'board')!;
    expect(board(small).width).toBe(board(s).width / 2);
    expect(board(small).transform.x).toBe(board(s).transform.x / 2);
  });

  it('effective layer at frame N applies the animations (title slides in, fades in)', () => {
    const title = defaultShowcaseScene(1920, 1080, 30).layers.find((l) => l.id === 'title')!;
    const f0 = effectiveLayerAt(title, 30, 0);
    expect(f0.x).toBe(-1200);
    expect(f0.opacity).toBe(0);
    const f15 = effectiveLayerAt(title, 30, 15); // t = 0.5 s: opacity done (0.5 s), x still moving
    expect(f15.opacity).toBe(1);
    expect(f15.x).toBeGreaterThan(-1200);
    expect(f15.x).not.toBe(60);
    expect(effectiveLayerAt(title, 30, 30).x).toBe(60);
    const animated = parseLayer({ ...rect('t'), type: 'text', props: { text: 'x', fontSize: 10 }, animations: [{ property: 'props.fontSize', to: 30, duration: 1 }] });
    expect(effectiveLayerAt(animated, 10, 5).props.fontSize).toBeCloseTo(20, 9);
    expect(animated.props.fontSize).toBe(10);
  });
});
