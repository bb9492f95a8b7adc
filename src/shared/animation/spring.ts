/**
 * Damped spring (mass–spring–damper) solved analytically, so the value at time t depends only on t:
 * a render at frame N gives the same value whether or not the frames before it were rendered.
 *
 *   m x'' + c x' + k (x − to) = 0,  x(0) = from, x'(0) = velocity
 */
export interface SpringParams {
  stiffness: number; // k > 0
  damping: number; // c >= 0
  mass: number; // m > 0
  velocity?: number; // initial velocity in units/s
}

export interface Spring {
  /** Value at t seconds after the spring starts (t <= 0 gives `from`). */
  valueAt(t: number): number;
  /** Seconds until |x − to| and |x'| stay under the rest thresholds; Infinity for an undamped spring. */
  readonly settleTime: number;
}

/** Fraction of |to − from| (or of 1 when from === to) treated as "at rest". */
const REST_FRACTION = 1e-3;

export function createSpring(from: number, to: number, p: SpringParams): Spring {
  if (!(p.stiffness > 0)) throw new RangeError(`spring stiffness must be > 0, got ${p.stiffness}`);
  if (!(p.mass > 0)) throw new RangeError(`spring mass must be > 0, got ${p.mass}`);
  if (!(p.damping >= 0)) throw new RangeError(`spring damping must be >= 0, got ${p.damping}`);
  const v0 = p.velocity ?? 0;
  const x0 = from - to; // displacement from rest
  const w0 = Math.sqrt(p.stiffness / p.mass);
  const zeta = p.damping / (2 * Math.sqrt(p.stiffness * p.mass));

  let disp: (t: number) => number;
  // Envelope: |x(t) − to| <= amp·e^(−decay·t) and |x'(t)| <= vamp·e^(−decay·t); bounds the settle scan below.
  let amp: number, vamp: number, decay: number;
  if (zeta < 1) {
    const wd = w0 * Math.sqrt(1 - zeta * zeta);
    const b = (v0 + zeta * w0 * x0) / wd;
    disp = (t) => Math.exp(-zeta * w0 * t) * (x0 * Math.cos(wd * t) + b * Math.sin(wd * t));
    decay = zeta * w0;
    amp = Math.hypot(x0, b);
    vamp = amp * (decay + wd);
  } else if (zeta === 1) {
    const b = v0 + w0 * x0;
    disp = (t) => Math.exp(-w0 * t) * (x0 + b * t);
    // t·e^(−w0·t/2) <= 2/(e·w0), so (|x0| + |b|t)e^(−w0 t) <= (|x0| + 2|b|/(e w0))·e^(−w0 t/2)
    decay = w0 / 2;
    amp = Math.abs(x0) + (2 * Math.abs(b)) / (Math.E * w0);
    vamp = Math.abs(b) + w0 * Math.abs(x0) + (2 * Math.abs(b)) / Math.E;
  } else {
    const s = w0 * Math.sqrt(zeta * zeta - 1);
    const r1 = -zeta * w0 + s;
    const r2 = -zeta * w0 - s;
    const c2 = (v0 - r1 * x0) / (r2 - r1);
    const c1 = x0 - c2;
    disp = (t) => c1 * Math.exp(r1 * t) + c2 * Math.exp(r2 * t);
    decay = -r1;
    amp = Math.abs(c1) + Math.abs(c2);
    vamp = Math.abs(c1 * r1) + Math.abs(c2 * r2);
  }

  const scale = Math.abs(x0) > 0 ? Math.abs(x0) : 1;
  const threshold = REST_FRACTION * scale;
  const speedThreshold = threshold * 10;
  let settleTime = Infinity;
  if (zeta > 0 && decay > 0) {
    // After `bound` the envelope guarantees rest; scan [0, bound] in fixed 1 ms steps (deterministic) for the
    // last time the spring is outside the thresholds. Capped at 120 s of simulated time.
    const bound = Math.min(120, Math.max(0, Math.log(amp / threshold) / decay, Math.log(vamp / speedThreshold) / decay));
    const step = 0.001;
    const steps = Math.ceil(bound / step);
    let last = 0;
    let prev = disp(0);
    for (let i = 1; i <= steps; i++) {
      const x = disp(i * step);
      if (Math.abs(x) > threshold || Math.abs(x - prev) / step > speedThreshold) last = i * step;
      prev = x;
    }
    settleTime = Math.round(last * 1000) / 1000;
  }
  return {
    valueAt: (t) => (t <= 0 ? from : t >= settleTime ? to : to + disp(t)),
    settleTime,
  };
}
