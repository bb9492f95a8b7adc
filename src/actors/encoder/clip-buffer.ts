/**
 * The last seconds of the encoded show as keyframe-aligned MPEG-TS segments on disk, for
 * instant-replay clips. ffmpeg's segment muxer (a slave of the encoder's tee) writes
 * `run-<part>/seg-NNNNNN.ts` and appends each finished segment with its stream times to
 * `run-<part>/segments.csv`; this class reads that list, serves time ranges from it and
 * deletes what is older than the buffer (bounded on disk whatever the show's length).
 * Segments handed to a clip being cut are pinned so pruning cannot pull them away.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SEGMENT_LIST } from './options.js';

export interface Segment {
  /** Absolute path. */
  file: string;
  /** Stream time (s) of its first and last+1 frame. */
  start: number;
  end: number;
  bytes: number;
}

export class ClipBuffer {
  /** Segments deleted because they aged out of the buffer. */
  pruned = 0;
  private segments: Segment[] = [];
  private run = -1;
  private readonly pins = new Map<string, number>();
  /** Stream times that clips waiting for their `after` part start at: nothing after them is pruned. */
  private readonly holds = new Set<{ from: number }>();

  constructor(readonly dir: string, readonly bufferSeconds: number, readonly keyframeSeconds: number) {}

  /** A new ffmpeg run starts: its own folder; earlier runs' segments go (timestamps restart at 0). */
  startRun(part: number): string {
    this.run = part;
    this.segments = [];
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    for (const name of readdirSync(this.dir)) {
      if (name !== `run-${part}` && !this.pinnedIn(join(this.dir, name))) rmSync(join(this.dir, name), { recursive: true, force: true });
    }
    const runDir = join(this.dir, `run-${part}`);
    rmSync(runDir, { recursive: true, force: true });
    mkdirSync(runDir, { recursive: true, mode: 0o700 });
    return runDir;
  }

  /** Reads the segment list again and prunes; cheap (a small file), called about once a second. */
  poll(): void {
    if (this.run < 0) return;
    const runDir = join(this.dir, `run-${this.run}`);
    let text: string;
    try {
      text = readFileSync(join(runDir, SEGMENT_LIST), 'utf8');
    } catch {
      return;
    }
    const known = new Set(this.segments.map((s) => s.file));
    // Only whole lines: the muxer may be mid-write on the last one.
    for (const line of text.slice(0, text.lastIndexOf('\n') + 1).split('\n')) {
      const [name, start, end] = line.split(',');
      if (!name || start === undefined || end === undefined || !/^seg-\d+\.ts$/.test(name)) continue;
      const file = join(runDir, name);
      if (known.has(file)) continue;
      let bytes = 0;
      try { bytes = statSync(file).size; } catch { continue; /* already pruned */ }
      this.segments.push({ file, start: Number(start), end: Number(end), bytes });
      known.add(file);
    }
    this.segments.sort((a, b) => a.start - b.start);
    this.prune();
  }

  private prune(): void {
    const newest = this.newestEnd();
    // One segment more than the buffer, so a clip of bufferSeconds still finds its first keyframe.
    let keepFrom = newest - this.bufferSeconds - this.keyframeSeconds;
    for (const h of this.holds) keepFrom = Math.min(keepFrom, h.from - this.keyframeSeconds);
    while (this.segments.length > 0 && this.segments[0].end < keepFrom && !this.pins.has(this.segments[0].file)) {
      rmSync(this.segments.shift()!.file, { force: true });
      this.pruned++;
    }
  }

  private pinnedIn(dir: string): boolean {
    for (const file of this.pins.keys()) if (file.startsWith(dir + '/')) return true;
    return false;
  }

  newestEnd(): number {
    return this.segments.length > 0 ? this.segments[this.segments.length - 1].end : 0;
  }

  oldestStart(): number | undefined {
    return this.segments[0]?.start;
  }

  /** Seconds of show held now. */
  heldSeconds(): number {
    return this.segments.length > 0 ? this.newestEnd() - this.segments[0].start : 0;
  }

  /** Bytes on disk and seconds held: the stream's bitrate when ffmpeg cannot report it (tee). */
  recentBitrateKbps(): number {
    const recent = this.segments.slice(-5);
    const seconds = recent.reduce((a, s) => a + (s.end - s.start), 0);
    return seconds > 0 ? (recent.reduce((a, s) => a + s.bytes, 0) * 8) / seconds / 1000 : 0;
  }

  /** Keeps everything from stream time `from` on until `release` is called (a clip waiting for its end). */
  hold(from: number): () => void {
    const h = { from };
    this.holds.add(h);
    return () => { this.holds.delete(h); };
  }

  /**
   * The segments covering stream times [from, to]: each one whose middle falls inside, so
   * the clip is within one keyframe interval of the asked length. Pinned until `release`.
   */
  take(from: number, to: number): Segment[] {
    const chosen = this.segments.filter((s) => (s.start + s.end) / 2 >= from && (s.start + s.end) / 2 <= to);
    for (const s of chosen) this.pins.set(s.file, (this.pins.get(s.file) ?? 0) + 1);
    return chosen;
  }

  release(segments: Segment[]): void {
    for (const s of segments) {
      const n = (this.pins.get(s.file) ?? 1) - 1;
      if (n > 0) this.pins.set(s.file, n);
      else this.pins.delete(s.file);
    }
  }

  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
