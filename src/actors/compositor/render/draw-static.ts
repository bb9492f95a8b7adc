/**
 * Layers whose pixels depend only on their props and size (text, image, host/assistant/visualFeed/overlay
 * placeholders). The renderer draws them once into an offscreen canvas and re-blits it each frame.
 */
import type { SKRSContext2D } from '@napi-rs/canvas';
import type { LayerType } from '../../../shared/scene/model.js';
import type { ImageCache } from './images.js';

export const PLACEHOLDER_COLORS: Partial<Record<LayerType, string>> = {
  host: '#2d6cdf',
  assistant: '#7b2cbf',
  visualFeed: '#2a9d8f',
  overlay: '#444444',
};

export function isStaticType(type: LayerType): boolean {
  return type === 'text' || type === 'image' || type in PLACEHOLDER_COLORS;
}

/** CSS font with its px size replaced by props.fontSize when that is set (so font size can be animated). */
export function effectiveFont(props: Record<string, unknown>): string {
  const font = typeof props.font === 'string' ? props.font : '48px "DejaVu Sans"';
  if (typeof props.fontSize !== 'number') return font;
  return /\d+(\.\d+)?px/.test(font) ? font.replace(/\d+(\.\d+)?px/, `${props.fontSize}px`) : `${props.fontSize}px ${font}`;
}

function drawText(ctx: SKRSContext2D, w: number, h: number, props: Record<string, unknown>): void {
  ctx.font = effectiveFont(props);
  ctx.fillStyle = typeof props.color === 'string' ? props.color : '#ffffff';
  const align = props.align === 'center' || props.align === 'right' ? props.align : 'left';
  ctx.textAlign = align;
  ctx.textBaseline = 'middle';
  const x = align === 'left' ? 0 : align === 'center' ? w / 2 : w;
  const lines = String(props.text ?? '').split('\n');
  const lineH = h / Math.max(1, lines.length);
  // maxWidth: a line too long for the box is narrowed, never cut off at the layer's edge.
  for (let i = 0; i < lines.length; i++) ctx.fillText(lines[i], x, lineH * (i + 0.5), w);
}

function drawError(ctx: SKRSContext2D, w: number, h: number, message: string): void {
  ctx.fillStyle = '#5a0d0d';
  ctx.fillRect(0, 0, w, h);
  ctx.fillStyle = '#ffffff';
  ctx.font = `${Math.max(10, Math.round(Math.min(h * 0.15, 28)))}px "DejaVu Sans"`;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(message, w / 2, h / 2, w * 0.95);
}

export function drawStatic(
  ctx: SKRSContext2D, type: LayerType, w: number, h: number, props: Record<string, unknown>, images: ImageCache,
): void {
  if (type === 'text') return drawText(ctx, w, h, props);
  if (type === 'image') {
    const img = images.get(String(props.src));
    if (!img.ok) return drawError(ctx, w, h, 'image unavailable');
    ctx.drawImage(img.image, 0, 0, w, h);
    return;
  }
  // placeholder types: fill, optional image (cover), optional label
  ctx.fillStyle = typeof props.color === 'string' ? props.color : (PLACEHOLDER_COLORS[type] ?? '#444444');
  ctx.fillRect(0, 0, w, h);
  if (typeof props.src === 'string') {
    const img = images.get(props.src);
    if (img.ok) {
      const s = Math.max(w / img.image.width, h / img.image.height);
      const dw = img.image.width * s;
      const dh = img.image.height * s;
      ctx.drawImage(img.image, (w - dw) / 2, (h - dh) / 2, dw, dh);
    }
  }
  if (typeof props.label === 'string' && props.label) {
    ctx.fillStyle = '#ffffff';
    ctx.font = `bold ${Math.max(8, Math.round(placeholderLabelSize(h)))}px "DejaVu Sans"`;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText(props.label, w / 2, h / 2, w * 0.9);
  }
}

/** A placeholder's label size (the LIVE badge is an `overlay` placeholder with a label). */
export function placeholderLabelSize(h: number): number {
  return Math.min(h * 0.45, 48);
}

/** The px size in a CSS font string ("bold 46px …"), or 48 when it names none. */
export function fontPx(font: string): number {
  const m = /(\d+(?:\.\d+)?)px/.exec(font);
  return m ? Number(m[1]) : 48;
}
