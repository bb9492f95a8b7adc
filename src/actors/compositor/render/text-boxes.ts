/**
 * Where a layer puts text, in layer space, from the same layout functions its drawing uses:
 * for checking a scene's text geometry (size, overlap, inside the frame) without rendering.
 */
import type { Layer } from '../../../shared/scene/model.js';
import { boardGeometry, boardTextSize } from './draw-board.js';
import { effectiveFont, fontPx, placeholderLabelSize } from './draw-static.js';
import { metricsLayout } from './metrics-panel.js';
import { gameLayout, milestoneLayout, predictionLayout, videoLayout, type TextBox } from './panels.js';

/** Text boxes of a layer at its own size; `minFont` is the renderer's smallest badge text. */
export function layerTextBoxes(layer: Layer, minFont: number): TextBox[] {
  const w = layer.width, h = layer.height, p = layer.props;
  switch (layer.type) {
    case 'text': {
      const font = fontPx(effectiveFont(p));
      const lines = String(p.text ?? '').split('\n');
      const lineH = h / lines.length;
      return lines.map((_, i) => ({ x: 0, y: lineH * i + (lineH - font * 1.2) / 2, w, h: font * 1.2, font }));
    }
    case 'overlay': case 'host': case 'assistant': case 'visualFeed': {
      if (typeof p.label !== 'string' || !p.label) return [];
      const font = placeholderLabelSize(h);
      return [{ x: w * 0.05, y: (h - font * 1.2) / 2, w: w * 0.9, h: font * 1.2, font }];
    }
    case 'board': {
      const { x0, y0, cell } = boardGeometry(w, h);
      const side = cell * 9, font = boardTextSize(cell), piece = cell * 0.42;
      const boxes: TextBox[] = p.hands === false ? [] : [
        { x: x0, y: y0 - cell * 0.18 - font * 0.55, w: side, h: font * 1.1, font },
        { x: x0, y: y0 + side + cell * 0.18 - font * 0.55, w: side, h: font * 1.1, font },
      ];
      for (let r = 0; r < 9; r++) for (let c = 0; c < 9; c++) boxes.push({ x: x0 + c * cell + cell * 0.1, y: y0 + (r + 0.5) * cell - piece * 0.6, w: cell * 0.8, h: piece * 1.2, font: piece });
      return boxes;
    }
    case 'metrics': {
      const l = metricsLayout(w, h, p);
      return [l.title, l.health, ...l.rows.flatMap((r) => [r.name, r.value]), ...l.explanation];
    }
    case 'game': {
      const l = gameLayout(w, h);
      return [l.move, l.side];
    }
    case 'prediction': {
      const l = predictionLayout(w, h);
      return [l.heading, l.status, ...l.rows, ...l.counts];
    }
    case 'milestone': {
      const l = milestoneLayout(w, h);
      return [l.title, l.message];
    }
    case 'video': {
      const l = videoLayout(w, h, minFont);
      return [l.name, l.state, l.offline];
    }
    default:
      return [];
  }
}
