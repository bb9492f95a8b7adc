/**
 * The OBS actor under the real service, against a local obs-websocket v5 server with
 * the real Hello/Identify authentication: the exact requests OBS receives for scene
 * presets, milestone celebrations (admin milestone → aggregator → fan-out → OBS actor),
 * control messages and the performance text.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createProducer } from '../src/sdk/index.js';
import { INGEST_TOKEN, type Harness } from './helpers/service-harness.js';
import { fireMilestone, OBS_PASSWORD, obsStatus, ObsWebSocketPeer, startWithObs, until } from './helpers/obs-websocket-server.js';

let peer: ObsWebSocketPeer;
let h: Harness;

beforeAll(async () => {
  peer = await ObsWebSocketPeer.start({ password: OBS_PASSWORD });
  h = await startWithObs(peer.url, ['--obs-password', OBS_PASSWORD]);
  await until(async () => (await obsStatus(h)).connected, 10_000, 'the OBS actor to connect');
}, 30_000);
afterAll(async () => {
  await h?.close();
  await peer?.stop();
}, 30_000);

/** Scene and text changes only (the performance text ticks on its own every 500 ms). */
const sceneActions = () => peer.actions().filter((a) => a.requestType === 'SetCurrentProgramScene' || a.requestData?.inputName === 'ringcast-milestone');

describe('OBS actor in the service', () => {
  beforeEach(() => peer.clearRequests());

  it('authenticates, learns the current scene, and reports status without the password', async () => {
    const status = await obsStatus(h);
    expect(status).toMatchObject({ connected: true, breaker: 'closed', url: peer.url, currentScene: 'Overview', lastError: null, queued: 0 });
    expect(peer.identifiedCount).toBe(1);
    expect(peer.requests.every((r) => r.protocol === 'obswebsocket.msgpack')).toBe(true); // obs-websocket-js's Node default
    expect(JSON.stringify(status)).not.toContain(OBS_PASSWORD);
    expect(JSON.stringify(h.lines)).not.toContain(OBS_PASSWORD);
    expect(await h.service.supervisor.call('obs', 'presets')).toEqual({
      overview: 'Overview', board_focus: 'Board Focus', metrics_focus: 'Metrics Focus', prediction: 'Prediction', milestone: 'Milestone',
    });
  });

  it('setScene(preset) → SetCurrentProgramScene with the configured scene name; unknown preset → error listing presets', async () => {
    expect(await h.service.supervisor.call('obs', 'setScene', ['board_focus'])).toEqual({ preset: 'board_focus', scene: 'Board Focus' });
    expect(sceneActions()).toEqual([{ requestType: 'SetCurrentProgramScene', requestData: { sceneName: 'Board Focus' } }]);
    expect(peer.currentScene).toBe('Board Focus');
    expect((await obsStatus(h)).currentScene).toBe('Board Focus');
    await expect(h.service.supervisor.call('obs', 'setScene', ['disco'])).rejects.toThrow(
      'unknown scene preset "disco"; presets: overview, board_focus, metrics_focus, prediction, milestone',
    );
    expect(sceneActions()).toHaveLength(1);
  });

  it('a milestone (POST /api/admin/milestone) → milestone text, milestone scene, back to the previous scene after 1 s', async () => {
    const res = await fireMilestone(h, { name: 'first_blood', message: 'Win rate passed 60%!' });
    expect(res.status).toBe(202);
    await peer.waitFor(() => sceneActions().length >= 3, 5_000, 'the celebration and the return');
    expect(sceneActions()).toEqual([
      { requestType: 'SetInputSettings', requestData: { inputName: 'ringcast-milestone', inputSettings: { text: 'Win rate passed 60%!' }, overlay: true } },
      { requestType: 'SetCurrentProgramScene', requestData: { sceneName: 'Milestone' } },
      { requestType: 'SetCurrentProgramScene', requestData: { sceneName: 'Board Focus' } },
    ]);
    const switches = peer.requestsOf('SetCurrentProgramScene');
    const shownFor = switches[1]!.at - switches[0]!.at;
    expect(shownFor).toBeGreaterThanOrEqual(950);
    expect(shownFor).toBeLessThan(3_000);
    expect(peer.inputSettings.get('ringcast-milestone')).toEqual({ text: 'Win rate passed 60%!' });
    expect((await obsStatus(h)).celebrations).toMatchObject({ active: null, pending: 0, shown: 1 });
  });

  it('celebrations queue one at a time; celebrate() RPC (test-fire) validates its input', async () => {
    expect(await h.service.supervisor.call('obs', 'celebrate', [{ name: 'test', message: 'Test fire 1' }])).toEqual({ queued: true, position: 1 });
    expect(await h.service.supervisor.call('obs', 'celebrate', [{ name: 'test', message: 'Test fire 2' }])).toEqual({ queued: true, position: 2 });
    await expect(h.service.supervisor.call('obs', 'celebrate', [{ message: 'no name' }])).rejects.toThrow('"name" must be a non-empty string');
    await peer.waitFor(() => sceneActions().length >= 6, 6_000, 'two celebrations');
    expect(sceneActions().map((a) => a.requestData?.sceneName ?? (a.requestData?.inputSettings as { text: string }).text)).toEqual([
      'Test fire 1', 'Milestone', 'Board Focus', 'Test fire 2', 'Milestone', 'Board Focus',
    ]);
  });

  it('after a celebration, returns to the scene that was showing when it started (the streamer switched by hand), not the last one requested', async () => {
    expect(peer.currentScene).toBe('Board Focus'); // requested by ringcast in an earlier test
    peer.switchByHand('Metrics Focus');
    await until(async () => (await obsStatus(h)).currentScene === 'Metrics Focus', 3_000, 'the actor to see the manual switch');
    await h.service.supervisor.call('obs', 'celebrate', [{ name: 'test', message: 'By hand' }]);
    await peer.waitFor(() => sceneActions().length >= 3, 5_000, 'the celebration and the return');
    expect(sceneActions().map((a) => a.requestData?.sceneName ?? (a.requestData?.inputSettings as { text: string }).text)).toEqual([
      'By hand', 'Milestone', 'Metrics Focus',
    ]);
    await h.service.supervisor.call('obs', 'setScene', ['board_focus']);
  });

  it('a control message with a scene preset switches scene once (not again while the preset is unchanged)', async () => {
    const control = (data: Record<string, unknown>) => {
      expect(h.service.overlays.publish({ type: 'control', channel: 'control', retain: true, data })).toBe(true);
    };
    control({ scene: 'prediction', level: 'beginner' });
    await peer.waitFor(() => sceneActions().length >= 1, 3_000, 'the control scene');
    control({ scene: 'prediction', level: 'advanced' }); // level changed, scene did not
    control({ scene: 'no_such_preset' }); // refused, logged, nothing sent
    await new Promise((r) => setTimeout(r, 400));
    expect(sceneActions()).toEqual([{ requestType: 'SetCurrentProgramScene', requestData: { sceneName: 'Prediction' } }]);
    await h.service.supervisor.call('obs', 'setScene', ['board_focus']);
  });

  it('performance text: live figures from the stream, only when changed, without overlay', async () => {
    const producer = createProducer(`tcp://127.0.0.1:${h.tcpPort}`, { token: INGEST_TOKEN, run: 'obs-perf', flushIntervalMs: 5 });
    try {
      producer.emitPpoMetrics({ 'ppo/kl_divergence_approx': 0.004, 'ppo/clip_fraction': 0.05, 'ppo/policy_loss': 0.2 }, 12_345);
      producer.emitGameState({ gameId: 'g1', sfen: 'startpos', moves: [], moveCount: 80, result: 'black_win' });
      const perf = () => peer.requestsOf('SetInputSettings').filter((r) => r.requestData?.inputName === 'ringcast-performance');
      await peer.waitFor(() => perf().some((r) => String((r.requestData?.inputSettings as { text: string }).text).includes('step 12,345')), 5_000, 'a performance text with the step');
      const latest = perf().at(-1)!;
      expect(Object.keys(latest.requestData!).sort()).toEqual(['inputName', 'inputSettings']);
      expect((latest.requestData!.inputSettings as { text: string }).text).toMatch(/^step 12,345 · healthy · \d+\.\d msg\/s · games 1$/);
      const texts = perf().map((r) => (r.requestData!.inputSettings as { text: string }).text);
      for (let i = 1; i < texts.length; i++) expect(texts[i]).not.toBe(texts[i - 1]);
      expect((await obsStatus(h)).performanceText).toBe(peer.inputSettings.get('ringcast-performance')!.text);
    } finally {
      await producer.close(2_000);
    }
  });

  it('metrics: requests by type and outcome, connects, breaker, celebrations', async () => {
    const text = await (await fetch(`http://127.0.0.1:${h.service.port}/metrics`)).text();
    expect(text).toMatch(/ringcast_obs_requests_total\{[^}]*type="SetCurrentProgramScene"[^}]*outcome="ok"[^}]*\} [1-9]/);
    expect(text).toMatch(/ringcast_obs_connects_total\{[^}]*outcome="ok"[^}]*\} 1/);
    expect(text).toMatch(/ringcast_obs_breaker_state\{[^}]*\} 0/);
    expect(text).toMatch(/ringcast_obs_celebrations_total\{[^}]*outcome="shown"[^}]*\} 4/);
    expect(text).toMatch(/ringcast_obs_connected\{[^}]*\} 1/);
  });
});
