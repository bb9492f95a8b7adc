/**
 * Preview worker (a piscina thread): renders a scene at frame N with the compositor's
 * SceneRenderer and encodes it as PNG, optionally scaled to a narrower width. Rendering a
 * 1920x1080 scene and encoding it takes 100s of ms of CPU, which is why it runs here and
 * not on the main thread.
 *
 * One SceneRenderer at the scene's size, reused (it owns a full-frame canvas and per-layer
 * caches); a narrower preview is rendered at full size and then scaled, never re-laid-out,
 * so a preview shows exactly what the compositor would. Live data is empty (board and
 * panels without telemetry, video "no signal"): the preview is for layout.
 */
import { createCanvas, ImageData, type Canvas } from '@napi-rs/canvas';
import { SceneRenderer, type LiveData } from '../../actors/compositor/render/renderer.js';
import type { Scene } from '../../shared/scene/model.js';

export interface PreviewTask {
  scene: Scene;
  frame: number;
  width: number;
}

let renderer: SceneRenderer | undefined;
let scaler: { width: number; height: number; full: Canvas; small: Canvas } | undefined;
const data: LiveData = { messages: {}, frames: {} };

export default function renderPreview(task: PreviewTask): Uint8Array {
  const { scene, frame, width } = task;
  if (!renderer || renderer.width !== scene.width || renderer.height !== scene.height) {
    renderer = new SceneRenderer(scene.width, scene.height, { layerTiming: 'record' });
    scaler = undefined;
  }
  renderer.render(scene, frame, data);
  if (width === scene.width) return renderer.png();
  const height = Math.max(1, Math.round((scene.height * width) / scene.width));
  if (!scaler || scaler.width !== width || scaler.full.width !== scene.width || scaler.full.height !== scene.height) {
    scaler = { width, height, full: createCanvas(scene.width, scene.height), small: createCanvas(width, height) };
  }
  const rgba = renderer.rgba();
  const pixels = new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, rgba.byteLength);
  scaler.full.getContext('2d').putImageData(new ImageData(pixels, scene.width, scene.height), 0, 0);
  const ctx = scaler.small.getContext('2d');
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(scaler.full, 0, 0, width, height);
  return scaler.small.toBuffer('image/png');
}
