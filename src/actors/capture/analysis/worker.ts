/**
 * Piscina worker: analyses frames and encodes JPEG thumbnails straight out of the
 * shared frame ring. Initialised once per thread from piscina's workerData
 * ({ ring: SharedArrayBuffer of a latest-mode SlotRing, templates: TemplateSet }).
 *
 * Frames are addressed as "frame F in slot i". The producer keeps writing while tasks
 * wait in the queue, so a task can find its frame already replaced: it then answers
 * { gone: true } rather than analysing a different (or half-written) picture.
 */
import { Piscina } from 'piscina';
import sharp from 'sharp';
import { SlotRing } from '../../../shared/slot-ring.js';
import { analyzeFrame, type FrameAnalysis } from './analyze.js';
import type { TemplateSet } from './templates.js';

export interface AnalysisWorkerData {
  ring: SharedArrayBuffer;
  templates: TemplateSet;
}

export interface FrameRef {
  slot: number;
  frame: number;
  width: number;
  height: number;
}

export interface JpegOptions {
  /** Downscale (keeping the aspect ratio) when the frame is wider. */
  maxWidth?: number;
  /** JPEG quality 1..100, default 80. */
  quality?: number;
}

export type AnalysisTask = ({ op: 'analyze' } & FrameRef) | ({ op: 'jpeg' } & FrameRef & JpegOptions);
export interface Gone { gone: true }
export type AnalyzeResult = FrameAnalysis | Gone;
export type JpegResult = { jpeg: Uint8Array } | Gone;

const GONE: Gone = { gone: true };

const init = Piscina.workerData as AnalysisWorkerData | undefined;
if (init === undefined || !(init.ring instanceof SharedArrayBuffer) || init.templates === undefined) {
  throw new TypeError('analysis worker: workerData must be { ring: SharedArrayBuffer, templates: TemplateSet }');
}
const ring = SlotRing.attach(init.ring);
if (ring.mode !== 'latest') throw new TypeError(`analysis worker: ring "${ring.name}" must be in latest mode (it is ${ring.mode})`);
const templates = init.templates;

function checkRef(t: FrameRef): number {
  for (const k of ['slot', 'frame', 'width', 'height'] as const) {
    if (!Number.isInteger(t[k]) || t[k] < 0) throw new RangeError(`analysis task: ${k} must be a non-negative integer (got ${String(t[k])})`);
  }
  if (t.slot >= ring.slots) throw new RangeError(`analysis task: slot ${t.slot} is not in 0 .. ${ring.slots - 1}`);
  const bytes = t.width * t.height * 3;
  if (bytes === 0 || bytes > ring.slotBytes) {
    throw new RangeError(`analysis task: a ${t.width}x${t.height} RGB24 frame is ${bytes} bytes; slots hold 1 .. ${ring.slotBytes}`);
  }
  return bytes;
}

function analyze(t: FrameRef): AnalyzeResult {
  checkRef(t);
  let result: FrameAnalysis | undefined;
  // Synchronous in place: readSlot re-checks the slot's seqlock after the handler, so a
  // result computed on a frame the producer touched meanwhile is discarded.
  const clean = ring.readSlot(t.slot, t.frame, (view) => {
    result = analyzeFrame({ data: view, width: t.width, height: t.height }, templates);
  });
  return clean && result !== undefined ? result : GONE;
}

async function jpeg(t: FrameRef & JpegOptions): Promise<JpegResult> {
  const bytes = checkRef(t);
  const quality = t.quality ?? 80;
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) throw new RangeError(`jpeg task: quality must be an integer in 1 .. 100 (got ${String(t.quality)})`);
  if (t.maxWidth !== undefined && (!Number.isInteger(t.maxWidth) || t.maxWidth < 1)) {
    throw new RangeError(`jpeg task: maxWidth must be a positive integer (got ${String(t.maxWidth)})`);
  }
  // sharp reads the pixels on its own thread while we await, so the seqlock cannot
  // bracket the read; checking the frame number before and after gives the same
  // guarantee (the producer marks a slot it is rewriting, and a rewrite changes the number).
  if (ring.frameInSlot(t.slot) !== t.frame) return GONE;
  const view = ring.slotView(t.slot);
  const pixels = Buffer.from(view.buffer, view.byteOffset, bytes); // a view over the shared slot, not a copy
  let img = sharp(pixels, { raw: { width: t.width, height: t.height, channels: 3 } });
  if (t.maxWidth !== undefined && t.maxWidth < t.width) img = img.resize({ width: t.maxWidth });
  const out = await img.jpeg({ quality }).toBuffer();
  if (ring.frameInSlot(t.slot) !== t.frame) return GONE;
  // An exact-size copy: structured clone would otherwise send the whole backing store
  // if sharp's buffer were a slice of a larger allocation.
  return { jpeg: Uint8Array.prototype.slice.call(out) };
}

export default async function run(task: AnalysisTask): Promise<AnalyzeResult | JpegResult> {
  if (task === null || typeof task !== 'object') throw new TypeError('analysis task must be an object');
  switch (task.op) {
    case 'analyze': return analyze(task);
    case 'jpeg': return jpeg(task);
    default: throw new TypeError(`analysis task: unknown op ${JSON.stringify((task as { op?: unknown }).op)}`);
  }
}
