/**
 * What the compositor draws besides the scene: the latest overlay message per type (from
 * its fan-out ring) and the latest frame per video source (from other slot rings).
 *
 * Video-source ring convention: each frame is published with `tag` = frame width in
 * pixels and `length` = width * height * 4 (straight RGBA). The compositor publishes its
 * own output the same way, so one compositor's output can be another's video layer.
 */
import type { Logger } from 'pino';
import type { RecordRing } from '../../shared/record-ring.js';
import type { SlotMeta, SlotRing } from '../../shared/slot-ring.js';
import { LEVEL_BIT, type Level } from '../../shared/telemetry/channels.js';
import { FanoutType, readFanoutRecord } from '../../shared/telemetry/ring-records.js';
import type { LiveData, OverlayMessage, VideoFrame } from './render/renderer.js';

const decoder = new TextDecoder();

export class OverlayMessages {
  readonly messages: Record<string, OverlayMessage> = Object.create(null) as Record<string, OverlayMessage>;
  kept = 0;
  malformed = 0;
  resets = 0;
  private readonly levelBit: number;
  private readonly log: Logger;
  /** Receives capture_result data (kept per stream, not as "the latest message of its type"). */
  private readonly onCapture: ((data: unknown) => void) | undefined;

  constructor(level: Level, log: Logger, onCapture?: (data: unknown) => void) {
    this.levelBit = LEVEL_BIT[level];
    this.log = log;
    this.onCapture = onCapture;
  }

  /** RecordHandler for consumeLoop over the fan-out ring. */
  readonly onRecord = (bytes: Uint8Array, offset: number, length: number, _source?: number): void => {
    try {
      const rec = readFanoutRecord(bytes, offset, length);
      if (rec.type === FanoutType.Reset) {
        for (const k of Object.keys(this.messages)) delete this.messages[k];
        this.resets++;
        return;
      }
      // The aggregator writes one variant per explanation level; draw one of them.
      if (rec.type !== FanoutType.Update || (rec.levelMask & this.levelBit) === 0) return;
      const msg = JSON.parse(decoder.decode(bytes.subarray(rec.bodyOffset, rec.bodyOffset + rec.bodyLength))) as Partial<OverlayMessage>;
      if (typeof msg?.type !== 'string' || typeof msg.data !== 'object' || msg.data === null) {
        this.malformed++;
        return;
      }
      if (msg.type === 'capture_result') {
        this.onCapture?.(msg.data);
        return;
      }
      this.messages[msg.type] = { type: msg.type, timestamp: typeof msg.timestamp === 'number' ? msg.timestamp : rec.stamp, data: msg.data };
      this.kept++;
    } catch (error) {
      this.malformed++;
      if (this.malformed <= 10) this.log.warn({ err: error }, 'compositor: skipped an unreadable fan-out record');
    }
  };
}

export interface VideoSourceSpec {
  source: string;
  ring: string;
}

/** "ring" (source named like the ring) or "source:ring" (':' cannot occur in ring names). */
export function parseVideoRings(entries: unknown): VideoSourceSpec[] {
  if (entries === undefined) return [];
  if (!Array.isArray(entries)) throw new Error('compositor: "videoRings" must be an array of ring names ("ring" or "source:ring")');
  return entries.map((e, i) => {
    if (typeof e !== 'string' || e === '') throw new Error(`compositor: videoRings[${i}] must be a non-empty string`);
    const colon = e.indexOf(':');
    return colon < 0 ? { source: e, ring: e } : { source: e.slice(0, colon), ring: e.slice(colon + 1) };
  });
}

export class VideoSources {
  newFrames = 0;
  badFrames = 0;
  torn = 0;
  private readonly sources: Array<{ source: string; ring: SlotRing; buffer: Uint8Array }>;
  private readonly frames: LiveData['frames'];
  private current: { source: string; ring: SlotRing; buffer: Uint8Array } | undefined;
  private got: VideoFrame | undefined;

  constructor(specs: VideoSourceSpec[], rings: Readonly<Record<string, unknown>>, frames: LiveData['frames']) {
    this.frames = frames;
    this.sources = specs.map(({ source, ring }) => {
      const r = rings[ring] as SlotRing | undefined;
      if (!r || typeof (r as { readLatest?: unknown }).readLatest !== 'function') {
        throw new Error(`compositor: video ring "${ring}" is not a slot ring among this actor's in rings`);
      }
      return { source, ring: r, buffer: new Uint8Array(0) };
    });
  }

  /**
   * Copies the frame out of the ring. Skia's ImageData refuses shared memory, so a ring
   * slot cannot be drawn in place; the copy (one per NEW source frame, into a buffer kept
   * per source) also means the producer can never change pixels under the renderer.
   */
  private readonly onFrame = (view: Uint8Array, _seq: number, meta: SlotMeta): void => {
    const width = meta.tag;
    const height = width > 0 ? meta.length / 4 / width : 0;
    const s = this.current!;
    if (width < 1 || !Number.isInteger(height) || height < 1 || meta.length > view.byteLength) {
      this.badFrames++;
      return;
    }
    if (s.buffer.byteLength !== meta.length) s.buffer = new Uint8Array(meta.length);
    s.buffer.set(meta.length === view.byteLength ? view : view.subarray(0, meta.length));
    // A new object per new frame: the renderer re-uploads a video layer when the object changes.
    this.got = { width, height, rgba: s.buffer };
  };

  /** Picks up the newest frame of every source. */
  poll(): void {
    for (const s of this.sources) {
      this.got = undefined;
      this.current = s;
      if (s.ring.mode === 'latest') {
        const before = s.ring.torn;
        // false after a copy = the producer rewrote the slot meanwhile: discard (counted).
        if (!s.ring.readLatest(this.onFrame)) {
          if (s.ring.torn !== before) this.torn++;
          continue;
        }
      } else {
        s.ring.poll(this.onFrame);
      }
      if (this.got) {
        this.frames[s.source] = this.got;
        this.newFrames++;
      }
    }
  }
}

export function fanoutRing(rings: Readonly<Record<string, unknown>>, name: string): RecordRing {
  const r = rings[name] as RecordRing | undefined;
  if (!r || typeof (r as { reserve?: unknown }).reserve !== 'function') {
    throw new Error(`compositor: "${name}" is not a record ring among this actor's in rings (${Object.keys(rings).join(', ') || 'none'})`);
  }
  return r;
}
