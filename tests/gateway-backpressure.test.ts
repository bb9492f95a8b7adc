import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FanoutFlag } from '../src/shared/telemetry/ring-records.js';
import { message, overlay, sleep, startGateways, type GatewayCluster, type TestClient } from './fixtures/gateway-harness.js';

const SOFT = 64 * 1024;
const HARD = 512 * 1024;
let gw: GatewayCluster;

beforeAll(async () => { gw = await startGateways({ options: { softLimitBytes: SOFT, hardLimitBytes: HARD, criticalQueueLimit: 32 } }); });
afterAll(async () => { await gw?.stop(); });

async function overlayStats() {
  const all = await Promise.all([0, 1].map((i) => gw.supervisor.call(`gateway-${i}`, 'stats') as Promise<any>));
  const sum = (k: string) => all.reduce((s, x) => s + x.overlay[k], 0);
  return { clients: sum('clients'), slow: sum('slowClients'), tooSlow: sum('disconnectsTooSlow'), skipped: sum('skippedSlow'), resubscribed: sum('resubscribed'), maxBuffered: Math.max(...all.map((x) => x.overlay.maxBufferedSeen)) };
}

function maskedText(text: string): Buffer {
  const payload = Buffer.from(text);
  if (payload.length > 125) throw new Error('keep test frames short');
  const mask = randomBytes(4);
  const frame = Buffer.alloc(6 + payload.length);
  frame[0] = 0x81;
  frame[1] = 0x80 | payload.length;
  mask.copy(frame, 2);
  for (let i = 0; i < payload.length; i++) frame[6 + i] = payload[i] ^ mask[i & 3];
  return frame;
}

/** A WebSocket client on a raw socket that subscribes and then never reads again. */
async function stalledClient(port: number, sub: unknown): Promise<net.Socket> {
  const sock = net.connect(port, '127.0.0.1');
  await once(sock, 'connect');
  sock.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  let head = '';
  while (!head.includes('\r\n\r\n')) head += String((await once(sock, 'data'))[0]);
  expect(head).toMatch(/^HTTP\/1.1 101/);
  sock.write(maskedText(JSON.stringify(sub)));
  sock.pause(); // stop reading from the kernel: the server's writes pile up
  sock.on('error', () => { /* reset by the server, expected */ });
  return sock;
}

const pad = 'x'.repeat(16_000);

describe('gateway slow clients', () => {
  it('a stalled client is cut off (4008) without delaying a healthy one, and server buffering stays bounded', async () => {
    const before = await overlayStats();
    const healthy = await overlay(gw.port, { channels: ['attention'] });
    const stalled = await stalledClient(gw.port, { channels: ['attention'] });
    await expect.poll(async () => (await overlayStats()).clients, { timeout: 3_000 }).toBe(before.clients + 2);

    let seq = 0;
    let crit = 0;
    const deadline = Date.now() + 12_000;
    let stats = before;
    while (Date.now() < deadline) {
      for (let i = 0; i < 2; i++) gw.publish({ channel: 'attention', key: 'se_attention', body: message('se_attention', { seq: ++seq, t: Date.now(), pad }), flags: 0 });
      if (seq % 4 === 0) gw.publish({ channel: 'attention', key: 'alert', body: message('milestone', { crit: ++crit, t: Date.now() }), flags: FanoutFlag.Critical });
      await sleep(10);
      if (seq % 20 === 0) {
        stats = await overlayStats();
        if (stats.tooSlow > before.tooSlow) break;
      }
    }
    expect(stats.tooSlow).toBe(before.tooSlow + 1);
    expect(stats.clients).toBe(before.clients + 1);
    expect(stats.maxBuffered).toBeLessThanOrEqual(HARD + 1024 * 1024);

    // The healthy client got everything, in order, promptly.
    await healthy.next((r) => r.json?.data?.seq === seq, 3_000, 'last update on the healthy client');
    const updates = healthy.jsonOfType('se_attention');
    expect(updates.map((m) => m.data.seq)).toEqual(Array.from({ length: seq }, (_, i) => i + 1));
    expect(healthy.jsonOfType('milestone').map((m) => m.data.crit)).toEqual(Array.from({ length: crit }, (_, i) => i + 1));
    const lags = healthy.received.filter((r) => r.json?.data?.t).map((r) => r.at - r.json.data.t).sort((a, b) => a - b);
    expect(lags[Math.floor(lags.length * 0.95)]).toBeLessThan(250);
    expect(healthy.closeCode).toBeUndefined();

    const metrics = await gw.supervisor.metrics();
    expect(metrics).toMatch(/ringcast_gateway_disconnects_total\{[^}]*endpoint="overlay"[^}]*reason="(too_slow|critical_queue_full)"[^}]*\} 1/);
    expect(metrics).toMatch(/ringcast_gateway_skipped_slow_total\{[^}]*\} [1-9]/);
    stalled.destroy();
    healthy.close();
  });

  it('a moderately slow client skips updates but still gets every critical, then catches up with the latest state', async () => {
    const before = await overlayStats();
    const c: TestClient = await overlay(gw.port, { channels: ['attention'] });
    const socket = (c.ws as unknown as { _socket: net.Socket })._socket;
    socket.pause();
    let seq = 0;
    const deadline = Date.now() + 10_000;
    let stats = before;
    while (Date.now() < deadline) {
      for (let i = 0; i < 2; i++) gw.publish({ channel: 'attention', key: 'se_attention', body: message('se_attention', { seq: ++seq, pad }), flags: FanoutFlag.Retain });
      await sleep(10);
      if (seq % 10 === 0) {
        stats = await overlayStats();
        if (stats.slow > before.slow) break;
      }
    }
    expect(stats.slow).toBe(before.slow + 1);
    for (let k = 1; k <= 5; k++) {
      gw.publish({ channel: 'attention', key: 'alert', body: message('milestone', { crit: k }), flags: FanoutFlag.Critical });
      gw.publish({ channel: 'attention', key: 'se_attention', body: message('se_attention', { seq: ++seq, pad }), flags: FanoutFlag.Retain });
      await sleep(20);
    }
    await sleep(100);
    socket.resume();
    await c.next((r) => r.json?.data?.seq === seq, 5_000, 'the latest update after draining');
    expect(c.jsonOfType('milestone').map((m) => m.data.crit)).toEqual([1, 2, 3, 4, 5]);
    const after = await overlayStats();
    expect(after.skipped).toBeGreaterThan(before.skipped);
    expect(after.resubscribed).toBe(before.resubscribed + 1);
    expect(c.closeCode).toBeUndefined();
    // Live again: the next update arrives directly.
    gw.publish({ channel: 'attention', key: 'se_attention', body: message('se_attention', { seq: ++seq, pad: '' }), flags: 0 });
    await c.next((r) => r.json?.data?.seq === seq, 3_000, 'a live update after recovering');
    const seqs = c.jsonOfType('se_attention').map((m) => m.data.seq);
    expect(seqs.length).toBeLessThan(seq); // updates were skipped while slow
    c.close();
  });
});
