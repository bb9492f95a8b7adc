/**
 * Splits a byte stream (TCP, Unix socket) into frames: each frame is a u32 little-endian
 * length followed by that many bytes (`lengthPrefixed` in event-codec.ts writes them).
 *
 * Both ends use it: the ingest actor reads producer frames, the SDK reads the server's
 * Error/Ack replies.
 *
 * Chunks from the socket arrive split and merged arbitrarily. A frame that lies wholly
 * inside one chunk is handed out as a view of that chunk (no copy: the common case for
 * small batched frames); only a frame that spans chunks is assembled in a buffer. That
 * buffer grows with the bytes that actually arrived, not with the declared length, so a
 * peer that announces a 16 MiB frame and sends 4 bytes costs 64 KiB, not 16 MiB; memory
 * per connection stays below `maxFrameBytes` either way. A frame view is valid only
 * during the callback.
 *
 * A length of 0 or above `maxFrameBytes` means the stream is out of step (or hostile):
 * there is no way to find the next frame boundary, so it is unrecoverable. push()
 * reports it once and the framer ignores everything after.
 *
 * `firstFrameMaxBytes` is a tighter limit for the first frame only: the server reads it
 * before the peer has authenticated, so a stranger's declared length is refused as soon
 * as its 4-byte prefix arrives rather than after buffering up to `maxFrameBytes`.
 */

export const LENGTH_PREFIX_BYTES = 4;

/** First allocation for a frame that spans chunks; it doubles as bytes arrive. */
const INITIAL_PARTIAL_BYTES = 64 * 1024;

export type FrameHandler = (frame: Uint8Array) => void;

/** Why a stream became unrecoverable. */
export type FramerErrorKind = 'zero_length' | 'too_large' | 'first_too_large';

export class StreamFramer {
  readonly maxFrameBytes: number;
  readonly firstFrameMaxBytes: number;
  /** Set once the stream is unrecoverable; every later push() is ignored. */
  error: string | undefined;
  errorKind: FramerErrorKind | undefined;
  /** Frames handed out so far. */
  frames = 0;

  // The length prefix may itself be split across chunks.
  private readonly prefix = new Uint8Array(LENGTH_PREFIX_BYTES);
  private prefixHave = 0;
  // The frame being assembled across chunks (undefined between frames).
  private partial: Uint8Array | undefined;
  private partialHave = 0;
  private partialLength = 0;

  constructor(maxFrameBytes: number, firstFrameMaxBytes = maxFrameBytes) {
    if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 1 || maxFrameBytes > 0xffffffff) {
      throw new RangeError(`StreamFramer: maxFrameBytes must be an integer in 1 .. 2^32-1 (got ${String(maxFrameBytes)})`);
    }
    if (!Number.isInteger(firstFrameMaxBytes) || firstFrameMaxBytes < 1) {
      throw new RangeError(`StreamFramer: firstFrameMaxBytes must be a positive integer (got ${String(firstFrameMaxBytes)})`);
    }
    this.maxFrameBytes = maxFrameBytes;
    this.firstFrameMaxBytes = Math.min(firstFrameMaxBytes, maxFrameBytes);
  }

  /** Bytes held back waiting for the rest of a frame. */
  get buffered(): number {
    return this.prefixHave + this.partialHave;
  }

  /**
   * Feeds one chunk; calls `onFrame` for every frame it completes, in order. Returns the
   * error (also kept in `error`) when the stream became unrecoverable in this chunk; the
   * frames before the bad length were still delivered.
   */
  push(chunk: Uint8Array, onFrame: FrameHandler): string | undefined {
    if (this.error !== undefined) return undefined;
    let p = 0;
    const end = chunk.byteLength;
    while (p < end) {
      if (this.partial !== undefined) {
        // Continue a frame that spans chunks.
        const take = Math.min(end - p, this.partialLength - this.partialHave);
        if (this.partialHave + take > this.partial.byteLength) this.grow(this.partialHave + take);
        this.partial.set(chunk.subarray(p, p + take), this.partialHave);
        this.partialHave += take;
        p += take;
        if (this.partialHave === this.partialLength) {
          const frame = this.partial;
          this.partial = undefined;
          this.partialHave = 0;
          this.deliver(frame, onFrame);
        }
        continue;
      }
      let length: number;
      if (this.prefixHave === 0 && end - p >= LENGTH_PREFIX_BYTES) {
        length = (chunk[p] | (chunk[p + 1] << 8) | (chunk[p + 2] << 16) | (chunk[p + 3] << 24)) >>> 0;
        p += LENGTH_PREFIX_BYTES;
      } else {
        // Prefix split across chunks: collect it byte by byte.
        while (this.prefixHave < LENGTH_PREFIX_BYTES && p < end) this.prefix[this.prefixHave++] = chunk[p++];
        if (this.prefixHave < LENGTH_PREFIX_BYTES) return undefined;
        const b = this.prefix;
        length = (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
        this.prefixHave = 0;
      }
      const problem = this.checkLength(length);
      if (problem !== undefined) return problem;
      if (end - p >= length) {
        // Whole frame inside this chunk: hand out a view.
        const frame = chunk.subarray(p, p + length);
        p += length;
        this.deliver(frame, onFrame);
      } else {
        this.partialLength = length;
        this.partialHave = 0;
        this.partial = new Uint8Array(Math.min(length, INITIAL_PARTIAL_BYTES));
      }
    }
    return undefined;
  }

  /** Marks the stream unrecoverable and returns the error when `length` is not acceptable. */
  private checkLength(length: number): string | undefined {
    const first = this.frames === 0;
    if (length === 0) {
      this.errorKind = 'zero_length';
      this.error = 'frame length 0: every frame needs at least one event (stream out of step?)';
    } else if (first && length > this.firstFrameMaxBytes && this.firstFrameMaxBytes < this.maxFrameBytes) {
      this.errorKind = 'first_too_large';
      this.error = `first frame length ${length} exceeds the limit of ${this.firstFrameMaxBytes} bytes before authentication (the first frame must be a small hello)`;
    } else if (length > this.maxFrameBytes) {
      this.errorKind = 'too_large';
      this.error = `frame length ${length} exceeds the limit of ${this.maxFrameBytes} bytes (stream out of step, or send smaller batches)`;
    }
    return this.error;
  }

  /** Doubles the assembly buffer until `need` fits, never beyond the frame's length. */
  private grow(need: number): void {
    let size = this.partial!.byteLength;
    while (size < need) size *= 2;
    const bigger = new Uint8Array(Math.min(size, this.partialLength));
    bigger.set(this.partial!.subarray(0, this.partialHave));
    this.partial = bigger;
  }

  private deliver(frame: Uint8Array, onFrame: FrameHandler): void {
    this.frames++;
    onFrame(frame);
  }
}
