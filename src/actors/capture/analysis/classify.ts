/**
 * Per-stream screen state from consecutive analyses. Pure: the caller keeps the returned
 * `next` and passes it back with the following capture of the same stream.
 *
 * Precedence: black > offline_screen > frozen > ok. A black or offline card is usually
 * also "frozen" (static), but the more specific cause is the useful one to report.
 *
 * Threshold rationale (all luma values 0..255, features from ./features.ts):
 * - black: mean <= 24 and stddev <= 8. Video black decodes to Y' ~16 (limited range);
 *   encoder noise and a small dim logo stay well under a spread of 8. Dark game scenes
 *   are dark but not flat (their spread is tens of units).
 * - frozen: the 32x18 thumbnail differs by <= 1.5 on average AND the pHash by <= 4 bits
 *   from the previous capture. Re-encoding the same picture moves the thumbnail by well
 *   under 1 and the hash by 0-3 bits; live video several seconds apart moves both far
 *   more (a talking head still shifts the thumbnail by several units). `frozenAfter`
 *   (default 2) such consecutive pairs are required so one repeated frame (a stream
 *   paused for a moment, a menu) is not yet reported.
 * - offline_screen: offlineScore >= offlineThreshold (0.8, the correlation level the
 *   template matcher also trusts), or a frame that is not black but flat: detail <= 4.
 *   "Starting soon / BRB" cards are a solid colour or gradient with a few words (detail
 *   ~1-4 at 640x360); game footage measures 8 to 30+. The flat rule is a fallback: a card
 *   with large text or a logo has more detail than that, and a badly out-of-focus camera
 *   can be that flat, so configure offline images (offlineGroup) for reliable detection.
 * - sceneChange: pHash distance >= 12 of 64 bits (unrelated pictures differ by ~32,
 *   the same scene with motion by < 10) or thumbnail difference >= 30 (a cut to a very
 *   different brightness that keeps the coarse layout, which the hash alone would miss).
 */
import type { FrameAnalysis } from './analyze.js';
import { hashDistance, thumbDiff } from './features.js';

export interface VisualState {
  phash: string;
  thumb: Uint8Array;
  /** Consecutive captures (so far) that were near-identical to their predecessor. */
  still: number;
}

export type ScreenState = 'ok' | 'black' | 'frozen' | 'offline_screen';

export interface ClassifyOptions {
  blackMaxMean: number;
  blackMaxStddev: number;
  frozenMaxThumbDiff: number;
  frozenMaxHashDistance: number;
  frozenAfter: number;
  offlineThreshold: number;
  flatMaxDetail: number;
  sceneHashDistance: number;
  sceneThumbDiff: number;
}

export const DEFAULT_CLASSIFY_OPTIONS: Readonly<ClassifyOptions> = Object.freeze({
  blackMaxMean: 24,
  blackMaxStddev: 8,
  frozenMaxThumbDiff: 1.5,
  frozenMaxHashDistance: 4,
  frozenAfter: 2,
  offlineThreshold: 0.8,
  flatMaxDetail: 4,
  sceneHashDistance: 12,
  sceneThumbDiff: 30,
});

export interface Classification {
  state: ScreenState;
  sceneChange: boolean;
  /** pHash distance to the previous capture, null for the first one. */
  hashDistance: number | null;
  next: VisualState;
}

function resolveOptions(opts: Partial<ClassifyOptions> | undefined): ClassifyOptions {
  const o = { ...DEFAULT_CLASSIFY_OPTIONS, ...opts };
  for (const [k, v] of Object.entries(o)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RangeError(`classifyFrame: option ${k} must be a finite number >= 0 (got ${String(v)})`);
  }
  if (!Number.isInteger(o.frozenAfter) || o.frozenAfter < 1) throw new RangeError(`classifyFrame: option frozenAfter must be an integer >= 1 (got ${o.frozenAfter})`);
  return o;
}

export function classifyFrame(prev: VisualState | undefined, a: FrameAnalysis, opts?: Partial<ClassifyOptions>): Classification {
  const o = opts === undefined ? DEFAULT_CLASSIFY_OPTIONS : resolveOptions(opts);
  // A previous state from a different thumbnail size (config change) is no reference.
  const comparable = prev !== undefined && prev.thumb.length === a.thumb.length;
  const dist = comparable ? hashDistance(prev.phash, a.phash) : null;
  const diff = comparable ? thumbDiff(prev.thumb, a.thumb) : null;
  const near = dist !== null && diff !== null && dist <= o.frozenMaxHashDistance && diff <= o.frozenMaxThumbDiff;
  const still = near ? prev!.still + 1 : 0;

  const black = a.luma.mean <= o.blackMaxMean && a.luma.stddev <= o.blackMaxStddev;
  let state: ScreenState = 'ok';
  if (black) state = 'black';
  else if ((a.offlineScore !== null && a.offlineScore >= o.offlineThreshold) || a.luma.detail <= o.flatMaxDetail) state = 'offline_screen';
  else if (still >= o.frozenAfter) state = 'frozen';

  const sceneChange = dist !== null && diff !== null && (dist >= o.sceneHashDistance || diff >= o.sceneThumbDiff);
  return { state, sceneChange, hashDistance: dist, next: { phash: a.phash, thumb: a.thumb, still } };
}
