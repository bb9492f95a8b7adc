import { describe, expect, it } from 'vitest';
import { cubicBezier, EASING_NAMES, EASINGS, resolveEasing } from '../src/shared/animation/easing.js';

describe('easing golden values', () => {
  // Hand-derived from the closed forms (see comments) — not from the implementation.
  const golden: [keyof typeof EASINGS, number, number][] = [
    ['linear', 0.3, 0.3],
    ['easeInQuad', 0.5, 0.25],
    ['easeOutQuad', 0.5, 0.75],
    ['easeInOutQuad', 0.25, 0.125], // 2p²
    ['easeInCubic', 0.5, 0.125],
    ['easeOutCubic', 0.5, 0.875],
    ['easeInOutCubic', 0.25, 0.0625], // 4p³
    ['easeInOutCubic', 0.75, 0.9375],
    ['easeInQuart', 0.5, 0.0625],
    ['easeOutQuart', 0.5, 0.9375],
    ['easeInOutQuart', 0.25, 0.03125], // 8p⁴
    ['easeInQuint', 0.5, 0.03125],
    ['easeOutQuint', 0.5, 0.96875],
    ['easeInOutQuint', 0.25, 0.015625], // 16p⁵
    ['easeInSine', 0.5, 1 - Math.SQRT1_2],
    ['easeOutSine', 0.5, Math.SQRT1_2],
    ['easeInOutSine', 0.5, 0.5],
    ['easeInExpo', 0.5, 0.03125], // 2^(10p−10)
    ['easeOutExpo', 0.5, 0.96875],
    ['easeInOutExpo', 0.25, 0.015625], // 2^(20p−10)/2
    ['easeInCirc', 0.5, 1 - Math.sqrt(0.75)],
    ['easeOutCirc', 0.5, Math.sqrt(0.75)],
    ['easeInBack', 0.5, 2.70158 * 0.125 - 1.70158 * 0.25], // c3 p³ − c1 p² = −0.0876975
    ['easeOutBack', 0.5, 1 + 2.70158 * -0.125 + 1.70158 * 0.25],
    ['easeOutElastic', 0.5, 1.015625], // 2^−5 · sin(8.9012) + 1, sin = 0.5
    ['easeInElastic', 0.5, -0.015625],
    ['easeOutBounce', 0.5, 0.765625], // 7.5625 (0.5 − 1.5/2.75)² + 0.75
    ['easeInBounce', 0.5, 0.234375],
    ['easeInOutBounce', 0.5, 0.5],
  ];
  it.each(golden)('%s(%f) = %f', (name, p, expected) => {
    expect(EASINGS[name](p)).toBeCloseTo(expected, 9);
  });

  it('every easing maps 0 → 0 and 1 → 1', () => {
    for (const name of EASING_NAMES) {
      expect(EASINGS[name](0), name).toBeCloseTo(0, 9);
      expect(EASINGS[name](1), name).toBeCloseTo(1, 9);
    }
  });

  it('back overshoots below 0, elastic above 1 (the point of those families)', () => {
    expect(EASINGS.easeInBack(0.2)).toBeLessThan(0);
    expect(EASINGS.easeOutBack(0.8)).toBeGreaterThan(1);
    expect(Math.max(...Array.from({ length: 99 }, (_, i) => EASINGS.easeOutElastic((i + 1) / 100)))).toBeGreaterThan(1);
  });
});

describe('cubicBezier', () => {
  // Reference values from a 200-step bisection of the Bézier in double precision.
  it('matches CSS `ease` (0.25, 0.1, 0.25, 1)', () => {
    const ease = cubicBezier(0.25, 0.1, 0.25, 1);
    expect(ease(0.1)).toBeCloseTo(0.094796, 5);
    expect(ease(0.25)).toBeCloseTo(0.408511, 5);
    expect(ease(0.5)).toBeCloseTo(0.802403, 5);
    expect(ease(0.75)).toBeCloseTo(0.960459, 5);
    expect(ease(0.9)).toBeCloseTo(0.994316, 5);
  });
  it('matches CSS ease-in-out and an overshooting curve', () => {
    const inOut = resolveEasing('ease-in-out');
    expect(inOut(0.25)).toBeCloseTo(0.129162, 5);
    expect(inOut(0.5)).toBeCloseTo(0.5, 6);
    const over = resolveEasing([0.68, -0.55, 0.265, 1.55]);
    expect(over(0.25)).toBeCloseTo(-0.082807, 5);
    expect(over(0.75)).toBeCloseTo(1.089166, 5);
  });
  it('linear control points give the identity, endpoints are exact', () => {
    const lin = cubicBezier(0, 0, 1, 1);
    for (const p of [0, 0.13, 0.5, 0.77, 1]) expect(lin(p)).toBeCloseTo(p, 6);
    expect(cubicBezier(0.9, 0, 0.1, 1)(0)).toBe(0);
    expect(cubicBezier(0.9, 0, 0.1, 1)(1)).toBe(1);
  });
  it('rejects x outside [0,1] and unknown names with a clear error', () => {
    expect(() => cubicBezier(1.2, 0, 0.5, 1)).toThrow(/x1 and x2 must be within \[0,1\]/);
    expect(() => resolveEasing('easeSideways' as never)).toThrow(/unknown easing "easeSideways"/);
  });
});
