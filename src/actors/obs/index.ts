/**
 * OBS actor: drives OBS Studio through obs-websocket v5 from what the overlay stream says.
 *
 * Reads its own fan-out ring (`fanout.obs`, the same messages overlays get):
 * - `milestone` → a celebration (milestone text + milestone scene, back after
 *   `celebrationSeconds`), one at a time, de-duplicated by id;
 * - `control` with `data.scene` (a preset) → switch scene when the requested preset
 *   changes (the control page re-sends its whole state, so an unchanged scene is not
 *   re-applied over a manual switch in OBS);
 * - `ppo_metrics`, `game_state` and the message rate → the performance text input,
 *   updated every `performanceEveryMs` when connected and changed.
 *
 * OBS being down never affects anything else: start() returns without waiting for OBS
 * (connect, backoff and circuit breaker live in connection.ts), RPCs answer at once
 * with a clear error, and timers never throw.
 *
 * RPC:
 * - `setScene(preset)` → `{preset, scene}`; unknown preset → error listing the presets;
 *   OBS down → error "OBS not connected; … will be shown when OBS reconnects" (the scene
 *   is remembered and applied on reconnect).
 * - `celebrate({name, message?})` → `{queued, position?}` (the control page's test-fire);
 *   OBS down → error "OBS not connected".
 * - `status()` → `{connected, breaker, url, currentScene, requestedScene, lastError,
 *   queued, reconnectInMs, celebrations: {active, pending, shown, dropped}, performanceText}`
 *   (never the password).
 * - `presets()` → preset → OBS scene name.
 */
import { defineActor } from '../../shared/actor.js';
import { consumeLoop } from '../../shared/consume-loop.js';
import type { RecordRing } from '../../shared/record-ring.js';
import { MergedReader } from '../../shared/merged-reader.js';
import { channelId, LEVEL_BIT } from '../../shared/telemetry/channels.js';
import { FanoutType, readFanoutRecord } from '../../shared/telemetry/ring-records.js';
import { ObsConnection } from './connection.js';
import { OBS_LEASE, runAsSingleton, type SingletonOptions } from '../../services/cluster/singleton-lease.js';
import { Director, SCENE_PRESETS, type SceneNames } from './director.js';
import { createObsMetrics } from './metrics.js';
import { PerformanceTracker } from './performance.js';

export interface ObsOptions {
  /** Fan-out ring this actor reads (`fanout.obs`). */
  inRing: string;
  /** The main thread's control ring (`control.obs`: control state with the scene preset), merged with `inRing`. */
  controlRing?: string;
  /** obs-websocket URL, e.g. ws://127.0.0.1:4455. */
  url: string;
  /** obs-websocket password (never logged or reported). */
  password?: string;
  /** OBS scene name per preset. */
  scenes: SceneNames;
  /** OBS text input (GDI+/FreeType 2 text source) showing the milestone. */
  milestoneTextInput: string;
  /** OBS text input showing live performance figures. */
  performanceTextInput: string;
  celebrationSeconds: number;
  performanceEveryMs: number;
  /** Clustered: the director runs on one node of the cluster, the holder of its lease. */
  cluster?: SingletonOptions;
}

const decoder = new TextDecoder();
// Channels whose messages the actor reads; every other record only counts toward msg/s.
const READ_CHANNELS = new Set([channelId('metrics'), channelId('game'), channelId('milestones'), channelId('control')]);

function validate(o: ObsOptions): void {
  if (typeof o.url !== 'string' || !/^wss?:\/\//.test(o.url)) throw new Error('obs: "url" must be a ws:// or wss:// URL');
  for (const preset of SCENE_PRESETS) {
    if (typeof o.scenes?.[preset] !== 'string' || o.scenes[preset] === '') throw new Error(`obs: scenes.${preset} must name an OBS scene`);
  }
  if (typeof o.milestoneTextInput !== 'string' || o.milestoneTextInput === '') throw new Error('obs: milestoneTextInput must name an OBS input');
  if (typeof o.performanceTextInput !== 'string' || o.performanceTextInput === '') throw new Error('obs: performanceTextInput must name an OBS input');
  if (!(o.celebrationSeconds > 0)) throw new Error('obs: celebrationSeconds must be positive');
  if (!(o.performanceEveryMs >= 100)) throw new Error('obs: performanceEveryMs must be at least 100');
}

export default defineActor<ObsOptions>({
  start(ctx) {
    const o = ctx.options;
    validate(o);
    const ring = ctx.in[o.inRing] as RecordRing | undefined;
    if (!ring) throw new Error(`obs: ring "${o.inRing}" is not among this actor's in rings (${Object.keys(ctx.in).join(', ') || 'none'})`);
    const controlRing = o.controlRing === undefined ? undefined : (ctx.in[o.controlRing] as RecordRing | undefined);
    if (o.controlRing !== undefined && !controlRing) throw new Error(`obs: control ring "${o.controlRing}" is not among this actor's in rings (${Object.keys(ctx.in).join(', ')})`);
    const metrics = createObsMetrics(ctx.metrics);
    const perf = new PerformanceTracker();
    let latestPerfText: string | null = null;
    let sentPerfText: string | null = null;
    let perfInFlight = false;
    let lastControlScene: string | null = null;

    // The connection's callbacks use the director, created just below (they only run after start()).
    const connection = new ObsConnection({
      url: o.url,
      password: o.password,
      log: ctx.log,
      metrics,
      onIdentified: async () => {
        await director.restore();
        sentPerfText = null;
        if (latestPerfText !== null) void sendPerformance(latestPerfText);
      },
      onDisconnected: () => { sentPerfText = null; },
      onProgramScene: (name) => director.onProgramScene(name),
    });
    const director: Director = new Director({
      scenes: o.scenes,
      milestoneTextInput: o.milestoneTextInput,
      celebrationSeconds: o.celebrationSeconds,
      obs: connection,
      log: ctx.log,
      metrics,
    });

    async function sendPerformance(text: string): Promise<void> {
      if (!connection.connected || text === sentPerfText || perfInFlight) return;
      perfInFlight = true;
      try {
        await connection.request('SetInputSettings', { inputName: o.performanceTextInput, inputSettings: { text } }, { essential: false });
        sentPerfText = text;
      } catch (error) {
        ctx.log.debug({ err: error }, 'performance text not updated');
      } finally {
        perfInFlight = false;
      }
    }

    const perfTimer = setInterval(() => {
      try {
        latestPerfText = perf.text();
        void sendPerformance(latestPerfText);
      } catch (error) {
        ctx.log.warn({ err: error }, 'performance text update failed');
      }
    }, o.performanceEveryMs);

    function onMessage(type: string, data: Record<string, unknown>): void {
      switch (type) {
        case 'ppo_metrics':
        case 'game_state':
          perf.observe(type, data);
          return;
        case 'milestone': {
          metrics.messages.inc({ type });
          try {
            director.celebrate({ id: data.id, name: data.name, message: data.message });
          } catch (error) {
            metrics.messages.inc({ type: 'milestone_rejected' });
            ctx.log.warn({ error: (error as Error).message }, 'milestone message not celebrated');
          }
          return;
        }
        case 'control': {
          const scene = data.scene;
          if (scene === undefined || scene === null || scene === lastControlScene) return;
          metrics.messages.inc({ type });
          lastControlScene = typeof scene === 'string' ? scene : null;
          director.setScene(scene).catch((error: unknown) => {
            metrics.messages.inc({ type: 'control_rejected' });
            ctx.log.warn({ error: (error as Error).message }, 'control message: scene not switched');
          });
          return;
        }
        default:
          return;
      }
    }

    function onRecord(bytes: Uint8Array, offset: number, length: number): void {
      try {
        const rec = readFanoutRecord(bytes, offset, length);
        // One serialisation per message: the aggregator writes a variant per level, the beginner bit picks one.
        if (rec.type !== FanoutType.Update || (rec.levelMask & LEVEL_BIT.beginner) === 0) return;
        perf.countMessage();
        if (!READ_CHANNELS.has(rec.channel)) return;
        const message = JSON.parse(decoder.decode(bytes.subarray(rec.bodyOffset, rec.bodyOffset + rec.bodyLength))) as { type?: unknown; data?: unknown };
        if (typeof message?.type !== 'string' || typeof message.data !== 'object' || message.data === null) {
          metrics.messages.inc({ type: 'malformed' });
          return;
        }
        onMessage(message.type, message.data as Record<string, unknown>);
      } catch (error) {
        metrics.messages.inc({ type: 'malformed' });
        ctx.log.warn({ err: error }, 'obs: skipped an unreadable fan-out record');
      }
    }

    const loop = consumeLoop(controlRing ? new MergedReader([ring, controlRing]) : ring, onRecord, ctx.signal).catch((error: unknown) => {
      ctx.log.error({ err: error }, 'obs: fan-out consumer stopped');
      return 0;
    });
    // Clustered: one OBS director for the whole cluster, on the node holding its lease.
    const singleton = o.cluster
      ? runAsSingleton(o.cluster, OBS_LEASE, ctx.log, () => connection.start(), () => setImmediate(() => {
        throw new Error('obs: this node no longer holds the cluster\'s OBS director lease; restarting to contest it again');
      }))
      : (connection.start(), undefined);
    ctx.log.info({ url: connection.status().url, scenes: o.scenes }, 'OBS actor started; connecting in the background');

    const status = () => {
      const c = connection.status();
      return {
        connected: c.connected,
        breaker: c.breaker,
        url: c.url,
        currentScene: director.programScene,
        requestedScene: director.requestedScene,
        lastError: c.lastError,
        queued: c.queued,
        reconnectInMs: c.reconnectInMs,
        celebrations: director.status(),
        performanceText: sentPerfText,
      };
    };

    return {
      api: {
        setScene: (preset: string) => director.setScene(preset),
        celebrate: (input: { name?: unknown; message?: unknown }) => director.celebrate(input ?? {}, true),
        status,
        presets: () => ({ ...o.scenes }),
      },
      async stop() {
        clearInterval(perfTimer);
        director.stop();
        await loop;
        await connection.stop();
        await singleton?.stop(); // another node takes the director over at once
        return status();
      },
    };
  },
});
