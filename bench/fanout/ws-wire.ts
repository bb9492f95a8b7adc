/**
 * The smallest WebSocket client wire code the load generator needs, written by hand
 * because the generator shares a 2-core machine with the server it measures: a `ws`
 * client per connection would parse, unmask-check and allocate every frame and become
 * the bottleneck long before the server does.
 *
 *   - upgradeRequest(): the HTTP/1.1 upgrade request (fixed key: we never verify the
 *     Sec-WebSocket-Accept answer, only the 101 status line).
 *   - clientTextFrame(): one masked text frame. The mask key is zero, which RFC 6455
 *     allows; XOR with zero leaves the payload as it is, so no per-byte work.
 *   - FrameScanner: follows unmasked server frames across TCP chunk boundaries by their
 *     headers only. It counts complete data messages and, for a data frame whose
 *     payload starts inside the current chunk, can read the `"timestamp":<ms>` field
 *     that the `{"type","timestamp","data"}` envelope puts near the start. A compressed
 *     message (permessage-deflate, RSV1) is gathered whole and handed over to be inflated.
 */

export const WS_PATH = '/ws';
const TIMESTAMP_KEY = Buffer.from('"timestamp":');
/** `{"type":"<longest type name>","timestamp":` fits well inside this many bytes. */
const TIMESTAMP_SEARCH_BYTES = 96;

/** `deflate`: offer permessage-deflate without context takeover (each message inflates on its own). */
export function upgradeRequest(host: string, port: number, path = WS_PATH, deflate = false): Buffer {
  return Buffer.from(
    `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
      (deflate ? 'Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; server_no_context_takeover\r\n' : '') + '\r\n',
    'latin1',
  );
}

/** A masked (key 0) client frame with the given opcode; FIN set. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.byteLength;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const out = Buffer.alloc(2 + ext + 4 + len);
  out[0] = 0x80 | opcode;
  if (ext === 0) out[1] = 0x80 | len;
  else if (ext === 2) { out[1] = 0x80 | 126; out.writeUInt16BE(len, 2); }
  else { out[1] = 0x80 | 127; out.writeBigUInt64BE(BigInt(len), 2); }
  // Bytes 2+ext .. 2+ext+3 are the mask key: left zero.
  payload.copy(out, 2 + ext + 4);
  return out;
}

export function clientTextFrame(text: string): Buffer {
  return clientFrame(0x1, Buffer.from(text, 'utf8'));
}

export function clientPongFrame(payload: Buffer = Buffer.alloc(0)): Buffer {
  return clientFrame(0xa, payload);
}

export function clientCloseFrame(): Buffer {
  return clientFrame(0x8, Buffer.from([0x03, 0xe8])); // 1000 normal closure
}

/**
 * Where the HTTP response head ends (index just past CRLFCRLF), or -1. `head` is the
 * bytes received so far, so a head split across chunks is found once it is complete.
 */
export function endOfHttpHead(head: Buffer): number {
  const i = head.indexOf('\r\n\r\n', 0, 'latin1');
  return i < 0 ? -1 : i + 4;
}

export function isSwitchingProtocols(head: Buffer): boolean {
  return head.subarray(0, 13).toString('latin1') === 'HTTP/1.1 101 ';
}

/**
 * Reads `"timestamp":<number>` from the start of a JSON message in buf[start, end).
 * Returns NaN when the field is not within the first TIMESTAMP_SEARCH_BYTES bytes
 * or the number is cut off by `end` (the caller then samples a later frame instead).
 */
export function readTimestamp(buf: Buffer, start: number, end: number): number {
  const limit = Math.min(end, start + TIMESTAMP_SEARCH_BYTES);
  // Search only [start, limit): the rest of `buf` may be stale bytes of an earlier read.
  const rel = buf.subarray(start, limit).indexOf(TIMESTAMP_KEY);
  const at = start + rel;
  if (rel < 0 || at + TIMESTAMP_KEY.byteLength >= limit) return NaN;
  return parseNumberAt(buf, at + TIMESTAMP_KEY.byteLength, end);
}

/**
 * The fast path for the envelope as servers write it, `{"type":"<name>","timestamp":<ms>`:
 * `p` is just past the closing quote of the type name. NaN when the bytes there are not
 * `,"timestamp":<number>` wholly inside [p, end).
 */
export function timestampAfterType(buf: Buffer, p: number, end: number): number {
  const k = TIMESTAMP_KEY.byteLength;
  if (p + 1 + k >= end || buf[p] !== 0x2c) return NaN;
  if (buf.compare(TIMESTAMP_KEY, 0, k, p + 1, p + 1 + k) !== 0) return NaN;
  return parseNumberAt(buf, p + 1 + k, end);
}

/** A non-negative decimal number starting at p; NaN if none, or if `end` may have cut it short. */
function parseNumberAt(buf: Buffer, p: number, end: number): number {
  let intPart = 0;
  let digits = 0;
  while (p < end) {
    const c = buf[p];
    if (c < 0x30 || c > 0x39) break;
    intPart = intPart * 10 + (c - 0x30);
    digits++;
    p++;
  }
  if (digits === 0) return NaN;
  let frac = 0;
  if (p < end && buf[p] === 0x2e) {
    p++;
    let scale = 0.1;
    while (p < end) {
      const c = buf[p];
      if (c < 0x30 || c > 0x39) break;
      frac += (c - 0x30) * scale;
      scale /= 10;
      p++;
    }
  }
  // The number must be terminated inside this chunk, else it may be truncated.
  if (p >= end) return NaN;
  return intPart + frac;
}

export interface FrameEvents {
  /** A data message (text/binary, FIN) began; `payloadStart`/`payloadEnd` bound the part of its payload inside `buf`. */
  onMessage(buf: Buffer, payloadStart: number, payloadEnd: number, payloadLength: number): void;
  /** A whole compressed (RSV1) data message: its deflated payload, valid only during the call. */
  onCompressed?(payload: Buffer): void;
  /** Control frames: ping (reply with pong) and close. */
  onPing(): void;
  onClose(): void;
  /** A header we do not accept (masked server frame, reserved opcode, absurd length). */
  onProtocolError(why: string): void;
}

/**
 * Per-connection frame-header follower. `push(buf, start, end)` consumes one chunk.
 * State between chunks: the bytes of a header split across chunks (at most 14) and
 * how many payload bytes of the current frame are still to skip.
 */
export class FrameScanner {
  private skip = 0;
  private readonly head = Buffer.alloc(14);
  private headLen = 0;
  private dead = false;
  /** A compressed message being gathered across chunks, and how much of it is in. */
  private gather: Buffer | undefined;
  private gathered = 0;

  constructor(private readonly events: FrameEvents) {}

  push(buf: Buffer, start: number, end: number): void {
    let p = start;
    while (p < end && !this.dead) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, end - p);
        if (this.gather) {
          buf.copy(this.gather, this.gathered, p, p + n);
          this.gathered += n;
          if (this.gathered === this.gather.byteLength) { const g = this.gather; this.gather = undefined; this.events.onCompressed?.(g); }
        }
        this.skip -= n;
        p += n;
        continue;
      }
      // Gather the header: fast path when it lies wholly in this chunk.
      let h: Buffer;
      let hp: number;
      let avail: number;
      if (this.headLen === 0) { h = buf; hp = p; avail = end - p; }
      else {
        const take = Math.min(14 - this.headLen, end - p);
        buf.copy(this.head, this.headLen, p, p + take);
        h = this.head; hp = 0; avail = this.headLen + take;
      }
      if (avail < 2) { this.stash(buf, p, end); return; }
      const b0 = h[hp];
      const b1 = h[hp + 1];
      if (b1 & 0x80) { this.fail('server frame is masked'); return; }
      let len = b1 & 0x7f;
      let headerBytes = 2;
      if (len === 126) {
        if (avail < 4) { this.stash(buf, p, end); return; }
        len = (h[hp + 2] << 8) | h[hp + 3];
        headerBytes = 4;
      } else if (len === 127) {
        if (avail < 10) { this.stash(buf, p, end); return; }
        const hi = h.readUInt32BE(hp + 2);
        if (hi !== 0) { this.fail('frame longer than 4 GiB'); return; }
        len = h.readUInt32BE(hp + 6);
        headerBytes = 10;
      }
      // Advance p past the header bytes that came from this chunk.
      if (this.headLen === 0) p += headerBytes;
      else { p += headerBytes - this.headLen; this.headLen = 0; }
      const opcode = b0 & 0x0f;
      const fin = (b0 & 0x80) !== 0;
      const here = Math.min(len, end - p);
      if ((b0 & 0x40) !== 0 && (opcode === 0x1 || opcode === 0x2) && fin && this.events.onCompressed) {
        // Compressed: inflating needs all of it, so a message split across reads is gathered.
        if (here === len) this.events.onCompressed(buf.subarray(p, p + len));
        else { this.gather = Buffer.allocUnsafe(len); buf.copy(this.gather, 0, p, p + here); this.gathered = here; }
      } else if (opcode === 0x1 || opcode === 0x2 || opcode === 0x0) {
        // Count a message once, on its final frame (servers here never fragment, but be right).
        if (fin) this.events.onMessage(buf, p, p + here, len);
      } else if (opcode === 0x9) this.events.onPing();
      else if (opcode === 0x8) { this.events.onClose(); this.dead = true; return; }
      else if (opcode !== 0xa) { this.fail(`reserved opcode ${opcode}`); return; }
      p += here;
      this.skip = len - here;
    }
  }

  private stash(buf: Buffer, p: number, end: number): void {
    // Only reached with headLen === 0 (a partial header is at most 13 bytes, all copied) or
    // after copying: either way keep exactly the bytes seen so far.
    if (this.headLen === 0) {
      buf.copy(this.head, 0, p, end);
      this.headLen = end - p;
    } else {
      this.headLen += end - p;
    }
  }

  private fail(why: string): void {
    this.dead = true;
    this.events.onProtocolError(why);
  }
}
