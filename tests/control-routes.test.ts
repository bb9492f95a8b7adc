/** The streamer control API on the main thread: admin auth, control relay to overlays, clear errors. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, OverlayClient, startHarness, type Harness } from './helpers/service-harness.js';

let h: Harness;
beforeAll(async () => { h = await startHarness(['--fanout-threads', '1']); }, 60_000);
afterAll(async () => { await h?.close(); }, 30_000);

const post = (body: unknown, token: string | null = ADMIN_TOKEN) =>
  fetch(`http://127.0.0.1:${h.service.port}/api/control`, {
    method: 'POST',
    headers: token ? { authorization: `Bearer ${token}` } : {},
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

describe('control API', () => {
  it('refuses without the admin token, and viewers cannot write', async () => {
    const none = await post({ action: "pause" }, null);
    expect(none.status, await none.clone().text()).toBe(401);
    const wrong = await post({ action: "pause" }, "wrong-token");
    expect(wrong.status, await wrong.clone().text()).toBe(401);
    expect((await fetch(`http://127.0.0.1:${h.service.port}/api/control`)).status).toBe(401);
  });

  it('level and pause reach every overlay on the control channel, and a late overlay gets them in its snapshot', async () => {
    const live = await OverlayClient.connect(h.service.port, { channels: ['control'], level: 'beginner', max_fps: 30 });
    try {
      expect((await post({ action: 'level', level: 'advanced' })).status).toBe(200);
      expect((await post({ action: 'pause' })).status).toBe(200);
      await live.waitFor((m) => m.type === 'control' && m.data?.level === 'advanced' && m.data?.paused === true, 3_000, 'control state');
      const late = await OverlayClient.connect(h.service.port, { channels: ['control'], level: 'beginner', max_fps: 30 });
      try {
        await late.waitFor((m) => m.type === 'control' && m.data?.paused === true, 3_000, 'retained control state');
      } finally {
        late.close();
      }
      const state = await (await fetch(`http://127.0.0.1:${h.service.port}/api/control`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
      expect(state).toMatchObject({ level: 'advanced', paused: true, chat: null, obs: null });
      expect((await post({ action: 'resume' })).status).toBe(200);
      await live.waitFor((m) => m.type === 'control' && m.data?.paused === false, 3_000, 'resumed');
    } finally {
      live.close();
    }
  });

  it('answers bad requests with what is wrong, and unconfigured chat / OBS with 503', async () => {
    const bad = await post('{nope');
    expect(bad.status).toBe(400);
    expect((await post({ action: 'level', level: 'expert' })).status).toBe(400);
    const unknown = await post({ action: 'explode' });
    expect(unknown.status).toBe(400);
    expect((await unknown.json()).error).toMatch(/unknown action "explode"; actions: level, pause/);
    const disco = await post({ action: 'scene', preset: 'disco' }); // checked at the edge, OBS or not
    expect(disco.status).toBe(400);
    expect((await disco.json()).error).toBe('unknown scene preset "disco"; presets: overview, board_focus, metrics_focus, prediction, milestone');
    const scene = await post({ action: 'scene', preset: 'overview' });
    expect(scene.status).toBe(503);
    expect(await scene.text()).toMatch(/OBS is not configured \(set --obs-url\)/);
    const game = await post({ action: 'prediction_start' });
    expect(game.status).toBe(503);
    expect(await game.text()).toMatch(/Twitch chat is not configured \(set --twitch-channel\)/);
  });

  it('test-fires a milestone that overlays receive', async () => {
    const client = await OverlayClient.connect(h.service.port, { channels: ['milestones'], level: 'beginner', max_fps: 30 });
    try {
      expect((await post({ action: 'milestone', name: 'test_fire', message: 'from the control page' })).status).toBe(202);
      const fired = await client.waitFor((m) => m.type === 'milestone' && JSON.stringify(m.data).includes('from the control page'), 3_000, 'milestone');
      expect(fired.data).toMatchObject({ name: 'test_fire', source: 'admin' });
    } finally {
      client.close();
    }
  });
});
