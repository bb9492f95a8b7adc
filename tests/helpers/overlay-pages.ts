/**
 * Helpers for the overlay page tests (metrics, game, milestones, control): read a page's
 * `window.__overlay` state, sample real canvas pixels, and poll until a condition holds.
 */
import type { Page } from 'playwright-core';
import { pollUntil } from './poll.js';

export type Rgba = [number, number, number, number];

/** Polls `probe` until `accept` holds; the error names what was awaited and the last value seen. */
export function until<T>(probe: () => Promise<T>, accept: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  let last: T | undefined;
  let seen = false;
  const accepted = async (): Promise<{ v: T } | undefined> => {
    last = await probe();
    seen = true;
    return accept(last) ? { v: last } : undefined;
  };
  return pollUntil(what, timeoutMs, accepted, () => (seen ? last : undefined), 50).then((r) => r.v);
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

/** The page's `window.__overlay` object itself (the board-style pages publish what they drew there). */
export function drawnState<T>(page: Page): Promise<T> {
  return page.evaluate(() => (window as unknown as { __overlay: unknown }).__overlay) as Promise<T>;
}

/** Polls the page's drawn state until `ok` holds. */
export function waitForDrawn<T>(page: Page, ok: (d: T) => boolean, what: string, timeoutMs = 8_000): Promise<T> {
  return until(() => drawnState<T>(page), ok, timeoutMs, what);
}

/** RGBA of page pixels on one canvas layer (page coordinates). */
export function layerPixels(page: Page, layer: string, points: { x: number; y: number }[]): Promise<number[][]> {
  return page.evaluate(({ layer, points }) => {
    const canvas = document.querySelector(`canvas[data-layer="${layer}"]`) as HTMLCanvasElement;
    const ctx = canvas.getContext('2d')!;
    const box = canvas.getBoundingClientRect();
    const sx = canvas.width / box.width, sy = canvas.height / box.height;
    return points.map((p) => Array.from(ctx.getImageData(Math.round((p.x - box.left) * sx), Math.round((p.y - box.top) * sy), 1, 1).data));
  }, { layer, points });
}

/** Page coordinates of a board square's centre ("7g") from the drawn board layout. */
export function squareCenter(layout: { cell: number; x0: number; y0: number }, square: string): { x: number; y: number } {
  const col = 9 - Number(square[0]);
  const row = 'abcdefghi'.indexOf(square[1]);
  return { x: layout.x0 + (col + 0.5) * layout.cell, y: layout.y0 + (row + 0.5) * layout.cell };
}

/** Nearest-rank percentile. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
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
