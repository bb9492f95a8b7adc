/**
 * Test peer for producer clients: the bench receiver's TCP and Unix listeners plus a
 * WebSocket endpoint at ws://127.0.0.1:<port>/ingest (the `ws` library, so the test does
 * not depend on the gateway actors), recording every decoded event with the frame it came
 * in (experience events point into their frame) and every rejection it answered.
 *
 * WebSocket auth mirrors the gateway contract: `Authorization: Bearer <token>` or
 * `?token=`; a wrong token gets an Error event and close code 1008.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { encodeEvent, EventKind, type EventError, type TelemetryEvent } from '../../src/shared/telemetry/event-codec.js';
import { IngestReceiver, type ReceiverSession, type ReceiverTransport } from '../../bench/lib/ingest-receiver.js';

export interface RecordedEvent {
  transport: ReceiverTransport;
  session: number;
  run?: string;
  event: TelemetryEvent;
  frame: Uint8Array;
}

export interface RecordedRejection {
  transport: ReceiverTransport;
  session: number;
  error: EventError;
}

export interface IngestPeer {
  receiver: IngestReceiver;
  tcpPort: number;
  unixPath: string;
  wsPort: number;
  events: RecordedEvent[];
  rejections: RecordedRejection[];
  /** Events past this many are counted in `overflow`, not kept. */
  overflow: number;
  close(): Promise<void>;
}

const MAX_RECORDED = 10_000;

export async function startIngestPeer(options: { token: string; unixPath: string }): Promise<IngestPeer> {
  const events: RecordedEvent[] = [];
  const rejections: RecordedRejection[] = [];
  const peer = { events, rejections, overflow: 0 } as IngestPeer;
  const receiver = await IngestReceiver.start({
    token: options.token,
    tcpPort: 0,
    unixPath: options.unixPath,
    onEvent: (event, session, frame) => {
      if (events.length >= MAX_RECORDED) peer.overflow++;
      else events.push({ transport: session.transport, session: session.id, run: session.run, event, frame: frame.slice() });
    },
    onReject: (error, session) => {
      if (rejections.length < MAX_RECORDED) rejections.push({ transport: session.transport, session: session.id, error });
    },
  });

  const http: Server = createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024 });
  http.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://peer');
    if (url.pathname !== '/ingest') {
      socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
      return;
    }
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const token = bearer ?? url.searchParams.get('token') ?? undefined;
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      const session: ReceiverSession = receiver.openSession(
        'ws',
        (frame) => ws.send(frame, { binary: true }),
        () => ws.close(1008, 'authentication failed'),
        receiver.tokenMatches(token),
      );
      if (token !== undefined && !session.authenticated) {
        // Same reply as a bad hello on TCP, so a client counts it the same way.
        ws.send(encodeEvent(EventKind.Error, { error: 'invalid ingest token' }), { binary: true });
        rejections.push({ transport: 'ws', session: session.id, error: { index: -1, error: 'invalid ingest token' } });
        ws.close(1008, 'invalid ingest token');
        return;
      }
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (!isBinary) {
          ws.send(encodeEvent(EventKind.Error, { error: 'text messages are not accepted: send binary frames' }), { binary: true });
          return;
        }
        receiver.acceptFrame(session, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      });
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));

  return Object.assign(peer, {
    receiver,
    tcpPort: receiver.tcpPort,
    unixPath: options.unixPath,
    wsPort: (http.address() as AddressInfo).port,
    async close() {
      for (const client of wss.clients) client.terminate();
      wss.close();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await receiver.close();
    },
  });
}
