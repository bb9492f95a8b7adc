/**
 * Captured streams as compositor inputs: the newest frame of every stream the scene shows,
 * read from the capture actor's `latest`-mode slot ring, and each stream's capture state (the
 * `capture_result` messages the main thread publishes on its control ring).
 *
 * Frames: the capture ring is shared by all streams; a slot's `tag` says whose frame it holds
 * (src/shared/capture-frames.ts). Every poll looks at each slot's frame number (one atomic load
 * per slot); a slot with a frame not seen before is read with the seqlock-checked readSlot, and
 * only when its tag belongs to a wanted stream is it widened RGB→RGBA into that stream's spare
 * buffer (the one copy; see rgb-expand.ts). A read the producer tore is discarded (counted) and
 * the buffers swap only after a clean read, so the renderer never sees half a frame.
 *
 * Memory is bounded by the streams the scene binds (two frame buffers each); a stream the scene
 * no longer shows is forgotten at the next `want()`.
 */
import type { SlotMeta, SlotRing } from '../../shared/slot-ring.js';
import { CAPTURE_BYTES_PER_PIXEL, captureStreamTag } from '../../shared/capture-frames.js';
import { rgbToRgba } from './rgb-expand.js';
import type { CapturedFrame } from './render/renderer.js';

interface StreamBuffers {
  name: string;
  /** Frame number (ring-wide) of what `frames[name]` shows; 0 = nothing yet. */
  frame: number;
  front: Uint8Array | null;
  back: Uint8Array | null;
}

export class CaptureFrames {
  /** New frames taken (widened into a stream's buffer). */
  newFrames = 0;
  /** Reads the producer overwrote meanwhile (discarded). */
  torn = 0;
  /** Frames whose length did not match the capture size (not drawn). */
  badFrames = 0;
  private readonly ring: SlotRing;
  private readonly width: number;
  private readonly height: number;
  private readonly frameBytes: number;
  private readonly seen: Float64Array;
  private readonly byTag = new Map<number, StreamBuffers>();
  private readonly frames: Record<string, CapturedFrame | undefined>;
  private current: StreamBuffers | null = null;
  private took = false;
  /** Decode time (wall-clock ms) of the frame the last onSlot took. */
  private timestamp = 0;

  constructor(ring: SlotRing, width: number, height: number, frames: Record<string, CapturedFrame | undefined>) {
    if (ring.mode !== 'latest') throw new Error(`compositor: capture ring "${ring.name}" must be a latest-mode slot ring`);
    if (ring.slotBytes < width * height * CAPTURE_BYTES_PER_PIXEL) throw new Error(`compositor: capture ring "${ring.name}" slots hold ${ring.slotBytes} bytes; ${width}x${height} RGB needs ${width * height * 3}`);
    this.ring = ring;
    this.width = width;
    this.height = height;
    this.frameBytes = width * height * CAPTURE_BYTES_PER_PIXEL;
    this.seen = new Float64Array(ring.slots);
    this.frames = frames;
  }

  /** The streams the scene binds now; others are dropped (their buffers freed). */
  want(names: Iterable<string>): void {
    const keep = new Set(names);
    for (const [tag, s] of this.byTag) {
      if (!keep.has(s.name)) {
        this.byTag.delete(tag);
        delete this.frames[s.name];
      }
    }
    for (const name of keep) {
      const tag = captureStreamTag(name);
      if (!this.byTag.has(tag)) {
        this.byTag.set(tag, { name, frame: 0, front: null, back: null });
        // Frames already in the ring are this stream's latest: look at every slot again.
        this.seen.fill(0);
      }
    }
  }

  get streams(): string[] {
    return [...this.byTag.values()].map((s) => s.name);
  }

  private readonly onSlot = (view: Uint8Array, frame: number, meta: SlotMeta): void => {
    const s = this.byTag.get(meta.tag);
    if (!s || frame <= s.frame) return;
    if (meta.length !== this.frameBytes) {
      this.badFrames++;
      return;
    }
    s.back ??= new Uint8Array(this.width * this.height * 4);
    rgbToRgba(view, s.back, this.width * this.height);
    this.current = s;
    this.took = true;
    this.timestamp = meta.timestamp;
  };

  /** Takes the newest frame of each wanted stream that appeared since the last poll. */
  poll(): void {
    if (this.byTag.size === 0) return;
    const ring = this.ring;
    for (let i = 0; i < this.seen.length; i++) {
      const f = ring.frameInSlot(i);
      if (f <= 0 || f === this.seen[i]) continue;
      this.seen[i] = f;
      this.took = false;
      const clean = ring.readSlot(i, f, this.onSlot);
      if (!this.took) continue;
      if (!clean) {
        this.torn++;
        continue;
      }
      const s = this.current!;
      const shown = s.back!;
      s.back = s.front;
      s.front = shown;
      s.frame = f;
      // A new object per new frame: the renderer re-uploads a video layer when the object changes.
      this.frames[s.name] = { width: this.width, height: this.height, rgba: shown, at: this.timestamp };
      this.newFrames++;
    }
  }
}

/** What the compositor knows of a stream's capture state (from `capture_result` messages). */
export interface CaptureState {
  status: 'ok' | 'offline' | 'error';
  /** The analysis label of the latest frame (ok, black, frozen, offline_screen), when analysed. */
  screen: string | null;
  at: number;
}

const MAX_STATES = 4096;

/** Latest capture state per stream, bounded (the main thread retains at most this many keys too). */
export class CaptureStates {
  readonly states = new Map<string, CaptureState>();
  malformed = 0;

  /** One `capture_result` message's data. */
  take(data: unknown): void {
    const d = data as { stream?: unknown; status?: unknown; screen?: unknown; at?: unknown } | null;
    if (!d || typeof d.stream !== 'string' || (d.status !== 'ok' && d.status !== 'offline' && d.status !== 'error')) {
      this.malformed++;
      return;
    }
    const prior = this.states.get(d.stream);
    // A capture error does not change what the last good analysis said about the picture.
    const screen = typeof d.screen === 'string' ? d.screen : d.status === 'ok' ? null : prior?.screen ?? null;
    this.states.delete(d.stream);
    this.states.set(d.stream, { status: d.status, screen, at: typeof d.at === 'number' ? d.at : Date.now() });
    if (this.states.size > MAX_STATES) this.states.delete(this.states.keys().next().value as string);
  }
}
