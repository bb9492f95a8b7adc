/**
 * Shogi board layer: 9×9 grid, the policy heatmap under the pieces, pieces as pentagons with their SFEN
 * letter (gote's upside down, promoted in red). Input is the aggregator's drawable board: rows rank a..i
 * (top to bottom as sente sees it), columns file 9..1, codes like "P", "+r" or "" for empty.
 * Draws "no data" rather than guessing when the message is missing or malformed.
 */
import type { SKRSContext2D } from '@napi-rs/canvas';

export const BOARD_COLOR = '#e3c07a';
export const PIECE_FILL = '#f8ecd0';
const LINE = '#3b2a14';

/** Returns the 9×9 board when `v` is one, else null (a wrong shape must not crash the frame loop). */
export function asBoard(v: unknown): string[][] | null {
  if (!Array.isArray(v) || v.length !== 9) return null;
  for (const row of v) {
    if (!Array.isArray(row) || row.length !== 9) return null;
    for (const c of row) if (typeof c !== 'string' || c.length > 2) return null;
  }
  return v as string[][];
}

export function asGrid(v: unknown): number[][] | null {
  if (!Array.isArray(v) || v.length !== 9) return null;
  for (const row of v) {
    if (!Array.isArray(row) || row.length !== 9) return null;
    for (const c of row) if (typeof c !== 'number' || !Number.isFinite(c)) return null;
  }
  return v as number[][];
}

/** Geometry shared with tests: where cell (row, col) lies inside a w×h layer box. */
export function boardGeometry(w: number, h: number): { x0: number; y0: number; cell: number } {
  const side = Math.min(w, h);
  const margin = side * 0.04;
  const cell = (side - 2 * margin) / 9;
  return { x0: (w - side) / 2 + margin, y0: (h - side) / 2 + margin, cell };
}

export interface Hands {
  black: Record<string, number>;
  white: Record<string, number>;
}

export function asHands(v: unknown): Hands | null {
  if (typeof v !== 'object' || v === null) return null;
  const { black, white } = v as Record<string, unknown>;
  const ok = (x: unknown) => typeof x === 'object' && x !== null && Object.values(x).every((n) => typeof n === 'number');
  return ok(black) && ok(white) ? (v as Hands) : null;
}

const HAND_ORDER = 'RBGSNLP';

function handText(side: Record<string, number>): string {
  let out = '';
  for (const letter of HAND_ORDER) {
    const n = side[letter];
    if (n > 0) out += `${out ? ' ' : ''}${letter}${n > 1 ? n : ''}`;
  }
  return out;
}

export function drawBoard(
  ctx: SKRSContext2D, w: number, h: number, board: string[][] | null, grid: number[][] | null, props: Record<string, unknown>,
  hands: Hands | null = null,
  arrows: Array<{ move: string; prob: number }> | null = null,
): void {
  const { x0, y0, cell } = boardGeometry(w, h);
  const side = cell * 9;
  ctx.fillStyle = typeof props.color === 'string' ? props.color : BOARD_COLOR;
  ctx.fillRect(x0 - cell * 0.36, y0 - cell * 0.36, side + cell * 0.72, side + cell * 0.72);

  if (grid && props.heatmap !== false) {
    let max = 0;
    for (const row of grid) for (const v of row) if (v > max) max = v;
    if (max > 0) {
      for (let r = 0; r < 9; r++) {
        for (let c = 0; c < 9; c++) {
          const v = grid[r][c] / max;
          if (v <= 0.01) continue;
          ctx.fillStyle = `rgba(230,40,20,${(0.75 * v).toFixed(3)})`;
          ctx.fillRect(x0 + c * cell, y0 + r * cell, cell, cell);
        }
      }
    }
  }

  ctx.strokeStyle = LINE;
  ctx.lineWidth = Math.max(1, cell * 0.025);
  ctx.beginPath();
  for (let i = 0; i <= 9; i++) {
    ctx.moveTo(x0, y0 + i * cell);
    ctx.lineTo(x0 + side, y0 + i * cell);
    ctx.moveTo(x0 + i * cell, y0);
    ctx.lineTo(x0 + i * cell, y0 + side);
  }
  ctx.stroke();

  if (!board) {
    ctx.fillStyle = 'rgba(20,20,20,0.75)';
    ctx.fillRect(x0, y0 + side / 2 - cell * 0.6, side, cell * 1.2);
    ctx.fillStyle = '#ffffff';
    ctx.font = `${Math.round(cell * 0.6)}px "DejaVu Sans"`;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText('no data', x0 + side / 2, y0 + side / 2);
    return;
  }

  if (hands) {
    // Pieces in hand go in the frame margin: gote's along the top (right-aligned, as seen from gote's side),
    // sente's along the bottom.
    ctx.font = `bold ${Math.max(6, Math.round(boardTextSize(cell)))}px "DejaVu Sans"`;
    ctx.fillStyle = LINE;
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'right';
    ctx.fillText(handText(hands.white), x0 + side, y0 - cell * 0.18);
    ctx.textAlign = 'left';
    ctx.fillText(handText(hands.black), x0, y0 + side + cell * 0.18);
  }

  ctx.font = `bold ${Math.round(cell * 0.42)}px "DejaVu Sans"`;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  for (let r = 0; r < 9; r++) {
    for (let c = 0; c < 9; c++) {
      const code = board[r][c];
      if (!code) continue;
      const letter = code[code.length - 1];
      const gote = letter === letter.toLowerCase();
      const promoted = code[0] === '+';
      drawPiece(ctx, x0 + (c + 0.5) * cell, y0 + (r + 0.5) * cell, cell, gote, promoted ? `+${letter.toUpperCase()}` : letter.toUpperCase(), promoted);
    }
  }
  if (arrows && arrows.length > 0) drawArrows(ctx, x0, y0, cell, arrows);
}

function drawPiece(ctx: SKRSContext2D, cx: number, cy: number, cell: number, gote: boolean, label: string, promoted: boolean): void {
  ctx.save();
  ctx.translate(cx, cy);
  if (gote) ctx.rotate(Math.PI); // gote's pieces face sente, as on a real board
  const s = cell * 0.42;
  ctx.beginPath();
  ctx.moveTo(0, -s);
  ctx.lineTo(s * 0.72, -s * 0.62);
  ctx.lineTo(s * 0.86, s);
  ctx.lineTo(-s * 0.86, s);
  ctx.lineTo(-s * 0.72, -s * 0.62);
  ctx.closePath();
  ctx.fillStyle = PIECE_FILL;
  ctx.fill();
  ctx.lineWidth = Math.max(1, cell * 0.02);
  ctx.strokeStyle = LINE;
  ctx.stroke();
  ctx.fillStyle = promoted ? '#c0161b' : '#1a1a1a';
  ctx.fillText(label, 0, s * 0.08);
  ctx.restore();
}

/** Text in the board's frame margin (pieces in hand): the largest that fits the margin. */
export function boardTextSize(cell: number): number {
  return cell * 0.32;
}

const ARROW_COLORS = ['rgba(30,110,255,0.9)', 'rgba(30,170,90,0.85)', 'rgba(150,90,220,0.8)'];

/** (row, col) of a USI square like "7g": col = 9 - file, row = rank letter - 'a'; null when not one. */
function square(file: string, rank: string): [number, number] | null {
  const f = Number(file);
  const r = rank.charCodeAt(0) - 97;
  return Number.isInteger(f) && f >= 1 && f <= 9 && r >= 0 && r <= 8 ? [r, 9 - f] : null;
}

/**
 * The model's top moves as arrows, best first and boldest: from the source square to the target
 * (a drop, "P*5e", is a ring on the target square). Moves that are not USI are skipped.
 */
function drawArrows(ctx: SKRSContext2D, x0: number, y0: number, cell: number, moves: Array<{ move: string; prob: number }>): void {
  ctx.save();
  for (let i = moves.length - 1; i >= 0; i--) {
    const mv = moves[i].move;
    const colour = ARROW_COLORS[i] ?? ARROW_COLORS[2];
    const width = cell * (i === 0 ? 0.16 : 0.11);
    const to = mv.length >= 4 ? square(mv[2], mv[3]) : null;
    if (!to) continue;
    const tx = x0 + (to[1] + 0.5) * cell, ty = y0 + (to[0] + 0.5) * cell;
    ctx.strokeStyle = colour;
    ctx.fillStyle = colour;
    ctx.lineWidth = width;
    ctx.lineCap = 'round';
    if (mv[1] === '*') {
      ctx.beginPath();
      ctx.arc(tx, ty, cell * 0.4, 0, Math.PI * 2);
      ctx.stroke();
      continue;
    }
    const from = square(mv[0], mv[1]);
    if (!from) continue;
    const fx = x0 + (from[1] + 0.5) * cell, fy = y0 + (from[0] + 0.5) * cell;
    const angle = Math.atan2(ty - fy, tx - fx);
    const head = cell * 0.38;
    const ex = tx - Math.cos(angle) * head * 0.8, ey = ty - Math.sin(angle) * head * 0.8;
    ctx.beginPath();
    ctx.moveTo(fx, fy);
    ctx.lineTo(ex, ey);
    ctx.stroke();
    ctx.beginPath();
    ctx.moveTo(tx, ty);
    ctx.lineTo(tx - Math.cos(angle - 0.45) * head, ty - Math.sin(angle - 0.45) * head);
    ctx.lineTo(tx - Math.cos(angle + 0.45) * head, ty - Math.sin(angle + 0.45) * head);
    ctx.closePath();
    ctx.fill();
  }
  ctx.restore();
}
