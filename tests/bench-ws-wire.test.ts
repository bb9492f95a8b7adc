/**
 * The fan-out load generator's frame follower (bench/fanout/ws-wire.ts): plain messages are
 * reported in place (what of them lies in the current read); a permessage-deflate message (RSV1) is handed over whole, also when
 * its frame arrives split across TCP reads, and inflates to what the server sent.
 */
import { deflateRawSync, inflateRawSync, constants } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { FrameScanner, upgradeRequest } from '../bench/fanout/ws-wire.js';

/** An unmasked server frame: FIN, text, RSV1 when `compressed`. */
function serverFrame(payload: Buffer, compressed: boolean): Buffer {
  const len = payload.byteLength;
  const head = len < 126 ? Buffer.from([0, len]) : Buffer.from([0, 126, len >> 8, len & 0xff]);
  head[0] = 0x81 | (compressed ? 0x40 : 0);
  return Buffer.concat([head, payload]);
}

/** What permessage-deflate puts on the wire for one message: deflate, sync flush, tail stripped. */
function deflated(text: string): Buffer {
  const out = deflateRawSync(Buffer.from(text), { finishFlush: constants.Z_SYNC_FLUSH });
  return out.subarray(0, out.byteLength - 4);
}

function scan(chunks: Buffer[]) {
  const plain: string[] = [];
  const compressed: string[] = [];
  const wire: number[] = [];
  const s = new FrameScanner({
    onMessage: (buf, start, end, length) => { plain.push(buf.toString('utf8', start, end)); wire.push(length); },
    onCompressed: (payload) => {
      wire.push(payload.byteLength);
      compressed.push(inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: constants.Z_SYNC_FLUSH }).toString('utf8'));
    },
    onPing: () => undefined,
    onClose: () => undefined,
    onProtocolError: (why) => { throw new Error(why); },
  });
  for (const c of chunks) s.push(c, 0, c.byteLength);
  return { plain, compressed, wire };
}

describe('load generator frames', () => {
  const text = JSON.stringify({ type: 'ppo_metrics', timestamp: 1796636146526, data: { explanation: 'Step 413696. Health: learning. '.repeat(12) } });

  it('hands over a compressed message whole, in one read or split anywhere across reads', () => {
    const z = deflated(text);
    const stream = Buffer.concat([serverFrame(Buffer.from('{"type":"x","timestamp":1}'), false), serverFrame(z, true), serverFrame(z, true)]);
    for (const cut of [1, 3, 30, 31, 50, stream.byteLength - 5]) {
      const r = scan([stream.subarray(0, cut), stream.subarray(cut, cut + 7), stream.subarray(cut + 7)]);
      // A plain message is reported in place: the part of it inside the read it starts in.
      expect(r.plain).toHaveLength(1);
      expect('{"type":"x","timestamp":1}'.startsWith(r.plain[0])).toBe(true);
      expect(r.compressed).toEqual([text, text]);
      // Compressed messages count by their bytes on the wire.
      expect(r.wire).toEqual([26, z.byteLength, z.byteLength]);
    }
    expect(z.byteLength).toBeLessThan(Buffer.byteLength(text) / 2);
  });

  it('offers permessage-deflate without context takeover only when asked', () => {
    expect(upgradeRequest('127.0.0.1', 80).toString()).not.toMatch(/Sec-WebSocket-Extensions/);
    expect(upgradeRequest('127.0.0.1', 80, '/ws', true).toString()).toMatch(/\r\nSec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; server_no_context_takeover\r\n\r\n$/);
  });
});
