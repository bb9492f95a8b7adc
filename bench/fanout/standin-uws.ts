/**
 * Stand-in for the ringcast gateway until the service serves /ws itself: one uWS app
 * speaking the same /ws protocol. Per tick it serialises each (channel, level) message
 * once and publishes it to the topic `<channel>/<level>`; uWS copies the bytes into every
 * subscriber's socket buffer. That is the fan-out design the gateways use (serialise
 * once in the aggregator, publish per topic), minus the ring hop.
 */
import { loadUws } from '../../src/shared/http-server.js';
import { LEVELS, type Level } from '../../src/shared/telemetry/channels.js';
import type { FanoutServer } from './server-types.js';
import { channelData, envelope, SUBSCRIBED_CHANNELS, tickData, type BenchChannel } from './payloads.js';

interface Client { level: Level }

export async function startUwsStandin(host: string, port: number): Promise<FanoutServer> {
  const { uws } = loadUws();
  const app = uws.App();
  let clients = 0;
  const known = new Set<string>(SUBSCRIBED_CHANNELS);
  app.ws<Client>('/ws', {
    maxPayloadLength: 16 * 1024,
    maxBackpressure: 8 * 1024 * 1024,
    closeOnBackpressureLimit: 1,
    idleTimeout: 120,
    open: () => {},
    message: (ws, message) => {
      const data = ws.getUserData();
      if (data.level) return; // later control messages are not part of this benchmark
      let sub: { channels?: unknown; level?: unknown };
      try { sub = JSON.parse(Buffer.from(message).toString('utf8')); } catch { ws.end(1007, 'subscription is not JSON'); return; }
      const level = (LEVELS as readonly unknown[]).includes(sub.level) ? (sub.level as Level) : 'intermediate';
      const channels = Array.isArray(sub.channels) ? sub.channels.filter((c): c is string => typeof c === 'string' && known.has(c)) : [];
      data.level = level;
      for (const c of channels) ws.subscribe(`${c}/${level}`);
      clients++;
      ws.send(JSON.stringify({ type: 'connection_established', timestamp: Date.now(), data: { channels, level } }), false);
    },
    close: (ws) => { if (ws.getUserData().level) clients--; },
  });
  const listenSocket = await new Promise<unknown>((resolve, reject) => {
    app.listen(host, port, (s) => (s ? resolve(s) : reject(new Error(`uWS stand-in could not listen on ${host}:${port}`))));
  });
  const boundPort = uws.us_socket_local_port(listenSocket as never);

  return {
    impl: 'uws-standin',
    port: boundPort,
    tick(tick, stamp) {
      const data = channelData(tickData(tick));
      for (const channel of SUBSCRIBED_CHANNELS as readonly BenchChannel[]) {
        for (const level of LEVELS) app.publish(`${channel}/${level}`, envelope(channel, data[channel], level, stamp), false, false);
      }
    },
    clients: () => clients,
    async stop() {
      uws.us_listen_socket_close(listenSocket as never);
    },
  };
}
