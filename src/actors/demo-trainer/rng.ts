/**
 * Seeded randomness for the demo trainer, so a given seed replays the same games and the
 * same metric curves (tests rely on it; a demo that misbehaves can be reproduced).
 */

/** mulberry32: tiny, fast, good enough for simulation (not for anything secret). */
export class Rng {
  private state: number;
  private spare: number | undefined;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Standard normal (Box–Muller, the second value kept for the next call). */
  gaussian(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}

/** Stable 32-bit seed from a string (FNV-1a), e.g. from the run name. */
export function seedFromString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * AR(1) noise: x ← φ·x + √(1−φ²)·ε keeps unit variance while successive values stay
 * correlated, which is what minibatch-averaged training metrics look like (white noise
 * would look like static, a random walk would wander off).
 */
export class Ar1 {
  private x = 0;
  constructor(private readonly rng: Rng, private readonly phi: number) {}
  next(): number {
    this.x = this.phi * this.x + Math.sqrt(1 - this.phi * this.phi) * this.rng.gaussian();
    return this.x;
  }
}
