import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCanvas } from '@napi-rs/canvas';
import { afterAll, describe, expect, it } from 'vitest';
import { boardGeometry, BOARD_COLOR, PIECE_FILL } from '../src/actors/compositor/render/draw-board.js';
import { SceneRenderer, type LiveData } from '../src/actors/compositor/render/renderer.js';
import { applySceneOp, defaultShowcaseScene, emptyScene, type Scene } from '../src/shared/scene/model.js';
import { drawableBoard } from '../src/shared/shogi/sfen-board.js';

const ARTIFACTS = new URL('./artifacts/', import.meta.url);
mkdirSync(ARTIFACTS, { recursive: true });
const saved: string[] = [];
function artifact(name: string, r: SceneRenderer): void {
  writeFileSync(new URL(name, ARTIFACTS), r.png());
  saved.push(name);
}
afterAll(() => expect(saved.length).toBeGreaterThan(0));

const noData = (): LiveData => ({ messages: {}, frames: {} });

function sceneOf(width: number, height: number, layers: unknown[], background: string | null = '#000000'): Scene {
  let s = { ...emptyScene(width, height, 30), background };
  for (const layer of layers) s = applySceneOp(s, { op: 'add', layer });
  return s;
}

function px(r: SceneRenderer, x: number, y: number): [number, number, number, number] {
  const d = r.rgba();
  const i = (Math.round(y) * r.width + Math.round(x)) * 4;
  return [d[i], d[i + 1], d[i + 2], d[i + 3]];
}

function expectColor(actual: number[], expected: number[], tol = 2, where = ''): void {
  for (let i = 0; i < expected.length; i++) {
    if (Math.abs(actual[i] - expected[i]) > tol) {
      throw new Error(`pixel ${where}: expected ~[${expected}] got [${actual}]`);
    }
  }
}

const solid = (id: string, color: string, x: number, y: number, w: number, h: number, extra: Record<string, unknown> = {}) => ({
  id, type: 'overlay', width: w, height: h, ...extra, transform: { x, y, ...(extra.transform as object) }, props: { color },
});

describe('SceneRenderer pixels', () => {
  it('solid layers at known positions, opacity and blend modes', () => {
    const scene = sceneOf(200, 100, [
      solid('red', '#ff0000', 10, 10, 50, 30),
      solid('blue', '#0000ff', 40, 20, 50, 30, { opacity: 0.5 }),
      solid('green', '#00ff00', 100, 60, 60, 30, { blend: 'screen' }),
      solid('red2', '#ff0000', 130, 70, 60, 25, { blend: 'screen' }),
    ]);
    const r = new SceneRenderer(200, 100);
    const stats = r.render(scene, 0, noData());
    artifact('render-solids.png', r);
    expectColor(px(r, 20, 15), [255, 0, 0, 255], 0, 'red only');
    expectColor(px(r, 50, 30), [128, 0, 128, 255], 2, 'blue 50% over red');
    expectColor(px(r, 80, 45), [0, 0, 128, 255], 2, 'blue 50% over black');
    expectColor(px(r, 5, 5), [0, 0, 0, 255], 0, 'background');
    expectColor(px(r, 110, 65), [0, 255, 0, 255], 0, 'green screen over black');
    expectColor(px(r, 140, 80), [255, 255, 0, 255], 0, 'red screen over green = yellow');
    expectColor(px(r, 175, 92), [255, 0, 0, 255], 0, 'red screen over black');
    expect(Object.keys(stats.layers).sort()).toEqual(['blue', 'green', 'red', 'red2']);
    expect(stats.culled).toBe(0);
  });

  it('a rotated and a scaled layer (anchor is the pivot)', () => {
    const scene = sceneOf(200, 100, [
      solid('bar', '#ffffff', 100, 50, 100, 20, { transform: { rotation: 90, anchor: [0.5, 0.5] } }),
      solid('big', '#00ff00', 0, 0, 10, 10, { transform: { scale: 3 } }),
    ]);
    const r = new SceneRenderer(200, 100);
    r.render(scene, 0, noData());
    artifact('render-rotated.png', r);
    expectColor(px(r, 100, 10), [255, 255, 255, 255], 0, 'rotated bar top');
    expectColor(px(r, 100, 90), [255, 255, 255, 255], 0, 'rotated bar bottom');
    expectColor(px(r, 70, 50), [0, 0, 0, 255], 0, 'where the unrotated bar would be');
    expectColor(px(r, 28, 28), [0, 255, 0, 255], 0, 'scaled 3× reaches 30px');
    expectColor(px(r, 32, 5), [0, 0, 0, 255], 0, 'beyond the scaled box');
  });

  it('circle, rect and roundRect masks clip in layer space', () => {
    const scene = sceneOf(200, 100, [
      solid('disc', '#ffffff', 10, 10, 80, 80, { mask: { shape: 'circle', cx: 40, cy: 40, r: 40 } }),
      solid('half', '#ff0000', 110, 10, 80, 80, { mask: { shape: 'rect', x: 0, y: 0, width: 40, height: 80 } }),
    ]);
    const r = new SceneRenderer(200, 100);
    r.render(scene, 0, noData());
    artifact('render-masks.png', r);
    expectColor(px(r, 50, 50), [255, 255, 255, 255], 0, 'disc centre');
    expectColor(px(r, 50, 12), [255, 255, 255, 255], 0, 'inside the circle near the top');
    expectColor(px(r, 13, 13), [0, 0, 0, 255], 0, 'box corner outside the circle');
    expectColor(px(r, 120, 50), [255, 0, 0, 255], 0, 'inside rect mask');
    expectColor(px(r, 170, 50), [0, 0, 0, 255], 0, 'clipped by rect mask');
  });

  it('culls invisible, transparent, zero-scale and off-canvas layers and counts them', () => {
    const scene = sceneOf(200, 100, [
      solid('shown', '#ffffff', 0, 0, 10, 10),
      solid('hidden', '#ff0000', 0, 0, 10, 10, { visible: false }),
      solid('clear', '#ff0000', 0, 0, 10, 10, { opacity: 0 }),
      solid('tiny', '#ff0000', 0, 0, 10, 10, { transform: { scale: 0 } }),
      solid('right', '#ff0000', 200, 0, 10, 10),
      solid('above', '#ff0000', 50, -40, 10, 40),
      // rotated 45° about its centre just outside the bottom edge: its rotated corners reach back in
      solid('corner', '#00ff00', 100, 105, 10, 10, { transform: { rotation: 45, anchor: [0.5, 0.5] } }),
    ]);
    const r = new SceneRenderer(200, 100);
    const stats = r.render(scene, 0, noData());
    expect(stats.culled).toBe(5);
    expect(Object.keys(stats.layers).sort()).toEqual(['corner', 'shown']);
    expect(r.counters.culled).toBe(5);
    // an animation that fades a layer to 0 culls it from that frame on
    const fading = sceneOf(200, 100, [solid('f', '#fff', 0, 0, 10, 10, { animations: [{ property: 'opacity', from: 1, to: 0, duration: 1 }] })]);
    expect(r.render(fading, 15, noData()).culled).toBe(0);
    expect(r.render(fading, 30, noData()).culled).toBe(1);
  });

  it('animated props: a colour tween re-renders the cached placeholder at each frame', () => {
    const scene = sceneOf(100, 50, [{
      id: 'c', type: 'overlay', width: 100, height: 50, props: { color: '#ff0000' },
      animations: [{ property: 'props.color', from: '#ff0000', to: '#0000ff', duration: 1 }],
    }]);
    const r = new SceneRenderer(100, 50);
    r.render(scene, 0, noData());
    expectColor(px(r, 50, 25), [255, 0, 0, 255], 0, 'start colour');
    r.render(scene, 15, noData());
    expectColor(px(r, 50, 25), [128, 0, 128, 255], 1, 'halfway');
    r.render(scene, 30, noData());
    expectColor(px(r, 50, 25), [0, 0, 255, 255], 0, 'end colour');
    expect(r.render(scene, 31, noData()).cacheHits).toBe(1); // finished: same props again → cached
  });

  it('caches static layers and redraws only when their props change', () => {
    const text = { id: 't', type: 'text', width: 180, height: 60, transform: { x: 10, y: 20 }, props: { text: 'Hello', color: '#ffff00', font: '40px "DejaVu Sans"' } };
    let scene = sceneOf(200, 100, [text]);
    const r = new SceneRenderer(200, 100);
    r.render(scene, 0, noData());
    const first = Buffer.from(r.rgba());
    const s2 = r.render(scene, 1, noData());
    expect(s2.cacheHits).toBe(1);
    expect(r.counters.cacheMisses).toBe(1);
    expect(Buffer.from(r.rgba()).equals(first)).toBe(true);
    // some glyph pixel is yellow
    let yellow = 0;
    const d = r.rgba();
    for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] > 200 && d[i + 2] < 60) yellow++;
    expect(yellow).toBeGreaterThan(100);
    artifact('render-text.png', r);
    scene = applySceneOp(scene, { op: 'update', id: 't', patch: { props: { color: '#00ffff' } } });
    expect(r.render(scene, 2, noData()).cacheHits).toBe(0);
    expect(r.counters.cacheMisses).toBe(2);
  });

  it('draws the board with pieces from a game_state fixture and the heatmap under it', () => {
    const start = drawableBoard('lnsgkgsnl/1r5b1/ppppppppp/9/9/9/PPPPPPPPP/1B5R1/LNSGKGSNL b - 1')!;
    const grid = Array.from({ length: 9 }, () => new Array(9).fill(0));
    grid[4][4] = 1; // 5e, the centre
    grid[6][0] = 1; // under sente's pawn on 9g
    const data: LiveData = {
      messages: {
        game_state: { type: 'game_state', timestamp: 1, data: { game_id: 'g1', board: start.board, hands: { black: { P: 2 }, white: {} } } },
        board_heatmap: { type: 'board_heatmap', timestamp: 1, data: { grid } },
      },
      frames: {},
    };
    const scene = sceneOf(200, 200, [{ id: 'board', type: 'board', width: 180, height: 180, transform: { x: 10, y: 10 } }]);
    const r = new SceneRenderer(200, 200);
    r.render(scene, 0, data);
    artifact('render-board.png', r);
    const { x0, y0, cell } = boardGeometry(180, 180);
    const cellAt = (row: number, col: number, dx = 0.5, dy = 0.5) => [10 + x0 + (col + dx) * cell, 10 + y0 + (row + dy) * cell] as const;
    const hex = (h: string) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
    // heat (0.75 × rgb(230,40,20) over the board colour) on the empty centre square
    const b = hex(BOARD_COLOR);
    const heat = [0.75 * 230 + 0.25 * b[0], 0.75 * 40 + 0.25 * b[1], 0.75 * 20 + 0.25 * b[2]];
    expectColor(px(r, ...cellAt(4, 4)), heat, 3, 'heat on 5e');
    expectColor(px(r, ...cellAt(4, 2)), b, 2, 'empty 7e');
    // sente pawn on 9g: lower body of the piece (below its letter) is the piece colour, covering the heat
    expectColor(px(r, ...cellAt(6, 0, 0.5, 0.82)), hex(PIECE_FILL), 3, 'piece body on 9g');
    // gote lance on 9a (drawn upside down: its body is in the upper part of the square)
    expectColor(px(r, ...cellAt(0, 0, 0.5, 0.18)), hex(PIECE_FILL), 3, 'gote piece on 9a');
    expectColor(px(r, ...cellAt(1, 0, 0.5, 0.82)), b, 2, 'empty 9b');

    // without a game_state the board says "no data": a dark band across the middle, no pieces
    r.render(scene, 1, noData());
    artifact('render-board-nodata.png', r);
    expectColor(px(r, ...cellAt(6, 0, 0.5, 0.82)), b, 2, 'no piece without data');
    expectColor(px(r, ...cellAt(4, 0, 0.1, 0.5)), [0.75 * 20 + 0.25 * b[0], 0.75 * 20 + 0.25 * b[1], 0.75 * 20 + 0.25 * b[2]], 3, 'no-data band');
  });

  it('draws a video layer from a synthetic RGBA frame and picks up new frames', () => {
    const fw = 16, fh = 8;
    const makeFrame = (left: number[], right: number[]) => {
      const rgba = new Uint8Array(fw * fh * 4);
      for (let y = 0; y < fh; y++) for (let x = 0; x < fw; x++) rgba.set([...(x < fw / 2 ? left : right), 255], (y * fw + x) * 4);
      return { width: fw, height: fh, rgba };
    };
    const scene = sceneOf(200, 100, [{ id: 'cam', type: 'video', width: 160, height: 80, transform: { x: 20, y: 10 }, props: { source: 'main', fit: 'fill' } }]);
    const r = new SceneRenderer(200, 100);
    r.render(scene, 0, { messages: {}, frames: { main: makeFrame([255, 0, 0], [0, 0, 255]) } });
    artifact('render-video.png', r);
    expectColor(px(r, 50, 50), [255, 0, 0, 255], 2, 'left half red');
    expectColor(px(r, 150, 50), [0, 0, 255, 255], 2, 'right half blue');
    expectColor(px(r, 10, 50), [0, 0, 0, 255], 0, 'outside the layer');
    r.render(scene, 1, { messages: {}, frames: { main: makeFrame([0, 255, 0], [255, 255, 255]) } });
    expectColor(px(r, 50, 50), [0, 255, 0, 255], 2, 'next frame left');
    expectColor(px(r, 150, 50), [255, 255, 255, 255], 2, 'next frame right');
    // contain: a 2:1 frame in a square box is letterboxed
    const square = sceneOf(200, 100, [{ id: 'cam', type: 'video', width: 80, height: 80, transform: { x: 0, y: 0 }, props: { source: 'main' } }], '#ffffff');
    r.render(square, 2, { messages: {}, frames: { main: makeFrame([255, 0, 0], [0, 0, 255]) } });
    expectColor(px(r, 20, 5), [0, 0, 0, 255], 0, 'letterbox bar');
    expectColor(px(r, 20, 40), [255, 0, 0, 255], 2, 'picture');
    r.render(scene, 3, noData());
    expect(r.counters.videoMissing).toBe(1);
    expectColor(px(r, 25, 15), [0, 0, 0, 255], 0, 'no signal box');
    r.render(scene, 4, { messages: {}, frames: { main: { width: 16, height: 8, rgba: new Uint8Array(10) } } });
    expect(r.counters.videoBadFrames).toBe(1);
  });

  it('keeps its own metric history, one sample per new step', () => {
    const scene = sceneOf(300, 200, [{ id: 'm', type: 'metrics', width: 300, height: 200, props: { history: 4, metrics: ['loss', 'kl'] } }]);
    const r = new SceneRenderer(300, 200);
    const msg = (step: number, loss: number) => ({ type: 'ppo_metrics', timestamp: step, data: { step, values: { loss, kl: loss / 10 } } });
    const m1 = msg(1, 1.0);
    r.render(scene, 0, { messages: { ppo_metrics: m1 }, frames: {} });
    r.render(scene, 1, { messages: { ppo_metrics: m1 }, frames: {} }); // same message: not fed again
    for (let s = 2; s <= 6; s++) r.render(scene, s, { messages: { ppo_metrics: msg(s, s) }, frames: {} });
    r.render(scene, 7, { messages: { ppo_metrics: { ...msg(6, 99) } }, frames: {} }); // new object, same step: ignored
    const loss = r.metricHistory('m')!.get('loss')!;
    expect(loss.count).toBe(4);
    expect([0, 1, 2, 3].map((i) => loss.at(i))).toEqual([3, 4, 5, 6]);
    artifact('render-metrics.png', r);
    // panel background rgba(12,18,28,0.82) over black, at the right edge (its corners are rounded)
    expectColor(px(r, 297, 100), [Math.round(12 * 0.82), Math.round(18 * 0.82), Math.round(28 * 0.82), 255], 2, 'panel');
    const sparkPixels = () => {
      const d = r.rgba();
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - 0x4c) < 30 && Math.abs(d[i + 1] - 0xc9) < 30 && Math.abs(d[i + 2] - 0xf0) < 30) n++;
      return n;
    };
    expect(sparkPixels()).toBeGreaterThan(50);
    // configured names that never arrive: the panel falls back to the names that do
    const other = applySceneOp(scene, { op: 'update', id: 'm', patch: { props: { metrics: ['ppo/nothing'] } } });
    r.render(other, 8, { messages: { ppo_metrics: msg(7, 3) }, frames: {} });
    expect(sparkPixels()).toBeGreaterThan(50);
  });

  it('is deterministic: frame N renders the same pixels whatever was rendered before; events per frame', () => {
    const scene = defaultShowcaseScene(480, 270, 30);
    const data = noData();
    const a = new SceneRenderer(480, 270);
    const statsA = a.render(scene, 12, data);
    const eventsAt12 = statsA.events.map((e) => `${e.layer}:${e.event.id}:${e.event.type}`);
    const first = Buffer.from(a.rgba());
    const b = new SceneRenderer(480, 270);
    for (const f of [0, 40, 5, 300]) b.render(scene, f, data);
    const statsB = b.render(scene, 12, data);
    expect(Buffer.from(b.rgba()).equals(first)).toBe(true);
    expect(statsB.events.map((e) => `${e.layer}:${e.event.id}:${e.event.type}`)).toEqual(eventsAt12);
    const s0 = b.render(scene, 0, data).events.map((e) => `${e.layer}:${e.event.type}`);
    expect(s0).toEqual(expect.arrayContaining(['title:start', 'live:start']));
    artifact('render-showcase-480.png', b);
  });

  it('image layers from a file path and a data URL; a broken src draws an error box once', () => {
    const src = createCanvas(4, 2);
    const sctx = src.getContext('2d');
    sctx.fillStyle = '#ff00ff';
    sctx.fillRect(0, 0, 2, 2);
    sctx.fillStyle = '#00ffff';
    sctx.fillRect(2, 0, 2, 2);
    const png = src.toBuffer('image/png');
    const file = join(mkdtempSync(join(tmpdir(), 'ringcast-render-')), 'img.png');
    writeFileSync(file, png);
    const dataUrl = `data:image/png;base64,${png.toString('base64')}`;
    const scene = sceneOf(200, 100, [
      { id: 'file', type: 'image', width: 80, height: 40, transform: { x: 0, y: 0 }, props: { src: file } },
      { id: 'url', type: 'image', width: 80, height: 40, transform: { x: 100, y: 0 }, props: { src: dataUrl } },
      { id: 'broken', type: 'image', width: 80, height: 40, transform: { x: 0, y: 50 }, props: { src: join(tmpdir(), 'no-such-ringcast.png') } },
      { id: 'host', type: 'host', width: 40, height: 40, transform: { x: 120, y: 55 }, props: { src: file } },
    ]);
    const r = new SceneRenderer(200, 100);
    r.render(scene, 0, noData());
    r.render(scene, 1, noData());
    artifact('render-images.png', r);
    expectColor(px(r, 10, 20), [255, 0, 255, 255], 2, 'file image left');
    expectColor(px(r, 70, 20), [0, 255, 255, 255], 2, 'file image right');
    expectColor(px(r, 110, 20), [255, 0, 255, 255], 2, 'data URL image left');
    expectColor(px(r, 5, 52), [0x5a, 0x0d, 0x0d, 255], 2, 'error box');
    expectColor(px(r, 122, 75), [255, 0, 255, 255], 2, 'placeholder image, cover-cropped');
    expect(r.counters.imageFailures).toBe(1);
  });

  it('malformed live data never throws: the board says "no data", bad metric values are skipped', () => {
    const scene = sceneOf(300, 200, [
      { id: 'board', type: 'board', width: 150, height: 150 },
      { id: 'm', type: 'metrics', width: 150, height: 150, transform: { x: 150 } },
    ]);
    const r = new SceneRenderer(300, 200);
    const bad: LiveData[] = [
      { messages: { game_state: { type: 'game_state', timestamp: 1, data: null } }, frames: {} },
      { messages: { game_state: { type: 'game_state', timestamp: 1, data: { board: [['P']], hands: 'x' } } }, frames: {} },
      { messages: { board_heatmap: { type: 'board_heatmap', timestamp: 1, data: { grid: [[Number.NaN]] } } }, frames: {} },
      { messages: { ppo_metrics: { type: 'ppo_metrics', timestamp: 1, data: { step: 1, values: { a: 'x', b: Number.NaN, c: null } } } }, frames: {} },
      { messages: { ppo_metrics: { type: 'ppo_metrics', timestamp: 2, data: 'garbage' } }, frames: {} },
    ];
    bad.forEach((d, i) => expect(() => r.render(scene, i, d)).not.toThrow());
    expect(r.metricHistory('m')!.names()).toEqual([]);
    const { x0, y0, cell } = boardGeometry(150, 150);
    const b = [1, 3, 5].map((i) => parseInt(BOARD_COLOR.slice(i, i + 2), 16));
    expectColor(px(r, x0 + cell * 0.1, y0 + cell * 4.5), [0.75 * 20 + 0.25 * b[0], 0.75 * 20 + 0.25 * b[1], 0.75 * 20 + 0.25 * b[2], 255], 3, 'no-data band');
  });

  it('rejects a bad renderer size', () => {
    expect(() => new SceneRenderer(0, 10)).toThrow(/renderer size/);
    expect(() => new SceneRenderer(10.5, 10)).toThrow(/renderer size/);
  });
});

describe('board arrows follow the position shown', () => {
  const START = 'lnsgkgsnl/1r5b1/ppppppppp/9/9/9/PPPPPPPPP/1B5R1/LNSGKGSNL b - 1';
  const AFTER = 'lnsgkgsnl/1r5b1/ppppppppp/9/9/2P6/PP1PPPPPP/1B5R1/LNSGKGSNL w - 2';
  const blue = (r: SceneRenderer) => {
    const d = r.rgba();
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] < 70 && d[i + 1] > 90 && d[i + 1] < 140 && d[i + 2] > 220) n++;
    return n;
  };
  const render = (position: string, game: { sfen: string; last_move: string | null }) => {
    const scene = sceneOf(360, 360, [{ id: 'b', type: 'board', width: 360, height: 360, props: { heatmap: false } }]);
    const r = new SceneRenderer(360, 360);
    r.render(scene, 0, { frames: {}, messages: {
      game_state: { type: 'game_state', timestamp: 0, data: { ...game, board: Array.from({ length: 9 }, () => Array(9).fill('')) } },
      move_prediction: { type: 'move_prediction', timestamp: 0, data: { position, top_moves: [{ move: '2g2f', prob: 0.6 }] } },
    } });
    return blue(r);
  };
  it('draws the top move for the position shown and for the one before the last move, not for another', () => {
    expect(render(START, { sfen: START, last_move: null })).toBeGreaterThan(100);
    expect(render(START, { sfen: AFTER, last_move: '7g7f' })).toBeGreaterThan(100);
    expect(render(START, { sfen: AFTER, last_move: '2g2f' })).toBe(0); // 2g2f from START does not lead to AFTER
    expect(render('lnsgkgsnl/1r5b1/ppppppppp/9/9/9/PPPPPPPPP/1B5R1/LNSGKGSNL w - 1', { sfen: AFTER, last_move: '7g7f' })).toBe(0);
  });
});
