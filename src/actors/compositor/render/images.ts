/**
 * Synchronous image loading for layer `src` props (file path or data: URL). The renderer runs inside a
 * fixed-rate frame loop, so decoding happens once per distinct src and is cached (bounded LRU); a
 * failed load is cached too, so a broken path costs one error, not one per frame.
 */
import { readFileSync } from 'node:fs';
import { Image } from '@napi-rs/canvas';

export type ImageResult = { ok: true; image: Image } | { ok: false; error: string };

const MAX_IMAGES = 32;

export class ImageCache {
  private readonly entries = new Map<string, ImageResult>();
  /** Count of failed loads (each distinct src once); the renderer exposes it as a metric. */
  failures = 0;

  get(src: string): ImageResult {
    const hit = this.entries.get(src);
    if (hit) {
      // LRU touch: re-insert so the oldest untouched entry is evicted first.
      this.entries.delete(src);
      this.entries.set(src, hit);
      return hit;
    }
    const result = load(src);
    if (!result.ok) this.failures++;
    if (this.entries.size >= MAX_IMAGES) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(src, result);
    return result;
  }
}

function load(src: string): ImageResult {
  let bytes: Buffer;
  try {
    if (src.startsWith('data:')) {
      const comma = src.indexOf(',');
      if (comma < 0) return { ok: false, error: 'data URL has no comma' };
      const meta = src.slice(5, comma);
      const body = src.slice(comma + 1);
      bytes = meta.endsWith(';base64') ? Buffer.from(body, 'base64') : Buffer.from(decodeURIComponent(body), 'utf8');
    } else {
      bytes = readFileSync(src);
    }
  } catch (err) {
    return { ok: false, error: `cannot read image "${src.slice(0, 80)}": ${(err as Error).message}` };
  }
  const image = new Image();
  let failed: string | null = null;
  image.onerror = (e) => {
    failed = String((e as unknown as { message?: string }).message ?? 'decode error');
  };
  image.src = bytes; // @napi-rs/canvas decodes a Buffer src synchronously
  if (failed || !image.complete || image.width === 0) {
    return { ok: false, error: `cannot decode image "${src.slice(0, 80)}"${failed ? `: ${failed}` : ''}` };
  }
  return { ok: true, image };
}
