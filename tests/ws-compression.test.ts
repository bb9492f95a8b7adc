/**
 * permessage-deflate on /ws through the real service (demo → aggregator → gateway), with
 * `--fanout-compression shared`: a client that offers the extension gets it and reads the
 * same messages in fewer bytes; a client that does not offer it gets the same messages
 * uncompressed. Without the flag nothing is negotiated.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startHarness, type Harness } from './helpers/service-harness.js';

const SUB = JSON.stringify({ channels: ['metrics', 'attention', 'predictions'], level: 'intermediate', max_fps: 60 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Reader { ws: WebSocket; texts: string[]; wire: () => number }

async function connect(port: number, deflate: boolean): Promise<Reader> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { perMessageDeflate: deflate ? { clientNoContextTakeover: true, serverNoContextTakeover: true } : false });
  const texts: string[] = [];
  ws.on('message', (raw) => texts.push(String(raw)));
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  ws.send(SUB);
  // Bytes read off the TCP socket: frames as they travelled.
  const socket = (ws as unknown as { _socket: { bytesRead: number } })._socket;
  return { ws, texts, wire: () => socket.bytesRead };
}

/**
 * Messages both readers got, by type, stamp and series form (they may start a window apart: a
 * reader that subscribed just after a window's publish gets that window as its snapshot, with
 * the whole series, where the other got it as a live update with the series' tail).
 */
function common(a: string[], b: string[]): Array<[string, string]> {
  const key = (t: string) => {
    const m = JSON.parse(t) as { type: string; timestamp?: number; data?: { series?: string } };
    return `${m.type}@${m.timestamp}@${m.data?.series ?? ''}`;
  };
  const stamped = (t: string) => typeof (JSON.parse(t) as { timestamp?: unknown }).timestamp === 'number';
  const bm = new Map(b.filter(stamped).map((t) => [key(t), t]));
  return a.filter((t) => stamped(t) && bm.has(key(t))).map((t) => [t, bm.get(key(t))!]);
}

describe('/ws permessage-deflate (fanout.compression)', () => {
  describe('shared', () => {
    let h: Harness;
    beforeAll(async () => { h = await startHarness(['--demo', '--fanout-threads', '1', '--fanout-compression', 'shared']); }, 60_000);
    afterAll(async () => { await h?.close(); }, 30_000);

    it('a client offering deflate gets it and the same messages in fewer bytes; one that does not gets them plain', async () => {
      const zipped = await connect(h.service.port, true);
      const plain = await connect(h.service.port, false);
      expect(zipped.ws.extensions).toContain('permessage-deflate');
      expect(plain.ws.extensions).toBe('');
      await sleep(3000);
      const both = common(zipped.texts, plain.texts);
      expect(both.length).toBeGreaterThan(30);
      for (const [z, p] of both) expect(z).toBe(p);
      const zBytes = zipped.texts.reduce((s, t) => s + Buffer.byteLength(t), 0);
      // What the compressed client read off the wire is well under what it decoded; the plain one read at least all of it.
      expect(zipped.wire()).toBeLessThan(zBytes * 0.7);
      const pBytes = plain.texts.reduce((s, t) => s + Buffer.byteLength(t), 0);
      expect(plain.wire()).toBeGreaterThanOrEqual(pBytes);
      zipped.ws.close();
      plain.ws.close();
    }, 30_000);
  });

  describe('off (default)', () => {
    let h: Harness;
    beforeAll(async () => { h = await startHarness(['--demo', '--fanout-threads', '1']); }, 60_000);
    afterAll(async () => { await h?.close(); }, 30_000);

    it('nothing is negotiated, even for a client that offers it', async () => {
      const c = await connect(h.service.port, true);
      expect(c.ws.extensions).toBe('');
      await sleep(500);
      expect(c.texts.length).toBeGreaterThan(0);
      c.ws.close();
    }, 30_000);
  });
});
