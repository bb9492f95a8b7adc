/**
 * The embedded default topology that `npm start` runs until the real actors land:
 * a demo trainer publishing binary telemetry records into a ring, drained by a demo
 * aggregator that keeps 100 ms windows. It exercises the whole runtime: rings,
 * supervision, metrics, graceful drain.
 */
import type { Config } from './shared/config.js';
import type { SupervisorSpec } from './supervisor/spec.js';
import type { DemoTrainerOptions } from './actors/demo-trainer/index.js';
import type { DemoAggregatorOptions } from './actors/demo-aggregator/index.js';

export const DEMO_TRAINER = 'demo-trainer';
export const DEMO_AGGREGATOR = 'demo-aggregator';
export const DEMO_RING = 'demo.telemetry';

export function demoTopology(config: Config): SupervisorSpec {
  const trainer: DemoTrainerOptions = {
    ring: DEMO_RING,
    ratePerSec: config.demo.ratePerSec,
    recordBytes: config.demo.recordBytes,
    crashEveryMs: config.demo.crashEveryMs,
  };
  const aggregator: DemoAggregatorOptions = { ring: DEMO_RING, windowMs: 100 };
  return {
    strategy: config.restart.strategy,
    intensity: config.restart.intensity,
    periodMs: config.restart.periodMs,
    backoff: { initialMs: config.restart.backoffInitialMs, maxMs: config.restart.backoffMaxMs },
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    hangTimeoutMs: config.hangTimeoutMs,
    logLevel: config.logLevel,
    rings: !config.demo.enabled ? {} : {
      // 4 MiB holds ~2 s of the default rate even if the aggregator stalls.
      [DEMO_RING]: { kind: 'record', capacityBytes: 4 << 20, policy: 'drop-newest' },
    },
    actors: !config.demo.enabled ? [] : [
      { name: DEMO_TRAINER, module: new URL('./actors/demo-trainer/index.js', import.meta.url), out: [DEMO_RING], options: trainer, standby: config.restart.standby },
      { name: DEMO_AGGREGATOR, module: new URL('./actors/demo-aggregator/index.js', import.meta.url), in: [DEMO_RING], options: aggregator, standby: config.restart.standby },
    ],
  };
}
