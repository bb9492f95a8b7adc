/**
 * Named destinations (twitch, youtube, x): URL presets with the stream key from the
 * environment, never shown anywhere; several at once from one encode, where one destination
 * dropping does not stop the others and is reconnected. Uses real RTMP servers on loopback
 * (tests/helpers/rtmp-server.ts) standing in for the services via RINGCAST_OUTPUT_URL_<NAME>.
 * Needs `npx tsc -p .` first.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DESTINATION_PRESETS, redactor, resolveDestinations } from '../src/actors/encoder/destinations.js';
import { encoderPreflight } from '../src/actors/encoder/preflight.js';
import { classifyOutput } from '../src/actors/encoder/options.js';
import { ConfigError, loadConfig } from '../src/shared/config.js';
import { ffprobe, ffprobeRtmp, startRtmpServer, type RtmpServer } from './helpers/rtmp-server.js';
import { startFedEncoder, type EncoderUnderTest } from './helpers/encoder-actor.js';
import { cleanupMainProcesses, listeningPort, runMain, tempDir } from './helpers/main-process.js';

const dir = mkdtempSync(join(tmpdir(), 'ringcast-dest-'));
const servers: RtmpServer[] = [];
let enc: EncoderUnderTest | undefined;
afterEach(async () => {
  await enc?.stop();
  enc = undefined;
  for (const s of servers.splice(0)) await s.close();
  cleanupMainProcesses();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}
const baseOf = (s: RtmpServer) => s.url('').replace(/\/$/, '');

describe('destinations: presets and keys', () => {
  it('resolves twitch, youtube and x with keys from RINGCAST_STREAM_KEY_<NAME>; the base URL can be overridden', () => {
    const env = { RINGCAST_STREAM_KEY_TWITCH: 'live_123_abc', RINGCAST_STREAM_KEY_YOUTUBE: 'abcd-efgh-ijkl', RINGCAST_STREAM_KEY_X: 'xkey0001', RINGCAST_OUTPUT_URL_X: 'rtmps://eu.x.example:443/x/' };
    const d = resolveDestinations(['twitch', 'YouTube', 'x', 'show.mp4', 'rtmp://h/app/k'], env);
    expect(d).toEqual({
      twitch: { url: 'rtmp://live.twitch.tv/app/live_123_abc', key: 'live_123_abc' },
      youtube: { url: 'rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl', key: 'abcd-efgh-ijkl' },
      x: { url: 'rtmps://eu.x.example:443/x/xkey0001', key: 'xkey0001' },
    });
    expect(DESTINATION_PRESETS.twitch.url).toBe('rtmp://live.twitch.tv/app');
    expect(DESTINATION_PRESETS.youtube.url).toBe('rtmp://a.rtmp.youtube.com/live2');
    const shown = classifyOutput('twitch', 2, d);
    expect(shown).toMatchObject({ kind: 'rtmp', target: 'rtmp://live.twitch.tv/app/live_123_abc', shown: 'twitch (rtmp://live.twitch.tv/app/<key>)' });
    expect(() => resolveDestinations(['twitch'], {})).toThrow(/RINGCAST_STREAM_KEY_TWITCH/);
    expect(() => resolveDestinations(['x'], { RINGCAST_STREAM_KEY_X: 'a/b?c' })).toThrow(/RINGCAST_STREAM_KEY_X holds characters/);
    expect(() => resolveDestinations(['x'], { RINGCAST_STREAM_KEY_X: 'abcd', RINGCAST_OUTPUT_URL_X: 'http://x' })).toThrow(/RINGCAST_OUTPUT_URL_X must be an rtmp/);
    const redact = redactor(['live_123_abc']);
    expect(redact('rtmp://live.twitch.tv/app/live_123_abc: Broken pipe')).toBe('rtmp://live.twitch.tv/app/<redacted>: Broken pipe');
  });

  it('preflight: a missing key or audio file is a ConfigError naming the variable or path', () => {
    const withTwitch = loadConfig(['--output', 'twitch'], {});
    expect(() => encoderPreflight(withTwitch, {})).toThrow(ConfigError);
    expect(() => encoderPreflight(withTwitch, {})).toThrow(/compose\.outputs: output "twitch" needs its stream key in the environment variable RINGCAST_STREAM_KEY_TWITCH/);
    const missing = join(dir, 'nope.mp3');
    expect(() => encoderPreflight(loadConfig(['--output', 'a.mp4', '--audio', missing], {}), {})).toThrow(`compose.audio: audio file "${missing}" does not exist`);
    // No output: nothing to check (the encoder does not run).
    expect(encoderPreflight(loadConfig(['--audio', missing], {}), {})).toEqual({ destinations: {} });
  });

  it('the entry point exits 2 naming the env var for a missing key, and the path for a missing audio file', async () => {
    const dataDir = tempDir();
    const env = { RINGCAST_STREAM_KEY_YOUTUBE: '' };
    const a = runMain(['--no-demo', '--no-capture', '--port', '0', '--data-dir', dataDir, '--output', 'youtube'], env);
    expect((await a.exited).code).toBe(2);
    expect(a.out.join('')).toContain('RINGCAST_STREAM_KEY_YOUTUBE');
    const missing = join(dir, 'missing-loop.mp3');
    const b = runMain(['--no-demo', '--no-capture', '--port', '0', '--data-dir', dataDir, '--output', join(dir, 'x.mp4'), '--audio', missing]);
    expect((await b.exited).code).toBe(2);
    expect(b.out.join('')).toContain(missing);
  });
});

describe('destinations: several at once from one encode', () => {
  it('one destination dropping does not stop the other; it is reconnected when its server is back', async () => {
    const a = await startRtmpServer();
    const b = await startRtmpServer();
    servers.push(a, b);
    const destinations = resolveDestinations(['twitch', 'youtube'], {
      RINGCAST_STREAM_KEY_TWITCH: 'tw_key_1', RINGCAST_OUTPUT_URL_TWITCH: baseOf(a),
      RINGCAST_STREAM_KEY_YOUTUBE: 'yt_key_2', RINGCAST_OUTPUT_URL_YOUTUBE: baseOf(b),
    });
    const file = join(dir, 'beside.mkv');
    enc = await startFedEncoder({ outputs: ['twitch', 'youtube', file], destinations });
    await waitFor('both destinations live', async () => ((await ffprobeRtmp(a.url('tw_key_1'))).streams.length > 0 && (await ffprobeRtmp(b.url('yt_key_2'))).streams.length > 0 ? true : undefined), 20_000);
    const before = await enc.stats();
    expect(before.outputs).toEqual([
      { kind: 'rtmp', target: `twitch (${baseOf(a)}/<key>)` },
      { kind: 'rtmp', target: `youtube (${baseOf(b)}/<key>)` },
      { kind: 'file', target: file },
    ]);

    await a.kill();
    const dropped = await waitFor('the drop to be noticed', async () => {
      const s = await enc!.stats();
      return (s.destinationDrops.twitch ?? 0) >= 1 ? s : undefined;
    }, 10_000);
    expect(dropped.destinationDrops.youtube).toBeUndefined();
    // YouTube keeps receiving while Twitch is down (through the reconnect tries, which restart ffmpeg briefly).
    for (let i = 0; i < 3; i++) {
      const probe = await waitFor('youtube still live', async () => ((await ffprobeRtmp(b.url('yt_key_2'))).streams.some((s) => s.codec_name === 'h264') ? true : undefined), 10_000);
      expect(probe).toBe(true);
      await sleep(1_000);
    }
    await a.start();
    await waitFor('twitch reconnected', async () => ((await ffprobeRtmp(a.url('tw_key_1'))).streams.some((s) => s.codec_name === 'h264') ? true : undefined), 25_000);
    expect(await enc.supervisor.metrics()).toMatch(/ringcast_encoder_destination_drops_total\{output="twitch",actor="encoder"\} [1-9]/);
    await enc.stop();
    enc = undefined;
    // The recording beside them: the part before the first restart is a readable file.
    expect((await ffprobe(file)).streams.some((s) => s.codec_name === 'h264')).toBe(true);
  }, 90_000);

  it('the stream key appears in no log line, error, status, config or metrics of the running service', async () => {
    const server = await startRtmpServer();
    servers.push(server);
    const key = 'sk_SECRET_4f9a2c7e';
    const dataDir = tempDir();
    const run = runMain([
      '--no-demo', '--no-capture', '--port', '0', '--data-dir', dataDir, '--log-level', 'debug',
      '--output', 'twitch', '--output', join(dataDir, 'show.mp4'),
      '--compose-width', '320', '--compose-height', '180', '--x264-preset', 'ultrafast', '--admin-token', 'admin-token-123',
    ], { RINGCAST_STREAM_KEY_TWITCH: key, RINGCAST_OUTPUT_URL_TWITCH: baseOf(server) });
    const port = await listeningPort(run, 30_000);
    await waitFor('the stream at the server', async () => ((await ffprobeRtmp(server.url(key))).streams.length > 0 ? true : undefined), 20_000);
    // An outage makes ffmpeg print errors about the URL.
    await server.kill();
    await sleep(3_000);
    await server.start();
    await sleep(2_000);
    const bodies: string[] = [];
    for (const p of ['/api/config', '/api/status', '/metrics', '/readyz', '/healthz', '/api/clips', '/api/admin/actors', '/api/control']) {
      const r = await fetch(`http://127.0.0.1:${port}${p}`, { headers: { authorization: 'Bearer admin-token-123' } });
      bodies.push(`${p} ${r.status} ${await r.text()}`);
    }
    run.child.kill('SIGTERM');
    await run.exited;
    const all = run.out.join('') + bodies.join('\n');
    expect(all).toContain('<redacted>'); // the places that would have shown it did run
    expect(all).toContain('twitch (');
    expect(all.includes(key)).toBe(false);
  }, 90_000);
});
