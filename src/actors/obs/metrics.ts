/** prom-client metrics of the OBS actor (`ringcast_obs_*`), registered on the actor's registry. */
import { Counter, Gauge, type Registry } from 'prom-client';

export type RequestOutcome = 'ok' | 'obs_error' | 'timeout' | 'not_connected' | 'circuit_open' | 'queue_full' | 'dropped' | 'connection_lost';
export type ConnectOutcome = 'ok' | 'refused' | 'auth_failed' | 'timeout' | 'error';
export type CelebrationOutcome = 'shown' | 'duplicate' | 'dropped' | 'skipped' | 'failed' | 'invalid';

export interface ObsMetrics {
  requests: Counter<'type' | 'outcome'>;
  connects: Counter<'outcome'>;
  disconnects: Counter;
  connected: Gauge;
  breakerState: Gauge;
  breakerOpens: Counter;
  droppedRequests: Counter<'reason'>;
  queueDepth: Gauge;
  celebrations: Counter<'outcome'>;
  messages: Counter<'type'>;
}

export function createObsMetrics(registry: Registry): ObsMetrics {
  const registers = [registry];
  const m: ObsMetrics = {
    requests: new Counter({ name: 'ringcast_obs_requests_total', help: 'Requests to OBS by request type and outcome', labelNames: ['type', 'outcome'], registers }),
    connects: new Counter({ name: 'ringcast_obs_connects_total', help: 'Connection attempts to obs-websocket by outcome', labelNames: ['outcome'], registers }),
    disconnects: new Counter({ name: 'ringcast_obs_disconnects_total', help: 'Established OBS connections that were lost', registers }),
    connected: new Gauge({ name: 'ringcast_obs_connected', help: '1 while identified with obs-websocket', registers }),
    breakerState: new Gauge({ name: 'ringcast_obs_breaker_state', help: 'Circuit breaker: 0 closed, 1 half-open, 2 open', registers }),
    breakerOpens: new Counter({ name: 'ringcast_obs_breaker_opens_total', help: 'Times the circuit breaker opened', registers }),
    droppedRequests: new Counter({ name: 'ringcast_obs_dropped_requests_total', help: 'Requests dropped before reaching OBS, by reason', labelNames: ['reason'], registers }),
    queueDepth: new Gauge({ name: 'ringcast_obs_queue_depth', help: 'Requests waiting to be sent to OBS', registers }),
    celebrations: new Counter({ name: 'ringcast_obs_celebrations_total', help: 'Milestone celebrations by outcome', labelNames: ['outcome'], registers }),
    messages: new Counter({ name: 'ringcast_obs_messages_total', help: 'Fan-out messages the OBS actor acted on or rejected, by type', labelNames: ['type'], registers }),
  };
  for (const outcome of ['ok', 'refused', 'auth_failed', 'timeout', 'error']) m.connects.inc({ outcome }, 0);
  for (const outcome of ['shown', 'duplicate', 'dropped', 'skipped', 'failed', 'invalid']) m.celebrations.inc({ outcome }, 0);
  for (const reason of ['queue_full', 'disconnected']) m.droppedRequests.inc({ reason }, 0);
  return m;
}
