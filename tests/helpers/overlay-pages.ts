/**
 * Helpers for the overlay page tests (metrics, game, milestones, control): read a page's
 * `window.__overlay` state, sample real canvas pixels, and poll until a condition holds.
 */
import type { Page } from 'playwright-core';

export type Rgba = [number, number, number, number];

/** Polls `probe` until `accept` holds; the error names what was awaited and the last value seen. */
export async function until<T>(probe: () => Promise<T>, accept: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await probe();
    if (accept(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)?.slice(0, 800)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The page's `window.__overlay.state()`. */
export function overlayState<T = Record<string, any>>(page: Page): Promise<T> {
  return page.evaluate(() => (window as any).__overlay.state()) as Promise<T>;
}

/** RGBA pixels of the square of radius r (CSS px) around (x, y) on a canvas, read with getImageData. */
export async function canvasPixels(page: Page, selector: string, x: number, y: number, r = 0): Promise<Rgba[]> {
  return page.evaluate(([sel, cx, cy, rad]) => {
    const canvas = document.querySelector(sel as string) as HTMLCanvasElement;
    const dpr = canvas.width / canvas.clientWidth;
    const x0 = Math.max(0, Math.round(((cx as number) - (rad as number)) * dpr));
    const y0 = Math.max(0, Math.round(((cy as number) - (rad as number)) * dpr));
    const size = Math.max(1, Math.round((2 * (rad as number) + 1) * dpr));
    const data = canvas.getContext('2d')!.getImageData(x0, y0, size, size).data;
    const out: number[][] = [];
    for (let i = 0; i < data.length; i += 4) out.push([data[i], data[i + 1], data[i + 2], data[i + 3]]);
    return out;
  }, [selector, x, y, r] as const) as Promise<Rgba[]>;
}

export function hexToRgb(hex: string): [number, number, number] {
  const h = hex.replace('#', '');
  return [parseInt(h.slice(0, 2), 16), parseInt(h.slice(2, 4), 16), parseInt(h.slice(4, 6), 16)];
}

/** True when some opaque-enough pixel is within `tolerance` (per channel) of the colour. */
export function hasColour(pixels: Rgba[], hex: string, tolerance = 24, minAlpha = 200): boolean {
  const [r, g, b] = hexToRgb(hex);
  return pixels.some((p) => p[3] >= minAlpha && Math.abs(p[0] - r) <= tolerance && Math.abs(p[1] - g) <= tolerance && Math.abs(p[2] - b) <= tolerance);
}

/** Maps (step, value) to CSS pixels exactly as overlay/lib/sparkline.js documents. */
export function sparkPixel(g: { x: number; y: number; w: number; h: number; minStep: number; maxStep: number; lo: number; hi: number }, step: number, value: number): [number, number] {
  const span = g.maxStep - g.minStep;
  const x = span > 0 ? g.x + ((step - g.minStep) / span) * g.w : g.x + g.w;
  return [x, g.y + g.h - ((value - g.lo) / (g.hi - g.lo)) * g.h];
}

export function p95(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(0.95 * (s.length - 1)))];
}

/** Intervals between animation frames (ms) over `ms`, measured inside the page while it works. */
export function rafIntervals(page: Page, ms: number): Promise<number[]> {
  return page.evaluate((duration) => new Promise<number[]>((resolve) => {
    const out: number[] = [];
    let last = performance.now();
    const end = last + duration;
    const tick = (t: number) => {
      out.push(t - last);
      last = t;
      if (t < end) requestAnimationFrame(tick); else resolve(out.slice(1));
    };
    requestAnimationFrame(tick);
  }), ms);
}
