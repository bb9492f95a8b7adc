/**
 * The naive fan-out this benchmark compares against, built the way a straightforward
 * Node design does it: the `ws` library, and on every tick, for every client, for every
 * channel it subscribed to, build the client's personalised message (its level's
 * explanation) with JSON.stringify and ws.send it. Same shapes and bytes as ours: the
 * messages the probe saw from the real service (probe.ts), else payloads.ts as
 * the stand-in sends them. Only the fan-out strategy differs.
 */
import { readFileSync } from 'node:fs';
import { WebSocketServer, type WebSocket } from 'ws';
import { LEVELS, type Level } from '../../src/shared/telemetry/channels.js';
import type { FanoutServer } from './server-types.js';
import type { MessageTemplate } from './probe.js';
import { channelData, envelope, SUBSCRIBED_CHANNELS, tickData, type BenchChannel } from './payloads.js';

interface Subscriber { socket: WebSocket; level: Level; channels: BenchChannel[] }

export async function startWsBaseline(host: string, port: number, templatesFile?: string): Promise<FanoutServer> {
  const templates = templatesFile ? (JSON.parse(readFileSync(templatesFile, 'utf8')) as MessageTemplate[]) : undefined;
  if (templates && templates.length === 0) throw new Error(`${templatesFile} holds no message templates`);
  const wss = new WebSocketServer({ host, port, path: '/ws', perMessageDeflate: false, clientTracking: false, backlog: 4096 });
  await new Promise<void>((resolve, reject) => { wss.once('listening', resolve); wss.once('error', reject); });
  const subscribers = new Set<Subscriber>();
  const known = new Set<string>(SUBSCRIBED_CHANNELS);

  wss.on('connection', (socket) => {
    let sub: Subscriber | undefined;
    socket.on('message', (raw) => {
      if (sub) return;
      let msg: { channels?: unknown; level?: unknown };
      try { msg = JSON.parse(String(raw)); } catch { socket.close(1007, 'subscription is not JSON'); return; }
      const level = (LEVELS as readonly unknown[]).includes(msg.level) ? (msg.level as Level) : 'intermediate';
      const channels = Array.isArray(msg.channels) ? msg.channels.filter((c): c is BenchChannel => typeof c === 'string' && known.has(c)) : [];
      sub = { socket, level, channels };
      subscribers.add(sub);
      socket.send(JSON.stringify({ type: 'connection_established', timestamp: Date.now(), data: { channels, level } }));
    });
    socket.on('close', () => { if (sub) subscribers.delete(sub); });
    socket.on('error', () => {});
  });

  const address = wss.address();
  return {
    impl: 'ws-baseline',
    note: templates ? `baseline sends the real service's messages (${templates.map((t) => `${t.type} ${t.bytes} B`).join(', ')})` : undefined,
    port: typeof address === 'object' && address ? address.port : port,
    tick(tick, stamp) {
      if (templates) {
        // The real service's messages, rebuilt per client the naive way.
        for (const s of subscribers) {
          for (const t of templates) s.socket.send(JSON.stringify({ type: t.type, timestamp: stamp, data: t.data }));
        }
        return;
      }
      const data = channelData(tickData(tick));
      for (const s of subscribers) {
        for (const channel of s.channels) s.socket.send(envelope(channel, data[channel], s.level, stamp));
      }
    },
    clients: () => subscribers.size,
    async stop() {
      for (const s of subscribers) s.socket.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
