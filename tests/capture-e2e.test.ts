/**
 * Frame capture end to end: a real ringcast (startHarness: actors on worker threads,
 * dist/ build needed) capturing from the loopback Twitch fake (bench/lib/live-hls.ts), talked to
 * over REST and /ws like an operator and an overlay would.
 *
 * Covered here: templates found in their cells (and an empty cell reported as such), a channel
 * going offline and coming back, thumbnails, the `capture` opt-in overlay channel, /metrics,
 * and every bad REST request. Faults, priorities and restarts are in capture-faults.test.ts.
 *
 * The template geometry is computed once from regions.json's fractions and used both to place
 * the overlays in the encoded video and to say which cell must report which template, so the
 * test checks the analysis against the picture actually drawn, not against constants.
 */
import { createCanvas } from '@napi-rs/canvas';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeSegments, startLiveHls, type LiveHlsServer, type Overlay } from '../bench/lib/live-hls.js';
import type { CaptureRecord } from '../src/actors/capture/index.js';
import { ADMIN_TOKEN, OverlayClient, startHarness, type Harness } from './helpers/service-harness.js';
import { pollUntil } from './helpers/poll.js';

// Shared with capture-live-hls.test.ts on purpose: encodeSegments caches by options hash.
const CACHE = path.join(tmpdir(), 'ringcast-live-hls-cache');
const ENC_W = 640;
const ENC_H = 360;
const THRESHOLD = 0.8;
/** One region, six cells in a row; cell 4 stays empty (background). */
const REGION = { name: 'heroes', x: 0.05, y: 0.1, w: 0.9, h: 0.2, cols: 6, rows: 1, group: 'heroes', threshold: THRESHOLD };
/** Cell → template drawn there. Not alphabetical, so a right answer cannot come from load order. */
const LAYOUT: Array<string | null> = ['kite', 'blaze', 'moss', 'dusk', null, 'ember'];

const HEROES = 'heroes_main';
const FLAPPY = 'flappy_chan';

let work: string;
let hls: LiveHlsServer;
let h: Harness;
let capClient: OverlayClient;
let allClient: OverlayClient;
/** When the offline channel was put back live (set by the offline test, checked by the last one). */
let backLiveAt = 0;

const base = () => `http://127.0.0.1:${h.service.port}`;
const call = (method: string, p: string, body?: unknown, token: string | null = ADMIN_TOKEN) =>
  fetch(`${base()}${p}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });

interface StreamDetail {
  stream: { name: string; priority: number };
  latest: CaptureRecord | null;
  history: CaptureRecord[];
  counts: { ok: number; offline: number; error: number };
  schedule: { state: string; captures: number; offlineChecks: number; nextDueAt: number; intervalMs: number } | null;
}
const detail = async (name: string): Promise<StreamDetail> => {
  const r = await fetch(`${base()}/api/streams/${name}`);
  expect(r.status, await r.clone().text()).toBe(200);
  return (await r.json()) as StreamDetail;
};

/** The response has this status and an `error` message matching `message`. */
async function expectError(res: Response, status: number, message: RegExp, what = ''): Promise<void> {
  const text = await res.text();
  expect(res.status, `${what} ${text}`).toBe(status);
  expect((JSON.parse(text) as { error: string }).error, what).toMatch(message);
}

const until = pollUntil;

/** Pixel box of cell `i`: the same fractions the analysis uses, times the encode size. */
function cellBox(i: number): Overlay & { png: '' } {
  const x = (REGION.x + (i * REGION.w) / REGION.cols) * ENC_W;
  const y = REGION.y * ENC_H;
  const w = (REGION.w / REGION.cols) * ENC_W;
  const hgt = REGION.h * ENC_H;
  // The overlay must cover the cell exactly; a fraction that does not land on a pixel would
  // make the test depend on rounding, so refuse such a layout outright.
  const r = { x: Math.round(x), y: Math.round(y), w: Math.round(w), h: Math.round(hgt) };
  for (const [k, v] of Object.entries({ x, y, w, h: hgt })) {
    if (Math.abs(v - r[k as keyof typeof r]) > 1e-6) throw new Error(`cell ${i} ${k} = ${v} is not a whole pixel at ${ENC_W}x${ENC_H}`);
  }
  return { png: '', ...r };
}

/** Five templates that differ in colours, layout and glyph, so none correlates with another. */
function drawTemplate(name: string, w: number, hgt: number): Buffer {
  const c = createCanvas(w, hgt);
  const g = c.getContext('2d');
  switch (name) {
    case 'blaze': // orange, diagonal split with a white disc low left
      g.fillStyle = '#f07010'; g.fillRect(0, 0, w, hgt);
      g.fillStyle = '#401000'; g.beginPath(); g.moveTo(w, 0); g.lineTo(w, hgt); g.lineTo(0, hgt); g.closePath(); g.fill();
      g.fillStyle = '#ffffff'; g.beginPath(); g.arc(w * 0.3, hgt * 0.7, hgt * 0.2, 0, Math.PI * 2); g.fill();
      break;
    case 'dusk': // purple with horizontal yellow stripes
      g.fillStyle = '#3a1060'; g.fillRect(0, 0, w, hgt);
      g.fillStyle = '#f0e040';
      for (let k = 0; k < 3; k++) g.fillRect(0, hgt * (0.1 + k * 0.3), w, hgt * 0.12);
      break;
    case 'ember': // dark red, big letter E top right, cyan square bottom left
      g.fillStyle = '#600808'; g.fillRect(0, 0, w, hgt);
      g.fillStyle = '#ffd0d0'; g.font = `bold ${Math.round(hgt * 0.6)}px sans-serif`; g.fillText('E', w * 0.55, hgt * 0.55);
      g.fillStyle = '#20e0e0'; g.fillRect(w * 0.08, hgt * 0.6, w * 0.3, hgt * 0.3);
      break;
    case 'kite': // sky blue with a green diamond centre and a black bar at the top
      g.fillStyle = '#70b0f0'; g.fillRect(0, 0, w, hgt);
      g.fillStyle = '#10a030'; g.beginPath(); g.moveTo(w / 2, hgt * 0.2); g.lineTo(w * 0.8, hgt * 0.6); g.lineTo(w / 2, hgt); g.lineTo(w * 0.2, hgt * 0.6); g.closePath(); g.fill();
      g.fillStyle = '#000000'; g.fillRect(0, 0, w, hgt * 0.15);
      break;
    case 'moss': // green/white checkerboard, 3x2
      for (let cy = 0; cy < 2; cy++) for (let cx = 0; cx < 3; cx++) {
        g.fillStyle = (cx + cy) % 2 === 0 ? '#2f7f20' : '#e8f8e0';
        g.fillRect((cx * w) / 3, (cy * hgt) / 2, w / 3 + 1, hgt / 2 + 1);
      }
      break;
    default:
      throw new Error(`no drawing for template ${name}`);
  }
  return c.toBuffer('image/png');
}

const captureMsgs = (c: OverlayClient, stream?: string) =>
  c.messages.filter((m) => m.type === 'capture_result' && (stream === undefined || (m.data as unknown as CaptureRecord | undefined)?.stream === stream));

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'ringcast-capture-e2e-'));
  const templatesDir = path.join(work, 'templates');
  mkdirSync(path.join(templatesDir, 'heroes'), { recursive: true });
  writeFileSync(path.join(templatesDir, 'regions.json'), JSON.stringify({ regions: [REGION] }, null, 1));
  const overlays: Overlay[] = [];
  LAYOUT.forEach((name, i) => {
    if (name === null) return;
    const box = cellBox(i);
    const png = path.join(templatesDir, 'heroes', `${name}.png`);
    writeFileSync(png, drawTemplate(name, box.w, box.h));
    overlays.push({ ...box, png });
  });
  mkdirSync(CACHE, { recursive: true });
  // Black + noise background: the empty cell holds no structure that could resemble a
  // template, and the noise keeps keyframes a realistic size.
  const segments = await encodeSegments({ dir: CACHE, width: ENC_W, height: ENC_H, fps: 30, segmentSeconds: 1, segments: 2, source: 'black', noise: 10, overlays });
  hls = await startLiveHls({ segmentSeconds: 1 });
  for (const name of [HEROES, FLAPPY]) hls.addChannel(name, { variants: { '480p': segments } });
  h = await startHarness([
    '--fanout-threads', '1', '--interval', '1', '--capture-width', '320', '--capture-height', '180', '--decoders', '1', '--offline-recheck-ms', '2000',
    '--templates-dir', templatesDir, '--twitch-gql-url', hls.gqlUrl, '--twitch-usher-url', hls.usherUrl,
  ]);
  [capClient, allClient] = await Promise.all([
    OverlayClient.connect(h.service.port, { channels: ['capture'] }),
    OverlayClient.connect(h.service.port, { channels: ['all'] }),
  ]);
}, 60_000);

afterAll(async () => {
  capClient?.close();
  allClient?.close();
  await h?.close();
  await hls?.close();
  if (work) rmSync(work, { recursive: true, force: true });
}, 30_000);

describe('capture against the live HLS fake', () => {
  it('reports each template in its cell and null for the empty one', async () => {
    const add = await call('POST', '/api/streams', { username: HEROES });
    expect(add.status, await add.clone().text()).toBe(201);
    const msg = await capClient.waitFor((m) => {
      const d = m.data as unknown as CaptureRecord | undefined;
      return m.type === 'capture_result' && d?.stream === HEROES && d.status === 'ok' && Array.isArray(d.matches);
    }, 20_000, `an analysed capture of ${HEROES}`);
    const rec = msg.data as unknown as CaptureRecord;
    expect(rec.screen, 'classification present').toBeTypeOf('string');
    expect(rec.phash).toMatch(/^[0-9a-f]{16}$/);
    expect(rec.matches).toHaveLength(LAYOUT.length);
    const byCell = new Map(rec.matches!.map((m) => [m.cell, m]));
    LAYOUT.forEach((want, cell) => {
      const m = byCell.get(cell);
      expect(m, `cell ${cell}`).toBeDefined();
      expect(m!.region).toBe(REGION.name);
      if (want === null) {
        expect(m!.template, `empty cell ${cell} (score ${m!.score})`).toBeNull();
        expect(m!.score).toBeLessThan(THRESHOLD);
      } else {
        expect(m!.template, `cell ${cell} (score ${m!.score})`).toBe(want);
        expect(m!.score).toBeGreaterThanOrEqual(THRESHOLD);
      }
    });
  });

  it('a channel that goes offline reports offline, with its schedule in the offline state', async () => {
    const add = await call('POST', '/api/streams', { username: FLAPPY, priority: 60 });
    expect(add.status, await add.clone().text()).toBe(201);
    await until(`${FLAPPY} to capture ok`, 15_000, async () => ((await detail(FLAPPY)).history.some((r) => r.status === 'ok') ? true : undefined), () => detail(FLAPPY));
    const wentOffline = Date.now();
    hls.setLive(FLAPPY, false);
    const d = await until(`${FLAPPY} to report offline`, 10_000, async () => {
      const x = await detail(FLAPPY);
      // history/counts are the main thread's (batched); schedule is the actor's, live.
      return x.history.some((r) => r.status === 'offline' && r.at >= wentOffline) && x.schedule?.state === 'offline' ? x : undefined;
    }, () => detail(FLAPPY));
    expect(d.counts.offline).toBeGreaterThanOrEqual(1);
    expect(d.schedule!.offlineChecks).toBeGreaterThanOrEqual(1);
    // Offline is an answer, not a fault: no error was recorded for it.
    expect(d.history.filter((r) => r.at >= wentOffline && r.status === 'error')).toEqual([]);
    await capClient.waitFor((m) => m.type === 'capture_result' && (m.data as unknown as CaptureRecord).stream === FLAPPY && (m.data as unknown as CaptureRecord).status === 'offline', 3_000, 'the offline result on /ws');
    // Back live now; the scheduler re-checks offline channels on its own (slow) cadence, so
    // the check that it returns to ok is the last test of this file, after the others ran.
    hls.setLive(FLAPPY, true);
    backLiveAt = Date.now();
  });

  it('serves a thumbnail of the latest frame, resized, and refuses bad file names', async () => {
    const r = await fetch(`${base()}/api/frames/${HEROES}/latest.jpg?width=160`);
    expect(r.status, r.status === 200 ? '' : await r.text()).toBe(200);
    expect(r.headers.get('content-type')).toBe('image/jpeg');
    const meta = await sharp(Buffer.from(await r.arrayBuffer())).metadata();
    expect(meta.format).toBe('jpeg');
    expect(meta.width).toBe(160);
    expect(meta.height).toBe(90);
    for (const bad of ['latest.png', 'thumb.jpg', 'latest', '12x.jpg', '..%2Fetc.jpg']) {
      await expectError(await fetch(`${base()}/api/frames/${HEROES}/${bad}`), 400, /frame file must be "latest\.jpg" or "<frame>\.jpg"/, bad);
    }
    for (const [q, msg] of [['width=abc', /width must be an integer 16-3840/], ['width=8', /width must be/], ['quality=0', /quality must be an integer 1-100/], ['quality=50.5', /quality must be/]] as const) {
      await expectError(await fetch(`${base()}/api/frames/${HEROES}/latest.jpg?${q}`), 400, msg, q);
    }
    await expectError(await fetch(`${base()}/api/frames/nobody_here/latest.jpg`), 404, /stream "nobody_here" is not registered/);
  });

  it('sends capture_result to overlays subscribed to "capture" only', async () => {
    expect(captureMsgs(capClient, HEROES).length).toBeGreaterThanOrEqual(1);
    // The "all" client has been connected just as long (and is live: it got its handshake),
    // yet "all" means the default channels, and capture is opt-in.
    const before = captureMsgs(capClient).length;
    await capClient.waitFor(() => captureMsgs(capClient).length >= before + 2, 6_000, 'two more capture results');
    expect(allClient.messages.some((m) => m.type === 'connection_established')).toBe(true);
    expect(captureMsgs(allClient)).toEqual([]);
    const sample = captureMsgs(capClient, HEROES).at(-1)!.data as unknown as CaptureRecord;
    expect(sample).toMatchObject({ stream: HEROES });
    expect(['ok', 'offline', 'error']).toContain(sample.status);
  });

  it('exposes capture metrics on /metrics', async () => {
    const text = await (await fetch(`${base()}/metrics`)).text();
    const value = (re: RegExp) => {
      const m = re.exec(text);
      return m ? Number(m[1]) : NaN;
    };
    expect(value(/^ringcast_capture_captures_total\{[^}]*status="ok"[^}]*\} (\d+(?:\.\d+)?)$/m)).toBeGreaterThanOrEqual(2);
    expect(value(/^ringcast_capture_captures_total\{[^}]*status="offline"[^}]*\} (\d+(?:\.\d+)?)$/m)).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/^ringcast_capture_missed_total(\{[^}]*\})? \d+/m);
    expect(text).toMatch(/^ringcast_capture_latency_seconds_bucket\{/m);
    expect(value(/^ringcast_capture_streams\{[^}]*state="idle"[^}]*\} (\d+)/m) + value(/^ringcast_capture_streams\{[^}]*state="offline"[^}]*\} (\d+)/m)).toBeGreaterThanOrEqual(1);
    expect(value(/^ringcast_capture_bytes_fetched_total(?:\{[^}]*\})? (\d+(?:\.\d+)?(?:e\+\d+)?)$/m)).toBeGreaterThan(0);
    expect(text).toMatch(/^ringcast_capture_decoder_events_total\{[^}]*event="decoded"[^}]*\} [1-9]/m);
  });
});

describe('REST validation', () => {
  it('writes need the admin token', async () => {
    await expectError(await call('POST', '/api/streams', { username: 'token_less' }, null), 401, /./);
    await expectError(await call('POST', '/api/streams', { username: 'token_less' }, 'wrong-token'), 401, /./);
    await expectError(await call('POST', '/api/streams/bulk', { streams: ['token_less'] }, null), 401, /./);
    await expectError(await call('DELETE', `/api/streams/${HEROES}`, undefined, null), 401, /./);
    await expectError(await call('PUT', `/api/streams/${HEROES}/priority`, { priority: 1 }, null), 401, /./);
    await expectError(await call('PUT', '/api/config', { capture_interval: 5 }, null), 401, /./);
    await expectError(await call('POST', '/api/restart', undefined, null), 401, /./);
    // Nothing changed behind the refusals.
    const list = (await (await fetch(`${base()}/api/streams`)).json()) as { streams: Array<{ name: string; priority: number }> };
    expect(list.streams.map((s) => s.name)).not.toContain('token_less');
    expect(list.streams.find((s) => s.name === HEROES)?.priority).toBe(50);
  });

  it('POST /api/streams says what is wrong with the body', async () => {
    await expectError(await call('POST', '/api/streams', ''), 400, /body is empty/);
    await expectError(await call('POST', '/api/streams', '{nope'), 400, /not valid JSON/);
    await expectError(await call('POST', '/api/streams', '["a_channel"]'), 400, /must be a JSON object/);
    await expectError(await call('POST', '/api/streams', 'null'), 400, /must be a JSON object/);
    await expectError(await call('POST', '/api/streams', {}), 400, /missing "username"/);
    await expectError(await call('POST', '/api/streams', { username: 42 }), 400, /must be a string, got number/);
    await expectError(await call('POST', '/api/streams', { username: 'ab' }), 400, /"ab" is not a valid Twitch channel name/);
    await expectError(await call('POST', '/api/streams', { username: 'bad name!' }), 400, /not a valid Twitch channel name/);
    await expectError(await call('POST', '/api/streams', { username: 'http://x.test/a.mp4' }), 400, /must point at an HLS playlist/);
    await expectError(await call('POST', '/api/streams', { username: 'prio_chan', priority: 101 }), 400, /priority must be between 0 and 100, got 101/);
    await expectError(await call('POST', '/api/streams', { username: 'prio_chan', priority: -1 }), 400, /between 0 and 100/);
    await expectError(await call('POST', '/api/streams', { username: 'prio_chan', priority: '50' }), 400, /priority must be an integer 0-100, got "50"/);
    await expectError(await call('POST', '/api/streams', { username: 'prio_chan', priority: 2.5 }), 400, /integer/);
    await expectError(await call('POST', '/api/streams', { username: HEROES.toUpperCase() }), 409, new RegExp(`stream "${HEROES}" is already registered`));
    expect((await (await fetch(`${base()}/api/streams/prio_chan`)).status)).toBe(404);
  });

  it('bulk add reports each item and refuses a body of the wrong shape', async () => {
    await expectError(await call('POST', '/api/streams/bulk', ''), 400, /body is empty/);
    await expectError(await call('POST', '/api/streams/bulk', '[]'), 400, /must be a JSON object/);
    await expectError(await call('POST', '/api/streams/bulk', {}), 400, /"streams" must be an array/);
    await expectError(await call('POST', '/api/streams/bulk', { streams: 'one_two' }), 400, /"streams" must be an array/);
    const r = await call('POST', '/api/streams/bulk', { streams: ['bulk_one', 'xy', { priority: 5 }, { username: 'bulk_two', priority: 500 }, 'BULK_ONE', HEROES, 7] });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { added: number; duplicate: number; invalid: number; results: Array<{ status: string; reason?: string }> };
    expect(body).toMatchObject({ added: 1, duplicate: 2, invalid: 4 });
    expect(body.results.map((x) => x.status)).toEqual(['added', 'invalid', 'invalid', 'invalid', 'duplicate', 'duplicate', 'invalid']);
    expect(body.results[1].reason).toMatch(/"xy" is not a valid Twitch channel name/);
    expect(body.results[2].reason).toMatch(/missing username/);
    expect(body.results[3].reason).toMatch(/priority must be between 0 and 100, got 500/);
    expect(body.results[6].reason).toMatch(/must be a string, got number/);
    expect((await call('DELETE', '/api/streams/bulk_one')).status).toBe(200);
  });

  it('priority, delete and lookups of unknown streams are 404; bad priorities are 400', async () => {
    await expectError(await call('PUT', '/api/streams/never_added/priority', { priority: 10 }), 404, /stream "never_added" is not registered/);
    await expectError(await call('DELETE', '/api/streams/never_added'), 404, /stream "never_added" is not registered/);
    await expectError(await fetch(`${base()}/api/streams/never_added`), 404, /stream "never_added" is not registered/);
    await expectError(await call('PUT', `/api/streams/${HEROES}/priority`, ''), 400, /body is empty/);
    await expectError(await call('PUT', `/api/streams/${HEROES}/priority`, '[1]'), 400, /must be a JSON object/);
    await expectError(await call('PUT', `/api/streams/${HEROES}/priority`, {}), 400, /missing priority/);
    await expectError(await call('PUT', `/api/streams/${HEROES}/priority`, { priority: 'high' }), 400, /priority must be an integer 0-100, got "high"/);
    await expectError(await call('PUT', `/api/streams/${HEROES}/priority`, { priority: 1000 }), 400, /between 0 and 100/);
    await expectError(await call('PUT', `/api/streams/${HEROES}/priority`, { priority: null }), 400, /priority must be an integer/);
    expect((await detail(HEROES)).stream.priority).toBe(50);
  });

  it('PUT /api/config names unknown keys and bad values, and changes nothing then', async () => {
    const before = await (await fetch(`${base()}/api/config`)).json();
    expect(before).toMatchObject({ capture_interval: 1 });
    await expectError(await call('PUT', '/api/config', ''), 400, /body is empty/);
    await expectError(await call('PUT', '/api/config', '{"capture_interval":'), 400, /not valid JSON/);
    await expectError(await call('PUT', '/api/config', '[]'), 400, /must be a JSON object/);
    await expectError(await call('PUT', '/api/config', { capture_intervall: 2 }), 400, /unknown config key\(s\): capture_intervall/);
    await expectError(await call('PUT', '/api/config', { capture_interval: 0 }), 400, /capture_interval: /);
    await expectError(await call('PUT', '/api/config', { capture_interval: 1.5 }), 400, /capture_interval: .*integer/i);
    await expectError(await call('PUT', '/api/config', { max_concurrent: 'many' }), 400, /max_concurrent: .*number/i);
    await expectError(await call('PUT', '/api/config', { max_concurrent: 100_000 }), 400, /max_concurrent: /);
    await expectError(await call('PUT', '/api/config', { quality: '999p' }), 400, /quality: .*best/);
    // A patch with one good and one bad key is refused whole.
    await expectError(await call('PUT', '/api/config', { capture_interval: 2, quality: 'ultra' }), 400, /quality/);
    expect(await (await fetch(`${base()}/api/config`)).json()).toEqual(before);
  });

  it('PUT /api/config takes effect in the running capture at once', async () => {
    const put = await call('PUT', '/api/config', { capture_interval: 4, max_concurrent: 3 });
    expect(put.status, await put.clone().text()).toBe(200);
    try {
      const d = await until('the new interval in the live schedule', 5_000, async () => {
        const x = await detail(HEROES);
        return x.schedule?.intervalMs === 4000 ? x : undefined;
      }, () => detail(HEROES));
      expect(d.schedule!.intervalMs).toBe(4000);
      const status = (await (await fetch(`${base()}/api/status`)).json()) as { capture: { maxConcurrent: number } };
      expect(status.capture.maxConcurrent).toBe(3);
    } finally {
      const back = await call('PUT', '/api/config', { capture_interval: 1, max_concurrent: 32 });
      expect(back.status).toBe(200);
    }
  });
});

describe('offline channel returning', () => {
  it('goes back to ok on its own once the channel is live again', async () => {
    expect(backLiveAt, 'the offline test ran first').toBeGreaterThan(0);
    // The scheduler re-checks an offline channel every offlineRecheckMs (--offline-recheck-ms
    // 2000 here, ±10 %); the time the tests above took counts towards it.
    const left = backLiveAt + 12_000 - Date.now();
    // history is the main thread's record (results arrive in batches), so wait on it rather
    // than on `latest`, which comes straight from the actor and may be ahead of it.
    const d = await until(`${FLAPPY} to capture ok again`, Math.max(left, 1_000), async () => {
      const x = await detail(FLAPPY);
      return x.history.some((r) => r.status === 'ok' && r.at > backLiveAt) ? x : undefined;
    }, () => detail(FLAPPY));
    expect(d.schedule?.state).not.toBe('offline');
    const statuses = d.history.map((r) => r.status);
    // ok before, offline in between, ok after: in that order.
    const firstOffline = statuses.indexOf('offline');
    expect(statuses.slice(0, firstOffline)).toContain('ok');
    expect(statuses.slice(firstOffline)).toContain('ok');
    expect(d.history.find((r) => r.status === 'ok' && r.at > backLiveAt)!.frame).toBeGreaterThan(0);
  }, 20_000);
});
