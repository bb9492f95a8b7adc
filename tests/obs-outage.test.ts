/**
 * OBS being down never affects anything else: a wrong password, OBS quitting and coming
 * back, and an OBS that is never there — each under the real service.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/shared/config.js';
import { OverlayClient, type Harness } from './helpers/service-harness.js';
import { fireMilestone, OBS_PASSWORD, obsStatus, ObsWebSocketPeer, startWithObs, until } from './helpers/obs-websocket-server.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
}, 30_000);

async function service(url: string, extra: string[] = []): Promise<Harness> {
  const h = await startWithObs(url, extra);
  cleanups.push(() => h.close());
  return h;
}

async function peer(): Promise<ObsWebSocketPeer> {
  const p = await ObsWebSocketPeer.start({ password: OBS_PASSWORD });
  cleanups.push(() => p.stop());
  return p;
}

const healthz = async (h: Harness) => (await fetch(`http://127.0.0.1:${h.service.port}/healthz`)).status;

describe('OBS outages', () => {
  it('the password can come from RINGCAST_OBS_PASSWORD, so it need not sit in a config file or on the command line', () => {
    const config = loadConfig(['--obs-url', 'ws://127.0.0.1:4455'], { RINGCAST_OBS_PASSWORD: 'from-env' });
    expect(config.obs).toMatchObject({ url: 'ws://127.0.0.1:4455', password: 'from-env' });
  });

  it('a wrong password: OBS closes with 4009, the actor reports it, keeps retrying, nothing crashes', async () => {
    const p = await peer();
    const h = await service(p.url, ['--obs-password', 'not-the-password']);
    await until(async () => (await obsStatus(h)).breaker === 'open', 8_000, 'the breaker to open');
    const status = await obsStatus(h);
    expect(status).toMatchObject({ connected: false, lastError: 'authentication failed (4009): check the OBS websocket password' });
    expect(p.closes.length).toBeGreaterThanOrEqual(3);
    expect(new Set(p.closes)).toEqual(new Set([4009]));
    expect(p.identifiedCount).toBe(0);
    expect(p.requests).toEqual([]);
    await expect(h.service.supervisor.call('obs', 'setScene', ['overview'])).rejects.toThrow('OBS not connected');
    expect(await healthz(h)).toBe(200);
    expect(h.service.supervisor.incarnation('obs')).toBe(0);
    expect(JSON.stringify(h.lines)).not.toContain('not-the-password');
    const metrics = await (await fetch(`http://127.0.0.1:${h.service.port}/metrics`)).text();
    expect(metrics).toMatch(/ringcast_obs_connects_total\{[^}]*outcome="auth_failed"[^}]*\} [3-9]/);
  });

  it('OBS goes away and comes back: disconnected + breaker open meanwhile, the service carries on, state is re-applied', async () => {
    const p = await peer();
    const h = await service(p.url, ['--obs-password', OBS_PASSWORD]);
    await until(async () => (await obsStatus(h)).connected, 10_000, 'connected');
    await h.service.supervisor.call('obs', 'setScene', ['metrics_focus']);
    await p.waitFor(() => p.inputSettings.get('ringcast-performance')?.text !== undefined, 5_000, 'a performance text');

    await p.stop();
    await until(async () => (await obsStatus(h)).breaker === 'open', 8_000, 'the breaker to open');
    const down = await obsStatus(h);
    expect(down).toMatchObject({ connected: false, breaker: 'open' });
    expect(down.lastError).toMatch(/ECONNREFUSED|connection lost/);

    // Everything else still works: health, the overlay stream, milestones.
    expect(await healthz(h)).toBe(200);
    const client = await OverlayClient.connect(h.service.port, { channels: ['milestones'], max_fps: 30 });
    cleanups.push(() => client.close());
    expect((await fireMilestone(h, { name: 'during_outage', message: 'OBS is down' })).status).toBe(202);
    await client.waitFor((m) => m.type === 'milestone' && m.data?.name === 'during_outage', 5_000);
    // OBS calls fail at once with a clear error; the scene asked for is kept for later.
    await expect(h.service.supervisor.call('obs', 'setScene', ['prediction'])).rejects.toThrow('OBS not connected; "Prediction" will be shown when OBS reconnects');
    await expect(h.service.supervisor.call('obs', 'celebrate', [{ name: 'x' }])).rejects.toThrow('OBS not connected');
    expect(h.service.supervisor.incarnation('obs')).toBe(0);

    // OBS restarts fresh (on its first scene) and ringcast puts its state back.
    p.currentScene = 'Overview';
    p.inputSettings.set('ringcast-performance', {});
    p.clearRequests();
    await p.restart();
    await until(async () => (await obsStatus(h)).connected, 10_000, 'reconnected');
    await p.waitFor(() => p.requestsOf('SetCurrentProgramScene').length > 0 && p.inputSettings.get('ringcast-performance')?.text !== undefined, 5_000, 'state re-applied');
    expect(p.identifiedCount).toBe(2);
    expect(p.requests[0]!.requestType).toBe('GetCurrentProgramScene');
    expect(p.requestsOf('SetCurrentProgramScene').map((r) => r.requestData)).toEqual([{ sceneName: 'Prediction' }]);
    expect(p.currentScene).toBe('Prediction');
    // The milestone that came while OBS was down is not celebrated late.
    expect(p.requestsOf('SetInputSettings').filter((r) => r.requestData?.inputName === 'ringcast-milestone')).toEqual([]);
    const up = await obsStatus(h);
    expect(up).toMatchObject({ connected: true, breaker: 'closed', lastError: null, currentScene: 'Prediction' });
    const metrics = await (await fetch(`http://127.0.0.1:${h.service.port}/metrics`)).text();
    expect(metrics).toMatch(/ringcast_obs_disconnects_total\{[^}]*\} 1/);
    expect(metrics).toMatch(/ringcast_obs_connects_total\{[^}]*outcome="ok"[^}]*\} 2/);
    expect(metrics).toMatch(/ringcast_obs_breaker_opens_total\{[^}]*\} [1-9]/);
    expect(metrics).toMatch(/ringcast_obs_celebrations_total\{[^}]*outcome="skipped"[^}]*\} [1-9]/);
  });

  it('OBS never reachable: the service starts at once and serves /healthz 200', async () => {
    const closedPort = await ObsWebSocketPeer.start({});
    const url = closedPort.url;
    await closedPort.stop(); // a port nobody listens on
    const t0 = Date.now();
    const h = await service(url, ['--obs-password', OBS_PASSWORD]);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await healthz(h)).toBe(200);
    const status = await obsStatus(h);
    expect(status).toMatchObject({ connected: false, url });
    await until(async () => (await obsStatus(h)).breaker === 'open', 8_000, 'the breaker to open');
    expect((await obsStatus(h)).lastError).toMatch(/ECONNREFUSED/);
    expect(await healthz(h)).toBe(200);
    expect(h.service.supervisor.health().actors.obs).toBe('running');
  });
});
