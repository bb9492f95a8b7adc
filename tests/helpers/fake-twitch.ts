// A fake of the three Twitch endpoints capture talks to (gql token, usher master
// playlist, media playlists + segments) on 127.0.0.1:0, with request recording so
// tests can assert the exact requests the resolver makes.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface FakeChannel {
  live: boolean;
  /** Media sequence of the first segment in the live window; advance() moves it. */
  sequence: number;
  /** Sequences inside a stitched-ad DATERANGE. */
  adSequences: Set<number>;
}

export interface FakeTwitch {
  url: string;
  gqlUrl: string;
  usherUrl: string;
  requests: RecordedRequest[];
  channels: Map<string, FakeChannel>;
  setLive(channel: string, live: boolean): void;
  advance(channel: string, n?: number): void;
  /** Force a status for a path (e.g. '/gql' -> 500). */
  statusOverrides: Map<string, number>;
  /** Delay a path's response by ms (headers withheld). */
  delays: Map<string, number>;
  /** Replace the body served for a path. */
  bodies: Map<string, string>;
  close(): Promise<void>;
}

export const SEGMENT_BYTES = 1024 * 1024;
const WINDOW = 4;
const SEG_SECONDS = 2;
const EPOCH = Date.UTC(2026, 0, 1, 0, 0, 0);

/** A fake MPEG-TS body: 188-byte packets each starting with the 0x47 sync byte. */
export function tsBytes(size: number, seed = 0): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = i % 188 === 0 ? 0x47 : (i * 31 + seed) & 0xff;
  return b;
}

const isoAt = (seq: number) => new Date(EPOCH + seq * SEG_SECONDS * 1000).toISOString();

export function masterPlaylist(channel: string): string {
  // Mix absolute and relative URIs to exercise URL resolution.
  return [
    '#EXTM3U',
    '#EXT-X-TWITCH-INFO:NODE="video-edge-fake",CLUSTER="local"',
    '#EXT-X-MEDIA:TYPE=VIDEO,GROUP-ID="chunked",NAME="1080p60 (source)",AUTOSELECT=YES,DEFAULT=YES',
    '#EXT-X-STREAM-INF:BANDWIDTH=6000000,RESOLUTION=1920x1080,CODECS="avc1.64002A,mp4a.40.2",VIDEO="chunked",FRAME-RATE=60.000',
    `/media/${channel}/chunked.m3u8`,
    '#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720,CODECS="avc1.4D401F,mp4a.40.2",VIDEO="720p60",FRAME-RATE=60.000,IVS-NAME="720p60"',
    `../../../../media/${channel}/720p60.m3u8`,
    '#EXT-X-STREAM-INF:BANDWIDTH=1400000,RESOLUTION=852x480,CODECS="avc1.4D401F,mp4a.40.2",VIDEO="480p30",FRAME-RATE=30.000,IVS-NAME="480p"',
    `/media/${channel}/480p30.m3u8`,
    '#EXT-X-STREAM-INF:BANDWIDTH=250000,RESOLUTION=284x160,CODECS="avc1.4D401F,mp4a.40.2",VIDEO="160p30",FRAME-RATE=30.000,IVS-NAME="160p"',
    `/media/${channel}/160p30.m3u8`,
    '#EXT-X-STREAM-INF:BANDWIDTH=160000,CODECS="mp4a.40.2",VIDEO="audio_only",IVS-NAME="audio_only"',
    `/media/${channel}/audio_only.m3u8`,
    '',
  ].join('\n');
}

/** A rotating live window: WINDOW segments, an ad DATERANGE if any are ads, two prefetch lines. */
export function mediaPlaylist(ch: FakeChannel): string {
  const out = ['#EXTM3U', '#EXT-X-VERSION:3', `#EXT-X-TARGETDURATION:${SEG_SECONDS}`, `#EXT-X-MEDIA-SEQUENCE:${ch.sequence}`];
  const ads = [...ch.adSequences].filter((s) => s >= ch.sequence && s < ch.sequence + WINDOW + 2).sort((a, b) => a - b);
  if (ads.length > 0) {
    const first = ads[0];
    const last = ads[ads.length - 1];
    out.push(
      `#EXT-X-DATERANGE:ID="stitched-ad-${first}",CLASS="twitch-stitched-ad",START-DATE="${isoAt(first)}",DURATION=${(last - first + 1) * SEG_SECONDS}.000,X-TV-TWITCH-AD-ROLL-TYPE="MIDROLL"`,
    );
  }
  for (let s = ch.sequence; s < ch.sequence + WINDOW; s++) {
    out.push(`#EXT-X-PROGRAM-DATE-TIME:${isoAt(s)}`, `#EXTINF:${SEG_SECONDS}.000,live`, `/seg/${s}.ts`);
  }
  out.push(`#EXT-X-TWITCH-PREFETCH:/seg/${ch.sequence + WINDOW}.ts`, `#EXT-X-TWITCH-PREFETCH:/seg/${ch.sequence + WINDOW + 1}.ts`);
  return out.join('\n') + '\n';
}

export async function startFakeTwitch(initial: Record<string, boolean> = {}): Promise<FakeTwitch> {
  const requests: RecordedRequest[] = [];
  const channels = new Map<string, FakeChannel>();
  const statusOverrides = new Map<string, number>();
  const delays = new Map<string, number>();
  const bodies = new Map<string, string>();
  const sockets = new Set<Socket>();
  const tokens = new Map<string, { value: string; signature: string }>();
  const chan = (name: string) => {
    let c = channels.get(name);
    if (!c) channels.set(name, (c = { live: false, sequence: 100, adSequences: new Set() }));
    return c;
  };
  for (const [name, live] of Object.entries(initial)) chan(name).live = live;

  const handle = async (req: IncomingMessage, res: ServerResponse, body: string) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const path = u.pathname;
    requests.push({ method: req.method ?? '', path, query: u.searchParams, headers: req.headers, body });
    const delay = delays.get(path);
    if (delay) await new Promise((r) => setTimeout(r, delay));
    const forced = statusOverrides.get(path);
    if (forced) return void res.writeHead(forced).end(`forced ${forced}`);
    const override = bodies.get(path);
    if (override !== undefined) return void res.writeHead(200).end(override);

    if (path === '/gql' && req.method === 'POST') {
      const parsed = JSON.parse(body) as { variables: { login: string } };
      const c = chan(parsed.variables.login);
      let token = null;
      if (c.live) {
        token = { value: JSON.stringify({ channel: parsed.variables.login, expires: 1 }), signature: `sig-${parsed.variables.login}` };
        tokens.set(parsed.variables.login, token);
      }
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data: { streamPlaybackAccessToken: token } }));
    }
    let m = /^\/api\/v2\/channel\/hls\/([a-z0-9_]+)\.m3u8$/.exec(path);
    if (m) {
      const c = chan(m[1]);
      const t = tokens.get(m[1]);
      if (!c.live) return void res.writeHead(404).end('[]');
      // Real usher rejects unsigned requests; so does the fake.
      if (!t || u.searchParams.get('sig') !== t.signature || u.searchParams.get('token') !== t.value) return void res.writeHead(403).end('bad sig');
      return void res.writeHead(200, { 'content-type': 'application/vnd.apple.mpegurl' }).end(masterPlaylist(m[1]));
    }
    m = /^\/media\/([a-z0-9_]+)\/[\w.]+\.m3u8$/.exec(path);
    if (m) {
      const c = chan(m[1]);
      if (!c.live) return void res.writeHead(404).end();
      return void res.writeHead(200).end(mediaPlaylist(c));
    }
    if (path === '/seg/slow.ts') {
      // Headers now, body never: exercises the body-read part of the deadline.
      res.writeHead(200, { 'content-length': String(SEGMENT_BYTES) });
      res.write(tsBytes(188));
      return;
    }
    if (path === '/seg/truncated.ts') {
      // Promise a megabyte, send 1000 bytes, then drop the connection.
      res.writeHead(200, { 'content-length': String(SEGMENT_BYTES) });
      res.write(tsBytes(1000));
      setTimeout(() => res.destroy(), 20);
      return;
    }
    if (path === '/seg/garbage.ts') return void res.writeHead(200).end('<html>not a segment</html>'.repeat(50));
    if (path === '/seg/empty.ts') return void res.writeHead(200).end();
    if (path === '/seg/small.ts') return void res.writeHead(200).end(tsBytes(188 * 10));
    if (path === '/init.mp4') return void res.writeHead(200).end(Buffer.concat([Buffer.from([0, 0, 0, 16]), Buffer.from('ftypiso5'), Buffer.alloc(4)]));
    m = /^\/seg\/(\d+)\.ts$/.exec(path);
    if (m) return void res.writeHead(200, { 'content-type': 'video/mp2t' }).end(tsBytes(SEGMENT_BYTES, Number(m[1])));
    res.writeHead(404).end('not found');
  };

  const server: Server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      handle(req, res, Buffer.concat(parts).toString('utf8')).catch((err) => {
        if (!res.headersSent) res.writeHead(500).end(String(err));
      });
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    gqlUrl: `${url}/gql`,
    usherUrl: url,
    requests,
    channels,
    statusOverrides,
    delays,
    bodies,
    setLive: (name, live) => void (chan(name).live = live),
    advance: (name, n = 1) => void (chan(name).sequence += n),
    close: () =>
      new Promise<void>((r) => {
        // Slow/hung responses keep sockets open; destroy them so close() returns.
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
