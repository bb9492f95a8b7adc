/**
 * Stands in for the aggregator in the compose benchmark's product path: writes the overlay
 * messages the showcase scene draws into the compositor's fan-out ring at the service's
 * rates (metrics 10 Hz, heatmap 2 Hz, a move a second), as fan-out update records.
 */
import { defineActor } from '../../src/shared/actor.js';
import type { RecordRing } from '../../src/shared/record-ring.js';
import { FanoutType, writeFanoutRecord } from '../../src/shared/telemetry/ring-records.js';
import { boardAt, heatmapAt, metricsAt } from './producers.js';

export interface FeedOptions { ring: string }

const encoder = new TextEncoder();

export default defineActor<FeedOptions>({
  start(ctx) {
    const ring = ctx.out[ctx.options.ring] as RecordRing;
    let written = 0;
    let refused = 0;
    const put = (type: string, data: unknown) => {
      const stamp = Date.now();
      const ok = writeFanoutRecord(ring, { type: FanoutType.Update, channel: 0, levelMask: 0xff, flags: 0, key: type, stamp, body: encoder.encode(JSON.stringify({ type, timestamp: stamp, data })) });
      if (ok) written++; else refused++;
    };
    let tick = 0;
    const timer = setInterval(() => {
      put('ppo_metrics', metricsAt(tick));
      if (tick % 5 === 0) put('board_heatmap', { grid: heatmapAt(tick / 5) });
      if (tick % 10 === 0) put('game_state', { board: boardAt(tick / 10) });
      tick++;
    }, 100);
    return {
      api: { stats: () => ({ written, refused }) },
      async stop() {
        clearInterval(timer);
        return { written, refused };
      },
    };
  },
});
