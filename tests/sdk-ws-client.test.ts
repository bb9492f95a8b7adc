/**
 * The SDK WebSocket client masks its frames a word at a time: the result must be exactly RFC
 * 6455's byte-wise XOR for every length (tails of 0–3 bytes) and every key, and a real `ws`
 * server must read large masked frames back intact. Large incoming messages (collected chunk by
 * chunk, joined once) arrive intact and in order, mixed with small ones and fragmented ones.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { maskInPlace, nextMaskKey, WsClient } from '../src/sdk/ws-client.js';

const cleanup: Array<() => unknown> = [];
afterEach(() => { for (const f of cleanup.splice(0).reverse()) f(); });


/** A `ws` server that records every message it receives, and an SDK client connected to it. */
async function clientToRecordingServer(): Promise<{ client: WsClient; got: Buffer[] }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  cleanup.push(() => wss.close());
  await new Promise((r) => wss.once('listening', r));
  const got: Buffer[] = [];
  wss.on('connection', (ws) => ws.on('message', (d: Buffer) => got.push(Buffer.from(d))));
  const port = (wss.address() as { port: number }).port;
  const client = new WsClient(`ws://127.0.0.1:${port}/`, { maxMessageBytes: 1 << 20 });
  cleanup.push(() => client.close());
  await new Promise((r, j) => { client.once('open', r); client.once('error', j); });
  return { client, got };
}

describe('SDK WebSocket client', () => {
  it('equals the byte-wise XOR for lengths 0–67 and several keys', () => {
    for (const key of [[0, 0, 0, 0], [1, 2, 3, 4], [0xff, 0x80, 0x7f, 0x01], [0xde, 0xad, 0xbe, 0xef]]) {
      for (let len = 0; len < 68; len++) {
        const data = Uint8Array.from({ length: len }, (_, i) => (i * 37 + len) & 0xff);
        const buf = new ArrayBuffer(8 + len);
        new Uint8Array(buf, 8, len).set(data);
        maskInPlace(buf, 8, len, Uint8Array.from(key));
        const want = data.map((b, i) => b ^ key[i & 3]);
        expect([...new Uint8Array(buf, 8, len)]).toEqual([...want]);
        expect([...new Uint8Array(buf, 0, 8)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]); // nothing before the payload touched
      }
    }
  });

  it('every frame gets a fresh mask key, also across refills of the random pool', () => {
    const keys = Array.from({ length: 1000 }, () => nextMaskKey(Buffer.alloc(4)).readUInt32LE(0)); // the pool holds 256 keys
    // 1000 random 32-bit keys: a repeat has a chance of about 1 in 10,000.
    expect(new Set(keys).size).toBeGreaterThanOrEqual(999);
  });

  it('a ws server reads masked frames of every header size back intact', async () => {
    const { client, got } = await clientToRecordingServer();
    // 125 (7-bit length), 126 and 65535 (16-bit), 65536 and 300001 (64-bit; odd tail).
    const sizes = [1, 3, 125, 126, 65_535, 65_536, 300_001];
    const payloads = sizes.map((n) => Uint8Array.from({ length: n }, (_, i) => (i * 131 + n) & 0xff));
    for (const p of payloads) client.send(p);
    const deadline = Date.now() + 5_000;
    while (got.length < payloads.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(got.map((b) => b.length)).toEqual(sizes);
    for (let i = 0; i < sizes.length; i++) expect(Buffer.compare(got[i], Buffer.from(payloads[i]))).toBe(0);
  });

  it('sendParts: the parts arrive as one message, their concatenation, at every header size', async () => {
    const { client, got } = await clientToRecordingServer();
    const part = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 29 + seed) & 0xff);
    // Odd part sizes (the mask runs over the joined payload, not per part); totals of 7-, 16- and 64-bit lengths;
    // a part that is a view into a larger buffer at an odd offset.
    const messages = [
      [part(1, 1), part(2, 2), part(0, 3), part(7, 4)],
      [part(100, 5), part(26, 6)],
      [part(65_535, 7), part(1, 8)],
      [part(16_711, 9), new Uint8Array(part(50_003, 10).buffer, 3, 50_000), part(3, 11)],
    ];
    for (const m of messages) expect(client.sendParts(m)).toBe(true);
    const deadline = Date.now() + 5_000;
    while (got.length < messages.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(got.length).toBe(messages.length);
    for (let i = 0; i < messages.length; i++) expect(Buffer.compare(got[i], Buffer.concat(messages[i]))).toBe(0);
  });

  it('receives large, small and fragmented server messages intact and in order', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    cleanup.push(() => wss.close());
    await new Promise((r) => wss.once('listening', r));
    const sizes = [3_000_001, 5, 700_000, 126, 65_536, 2_000_003];
    const payloads = sizes.map((n) => Buffer.from(Uint8Array.from({ length: n }, (_, i) => (i * 7 + n) & 0xff)));
    wss.on('connection', (ws) => {
      for (const p of payloads) ws.send(p, { binary: true });
      // One message in three fragments.
      ws.send(payloads[0].subarray(0, 100), { binary: true, fin: false });
      ws.send(payloads[0].subarray(100, 200_000), { fin: false });
      ws.send(payloads[0].subarray(200_000), { fin: true });
    });
    const port = (wss.address() as { port: number }).port;
    const client = new WsClient(`ws://127.0.0.1:${port}/`, { maxMessageBytes: 8 << 20 });
    cleanup.push(() => client.close());
    const got: Buffer[] = [];
    client.on('message', (data: Uint8Array) => got.push(Buffer.from(data)));
    const deadline = Date.now() + 10_000;
    while (got.length < payloads.length + 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(got.map((b) => b.length)).toEqual([...sizes, sizes[0]]);
    for (let i = 0; i < sizes.length; i++) expect(Buffer.compare(got[i], payloads[i])).toBe(0);
    expect(Buffer.compare(got[sizes.length], payloads[0])).toBe(0);
  });
});
