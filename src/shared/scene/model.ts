/**
 * Scene model: a list of layers drawn bottom (lowest z) to top, edited only through pure SceneOps so the
 * compositor, REST/WebSocket control and the state store all agree on one validated, versioned value.
 *
 * Layer box: (0,0)–(width,height) in layer space. transform places the anchor point of that box
 * (anchor × size) at (x, y) on the canvas, then rotates (degrees, clockwise) and scales about it.
 * Masks are in layer space, so they move with the layer.
 *
 * Props by type (unknown extra props are kept; numeric ones can be animated as props.<name>):
 *   text                         { text: string, font = '48px "DejaVu Sans"' (CSS font), color = '#ffffff',
 *                                  align = 'left' | 'center' | 'right', fontSize?: px overriding the font's size }
 *   image                        { src: file path or data: URL }
 *   host, assistant, visualFeed, overlay
 *                                { src?: image (file path / data URL), color?: placeholder fill, label?: text }
 *   game                         {} — "Move 96" and the side to move, from the latest `game_state`
 *   prediction                   {} — the viewer prediction game (`prediction_game`): state, time left, top votes
 *   milestone                    {} — a banner for 15 s after each `milestone` message, nothing otherwise
 *   board                        { heatmap = true, arrows = true (top moves of `move_prediction`), hands = true (pieces in
 *                                  hand in the frame margin), color? board fill } — pieces from the latest `game_state`
 *                                  message (data.board 9×9, rank a..i × file 9..1), `board_heatmap` data.grid under them
 *   metrics                      { metrics?: names to show (default, or when none of them arrive: the names
 *                                  seen, at most 6 rows), history = 120 samples, title? } — values from
 *                                  `ppo_metrics` data.values, one sample per new data.step
 *   video                        { source?: name in LiveData.frames | { capture: stream name }, fit = 'contain' | 'fill' |
 *                                  'cover', label? (shown name), offlineAfterSec = 20 } — a captured stream shows its
 *                                  newest frame, a freshness badge and its analysis label, and its last frame dimmed
 *                                  with "offline" when the stream goes away; a video layer without a source is not drawn
 *   host, assistant, visualFeed  placeholders: drawn only with a bound image (`src`), never as bare coloured boxes
 */
import { createCanvas } from '@napi-rs/canvas';
import { z } from 'zod';
import { animationListSchema, type AnimationSpec } from '../animation/spec.js';

export const LAYER_TYPES = ['host', 'assistant', 'visualFeed', 'overlay', 'board', 'metrics', 'text', 'image', 'video', 'game', 'prediction', 'milestone'] as const;
export type LayerType = (typeof LAYER_TYPES)[number];

/** Blend names as the control API spells them → canvas globalCompositeOperation. */
export const BLEND_MODES = {
  normal: 'source-over',
  add: 'lighter',
  multiply: 'multiply',
  screen: 'screen',
  overlay: 'overlay',
  darken: 'darken',
  lighten: 'lighten',
  'color-dodge': 'color-dodge',
  'color-burn': 'color-burn',
  'hard-light': 'hard-light',
  'soft-light': 'soft-light',
  difference: 'difference',
  exclusion: 'exclusion',
  hue: 'hue',
  saturation: 'saturation',
  color: 'color',
  luminosity: 'luminosity',
} as const;
export type BlendMode = keyof typeof BLEND_MODES;

export type Mask =
  | { shape: 'rect'; x: number; y: number; width: number; height: number }
  | { shape: 'roundRect'; x: number; y: number; width: number; height: number; radius: number }
  | { shape: 'circle'; cx: number; cy: number; r: number };

export interface Transform {
  x: number;
  y: number;
  scale: number;
  rotation: number; // degrees
  anchor: [number, number]; // 0..1 of the layer box
}

export interface Layer {
  id: string;
  type: LayerType;
  z: number;
  visible: boolean;
  opacity: number;
  transform: Transform;
  width: number;
  height: number;
  blend: BlendMode;
  mask?: Mask;
  props: Record<string, unknown>;
  animations?: AnimationSpec[];
}

export interface Scene {
  width: number;
  height: number;
  fps: number;
  background: string | null;
  layers: Layer[];
  version: number;
}

/** A rejected scene edit; `path` names the offending field (e.g. "layer.transform.scale", "ids[2]"). */
export class SceneError extends Error {
  readonly path: string;
  constructor(path: string, message: string) {
    super(path ? `${path}: ${message}` : message);
    this.name = 'SceneError';
    this.path = path;
  }
}

export const MAX_LAYERS = 64;
export const MAX_DIMENSION = 16384;

const finite = z.number().finite();
const size = finite.positive().max(MAX_DIMENSION);
let colorProbe: ReturnType<ReturnType<typeof createCanvas>['getContext']> | null = null;

/**
 * True when canvas accepts `value` as a colour. Checked with the same parser the renderer uses, because a
 * colour canvas rejects is silently ignored (the previous fill would leak into the layer).
 */
export function isCssColor(value: string): boolean {
  colorProbe ??= createCanvas(1, 1).getContext('2d');
  for (const sentinel of ['#010203', '#040506']) {
    colorProbe.fillStyle = sentinel;
    colorProbe.fillStyle = value;
    if (colorProbe.fillStyle !== sentinel) return true;
  }
  return false;
}

const color = z
  .string()
  .min(1)
  .max(64)
  .refine(isCssColor, (v) => ({ message: `"${v}" is not a CSS colour (e.g. "#ff8800", "rgba(0,0,0,0.5)", "red")` }));
const src = z.string().min(1).max(8 * 1024 * 1024); // data URLs can be large, but not unbounded

const transformSchema = z
  .object({
    x: finite.default(0),
    y: finite.default(0),
    scale: finite.min(0).max(100).default(1),
    rotation: finite.default(0),
    anchor: z.tuple([finite.min(0).max(1), finite.min(0).max(1)]).default([0, 0]),
  })
  .strict();

const maskSchema = z.discriminatedUnion('shape', [
  z.object({ shape: z.literal('rect'), x: finite.default(0), y: finite.default(0), width: finite.min(0), height: finite.min(0) }).strict(),
  z
    .object({
      shape: z.literal('roundRect'),
      x: finite.default(0),
      y: finite.default(0),
      width: finite.min(0),
      height: finite.min(0),
      radius: finite.min(0),
    })
    .strict(),
  z.object({ shape: z.literal('circle'), cx: finite, cy: finite, r: finite.min(0) }).strict(),
]);

const placeholderProps = z.object({ src: src.optional(), color: color.optional(), label: z.string().max(200).optional() }).passthrough();
const PROPS_SCHEMAS: Record<LayerType, z.ZodTypeAny> = {
  text: z
    .object({
      text: z.string().max(10_000),
      font: z.string().min(1).max(200).default('48px "DejaVu Sans"'),
      color: color.default('#ffffff'),
      align: z.enum(['left', 'center', 'right']).default('left'),
      fontSize: finite.positive().max(2000).optional(),
    })
    .passthrough(),
  image: z.object({ src }).passthrough(),
  host: placeholderProps,
  assistant: placeholderProps,
  visualFeed: placeholderProps,
  overlay: placeholderProps,
  board: z.object({ heatmap: z.boolean().default(true), arrows: z.boolean().default(true), hands: z.boolean().default(true), color: color.optional() }).passthrough(),
  game: z.object({}).passthrough(),
  prediction: z.object({}).passthrough(),
  milestone: z.object({}).passthrough(),
  metrics: z
    .object({
      metrics: z.array(z.string().min(1).max(100)).max(16).optional(),
      explanation: z.boolean().default(true),
      history: z.number().int().min(2).max(2000).default(120),
      title: z.string().max(200).optional(),
    })
    .passthrough(),
  video: z
    .object({
      source: z.union([z.string().min(1).max(100), z.object({ capture: z.string().min(1).max(1000) }).strict()]).optional(),
      fit: z.enum(['contain', 'fill', 'cover']).default('contain'),
      label: z.string().max(100).optional(),
      offlineAfterSec: finite.positive().max(86_400).default(20),
    })
    .passthrough(),
};

const layerBase = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1–64 characters of A-Z a-z 0-9 _ . : -'),
    type: z.enum(LAYER_TYPES),
    z: z.number().int().min(-1_000_000).max(1_000_000).default(0),
    visible: z.boolean().default(true),
    opacity: finite.min(0).max(1).default(1),
    transform: transformSchema.default({}),
    width: size,
    height: size,
    blend: z.enum(Object.keys(BLEND_MODES) as [BlendMode, ...BlendMode[]]).default('normal'),
    mask: maskSchema.optional(),
    props: z.record(z.unknown()).default({}),
    animations: animationListSchema.optional(),
  })
  .strict();

function issuePath(prefix: string, path: (string | number)[]): string {
  let out = prefix;
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

function fail(prefix: string, error: z.ZodError): never {
  const issue = error.issues[0];
  // An unknown key is reported on the object; name the key itself so the client sees which one.
  const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]] : issue.path;
  throw new SceneError(issuePath(prefix, path), issue.message);
}

/** Validates one layer and fills defaults; throws SceneError naming the field (prefixed by `prefix`). */
export function parseLayer(input: unknown, prefix = ''): Layer {
  const base = layerBase.safeParse(input);
  if (!base.success) fail(prefix, base.error);
  const props = PROPS_SCHEMAS[base.data.type].safeParse(base.data.props);
  if (!props.success) fail(issuePath(prefix, ['props']), props.error);
  const layer = { ...base.data, props: props.data as Record<string, unknown> } as Layer;
  if (layer.mask === undefined) delete layer.mask;
  if (layer.animations === undefined) delete layer.animations;
  return layer;
}

const sceneHeader = z
  .object({
    width: z.number().int().min(16).max(7680),
    height: z.number().int().min(16).max(4320),
    fps: finite.positive().max(240),
    background: color.nullable().default(null),
    layers: z.array(z.unknown()).max(MAX_LAYERS).default([]),
    version: z.number().int().min(0).default(0),
  })
  .strict();

/** Validates a whole scene (e.g. restored from the state store). */
export function parseScene(input: unknown): Scene {
  const r = sceneHeader.safeParse(input);
  if (!r.success) fail('', r.error);
  const layers = r.data.layers.map((l, i) => parseLayer(l, `layers[${i}]`));
  checkUniqueIds(layers);
  return { ...r.data, layers: sortByZ(layers) };
}

function checkUniqueIds(layers: Layer[]): void {
  const seen = new Set<string>();
  layers.forEach((l, i) => {
    if (seen.has(l.id)) throw new SceneError(`layers[${i}].id`, `duplicate layer id "${l.id}"`);
    seen.add(l.id);
  });
}

/** Stable sort by z: equal z keeps insertion order, so "later added is on top" among equals. */
function sortByZ(layers: Layer[]): Layer[] {
  return layers
    .map((l, i) => [l, i] as const)
    .sort((a, b) => a[0].z - b[0].z || a[1] - b[1])
    .map(([l]) => l);
}

export type SceneOp =
  | { op: 'add'; layer: unknown }
  | { op: 'update'; id: string; patch: unknown }
  | { op: 'remove'; id: string }
  | { op: 'reorder'; ids: string[] };

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Patch semantics: objects merge key by key (transform, props, mask of the same shape); anything else replaces. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(target) || !isRecord(patch)) return patch;
  const out: Record<string, unknown> = { ...target };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]; // null removes an optional field (mask, animations, a prop)
    else out[k] = k === 'animations' ? v : mergePatch(target[k], v);
  }
  return out;
}

function findIndex(scene: Scene, id: unknown, path: string): number {
  if (typeof id !== 'string') throw new SceneError(path, 'must be a layer id string');
  const i = scene.layers.findIndex((l) => l.id === id);
  if (i < 0) throw new SceneError(path, `no layer "${id}"`);
  return i;
}

/** Applies one edit; pure (the input scene is untouched), returns a new scene with version + 1. */
export function applySceneOp(scene: Scene, op: unknown): Scene {
  if (!isRecord(op)) throw new SceneError('op', 'scene op must be an object like {"op":"add","layer":{…}}');
  const next = (layers: Layer[]): Scene => ({ ...scene, layers: sortByZ(layers), version: scene.version + 1 });
  switch (op.op) {
    case 'add': {
      if (scene.layers.length >= MAX_LAYERS) throw new SceneError('layer', `scene already has the maximum of ${MAX_LAYERS} layers`);
      if (!isRecord(op.layer)) throw new SceneError('layer', 'must be a layer object');
      const input = { ...op.layer };
      // A layer added without z goes on top, which is what someone adding a layer expects.
      if (input.z === undefined) input.z = scene.layers.reduce((m, l) => Math.max(m, l.z + 1), 0);
      const layer = parseLayer(input, 'layer');
      if (scene.layers.some((l) => l.id === layer.id)) throw new SceneError('layer.id', `a layer "${layer.id}" already exists`);
      return next([...scene.layers, layer]);
    }
    case 'update': {
      const i = findIndex(scene, op.id, 'id');
      if (!isRecord(op.patch)) throw new SceneError('patch', 'must be an object of fields to change');
      if (op.patch.id !== undefined && op.patch.id !== op.id) throw new SceneError('patch.id', 'a layer id cannot be changed');
      const layer = parseLayer(mergePatch(scene.layers[i], op.patch), 'patch');
      const layers = scene.layers.slice();
      layers[i] = layer;
      return next(layers);
    }
    case 'remove': {
      const i = findIndex(scene, op.id, 'id');
      return next(scene.layers.filter((_, k) => k !== i));
    }
    case 'reorder': {
      if (!Array.isArray(op.ids)) throw new SceneError('ids', 'must be an array of every layer id, bottom first');
      const byId = new Map(scene.layers.map((l) => [l.id, l]));
      const seen = new Set<string>();
      op.ids.forEach((id, k) => {
        if (typeof id !== 'string' || !byId.has(id)) throw new SceneError(`ids[${k}]`, `no layer "${String(id)}"`);
        if (seen.has(id)) throw new SceneError(`ids[${k}]`, `layer "${id}" listed twice`);
        seen.add(id);
      });
      const missing = scene.layers.filter((l) => !seen.has(l.id)).map((l) => l.id);
      if (missing.length) throw new SceneError('ids', `must list every layer; missing ${missing.join(', ')}`);
      return next((op.ids as string[]).map((id, k) => ({ ...byId.get(id)!, z: k })));
    }
    default:
      throw new SceneError('op', `unknown op "${String(op.op)}" (add, update, remove, reorder)`);
  }
}

/** The capture stream a layer shows, if it is a video layer bound to one. */
export function captureSourceOf(layer: Layer): string | undefined {
  if (layer.type !== 'video') return undefined;
  const src = layer.props.source as { capture?: unknown } | string | undefined;
  return typeof src === 'object' && src !== null && typeof src.capture === 'string' ? src.capture : undefined;
}

export function emptyScene(width: number, height: number, fps: number): Scene {
  return parseScene({ width, height, fps, background: '#000000', layers: [], version: 0 });
}

/**
 * The showcase (benchmarks and tests; the service starts from a preset, see presets.ts): shogi board with
 * the policy heatmap, a metrics panel with sparklines, a video layer for the source "main", and two
 * animated layers (title slide-in, pulsing LIVE badge).
 * Laid out on a 1920×1080 grid and scaled to the requested size.
 */
export function defaultShowcaseScene(width: number, height: number, fps: number): Scene {
  const kx = width / 1920;
  const ky = height / 1080;
  const k = Math.min(kx, ky);
  const X = (v: number) => Math.round(v * kx);
  const Y = (v: number) => Math.round(v * ky);
  const S = (v: number) => Math.max(1, Math.round(v * k));
  const layers: unknown[] = [
    { id: 'board', type: 'board', z: 10, width: S(820), height: S(820), transform: { x: X(60), y: Y(200) }, props: { heatmap: true } },
    {
      id: 'metrics', type: 'metrics', z: 20, width: X(900), height: Y(430), transform: { x: X(960), y: Y(200) },
      props: { metrics: ['ppo/policy_loss', 'ppo/value_loss', 'ppo/entropy', 'ppo/kl_divergence_approx'], title: 'PPO' },
    },
    {
      id: 'video', type: 'video', z: 30, width: X(640), height: Y(360), transform: { x: X(960), y: Y(660) },
      mask: { shape: 'roundRect', x: 0, y: 0, width: X(640), height: Y(360), radius: S(16) }, props: { source: 'main' },
    },
    {
      id: 'title', type: 'text', z: 40, width: X(1200), height: Y(100), transform: { x: X(60), y: Y(50) },
      props: { text: 'ringcast — live shogi RL', font: `bold ${S(64)}px "DejaVu Sans"`, color: '#f5f5f5' },
      animations: [
        { kind: 'tween', property: 'transform.x', from: X(-1200), to: X(60), duration: 0.8, easing: 'easeOutBack' },
        { kind: 'tween', property: 'opacity', from: 0, to: 1, duration: 0.5, easing: 'easeOutQuad' },
      ],
    },
    {
      id: 'live', type: 'overlay', z: 60, width: S(140), height: S(56), transform: { x: X(1720), y: Y(60) },
      mask: { shape: 'roundRect', x: 0, y: 0, width: S(140), height: S(56), radius: S(12) },
      props: { color: '#d62828', label: 'LIVE' },
      animations: [{ kind: 'tween', property: 'opacity', from: 1, to: 0.35, duration: 0.9, easing: 'easeInOutSine', loop: 'infinite', yoyo: true }],
    },
  ];
  return parseScene({ width, height, fps, background: '#101820', layers, version: 0 });
}
