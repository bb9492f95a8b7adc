/**
 * Easing functions: progress p in [0,1] → eased progress (may overshoot for back/elastic).
 * Formulas follow the usual Penner families so values match what designers expect from CSS/GSAP tools.
 */
export type Easing = (p: number) => number;

const PI = Math.PI;
const C1 = 1.70158; // "back" overshoot (≈10 %)
const C2 = C1 * 1.525;
const C3 = C1 + 1;
const C4 = (2 * PI) / 3;
const C5 = (2 * PI) / 4.5;

function bounceOut(p: number): number {
  const n1 = 7.5625;
  const d1 = 2.75;
  if (p < 1 / d1) return n1 * p * p;
  if (p < 2 / d1) return n1 * (p -= 1.5 / d1) * p + 0.75;
  if (p < 2.5 / d1) return n1 * (p -= 2.25 / d1) * p + 0.9375;
  return n1 * (p -= 2.625 / d1) * p + 0.984375;
}

/** Builds in/out/inOut from an "in" curve so every family is defined once. */
function family(easeIn: Easing): { in: Easing; out: Easing; inOut: Easing } {
  return {
    in: easeIn,
    out: (p) => 1 - easeIn(1 - p),
    inOut: (p) => (p < 0.5 ? easeIn(2 * p) / 2 : 1 - easeIn(2 - 2 * p) / 2),
  };
}

const quad = family((p) => p * p);
const cubic = family((p) => p * p * p);
const quart = family((p) => p * p * p * p);
const quint = family((p) => p * p * p * p * p);
const sine = family((p) => 1 - Math.cos((p * PI) / 2));
const expo = family((p) => (p === 0 ? 0 : Math.pow(2, 10 * p - 10)));
const circ = family((p) => 1 - Math.sqrt(1 - p * p));
const bounce = family((p) => 1 - bounceOut(1 - p));

export const EASINGS = {
  linear: (p: number) => p,
  easeInQuad: quad.in, easeOutQuad: quad.out, easeInOutQuad: quad.inOut,
  easeInCubic: cubic.in, easeOutCubic: cubic.out, easeInOutCubic: cubic.inOut,
  easeInQuart: quart.in, easeOutQuart: quart.out, easeInOutQuart: quart.inOut,
  easeInQuint: quint.in, easeOutQuint: quint.out, easeInOutQuint: quint.inOut,
  easeInSine: sine.in, easeOutSine: sine.out, easeInOutSine: sine.inOut,
  easeInExpo: expo.in, easeOutExpo: expo.out,
  // expo's in/out pair is not symmetric at the ends (2^-10 ≠ 0), so inOut pins them exactly.
  easeInOutExpo: (p: number) =>
    p === 0 ? 0 : p === 1 ? 1 : p < 0.5 ? Math.pow(2, 20 * p - 10) / 2 : (2 - Math.pow(2, -20 * p + 10)) / 2,
  easeInCirc: circ.in, easeOutCirc: circ.out, easeInOutCirc: circ.inOut,
  easeInBack: (p: number) => C3 * p * p * p - C1 * p * p,
  easeOutBack: (p: number) => 1 + C3 * Math.pow(p - 1, 3) + C1 * Math.pow(p - 1, 2),
  easeInOutBack: (p: number) =>
    p < 0.5
      ? (Math.pow(2 * p, 2) * ((C2 + 1) * 2 * p - C2)) / 2
      : (Math.pow(2 * p - 2, 2) * ((C2 + 1) * (p * 2 - 2) + C2) + 2) / 2,
  easeInElastic: (p: number) =>
    p === 0 ? 0 : p === 1 ? 1 : -Math.pow(2, 10 * p - 10) * Math.sin((p * 10 - 10.75) * C4),
  easeOutElastic: (p: number) =>
    p === 0 ? 0 : p === 1 ? 1 : Math.pow(2, -10 * p) * Math.sin((p * 10 - 0.75) * C4) + 1,
  easeInOutElastic: (p: number) =>
    p === 0
      ? 0
      : p === 1
        ? 1
        : p < 0.5
          ? -(Math.pow(2, 20 * p - 10) * Math.sin((20 * p - 11.125) * C5)) / 2
          : (Math.pow(2, -20 * p + 10) * Math.sin((20 * p - 11.125) * C5)) / 2 + 1,
  easeInBounce: bounce.in, easeOutBounce: bounceOut, easeInOutBounce: bounce.inOut,
} satisfies Record<string, Easing>;

export type EasingName = keyof typeof EASINGS;
export const EASING_NAMES = Object.keys(EASINGS) as EasingName[];

/**
 * CSS-style cubic-bezier timing function through (0,0),(x1,y1),(x2,y2),(1,1).
 * x(s) is solved for s by Newton–Raphson with a bisection fallback (Newton stalls where the slope is ~0),
 * then y(s) is returned. x1/x2 must lie in [0,1] so x(s) is monotonic and the solution unique.
 */
export function cubicBezier(x1: number, y1: number, x2: number, y2: number): Easing {
  if (!(x1 >= 0 && x1 <= 1 && x2 >= 0 && x2 <= 1)) {
    throw new RangeError(`cubicBezier: x1 and x2 must be within [0,1], got ${x1}, ${x2}`);
  }
  // Polynomial coefficients of B(s) = a s^3 + b s^2 + c s for each axis.
  const cx = 3 * x1, bx = 3 * (x2 - x1) - cx, ax = 1 - cx - bx;
  const cy = 3 * y1, by = 3 * (y2 - y1) - cy, ay = 1 - cy - by;
  const sampleX = (s: number) => ((ax * s + bx) * s + cx) * s;
  const sampleY = (s: number) => ((ay * s + by) * s + cy) * s;
  const slopeX = (s: number) => (3 * ax * s + 2 * bx) * s + cx;
  const EPS = 1e-7;
  return (p: number) => {
    if (p <= 0) return 0;
    if (p >= 1) return 1;
    let s = p;
    for (let i = 0; i < 8; i++) {
      const err = sampleX(s) - p;
      if (Math.abs(err) < EPS) return sampleY(s);
      const d = slopeX(s);
      if (Math.abs(d) < 1e-6) break;
      s -= err / d;
    }
    let lo = 0, hi = 1;
    s = p;
    for (let i = 0; i < 60; i++) {
      const x = sampleX(s);
      if (Math.abs(x - p) < EPS) break;
      if (x < p) lo = s;
      else hi = s;
      s = (lo + hi) / 2;
    }
    return sampleY(s);
  };
}

/** JSON form of an easing: a name from EASINGS, a CSS keyword, or bezier control points. */
export type EasingSpec = EasingName | 'ease' | 'ease-in' | 'ease-out' | 'ease-in-out' | [number, number, number, number];

const CSS_KEYWORDS: Record<string, [number, number, number, number]> = {
  ease: [0.25, 0.1, 0.25, 1],
  'ease-in': [0.42, 0, 1, 1],
  'ease-out': [0, 0, 0.58, 1],
  'ease-in-out': [0.42, 0, 0.58, 1],
};

const bezierCache = new Map<string, Easing>();

/** Resolves an EasingSpec; throws a RangeError naming the unknown easing. Bezier curves are memoised. */
export function resolveEasing(spec: EasingSpec | undefined): Easing {
  if (spec === undefined) return EASINGS.linear;
  if (Array.isArray(spec)) {
    const key = spec.join(',');
    let fn = bezierCache.get(key);
    if (!fn) {
      fn = cubicBezier(spec[0], spec[1], spec[2], spec[3]);
      if (bezierCache.size < 256) bezierCache.set(key, fn); // bounded: specs come from user JSON
    }
    return fn;
  }
  if (spec in EASINGS) return EASINGS[spec as EasingName];
  const css = CSS_KEYWORDS[spec];
  if (css) return resolveEasing(css);
  throw new RangeError(`unknown easing "${String(spec)}" (expected one of ${[...EASING_NAMES, ...Object.keys(CSS_KEYWORDS)].join(', ')} or [x1,y1,x2,y2])`);
}

export function isEasingName(name: string): boolean {
  return name in EASINGS || name in CSS_KEYWORDS;
}
