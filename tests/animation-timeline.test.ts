import { describe, expect, it } from 'vitest';
import { animationSpecSchema, type AnimationSpec } from '../src/shared/animation/spec.js';
import { createSpring } from '../src/shared/animation/spring.js';
import { AnimationClock, CompiledAnimations, ValueMap, type AnimationEvent } from '../src/shared/animation/timeline.js';

const specs = (...input: unknown[]): AnimationSpec[] => input.map((s) => animationSpecSchema.parse(s));

/** Value of `property` at frame N, sampled from a fresh compile each time (so no hidden state can leak). */
function at(input: unknown[], fps: number, frame: number, property: string, base: Record<string, number> = {}): number | undefined {
  const anims = new CompiledAnimations(specs(...input), fps);
  const sink = new ValueMap(base);
  anims.sample(frame / fps, sink);
  return sink.values.get(property);
}

describe('tweens', () => {
  it('from/to with easing at chosen frames (t = frame / fps)', () => {
    const tw = [{ property: 'opacity', from: 0, to: 1, duration: 1, easing: 'easeInOutCubic' }];
    expect(at(tw, 40, 0, 'opacity')).toBe(0);
    expect(at(tw, 40, 10, 'opacity')).toBeCloseTo(0.0625, 12); // t = 0.25
    expect(at(tw, 40, 20, 'opacity')).toBeCloseTo(0.5, 12);
    expect(at(tw, 40, 40, 'opacity')).toBe(1);
    expect(at(tw, 40, 400, 'opacity')).toBe(1); // holds the end value
  });

  it('duration and delay in frames', () => {
    const tw = [{ property: 'transform.x', from: 0, to: 300, duration: 30, delay: 15, unit: 'frames' }];
    expect(at(tw, 30, 15, 'transform.x')).toBe(0);
    expect(at(tw, 30, 25, 'transform.x')).toBeCloseTo(100, 9);
    expect(at(tw, 30, 45, 'transform.x')).toBe(300);
  });

  it('before a delayed start it shows `from`; without `from` it starts at the layer value', () => {
    const tw = [{ property: 'opacity', from: 0.2, to: 0.8, duration: 1, delay: 1 }];
    expect(at(tw, 30, 15, 'opacity', { opacity: 1 })).toBe(0.2);
    const noFrom = [{ property: 'transform.y', to: 100, duration: 1 }];
    expect(at(noFrom, 30, 15, 'transform.y', { 'transform.y': 40 })).toBeCloseTo(70, 9);
  });

  it('keyframes by time fraction, with a per-segment easing', () => {
    const kf = [{ property: 'props.size', duration: 2, keyframes: [{ at: 0, value: 0 }, { at: 0.5, value: 100, easing: 'easeInQuad' }, { at: 1, value: 50 }] }];
    expect(at(kf, 10, 5, 'props.size')).toBeCloseTo(50, 9); // p = 0.25: halfway through a linear segment
    expect(at(kf, 10, 10, 'props.size')).toBeCloseTo(100, 9);
    expect(at(kf, 10, 15, 'props.size')).toBeCloseTo(100 - 50 * 0.25, 9); // easeInQuad(0.5) = 0.25
    expect(at(kf, 10, 20, 'props.size')).toBe(50);
  });
});

describe('colour tweens', () => {
  it('interpolates channels and alpha for props.<name>', () => {
    const tw = [{ property: 'props.color', from: '#ff0000', to: 'rgba(0,0,255,0.5)', duration: 1 }];
    expect(at(tw, 10, 0, 'props.color')).toBe('rgba(255,0,0,1)');
    expect(at(tw, 10, 5, 'props.color')).toBe('rgba(128,0,128,0.75)');
    expect(at(tw, 10, 10, 'props.color')).toBe('rgba(0,0,255,0.5)');
    const kf = [{ property: 'props.color', duration: 1, keyframes: [{ at: 0, value: '#000' }, { at: 0.5, value: '#fff' }, { at: 1, value: '#00ff0080' }] }];
    expect(at(kf, 10, 5, 'props.color')).toBe('rgba(255,255,255,1)');
    expect(at(kf, 10, 10, 'props.color')).toBe('rgba(0,255,0,0.502)');
  });
});

describe('timelines', () => {
  const seq = {
    kind: 'sequence', id: 'seq',
    children: [
      { id: 'a', property: 'transform.x', from: 0, to: 100, duration: 1 },
      { id: 'b', property: 'transform.x', from: 100, to: 200, duration: 1, delay: 0.5 },
    ],
  };

  it('sequence: children one after another; a waiting child does not override the playing one', () => {
    expect(at([seq], 30, 15, 'transform.x')).toBeCloseTo(50, 9);
    expect(at([seq], 30, 30, 'transform.x')).toBe(100);
    expect(at([seq], 30, 38, 'transform.x')).toBe(100); // in b's delay: a holds its end value
    expect(at([seq], 30, 60, 'transform.x')).toBeCloseTo(150, 9); // b at 0.5 s
    expect(at([seq], 30, 75, 'transform.x')).toBe(200);
    expect(at([seq], 30, 900, 'transform.x')).toBe(200);
  });

  it('parallel: children together, lasting as long as the longest', () => {
    const par = [{
      kind: 'parallel',
      children: [
        { property: 'opacity', from: 0, to: 1, duration: 0.5 },
        { property: 'transform.scale', from: 1, to: 3, duration: 2 },
      ],
    }];
    expect(at(par, 20, 5, 'opacity')).toBeCloseTo(0.5, 9);
    expect(at(par, 20, 5, 'transform.scale')).toBeCloseTo(1.25, 9);
    expect(at(par, 20, 20, 'opacity')).toBe(1);
    expect(at(par, 20, 20, 'transform.scale')).toBeCloseTo(2, 9);
    expect(new CompiledAnimations(specs(...par), 20).end).toBe(2);
  });

  it('loop count, yoyo and infinite loops', () => {
    const loop3 = [{ property: 'opacity', from: 0, to: 1, duration: 1, loop: 3 }];
    expect(at(loop3, 20, 30, 'opacity')).toBeCloseTo(0.5, 9); // 2nd iteration
    expect(at(loop3, 20, 45, 'opacity')).toBeCloseTo(0.25, 9); // 3rd
    expect(at(loop3, 20, 70, 'opacity')).toBe(1); // finished
    const yoyo = [{ property: 'opacity', from: 0, to: 1, duration: 1, loop: 2, yoyo: true }];
    expect(at(yoyo, 20, 5, 'opacity')).toBeCloseTo(0.25, 9);
    expect(at(yoyo, 20, 25, 'opacity')).toBeCloseTo(0.75, 9); // backwards
    expect(at(yoyo, 20, 100, 'opacity')).toBe(0); // ended on a backwards iteration
    const forever = [{ property: 'transform.rotation', from: 0, to: 360, duration: 2, loop: 'infinite' }];
    expect(at(forever, 30, 30 * 1001, 'transform.rotation')).toBeCloseTo(180, 6);
    expect(new CompiledAnimations(specs(...forever), 30).end).toBe(Infinity);
  });

  it('a looped sequence restarts its children each iteration', () => {
    const looped = [{ ...seq, loop: 2 }];
    expect(at(looped, 30, 75 + 15, 'transform.x')).toBeCloseTo(50, 9);
    expect(at(looped, 30, 150, 'transform.x')).toBe(200);
  });
});

describe('events', () => {
  function run(input: unknown[], fps: number, frames: number[]): (AnimationEvent & { frame: number })[] {
    const anims = new CompiledAnimations(specs(...input), fps);
    const fired: (AnimationEvent & { frame: number })[] = [];
    let frame = 0;
    const clock = new AnimationClock(anims, (e) => fired.push({ ...e, frame }));
    for (frame of frames) clock.advance(frame);
    return fired;
  }
  const seq = {
    kind: 'sequence', id: 'seq',
    children: [
      { id: 'a', property: 'opacity', from: 0, to: 1, duration: 1 },
      { id: 'b', property: 'opacity', from: 1, to: 0, duration: 1, delay: 0.5 },
    ],
  };
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);

  it('start/end fire exactly once each, in the frame of the crossing', () => {
    const fired = run([seq], 30, range(120)).map((e) => `${e.frame}:${e.id}:${e.type}`);
    expect(fired).toEqual(['0:seq:start', '0:a:start', '30:a:end', '45:b:start', '75:b:end', '75:seq:end']);
  });

  it('re-rendering a frame fires nothing; skipping frames still fires each crossing once', () => {
    const again = run([seq], 30, [0, 0, 1, 30, 30, 30, 31]).map((e) => `${e.frame}:${e.id}:${e.type}`);
    expect(again).toEqual(['0:seq:start', '0:a:start', '30:a:end']);
    const skipping = run([seq], 30, [0, 50, 100]).map((e) => `${e.frame}:${e.id}:${e.type}`);
    expect(skipping).toEqual(['0:seq:start', '0:a:start', '50:a:end', '50:b:start', '100:b:end', '100:seq:end']);
  });

  it('events at frame N are a pure function of N (reproducible renders)', () => {
    const anims = new CompiledAnimations(specs(seq), 30);
    const a = anims.eventsAtFrame(45).map((e) => `${e.id}:${e.type}`);
    anims.eventsAtFrame(10);
    expect(anims.eventsAtFrame(45).map((e) => `${e.id}:${e.type}`)).toEqual(a);
    expect(a).toEqual(['b:start']);
  });

  it('loops report each iteration boundary once; an infinite loop keeps looping', () => {
    const loop = [{ id: 'l', property: 'opacity', from: 0, to: 1, duration: 1, loop: 3 }];
    expect(run(loop, 10, range(50)).map((e) => `${e.frame}:${e.type}:${e.iteration}`)).toEqual(
      ['0:start:0', '10:loop:1', '20:loop:2', '30:end:3'],
    );
    const forever = [{ id: 'f', property: 'opacity', from: 0, to: 1, duration: 0.5, delay: 0.2, loop: 'infinite' }];
    const fired = run(forever, 10, range(23));
    expect(fired.map((e) => `${e.frame}:${e.type}`)).toEqual(['2:start', '7:loop', '12:loop', '17:loop', '22:loop']);
  });
});

/** Independent reference: RK4 integration of m x'' + c x' + k (x − to) = 0 with a tiny step. */
function rk4Spring(from: number, to: number, k: number, c: number, m: number, v0: number, t: number): number {
  let x = from, v = v0;
  const dt = 1e-4;
  const acc = (xx: number, vv: number) => (-k * (xx - to) - c * vv) / m;
  for (let s = 0; s < Math.round(t / dt); s++) {
    const k1x = v, k1v = acc(x, v);
    const k2x = v + (dt / 2) * k1v, k2v = acc(x + (dt / 2) * k1x, v + (dt / 2) * k1v);
    const k3x = v + (dt / 2) * k2v, k3v = acc(x + (dt / 2) * k2x, v + (dt / 2) * k2v);
    const k4x = v + dt * k3v, k4v = acc(x + dt * k3x, v + dt * k3v);
    x += (dt / 6) * (k1x + 2 * k2x + 2 * k3x + k4x);
    v += (dt / 6) * (k1v + 2 * k2v + 2 * k3v + k4v);
  }
  return x;
}

describe('springs', () => {
  it.each([
    ['underdamped', 170, 8, 1, 0],
    ['critically damped', 100, 20, 1, 0],
    ['overdamped', 100, 60, 1, 5],
  ])('%s spring matches numerical integration', (_name, k, c, m, v0) => {
    const s = createSpring(0, 100, { stiffness: k, damping: c, mass: m, velocity: v0 });
    for (const t of [0.05, 0.2, 0.5]) expect(s.valueAt(t)).toBeCloseTo(rk4Spring(0, 100, k, c, m, v0, t), 4);
  });

  it('settles at `to` and stays there', () => {
    const s = createSpring(0.2, 1, { stiffness: 120, damping: 10, mass: 1 });
    expect(s.settleTime).toBeGreaterThan(0.5);
    expect(s.settleTime).toBeLessThan(3);
    for (let t = s.settleTime; t < s.settleTime + 2; t += 0.01) expect(Math.abs(s.valueAt(t) - 1)).toBeLessThan(1e-3);
    // it overshoots on the way (underdamped): somewhere above the target
    expect(Math.max(...Array.from({ length: 100 }, (_, i) => s.valueAt(i / 100)))).toBeGreaterThan(1);
  });

  it('is deterministic per frame: same value whatever was sampled before', () => {
    const spec = [{ kind: 'spring', property: 'transform.scale', from: 0.2, to: 1, stiffness: 120, damping: 10, delay: 0.3 }];
    const ref = at(spec, 30, 20, 'transform.scale');
    const anims = new CompiledAnimations(specs(...spec), 30);
    const sink = new ValueMap();
    for (const f of [50, 3, 19, 21, 20]) {
      sink.clear();
      anims.sample(f / 30, sink);
    }
    expect(sink.values.get('transform.scale')).toBe(ref);
    expect(at(spec, 30, 5, 'transform.scale')).toBe(0.2); // before its delay
    expect(at(spec, 30, 300, 'transform.scale')).toBe(1);
  });

  it('an undamped spring needs an explicit duration', () => {
    expect(() => new CompiledAnimations(specs({ kind: 'spring', property: 'opacity', from: 0, to: 1, damping: 0 }), 30)).toThrow(/never settles/);
  });
});

describe('spec validation', () => {
  const err = (input: unknown) => {
    const r = animationSpecSchema.safeParse(input);
    expect(r.success).toBe(false);
    const issue = r.error!.issues[0];
    return `${issue.path.join('.')}: ${issue.message}`;
  };
  it('names the offending field', () => {
    expect(err({ property: 'opacity', to: 1, duration: 1, easing: 'wobbly' })).toMatch(/^easing: unknown easing "wobbly"/);
    expect(err({ property: 'color', to: 1, duration: 1 })).toMatch(/^property: "color" is not animatable/);
    expect(err({ property: 'opacity', to: 1, duration: 0 })).toMatch(/^duration:/);
    expect(err({ property: 'opacity', duration: 1 })).toMatch(/^to: a tween needs `to`/);
    expect(err({ property: 'opacity', to: 1, duration: 1, loop: 0 })).toMatch(/^loop:/);
    expect(err({ kind: 'bounce' })).toMatch(/^kind: unknown animation kind "bounce"/);
    expect(err({ property: 'opacity', duration: 1, keyframes: [{ at: 0.6, value: 0 }, { at: 0.2, value: 1 }] })).toMatch(/^keyframes.1.at: keyframes must be sorted/);
    expect(err({ property: 'props.color', from: 'red', to: '#fff', duration: 1 })).toMatch(/^from: "red" is not a colour a tween can interpolate/);
    expect(err({ property: 'opacity', from: '#000', to: '#fff', duration: 1 })).toMatch(/^property: "opacity" is numeric/);
    expect(err({ property: 'props.color', from: 0, to: '#fff', duration: 1 })).toMatch(/^to: mix of numbers and colours/);
    expect(err({ property: 'props.color', to: '#fff', duration: 1 })).toMatch(/^from: a colour tween needs `from`/);
    expect(err({ kind: 'sequence', children: [{ property: 'opacity', to: 1, duration: 1, easing: [2, 0, 0, 1] }] })).toMatch(/^children.0.easing/);
  });
});
