/**
 * Layer placement maths: the 2D affine matrix for a layer (anchor → position, rotate, scale) and the
 * canvas-space bounding box used for off-canvas culling. Writes into caller-owned objects (no allocation).
 */
export interface Matrix {
  a: number; b: number; c: number; d: number; e: number; f: number;
}

export interface Box {
  minX: number; minY: number; maxX: number; maxY: number;
}

export function newMatrix(): Matrix {
  return { a: 1, b: 0, c: 0, d: 1, e: 0, f: 0 };
}

export function newBox(): Box {
  return { minX: 0, minY: 0, maxX: 0, maxY: 0 };
}

const DEG = Math.PI / 180;

/**
 * M = translate(x, y) · rotate(rotation) · scale(scale) · translate(−anchorX·w, −anchorY·h):
 * the anchor point of the layer box lands on (x, y) and is the pivot for rotation and scale.
 */
export function layerMatrix(
  x: number, y: number, scale: number, rotationDeg: number, anchorX: number, anchorY: number, w: number, h: number, out: Matrix,
): Matrix {
  const cos = Math.cos(rotationDeg * DEG) * scale;
  const sin = Math.sin(rotationDeg * DEG) * scale;
  const px = anchorX * w;
  const py = anchorY * h;
  out.a = cos;
  out.b = sin;
  out.c = -sin;
  out.d = cos;
  out.e = x - (cos * px - sin * py);
  out.f = y - (sin * px + cos * py);
  return out;
}

/** Axis-aligned bounds of the transformed box (0,0)–(w,h). */
export function transformedBounds(m: Matrix, w: number, h: number, out: Box): Box {
  // corners: (0,0) (w,0) (0,h) (w,h)
  const x0 = m.e, y0 = m.f;
  const x1 = m.a * w + m.e, y1 = m.b * w + m.f;
  const x2 = m.c * h + m.e, y2 = m.d * h + m.f;
  const x3 = m.a * w + m.c * h + m.e, y3 = m.b * w + m.d * h + m.f;
  out.minX = Math.min(x0, x1, x2, x3);
  out.maxX = Math.max(x0, x1, x2, x3);
  out.minY = Math.min(y0, y1, y2, y3);
  out.maxY = Math.max(y0, y1, y2, y3);
  return out;
}

/** True when the box does not touch the canvas at all (touching an edge still counts as off-canvas). */
export function offCanvas(box: Box, width: number, height: number): boolean {
  return box.maxX <= 0 || box.maxY <= 0 || box.minX >= width || box.minY >= height;
}
