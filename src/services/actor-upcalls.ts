/**
 * What actors may ask of the main thread (`ctx.callMain`), and the snapshot a restarted
 * gateway gets without asking.
 */
import type { Logger } from 'pino';
import type { ForwardedRequest, HttpRouter } from '../shared/http-router.js';
import type { StateStore } from '../shared/state-store.js';
import type { Supervisor } from '../supervisor/supervisor.js';
import { AGGREGATOR, COMPOSITOR, RING_COMPOSITOR_CONTROL, controlRing, fanoutRing, gatewayName } from '../topology.js';
import type { ControlRings, OverlayMessage } from './control-rings.js';

export interface ActorUpcallsOptions {
  supervisor: Supervisor;
  store: StateStore;
  router: HttpRouter;
  controls: ControlRings;
}

export function provideActorUpcalls({ supervisor, store, router, controls }: ActorUpcallsOptions): void {
  // State store access for actors (prediction games and the like), namespaced by the caller.
  supervisor.provide('state.get', (ns: string, key: string) => store.get(ns, key));
  supervisor.provide('state.put', (ns: string, key: string, value: unknown) => { store.put(ns, key, value); return true; });
  supervisor.provide('state.list', (ns: string) => store.list(ns));
  // HTTP routes only the main thread can answer, forwarded by the gateways.
  supervisor.provide('http', (request: ForwardedRequest) => router.dispatch(request));
  // Overlay messages an actor made (chat lines, prediction games), out through the control rings.
  supervisor.provide('overlay.publish', (message: OverlayMessage) => controls.publish(message));
  // Every retained overlay message, for an actor that restarts and must know what the overlays show (chat).
  supervisor.provide('retained', async () => [...((await supervisor.call(AGGREGATOR, 'retained')) as Uint8Array[]), ...controls.retained()]);
}

/**
 * A restarted gateway starts with an empty snapshot. Both writers of its rings know what the
 * overlays should show: the aggregator writes its retained messages into the gateway's fan-out
 * ring again, the main thread its own into the control ring. Nothing passes through the gateway's
 * start-up, and nothing the aggregator keeps passes through the main thread.
 */
export function replaySnapshotsOnRestart(supervisor: Supervisor, controls: ControlRings, gateways: number, log: Logger): void {
  const byName = new Map(Array.from({ length: gateways }, (_, i) => [gatewayName(i), i]));
  supervisor.on('actor-started', (actor: string, incarnation: number) => {
    if (incarnation === 0) return;
    // The compositor keeps each shown stream's capture state from its control ring.
    if (actor === COMPOSITOR) {
      controls.replay(RING_COMPOSITOR_CONTROL);
      return;
    }
    const i = byName.get(actor);
    if (i === undefined) return;
    const fromMain = controls.replay(controlRing(i));
    supervisor.call(AGGREGATOR, 'replayRetained', [fanoutRing(i)])
      .then((fromAggregator) => log.info({ gateway: actor, fromAggregator, fromMain }, 'snapshot written again for a restarted gateway'))
      .catch((error: Error) => log.warn({ gateway: actor, err: error.message }, 'the aggregator could not replay its snapshot to a restarted gateway; clients get keys as they are republished'));
  });
}
