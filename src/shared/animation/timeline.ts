/**
 * Compiles AnimationSpecs into clips that are pure functions of time: sample(t) writes property values,
 * eventsBetween(t0, t1) lists the start/loop/end crossings in (t0, t1]. Time comes from the frame clock
 * (t = frame / fps), so frame N always renders the same way, and rendering frames in order fires every
 * event exactly once (each crossing falls in exactly one frame window).
 *
 * Fill rules (why: overlapping animations on one property must not fight):
 *  - an animation that has started (or finished) writes its value "strongly" (last strong write wins,
 *    in spec order), holding its final value after it ends;
 *  - one that has not started yet writes its starting value "weakly", only if nothing else wrote the
 *    property — so a delayed fade-in shows its `from` before it starts, but in a sequence the second
 *    tween does not override the first one while the first is playing.
 * Yoyo iterations play backwards; events of children inside a backwards iteration are not reported
 * (the group's own start/loop/end still are).
 */
import { mixColor, parseColor, type Rgba } from './color.js';
import { resolveEasing, type Easing } from './easing.js';
import type { AnimationSpec, GroupSpec, SpringSpec, TweenSpec } from './spec.js';
import { createSpring } from './spring.js';

/** Receives sampled values. `base` gives a property's un-animated value (for tweens without `from`). */
export interface PropertySink {
  base(property: string): number;
  /** A string value is a colour (colour tweens on props.<name>). */
  write(property: string, value: number | string, weak: boolean): void;
}

export interface AnimationEvent {
  id: string;
  type: 'start' | 'loop' | 'end';
  /** Seconds on the frame clock when the crossing happens. */
  time: number;
  /** Iteration that starts (start/loop) or the iteration count (end). */
  iteration: number;
}

/** Float slack so an event computed as 0.1 + 0.2 still lands in the frame whose time is 0.3. */
const EPS = 1e-9;

abstract class Clip {
  readonly delay: number;
  readonly iterations: number;
  readonly yoyo: boolean;
  abstract readonly duration: number; // one iteration, seconds

  constructor(readonly id: string, spec: { delay: number; loop: number | 'infinite'; yoyo: boolean }, unit: number) {
    this.delay = spec.delay * unit;
    this.iterations = spec.loop === 'infinite' ? Infinity : spec.loop;
    this.yoyo = spec.yoyo;
  }

  /** End time relative to the parent's time origin (Infinity for an infinite loop). */
  get end(): number {
    return this.iterations === Infinity ? Infinity : this.delay + this.duration * this.iterations;
  }

  protected abstract sampleInner(inner: number, sink: PropertySink, weak: boolean): void;
  protected eventsInner(_t0: number, _t1: number, _offset: number, _out: AnimationEvent[]): void {}

  sample(t: number, sink: PropertySink, weak = false): void {
    const u = t - this.delay;
    if (u < 0) return this.sampleInner(0, sink, true);
    const D = this.duration;
    if (this.iterations !== Infinity && u >= D * this.iterations) {
      const lastReversed = this.yoyo && this.iterations % 2 === 0;
      return this.sampleInner(lastReversed ? 0 : D, sink, weak);
    }
    if (D === Infinity) return this.sampleInner(u, sink, weak);
    const i = Math.floor(u / D);
    const inner = u - i * D;
    this.sampleInner(this.yoyo && i % 2 === 1 ? D - inner : inner, sink, weak);
  }

  /** Appends the crossings in (t0, t1], times relative to `offset`. */
  events(t0: number, t1: number, offset: number, out: AnimationEvent[]): void {
    const start = offset + this.delay;
    const end = offset + this.end;
    if (t1 + EPS < start || t0 + EPS >= end) return; // window wholly before the start or after the end
    const D = this.duration;
    if (start > t0 + EPS && start <= t1 + EPS) out.push({ id: this.id, type: 'start', time: start, iteration: 0 });
    const first = D === Infinity ? 0 : Math.max(0, Math.floor((t0 - start) / D));
    const last = D === Infinity ? 0 : Math.min(this.iterations - 1, Math.floor((t1 - start) / D + EPS));
    for (let i = first; i <= last; i++) {
      const iterStart = start + i * D;
      if (i > 0 && iterStart > t0 + EPS && iterStart <= t1 + EPS) {
        out.push({ id: this.id, type: 'loop', time: iterStart, iteration: i });
      }
      if (!(this.yoyo && i % 2 === 1)) this.eventsInner(t0, t1, iterStart, out);
    }
    if (end > t0 + EPS && end <= t1 + EPS) out.push({ id: this.id, type: 'end', time: end, iteration: this.iterations });
  }
}

class TweenClip extends Clip {
  readonly duration: number;
  private readonly easing: Easing;
  private readonly frames: { at: number; value: number; color: Rgba | null; easing: Easing }[] | null;
  private readonly fromColor: Rgba | null;
  private readonly toColor: Rgba | null;

  constructor(id: string, private readonly spec: TweenSpec, unit: number) {
    super(id, spec, unit);
    this.duration = spec.duration * unit;
    this.easing = resolveEasing(spec.easing);
    // Colours are parsed once here; the schema guaranteed they parse.
    this.frames = spec.keyframes
      ? spec.keyframes.map((k) => ({
          at: k.at,
          value: typeof k.value === 'number' ? k.value : 0,
          color: typeof k.value === 'string' ? parseColor(k.value) : null,
          easing: resolveEasing(k.easing),
        }))
      : null;
    this.fromColor = typeof spec.from === 'string' ? parseColor(spec.from) : null;
    this.toColor = typeof spec.to === 'string' ? parseColor(spec.to) : null;
  }

  private mix(a: { value: number; color: Rgba | null }, b: { value: number; color: Rgba | null }, q: number): number | string {
    if (a.color && b.color) return mixColor(a.color, b.color, q);
    return a.value + (b.value - a.value) * q;
  }

  protected sampleInner(inner: number, sink: PropertySink, weak: boolean): void {
    const raw = Math.min(1, Math.max(0, inner / this.duration));
    // Every easing maps 0→0 and 1→1; pin the ends so float noise (easeOutBack(0) ≈ −2e−16) never shows.
    const p = raw === 0 ? 0 : raw === 1 ? 1 : this.easing(raw);
    const s = this.spec;
    if (!this.frames) {
      if (this.fromColor && this.toColor) return sink.write(s.property, mixColor(this.fromColor, this.toColor, p), weak);
      const from = (s.from as number | undefined) ?? sink.base(s.property);
      sink.write(s.property, from + ((s.to as number) - from) * p, weak);
      return;
    }
    const f = this.frames;
    if (p <= f[0].at) return sink.write(s.property, this.mix(f[0], f[0], 0), weak);
    for (let i = 1; i < f.length; i++) {
      if (p <= f[i].at) {
        const a = f[i - 1];
        const span = f[i].at - a.at;
        const q = span > 0 ? a.easing((p - a.at) / span) : 1;
        return sink.write(s.property, this.mix(a, f[i], q), weak);
      }
    }
    const last = f[f.length - 1];
    sink.write(s.property, this.mix(last, last, 0), weak);
  }
}

class SpringClip extends Clip {
  readonly duration: number;
  private springs = new Map<number, ReturnType<typeof createSpring>>();

  constructor(id: string, private readonly spec: SpringSpec, unit: number) {
    super(id, spec, unit);
    const probe = createSpring(0, 1, spec);
    const d = spec.duration !== undefined ? spec.duration * unit : probe.settleTime;
    if (!Number.isFinite(d)) throw new RangeError(`spring "${id}" never settles (damping 0): give it a duration`);
    this.duration = Math.max(d, 0.001); // a spring already at rest still needs a non-zero iteration
    if (spec.from !== undefined) this.springs.set(spec.from, createSpring(spec.from, spec.to, spec));
  }

  protected sampleInner(inner: number, sink: PropertySink, weak: boolean): void {
    const from = this.spec.from ?? sink.base(this.spec.property);
    let spring = this.springs.get(from);
    if (!spring) {
      // `from` taken from the layer: cache per base value (bounded: the base only changes on scene edits)
      if (this.springs.size >= 8) this.springs.clear();
      spring = createSpring(from, this.spec.to, this.spec);
      this.springs.set(from, spring);
    }
    sink.write(this.spec.property, inner >= this.duration ? this.spec.to : spring.valueAt(inner), weak);
  }
}

class GroupClip extends Clip {
  readonly duration: number;

  constructor(id: string, private readonly spec: GroupSpec, unit: number, private readonly children: Clip[]) {
    super(id, spec, unit);
    if (spec.kind === 'sequence') {
      let total = 0;
      for (const c of children) total += c.end;
      this.duration = total;
    } else {
      this.duration = Math.max(...children.map((c) => c.end));
    }
    if (this.duration === Infinity && this.iterations !== 1) {
      throw new RangeError(`"${id}": cannot loop a group that contains an infinite loop`);
    }
  }

  protected sampleInner(inner: number, sink: PropertySink, weak: boolean): void {
    if (this.spec.kind === 'parallel') {
      for (const c of this.children) c.sample(inner, sink, weak);
      return;
    }
    let offset = 0;
    for (const c of this.children) {
      c.sample(inner - offset, sink, weak);
      offset += c.end;
    }
  }

  protected override eventsInner(t0: number, t1: number, offset: number, out: AnimationEvent[]): void {
    let o = offset;
    for (const c of this.children) {
      c.events(t0, t1, o, out);
      if (this.spec.kind === 'sequence') o += c.end;
    }
  }
}

function compileOne(spec: AnimationSpec, path: string, fps: number): Clip {
  const unit = spec.unit === 'frames' ? 1 / fps : 1;
  const id = spec.id ?? path;
  if (spec.kind === 'sequence' || spec.kind === 'parallel') {
    const children = spec.children.map((c, i) => compileOne(c, `${path}.children.${i}`, fps));
    return new GroupClip(id, spec, unit, children);
  }
  if (spec.kind === 'spring') return new SpringClip(id, spec, unit);
  return new TweenClip(id, spec as TweenSpec, unit);
}

/** A layer's animations, played in parallel from t = 0. */
export class CompiledAnimations {
  private readonly clips: Clip[];

  constructor(specs: readonly AnimationSpec[], readonly fps: number) {
    if (!(fps > 0)) throw new RangeError(`fps must be > 0, got ${fps}`);
    this.clips = specs.map((s, i) => compileOne(s, String(i), fps));
  }

  get size(): number {
    return this.clips.length;
  }

  /** Latest end over all animations (Infinity if any loops forever): after it, the values never change. */
  get end(): number {
    let e = 0;
    for (const c of this.clips) e = Math.max(e, c.end);
    return e;
  }

  sample(t: number, sink: PropertySink): void {
    for (const c of this.clips) c.sample(t, sink);
  }

  /** Events with t0 < time <= t1, in time order (ties keep spec order). */
  eventsBetween(t0: number, t1: number, out: AnimationEvent[] = []): AnimationEvent[] {
    const from = out.length;
    for (const c of this.clips) c.events(t0, t1, 0, out);
    if (out.length - from > 1) {
      const mine = out.splice(from).sort((a, b) => a.time - b.time);
      out.push(...mine);
    }
    return out;
  }

  /** Events that belong to frame N: crossings in ((N-1)/fps, N/fps]. */
  eventsAtFrame(frame: number, out: AnimationEvent[] = []): AnimationEvent[] {
    return this.eventsBetween((frame - 1) / this.fps, frame / this.fps, out);
  }
}

/** A plain map sink: collects the values sampled at one time (tests, tools; the renderer has its own). */
export class ValueMap implements PropertySink {
  readonly values = new Map<string, number | string>();
  private readonly strong = new Set<string>();
  constructor(private readonly baseValues: Record<string, number> = {}) {}
  base(property: string): number {
    return this.baseValues[property] ?? 0;
  }
  write(property: string, value: number | string, weak: boolean): void {
    if (weak && this.values.has(property)) return;
    if (weak && this.strong.has(property)) return;
    this.values.set(property, value);
    if (!weak) this.strong.add(property);
  }
  clear(): void {
    this.values.clear();
    this.strong.clear();
  }
}

/**
 * Fires callbacks for events as frames advance: each crossing once. Rendering the same frame again fires
 * nothing; jumping ahead fires everything crossed in between (bounded by `maxCatchUpFrames`, why: a seek
 * over hours of an infinite loop must not flood listeners); going back re-arms the crossings after it.
 */
export class AnimationClock {
  private last: number | null = null;
  private readonly scratch: AnimationEvent[] = [];
  constructor(
    private readonly anims: CompiledAnimations,
    private readonly onEvent: (e: AnimationEvent) => void,
    private readonly maxCatchUpFrames = 300,
  ) {}

  advance(frame: number): number {
    if (this.last !== null && frame <= this.last) {
      this.last = frame;
      return 0;
    }
    const from = this.last === null ? frame - 1 : Math.max(this.last, frame - this.maxCatchUpFrames);
    this.last = frame;
    this.scratch.length = 0;
    this.anims.eventsBetween(from / this.anims.fps, frame / this.anims.fps, this.scratch);
    for (const e of this.scratch) this.onEvent(e);
    return this.scratch.length;
  }
}

export function compileAnimations(specs: readonly AnimationSpec[], fps: number): CompiledAnimations {
  return new CompiledAnimations(specs, fps);
}
