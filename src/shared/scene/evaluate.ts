/**
 * A layer's effective (animated) state at time t. The renderer keeps one EffectiveLayer per layer id and
 * re-fills it every frame, so evaluating animations allocates nothing per frame once compiled.
 */
import { CompiledAnimations, type PropertySink } from '../animation/timeline.js';
import type { Layer } from './model.js';

export interface EffectiveLayer {
  opacity: number;
  x: number;
  y: number;
  scale: number;
  rotation: number;
  width: number;
  height: number;
  /** The layer's props, or a copy with animated props.<name> values applied. */
  props: Record<string, unknown>;
  /** True when some props.<name> is animated (the props object is then the evaluator's own copy). */
  propsAnimated: boolean;
}

export function newEffectiveLayer(): EffectiveLayer {
  return { opacity: 1, x: 0, y: 0, scale: 1, rotation: 0, width: 0, height: 0, props: {}, propsAnimated: false };
}

const compiled = new WeakMap<object, CompiledAnimations>();

/** Compiled animations are cached per spec array (scene edits replace the array, so identity = content). */
export function animationsOf(layer: Layer, fps: number): CompiledAnimations | null {
  const specs = layer.animations;
  if (!specs || specs.length === 0) return null;
  let c = compiled.get(specs);
  if (!c || c.fps !== fps) {
    c = new CompiledAnimations(specs, fps);
    compiled.set(specs, c);
  }
  return c;
}

/** Sink that writes straight into an EffectiveLayer; tracks which properties got a strong write. */
class LayerSink implements PropertySink {
  layer!: Layer;
  out!: EffectiveLayer;
  private written = new Set<string>();
  private strong = new Set<string>();
  private propsCopy: Record<string, unknown> = {};
  private copied = false;

  reset(layer: Layer, out: EffectiveLayer): void {
    this.layer = layer;
    this.out = out;
    this.written.clear();
    this.strong.clear();
    this.copied = false;
  }

  base(property: string): number {
    const l = this.layer;
    switch (property) {
      case 'opacity': return l.opacity;
      case 'width': return l.width;
      case 'height': return l.height;
      case 'transform.x': return l.transform.x;
      case 'transform.y': return l.transform.y;
      case 'transform.scale': return l.transform.scale;
      case 'transform.rotation': return l.transform.rotation;
      default: {
        const v = l.props[property.slice(6)];
        return typeof v === 'number' ? v : 0;
      }
    }
  }

  write(property: string, value: number | string, weak: boolean): void {
    if (weak && (this.written.has(property) || this.strong.has(property))) return;
    this.written.add(property);
    if (!weak) this.strong.add(property);
    const o = this.out;
    if (typeof value === 'string') return this.writeProp(property, value); // colours: props.<name> only
    switch (property) {
      case 'opacity': o.opacity = Math.min(1, Math.max(0, value)); return;
      case 'width': o.width = Math.max(0, value); return;
      case 'height': o.height = Math.max(0, value); return;
      case 'transform.x': o.x = value; return;
      case 'transform.y': o.y = value; return;
      case 'transform.scale': o.scale = Math.max(0, value); return;
      case 'transform.rotation': o.rotation = value; return;
      default:
        this.writeProp(property, value);
    }
  }

  private writeProp(property: string, value: number | string): void {
    if (!this.copied) {
      // Reuse one copy object per sink; rebuilt only when a props animation runs this frame.
      for (const k of Object.keys(this.propsCopy)) delete this.propsCopy[k];
      Object.assign(this.propsCopy, this.layer.props);
      this.copied = true;
      this.out.props = this.propsCopy;
      this.out.propsAnimated = true;
    }
    this.propsCopy[property.slice(6)] = value;
  }
}

/** One evaluator per renderer (it owns scratch state): fills `out` with `layer` at time t. */
export class LayerEvaluator {
  private sinks = new Map<string, LayerSink>();

  evaluate(layer: Layer, fps: number, t: number, out: EffectiveLayer): void {
    out.opacity = layer.opacity;
    out.x = layer.transform.x;
    out.y = layer.transform.y;
    out.scale = layer.transform.scale;
    out.rotation = layer.transform.rotation;
    out.width = layer.width;
    out.height = layer.height;
    out.props = layer.props;
    out.propsAnimated = false;
    const anims = animationsOf(layer, fps);
    if (!anims) return;
    let sink = this.sinks.get(layer.id);
    if (!sink) {
      sink = new LayerSink();
      this.sinks.set(layer.id, sink);
    }
    sink.reset(layer, out);
    anims.sample(t, sink);
  }

  /** Drops scratch state of layers no longer in the scene (bounded memory across edits). */
  retain(ids: Set<string>): void {
    for (const id of this.sinks.keys()) if (!ids.has(id)) this.sinks.delete(id);
  }
}

/** Convenience for tools/tests: the effective layer at frame N (t = frame / fps). */
export function effectiveLayerAt(layer: Layer, fps: number, frame: number): EffectiveLayer {
  const out = newEffectiveLayer();
  new LayerEvaluator().evaluate(layer, fps, frame / fps, out);
  if (out.propsAnimated) out.props = { ...out.props };
  return out;
}
