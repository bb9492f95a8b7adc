/**
 * A crashing demo trainer, watched by a viewer: what the viewer sees as monotonic (the step,
 * games played) never goes back across the trainer's restarts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OverlayClient, startHarness, type Harness } from './helpers/service-harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness([
    '--demo', '--demo-streams', '0', '--demo-crash-every-ms', '1200', '--demo-steps-per-sec', '200', '--demo-moves-per-sec', '150',
    '--restart-intensity', '100', '--restart-period-ms', '60000', '--restart-backoff-initial-ms', '0',
  ]);
});
afterAll(async () => { await h?.close(); });

describe('demo trainer restarts seen from /ws', () => {
  it('the step and games played never go backwards while the trainer crashes every 1.2 s', async () => {
    const viewer = await OverlayClient.connect(h.service.port, { channels: ['metrics'], level: 'advanced', max_fps: 30 });
    try {
      const deadline = Date.now() + 30_000;
      while (h.service.supervisor.incarnation('demo-trainer') < 3) {
        if (Date.now() > deadline) throw new Error('the demo trainer did not restart 3 times within 30 s');
        await new Promise((r) => setTimeout(r, 50));
      }
      // The third incarnation's steps reach the viewer; a busy box delivers fewer windows per second.
      const demoMetrics = () => viewer.messages.filter((m) => m.type === 'ppo_metrics' && m.data?.run === 'demo');
      await new Promise((r) => setTimeout(r, 500));
      while (demoMetrics().length <= 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const metrics = demoMetrics();
      const steps = metrics.map((m) => m.data!.step as number);
      expect(steps.length).toBeGreaterThan(20);
      const backwards = (xs: number[]) => xs.flatMap((x, i) => (i > 0 && x < xs[i - 1] ? [`${xs[i - 1]} → ${x}`] : []));
      expect(backwards(steps)).toEqual([]);
      // One incarnation lives 1.2 s at 200 steps/s: a later step beyond that is a resumed count.
      expect(steps.at(-1)).toBeGreaterThan(300);
      const games = metrics.map((m) => (m.data!.values as Record<string, number>).games_played).filter((g) => g !== undefined);
      expect(games.length).toBeGreaterThan(20);
      expect(backwards(games)).toEqual([]);
    } finally {
      viewer.close();
    }
  }, 60_000);
});
