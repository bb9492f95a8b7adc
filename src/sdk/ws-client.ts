/**
 * A minimal RFC 6455 WebSocket client over `net`/`tls`, for the network producer.
 *
 * Why not a library: Node 20 has no stable WebSocket client and `ws` is only a dev
 * dependency here, while a producer SDK must run in any trainer process with nothing
 * extra installed. A producer needs little: the opening handshake, masked binary frames
 * out, small frames in (Ack/Error events), ping/pong and the close handshake. No
 * extensions (no permessage-deflate: telemetry is float-heavy and compresses poorly,
 * and compression would cost the trainer's CPU).
 *
 * Events: 'open', 'message' (data: Uint8Array, binary: boolean), 'drain',
 * 'close' (code: number, reason: string) exactly once, 'error' (Error) before a close
 * that was caused by one. Nothing throws out of send() once constructed.
 */
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OP_CONT = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;
const MAX_HANDSHAKE_BYTES = 16 * 1024;

export interface WsClientOptions {
  /** Extra request headers for the upgrade (e.g. Authorization). */
  headers?: Record<string, string>;
  /** Largest message accepted from the server; a bigger one closes with 1009. Default 1 MiB. */
  maxMessageBytes?: number;
  /** How long the TCP connect + upgrade may take. Default 5000 ms. */
  handshakeTimeoutMs?: number;
}

export class WsClient extends EventEmitter {
  readonly url: URL;
  private readonly socket: net.Socket;
  private readonly key = randomBytes(16).toString('base64');
  private readonly maxMessageBytes: number;
  private state: 'handshake' | 'open' | 'closing' | 'closed' = 'handshake';
  private pending: Buffer = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  private fragmentsBytes = 0;
  private fragmentOpcode = 0;
  private closeSent = false;
  private closeCode = 1006;
  private closeReason = '';
  private handshakeTimer: NodeJS.Timeout | undefined;
  private readonly maskKey = Buffer.alloc(4);
  /** Chunks of an incomplete frame not yet joined to `pending`, and the bytes that frame needs. */
  private parts: Buffer[] = [];
  private partsBytes = 0;
  private need = 0;

  constructor(url: string | URL, options: WsClientOptions = {}) {
    super();
    this.url = typeof url === 'string' ? new URL(url) : url;
    const secure = this.url.protocol === 'wss:';
    if (!secure && this.url.protocol !== 'ws:') throw new TypeError(`WsClient: ${this.url.href} is not a ws:// or wss:// URL`);
    this.maxMessageBytes = options.maxMessageBytes ?? 1 << 20;
    const host = this.url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(this.url.port || (secure ? 443 : 80));
    this.socket = secure ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host }) : net.connect({ host, port });
    this.socket.setNoDelay(true);
    this.handshakeTimer = setTimeout(() => this.fail(new Error(`WebSocket handshake with ${this.url.host} timed out`)), options.handshakeTimeoutMs ?? 5000);
    this.handshakeTimer.unref();
    this.socket.once(secure ? 'secureConnect' : 'connect', () => {
      const headers = {
        Host: this.url.host,
        Upgrade: 'websocket',
        Connection: 'Upgrade',
        'Sec-WebSocket-Key': this.key,
        'Sec-WebSocket-Version': '13',
        ...options.headers,
      };
      const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
      this.socket.write(`GET ${this.url.pathname}${this.url.search} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`);
    });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('drain', () => this.emit('drain'));
    this.socket.on('error', (error) => this.fail(error));
    this.socket.on('close', () => this.finish());
  }

  /** Bytes accepted by send() but not yet handed to the OS. */
  get bufferedAmount(): number {
    return this.socket.writableLength;
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Sends one message; false (and nothing sent) unless the connection is open. */
  send(data: Uint8Array, binary = true): boolean {
    if (this.state !== 'open') return false;
    this.writeFrame(binary ? OP_BINARY : OP_TEXT, data);
    return true;
  }

  /**
   * Sends the concatenation of `parts` as one message, written straight into the masked frame:
   * a producer's batch of events costs one copy instead of a join and then the frame's copy.
   */
  sendParts(parts: readonly Uint8Array[], binary = true): boolean {
    if (this.state !== 'open') return false;
    this.writeFrame(binary ? OP_BINARY : OP_TEXT, parts);
    return true;
  }

  ping(data: Uint8Array = new Uint8Array(0)): void {
    if (this.state === 'open') this.writeFrame(OP_PING, data);
  }

  /** Starts the close handshake; the socket is dropped if the server does not answer in time. */
  close(code = 1000, reason = '', timeoutMs = 1000): void {
    if (this.state === 'closed') return;
    if (this.state === 'handshake') {
      this.socket.destroy();
      return;
    }
    this.sendClose(code, reason);
    this.state = 'closing';
    setTimeout(() => this.socket.destroy(), timeoutMs).unref();
  }

  /** Lets the process exit while this connection is open (a producer is not a reason to keep a trainer alive). */
  unref(): void {
    this.socket.unref();
  }

  /** Stops reading from the socket (the reader's backpressure: TCP then slows the server). */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Drops the connection at once. */
  terminate(): void {
    this.socket.destroy();
  }

  private fail(error: Error): void {
    if (this.state === 'closed') return;
    // An 'error' without a listener would throw out of a socket callback.
    if (this.listenerCount('error') > 0) this.emit('error', error);
    this.socket.destroy();
  }

  private finish(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.handshakeTimer);
    this.emit('close', this.closeCode, this.closeReason);
  }

  private onData(chunk: Buffer): void {
    // While a frame known to need `need` bytes is incomplete, chunks are only collected: joining
    // on every chunk copied a large message (an experience batch, ~0.5 MB) once per 64 KB read.
    if (this.need > 0 && this.pending.length + this.partsBytes + chunk.length < this.need) {
      this.parts.push(chunk);
      this.partsBytes += chunk.length;
      return;
    }
    if (this.parts.length > 0) {
      this.pending = Buffer.concat([this.pending, ...this.parts, chunk]);
      this.parts = [];
      this.partsBytes = 0;
    } else {
      this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    }
    this.need = 0;
    if (this.state === 'handshake' && !this.readHandshake()) return;
    this.readFrames();
  }

  /** Parses the 101 response; true once the connection is open. */
  private readHandshake(): boolean {
    const end = this.pending.indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.pending.length > MAX_HANDSHAKE_BYTES) this.fail(new Error('WebSocket handshake response too large'));
      return false;
    }
    const head = this.pending.subarray(0, end).toString('latin1').split('\r\n');
    this.pending = this.pending.subarray(end + 4);
    const status = /^HTTP\/1\.1 (\d{3})(.*)$/.exec(head[0] ?? '');
    if (!status || status[1] !== '101') {
      // The body (when it came with the head) says why, e.g. which query parameter was wrong.
      const body = this.pending.subarray(0, 1024).toString('utf8').trim();
      const error = new Error(`WebSocket upgrade refused by ${this.url.host}${this.url.pathname}: ${head[0] ?? 'no status line'}${body ? ` ${body}` : ''}`);
      Object.assign(error, { status: status ? Number(status[1]) : 0, body });
      this.fail(error);
      return false;
    }
    const headers = new Map<string, string>();
    for (const line of head.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const expected = createHash('sha1').update(this.key + GUID).digest('base64');
    if (headers.get('sec-websocket-accept') !== expected) {
      this.fail(new Error('WebSocket handshake: bad Sec-WebSocket-Accept from the server'));
      return false;
    }
    clearTimeout(this.handshakeTimer);
    this.state = 'open';
    this.emit('open');
    return true;
  }

  private readFrames(): void {
    for (;;) {
      if (this.state === 'closed') return;
      const buf = this.pending;
      if (buf.length < 2) return;
      const fin = (buf[0] & 0x80) !== 0;
      const opcode = buf[0] & 0x0f;
      const masked = (buf[1] & 0x80) !== 0;
      let len = buf[1] & 0x7f;
      let p = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        p = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        const big = buf.readBigUInt64BE(2);
        if (big > BigInt(this.maxMessageBytes)) return this.protocolClose(1009, 'message too big');
        len = Number(big);
        p = 10;
      }
      if (len > this.maxMessageBytes || this.fragmentsBytes + len > this.maxMessageBytes) return this.protocolClose(1009, 'message too big');
      const maskAt = p;
      if (masked) p += 4;
      if (buf.length < p + len) {
        this.need = p + len;
        return;
      }
      const payload = Buffer.from(buf.subarray(p, p + len));
      if (masked) for (let i = 0; i < len; i++) payload[i] ^= buf[maskAt + (i & 3)];
      this.pending = buf.subarray(p + len);
      if (!this.onFrame(fin, opcode, payload)) return;
    }
  }

  /** Handles one frame; false when the connection is going away. */
  private onFrame(fin: boolean, opcode: number, payload: Buffer): boolean {
    switch (opcode) {
      case OP_PING:
        if (this.state === 'open') this.writeFrame(OP_PONG, payload);
        return true;
      case OP_PONG:
        return true;
      case OP_CLOSE: {
        this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        this.closeReason = payload.length > 2 ? payload.subarray(2).toString('utf8') : '';
        this.sendClose(this.closeCode === 1005 ? 1000 : this.closeCode, '');
        this.state = 'closing';
        this.socket.end();
        return false;
      }
      case OP_TEXT:
      case OP_BINARY:
        if (this.fragments.length > 0) { this.protocolClose(1002, 'new message inside a fragmented one'); return false; }
        if (fin) { this.deliver(opcode, payload); return true; }
        this.fragmentOpcode = opcode;
        this.fragments.push(payload);
        this.fragmentsBytes = payload.length;
        return true;
      case OP_CONT:
        if (this.fragments.length === 0) { this.protocolClose(1002, 'continuation without a message'); return false; }
        this.fragments.push(payload);
        this.fragmentsBytes += payload.length;
        if (fin) {
          const whole = Buffer.concat(this.fragments);
          this.fragments = [];
          this.fragmentsBytes = 0;
          this.deliver(this.fragmentOpcode, whole);
        }
        return true;
      default:
        this.protocolClose(1002, `unknown opcode ${opcode}`);
        return false;
    }
  }

  private deliver(opcode: number, payload: Buffer): void {
    if (this.state === 'open') this.emit('message', new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength), opcode === OP_BINARY);
  }

  private protocolClose(code: number, reason: string): void {
    this.closeCode = code;
    this.closeReason = reason;
    this.sendClose(code, reason);
    this.state = 'closing';
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private sendClose(code: number, reason: string): void {
    if (this.closeSent || this.socket.destroyed) return;
    this.closeSent = true;
    const text = Buffer.from(reason.slice(0, 120), 'utf8');
    const body = Buffer.alloc(2 + text.length);
    body.writeUInt16BE(code, 0);
    text.copy(body, 2);
    this.writeFrame(OP_CLOSE, body);
  }

  /** Client frames are always masked (RFC 6455 §5.3), with a fresh random key per frame. */
  private writeFrame(opcode: number, data: Uint8Array | readonly Uint8Array[]): void {
    const parts = data instanceof Uint8Array ? [data] : data;
    let len = 0;
    for (const part of parts) len += part.byteLength;
    const headerLen = len < 126 ? 2 : len < 65536 ? 4 : 10;
    // The payload starts on a 4-byte boundary of its own ArrayBuffer so it can be masked a word
    // at a time (a byte loop cost a producer most of its CPU on large experience frames).
    const pad = (4 - ((headerLen + 4) & 3)) & 3;
    const backing = new ArrayBuffer(pad + headerLen + 4 + len);
    const out = Buffer.from(backing, pad, headerLen + 4 + len);
    out[0] = 0x80 | opcode;
    if (len < 126) {
      out[1] = 0x80 | len;
    } else if (len < 65536) {
      out[1] = 0x80 | 126;
      out.writeUInt16BE(len, 2);
    } else {
      out[1] = 0x80 | 127;
      out.writeBigUInt64BE(BigInt(len), 2);
    }
    const mask = nextMaskKey(this.maskKey);
    mask.copy(out, headerLen);
    const at = headerLen + 4;
    let p = at;
    for (const part of parts) {
      out.set(part, p);
      p += part.byteLength;
    }
    maskInPlace(backing, pad + at, len, mask);
    this.socket.write(out);
  }
}

// Mask keys come from a pool of crypto-random bytes refilled 1 KiB at a time: one call into
// OpenSSL per frame cost a producer sending thousands of small frames a second a few per cent.
const maskPool = Buffer.alloc(1024);
let maskPoolAt = maskPool.length;

/** The next 4 random bytes of the pool, copied into `key`. */
export function nextMaskKey(key: Buffer): Buffer {
  if (maskPoolAt + 4 > maskPool.length) {
    randomFillSync(maskPool);
    maskPoolAt = 0;
  }
  maskPool.copy(key, 0, maskPoolAt, maskPoolAt + 4);
  maskPoolAt += 4;
  return key;
}

/** XOR `len` bytes of `buf` from the 4-aligned offset `at` with the 4-byte key (RFC 6455 masking). */
export function maskInPlace(buf: ArrayBuffer, at: number, len: number, key: Uint8Array): void {
  const words = len >>> 2;
  if (words > 0) {
    const w = new Uint32Array(buf, at, words);
    // The key's bytes in memory order, read as one native-endian word.
    const k = new Uint32Array(new Uint8Array([key[0], key[1], key[2], key[3]]).buffer)[0];
    for (let i = 0; i < words; i++) w[i] ^= k;
  }
  const bytes = new Uint8Array(buf, at, len);
  for (let i = words << 2; i < len; i++) bytes[i] ^= key[i & 3];
}
