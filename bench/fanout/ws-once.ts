/**
 * The `ws` server a competent user writes for identical payloads: serialise each message
 * of a tick once into a Buffer and send that Buffer to every subscriber. It differs from
 * ours only in the fan-out machinery (ws on one Node thread, against uWS publish).
 */
import { WebSocketServer, type WebSocket } from 'ws';
import type { FanoutServer } from './server-types.js';
import { loadTemplates, templatesNote, tickMessages } from './same-bytes.js';

export async function startWsOnce(host: string, port: number, templatesFile?: string): Promise<FanoutServer> {
  const templates = loadTemplates(templatesFile);
  const wss = new WebSocketServer({ host, port, path: '/ws', perMessageDeflate: false, clientTracking: false, backlog: 4096 });
  await new Promise<void>((resolve, reject) => { wss.once('listening', resolve); wss.once('error', reject); });
  const subscribers = new Set<WebSocket>();
  wss.on('connection', (socket) => {
    socket.once('message', (raw) => {
      let sub: { channels?: unknown; level?: unknown };
      try { sub = JSON.parse(String(raw)); } catch { socket.close(1007, 'subscription is not JSON'); return; }
      subscribers.add(socket);
      socket.send(JSON.stringify({ type: 'connection_established', timestamp: Date.now(), data: { channels: sub.channels, level: sub.level } }));
    });
    socket.on('close', () => subscribers.delete(socket));
    socket.on('error', () => {});
  });
  const address = wss.address();
  return {
    impl: 'ws-serialize-once',
    note: templatesNote('ws serialise-once', templates),
    port: typeof address === 'object' && address ? address.port : port,
    tick(tick, stamp) {
      const frames = tickMessages(tick, stamp, templates).map((m) => Buffer.from(m));
      for (const s of subscribers) for (const f of frames) s.send(f, { binary: false });
    },
    clients: () => subscribers.size,
    async stop() {
      for (const s of subscribers) s.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
