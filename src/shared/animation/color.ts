/**
 * Colours for colour tweens (e.g. props.color). Only explicit forms are accepted — #rgb, #rgba, #rrggbb,
 * #rrggbbaa, rgb()/rgba() — because interpolation needs channel values, and a named colour would need a
 * 148-entry table for a feature that works as well with hex.
 */
export type Rgba = [number, number, number, number]; // 0..255, 0..255, 0..255, 0..1

const HEX = /^#([0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/i;
const FUNC = /^rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*(?:,\s*([\d.]+)\s*)?\)$/i;

export function parseColor(text: string): Rgba | null {
  const hex = HEX.exec(text.trim());
  if (hex) {
    let h = hex[1];
    if (h.length <= 4) h = [...h].map((c) => c + c).join('');
    const n = (i: number) => parseInt(h.slice(i, i + 2), 16);
    return [n(0), n(2), n(4), h.length === 8 ? n(6) / 255 : 1];
  }
  const f = FUNC.exec(text.trim());
  if (f) {
    const [r, g, b] = [f[1], f[2], f[3]].map(Number);
    const a = f[4] === undefined ? 1 : Number(f[4]);
    if (r > 255 || g > 255 || b > 255 || a > 1) return null;
    return [r, g, b, a];
  }
  return null;
}

/** Straight per-channel mix (sRGB), written as a CSS rgba() string. */
export function mixColor(a: Rgba, b: Rgba, p: number): string {
  const ch = (i: number) => Math.round(a[i] + (b[i] - a[i]) * p);
  const alpha = Math.round((a[3] + (b[3] - a[3]) * p) * 1000) / 1000;
  return `rgba(${ch(0)},${ch(1)},${ch(2)},${alpha})`;
}
