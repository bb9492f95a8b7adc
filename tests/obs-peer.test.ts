/**
 * The obs-websocket v5 test peer against the real client (obs-websocket-js, both
 * encodings), and the OBS actor's connection pieces (backoff, breaker, ObsConnection,
 * Director) against the peer, without the service around them.
 */
import { createHash } from 'node:crypto';
import pino from 'pino';
import { Registry } from 'prom-client';
import OBSWebSocketMsgpack, { OBSWebSocketError } from 'obs-websocket-js';
import OBSWebSocketJson from 'obs-websocket-js/json';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { backoffDelay } from '../src/actors/obs/backoff.js';
import { CircuitBreaker, type BreakerState } from '../src/actors/obs/breaker.js';
import { ObsConnection, redactUrl } from '../src/actors/obs/connection.js';
import { Director, MAX_PENDING_CELEBRATIONS, type ObsRequester } from '../src/actors/obs/director.js';
import { createObsMetrics } from '../src/actors/obs/metrics.js';
import { NO_DATA_TEXT, PerformanceTracker } from '../src/actors/obs/performance.js';
import { ObsWebSocketPeer, OBS_JSON, OBS_MSGPACK } from './helpers/obs-websocket-server.js';

const PASSWORD = 'correct horse battery staple';
const SCENES = { overview: 'Overview', board_focus: 'Board Focus', metrics_focus: 'Metrics Focus', prediction: 'Prediction', milestone: 'Milestone' };
const silent = pino({ level: 'silent' });
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function peer(options: Parameters<typeof ObsWebSocketPeer.start>[0] = { password: PASSWORD }): Promise<ObsWebSocketPeer> {
  const p = await ObsWebSocketPeer.start(options);
  cleanups.push(() => p.stop());
  return p;
}

async function until(probe: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('obs-websocket v5 test peer with obs-websocket-js', () => {
  for (const [name, Client, protocol] of [['json', OBSWebSocketJson, OBS_JSON], ['msgpack (Node default)', OBSWebSocketMsgpack, OBS_MSGPACK]] as const) {
    it(`${name}: Hello/Identify with a password, requests, events`, async () => {
      const p = await peer();
      const obs = new Client();
      cleanups.push(() => obs.disconnect());
      const hello = await obs.connect(p.url, PASSWORD);
      expect(hello.negotiatedRpcVersion).toBe(1);
      expect(hello.obsWebSocketVersion).toBe('5.5.2');
      expect(p.identifiedCount).toBe(1);

      const version = await obs.call('GetVersion');
      expect(version.rpcVersion).toBe(1);
      const list = await obs.call('GetSceneList');
      expect(list.scenes.map((s) => s.sceneName).sort()).toEqual(Object.values(SCENES).sort());

      const changed = new Promise<string>((resolve) => obs.once('CurrentProgramSceneChanged', (e) => resolve(e.sceneName)));
      await obs.call('SetCurrentProgramScene', { sceneName: 'Board Focus' });
      expect(await changed).toBe('Board Focus');
      expect((await obs.call('GetCurrentProgramScene')).currentProgramSceneName).toBe('Board Focus');

      await obs.call('SetInputSettings', { inputName: 'ringcast-milestone', inputSettings: { text: 'hi', color: 1 } });
      await obs.call('SetInputSettings', { inputName: 'ringcast-milestone', inputSettings: { text: 'there' }, overlay: true });
      expect(p.inputSettings.get('ringcast-milestone')).toEqual({ text: 'there', color: 1 });
      await obs.call('TriggerHotkeyByName', { hotkeyName: 'OBSBasic.StartStreaming' });

      await expect(obs.call('SetCurrentProgramScene', { sceneName: 'Nope' })).rejects.toMatchObject({ code: 600 });
      await expect(obs.call('SetInputSettings', { inputName: 'nope', inputSettings: {} })).rejects.toMatchObject({ code: 600 });
      await expect(obs.call('SetCurrentProgramScene', {} as never)).rejects.toMatchObject({ code: 300 });
      await expect(obs.call('GetStats' as never)).rejects.toMatchObject({ code: 204 });
      expect(p.requests.every((r) => r.protocol === protocol)).toBe(true);
      expect(p.requests.map((r) => r.requestType)).toEqual([
        'GetVersion', 'GetSceneList', 'SetCurrentProgramScene', 'GetCurrentProgramScene', 'SetInputSettings', 'SetInputSettings',
        'TriggerHotkeyByName', 'SetCurrentProgramScene', 'SetInputSettings', 'SetCurrentProgramScene', 'GetStats',
      ]);
    });
  }

  it('the authentication string is base64(sha256(base64(sha256(password + salt)) + challenge))', async () => {
    const p = await peer();
    const ws = new WebSocket(p.url, [OBS_JSON]);
    cleanups.push(() => ws.terminate());
    const messages: Array<{ op: number; d: Record<string, unknown> }> = [];
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    ws.on('message', (m) => messages.push(JSON.parse(String(m))));
    await until(() => messages.length === 1, 2_000, 'Hello');
    expect(ws.protocol).toBe(OBS_JSON);
    const { challenge, salt } = messages[0]!.d.authentication as { challenge: string; salt: string };
    const b64 = (s: string) => createHash('sha256').update(s).digest('base64');
    ws.send(JSON.stringify({ op: 1, d: { rpcVersion: 1, authentication: b64(b64(PASSWORD + salt) + challenge) } }));
    await until(() => messages.length === 2, 2_000, 'Identified');
    expect(messages[1]).toEqual({ op: 2, d: { negotiatedRpcVersion: 1 } });
    ws.send(JSON.stringify({ op: 1, d: { rpcVersion: 1 } }));
    expect(await closed).toBe(4008); // already identified
  });

  it('a bad password is closed with 4009; a request before Identify with 4007', async () => {
    const p = await peer();
    const obs = new OBSWebSocketJson();
    const error = await obs.connect(p.url, 'wrong password').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OBSWebSocketError);
    expect((error as OBSWebSocketError).code).toBe(4009);
    expect(p.closes).toEqual([4009]);

    const ws = new WebSocket(p.url, [OBS_JSON]);
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    ws.on('open', () => ws.send(JSON.stringify({ op: 6, d: { requestType: 'GetVersion', requestId: '1' } })));
    expect(await closed).toBe(4007);
  });

  it('no subprotocol offered → JSON; stop and restart on the same port', async () => {
    const p = await peer({});
    const port = p.port;
    const ws = new WebSocket(p.url);
    const hello = await new Promise<string>((resolve) => ws.once('message', (m) => resolve(String(m))));
    expect(JSON.parse(hello).op).toBe(0);
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    await p.stop();
    expect(await closed).toBe(1001);
    await p.restart();
    expect(p.port).toBe(port);
    const obs = new OBSWebSocketMsgpack();
    cleanups.push(() => obs.disconnect());
    await obs.connect(p.url);
    expect(p.identifiedCount).toBe(1);
  });
});

describe('backoff and circuit breaker', () => {
  it('backoff grows exponentially with jitter inside [ceiling/2, ceiling], capped', () => {
    const opts = { initialMs: 200, maxMs: 5_000 };
    expect(backoffDelay(0, { ...opts, random: () => 0 })).toBe(100);
    expect(backoffDelay(0, { ...opts, random: () => 1 })).toBe(200);
    expect(backoffDelay(3, { ...opts, random: () => 1 })).toBe(1600);
    expect(backoffDelay(50, { ...opts, random: () => 0 })).toBe(2500);
    expect(backoffDelay(50, { ...opts, random: () => 1 })).toBe(5000);
  });

  it('closed → open after N failures → half-open after the cool-down → one trial → closed or open', () => {
    let now = 0;
    const changes: BreakerState[] = [];
    const b = new CircuitBreaker({ failureThreshold: 3, openMs: 1_000, now: () => now, onChange: (s) => changes.push(s) });
    b.failure(); b.failure();
    expect(b.state).toBe('closed');
    b.success(); b.failure(); b.failure();
    expect(b.state).toBe('closed'); // success resets the count
    b.failure();
    expect(b.state).toBe('open');
    expect(b.tryAcquire()).toBe(false);
    now = 400;
    expect(b.remainingOpenMs()).toBe(600);
    now = 1_000;
    expect(b.state).toBe('half-open');
    expect(b.tryAcquire()).toBe(true);
    expect(b.tryAcquire()).toBe(false); // one trial at a time
    b.failure();
    expect(b.state).toBe('open');
    now = 2_000;
    expect(b.tryAcquire()).toBe(true);
    b.success();
    expect(b.state).toBe('closed');
    expect(changes).toEqual(['open', 'half-open', 'open', 'half-open', 'closed']);
  });
});

describe('performance text', () => {
  it('shows only figures it has seen', () => {
    const t = new PerformanceTracker(0);
    expect(t.text(1_000)).toBe(NO_DATA_TEXT);
    for (let i = 0; i < 20; i++) t.countMessage();
    t.observe('ppo_metrics', { step: 12345, health: { status: 'healthy' } });
    expect(t.text(3_000)).toBe('step 12,345 · healthy · 10.0 msg/s');
    t.observe('game_state', { games_finished: 42 });
    t.observe('ppo_metrics', { step: 'bad', health: null });
    for (let i = 0; i < 5; i++) t.countMessage();
    expect(t.text(4_000)).toBe('step 12,345 · healthy · 5.0 msg/s · games 42');
  });
});

describe('ObsConnection and Director against the peer', () => {
  const fast = { backoffInitialMs: 50, backoffMaxMs: 200, breakerFailures: 3, breakerOpenMs: 300, requestTimeoutMs: 500, connectTimeoutMs: 1_000 };

  function connect(url: string, password: string | undefined, tuning: Partial<typeof fast> = fast) {
    const registry = new Registry();
    const metrics = createObsMetrics(registry);
    let director!: Director;
    const conn = new ObsConnection({
      url, password, log: silent, metrics, tuning,
      onIdentified: () => director.restore(),
      onProgramScene: (name) => director.onProgramScene(name),
    });
    director = new Director({ scenes: SCENES, milestoneTextInput: 'ringcast-milestone', celebrationSeconds: 1, obs: conn, log: silent, metrics });
    cleanups.push(async () => { director.stop(); await conn.stop(); });
    return { conn, director, registry };
  }

  it('redacts credentials from the URL it shows', () => {
    expect(redactUrl('ws://user:secret@127.0.0.1:4455')).not.toContain('secret');
    expect(redactUrl('ws://127.0.0.1:4455')).toBe('ws://127.0.0.1:4455');
  });

  it('start() does not wait for OBS; requests fail fast with "OBS not connected"; the breaker opens', async () => {
    const { conn, director, registry } = connect('ws://127.0.0.1:1', undefined);
    const t0 = Date.now();
    conn.start();
    // start() returns before any connect attempt settles (a GC pause on a loaded box is not a wait).
    expect(Date.now() - t0).toBeLessThan(200);
    await expect(conn.request('GetVersion')).rejects.toThrow('OBS not connected');
    await expect(director.setScene('board_focus')).rejects.toThrow('OBS not connected');
    await expect(director.setScene('dance_floor')).rejects.toThrow('unknown scene preset "dance_floor"; presets: overview, board_focus, metrics_focus, prediction, milestone');
    await until(() => conn.status().breaker === 'open', 3_000, 'breaker open');
    expect(conn.status().lastError).toMatch(/ECONNREFUSED/);
    const text = await registry.metrics();
    expect(text).toMatch(/ringcast_obs_connects_total\{outcome="refused"\} [3-9]/);
    expect(text).toContain('ringcast_obs_breaker_state 2');
  });

  it('a hung OBS: requests time out, the breaker opens and fails the next ones at once', async () => {
    const p = await peer({});
    const { conn, director } = connect(p.url, undefined);
    conn.start();
    // The director reads the program scene on connect: that request must be answered
    // before OBS hangs, or its timeout is one more failure towards the breaker.
    await until(() => conn.connected && director.programScene !== null, 3_000, 'connected');
    p.hang = true;
    for (let i = 0; i < 3; i++) await expect(conn.request('GetVersion')).rejects.toThrow('did not answer GetVersion within 500 ms');
    expect(conn.status().breaker).toBe('open');
    const t0 = Date.now();
    await expect(conn.request('GetVersion')).rejects.toThrow('circuit open');
    expect(Date.now() - t0).toBeLessThan(250); // at once, not after the 500 ms request timeout
    p.hang = false;
    await new Promise((r) => setTimeout(r, 350));
    await expect(conn.request('GetVersion')).resolves.toMatchObject({ rpcVersion: 1 }); // the half-open trial
    expect(conn.status().breaker).toBe('closed');
  });

  it('the queue is bounded: a full queue drops the oldest non-essential request first', async () => {
    const p = await peer({});
    const { conn, registry, director } = connect(p.url, undefined, { ...fast, requestTimeoutMs: 2_000 });
    conn.start();
    await until(() => conn.connected && director.programScene !== null, 3_000, 'connected');
    p.hang = true;
    const results: Array<Promise<string>> = [];
    const track = (pr: Promise<unknown>) => results.push(pr.then(() => 'ok', (e: Error) => e.message));
    track(conn.request('GetVersion')); // in flight, hangs
    track(conn.request('SetInputSettings', { inputName: 'a', inputSettings: { text: 'perf' } }, { essential: false }));
    for (let i = 0; i < 31; i++) track(conn.request('SetCurrentProgramScene', { sceneName: 'Overview' }));
    expect(conn.status().queued).toBe(32);
    track(conn.request('SetCurrentProgramScene', { sceneName: 'Milestone' })); // pushes the non-essential one out
    track(conn.request('SetInputSettings', { inputName: 'a', inputSettings: { text: 'perf 2' } }, { essential: false })); // refused: queue full
    track(conn.request('SetCurrentProgramScene', { sceneName: 'Milestone' })); // refused: nothing non-essential left
    const settled = await Promise.all(results.slice(1, 2).concat(results.slice(-2)));
    expect(settled).toEqual(['dropped: OBS request queue full', 'OBS request queue full (32 waiting)', 'OBS request queue full (32 waiting)']);
    // The matched line (not the whole exposition) so a failure shows the count it found.
    const text = await registry.metrics();
    expect(text.match(/^ringcast_obs_dropped_requests_total\{[^}]*\} .*$/gm)).toContain('ringcast_obs_dropped_requests_total{reason="queue_full"} 3');
    await p.stop(); // the rest fail with the connection, nothing hangs
    const all = await Promise.all(results);
    expect(all.filter((r) => r === 'ok')).toEqual([]);
  });

  it('celebration: text, milestone scene, back after celebrationSeconds; duplicates ignored', async () => {
    const p = await peer({ password: PASSWORD });
    const { conn, director } = connect(p.url, PASSWORD);
    conn.start();
    await until(() => conn.connected && director.programScene !== null, 3_000, 'connected');
    await director.setScene('metrics_focus');
    p.clearRequests();
    expect(director.celebrate({ id: 'm1', name: 'kl_settled', message: 'KL settled!' })).toEqual({ queued: true, position: 1 });
    expect(director.celebrate({ id: 'm1', name: 'kl_settled', message: 'KL settled!' })).toEqual({ queued: false, reason: 'duplicate' });
    expect(() => director.celebrate({ name: '' })).toThrow('"name" must be a non-empty string');
    await p.waitFor(() => p.requestsOf('SetCurrentProgramScene').length === 2, 3_000, 'return to the previous scene');
    expect(p.actions()).toEqual([
      { requestType: 'SetInputSettings', requestData: { inputName: 'ringcast-milestone', inputSettings: { text: 'KL settled!' }, overlay: true } },
      { requestType: 'SetCurrentProgramScene', requestData: { sceneName: 'Milestone' } },
      { requestType: 'SetCurrentProgramScene', requestData: { sceneName: 'Metrics Focus' } },
    ]);
    const [, shownAt, backAt] = p.requests.map((r) => r.at);
    expect(backAt! - shownAt!).toBeGreaterThanOrEqual(950);
    expect(backAt! - shownAt!).toBeLessThan(2_500);
    // The peer has the request; the director finishes once OBS's response is back.
    await until(() => director.status().active === null, 2_000, 'the celebration to finish');
    expect(director.status()).toMatchObject({ active: null, pending: 0, shown: 1 });
  });

  it('the celebration queue is bounded (oldest waiting one dropped) and remembers ids', async () => {
    const sent: string[] = [];
    const fake: ObsRequester = { connected: true, request: async (type, data) => { sent.push(`${type} ${JSON.stringify(data)}`); return {}; } };
    const metrics = createObsMetrics(new Registry());
    const d = new Director({ scenes: SCENES, milestoneTextInput: 't', celebrationSeconds: 60, obs: fake, log: silent, metrics });
    cleanups.push(() => d.stop());
    for (let i = 0; i < MAX_PENDING_CELEBRATIONS + 2; i++) d.celebrate({ id: `m${i}`, name: `n${i}`, message: `msg ${i}` });
    await new Promise((r) => setTimeout(r, 20));
    expect(d.status()).toMatchObject({ active: { id: 'm0' }, pending: MAX_PENDING_CELEBRATIONS, dropped: 1, shown: 1 });
    expect(d.celebrate({ id: 'm5', name: 'again' })).toEqual({ queued: false, reason: 'duplicate' });
    expect(sent).toEqual(['SetInputSettings {"inputName":"t","inputSettings":{"text":"msg 0"},"overlay":true}', 'SetCurrentProgramScene {"sceneName":"Milestone"}']);
    expect(() => d.celebrate({ name: 'x', message: 42 })).toThrow('"message" must be a string');
  });
});
