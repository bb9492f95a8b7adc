/**
 * `/scene`: the scene control channel on a gateway thread (admin token required).
 *
 * Commands are JSON text messages `{id?, op, ...}`:
 *   {op:'get'}                                   → ack with `scene`
 *   {op:'add', layer:{...}}
 *   {op:'update', layer_id, patch:{...}}         (or `layerId`, or `layer:{id}`)
 *   {op:'remove', layer_id}
 *   {op:'reorder', ids:[...]}                    (every layer id, bottom first)
 * each answered with `{type:'scene_ack', id, ok, scene_version}` or `{..., ok:false, error, path?}`.
 * The scene itself is owned by the main thread (src/services/scene/service.ts): commands go there over
 * `ctx.callMain('scene.command', cmd, token)`, so every gateway sees one scene.
 *
 * Changes reach every `/scene` client as `{type:'scene', timestamp, data: scene}`: the
 * scene service publishes each change into every gateway's control ring like any overlay
 * message the main thread makes, the gateway's record loop hands fan-out records to `onRecord` here, and the `scene` ones are
 * published to the uWS topic all `/scene` sockets subscribe to (one copy, native fan-out).
 * A new client first gets the current scene (fetched from the main thread on open).
 */
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { TemplatedApp, WebSocket } from 'uWebSockets.js';
import type { UwsRoutes } from '../../shared/uws-routes.js';
import { CHANNELS, LEVELS } from '../../shared/telemetry/channels.js';
import { FANOUT_HEADER_BYTES, FanoutType } from '../../shared/telemetry/ring-records.js';
import { requestToken } from './http-io.js';
import type { UwsHandles } from './uws-lifecycle.js';
import { tokenMatcher } from '../../shared/tokens.js';

export const SCENE_TOPIC = 'scene';
/** A command carries at most one layer; image layers may inline a small data URL. */
const MAX_COMMAND_BYTES = 256 * 1024;
/** Commands a client may have waiting on the main thread; more are refused, not queued. */
const MAX_IN_FLIGHT = 16;
/** A control client that stops reading is cut off beyond this (scenes are small). */
const MAX_BACKPRESSURE = 4 * 1024 * 1024;

const CONTROL_CHANNEL = (CHANNELS as readonly string[]).indexOf('control');
/** Relays are serialised once for every level; if a producer ever splits them, take one. */
const LEVEL_BIT = 1 << (LEVELS as readonly string[]).indexOf('intermediate');
const SCENE_KEY = new TextEncoder().encode('scene');

export interface SceneSocketData {
  readonly endpoint: 'scene';
  readonly token: string;
  inFlight: number;
  closed: boolean;
}

export interface SceneEndpointOptions {
  /** For publishing to the /scene topic. */
  app: TemplatedApp;
  routes: UwsRoutes;
  handles: UwsHandles;
  callMain: <T = unknown>(method: string, ...args: unknown[]) => Promise<T>;
  adminToken: string;
  registry: Registry;
  log: Logger;
}

export interface SceneEndpoint {
  /** Feed every fan-out record here; true when it was a scene change (published to /scene clients). */
  onRecord(data: Uint8Array, offset: number, length: number): boolean;
  clients(): number;
}

export function registerSceneEndpoint(o: SceneEndpointOptions): SceneEndpoint {
  const { app, log } = o;
  const registers = [o.registry];
  const clientsGauge = new Gauge({ name: 'ringcast_scene_ws_clients', help: 'Open /scene control connections', registers });
  const messages = new Counter({ name: 'ringcast_scene_ws_commands_total', help: '/scene commands by outcome (ok, rejected, malformed, busy, failed)', labelNames: ['outcome'], registers });
  const refused = new Counter({ name: 'ringcast_scene_ws_refused_total', help: '/scene upgrades refused for a missing or wrong admin token', registers });
  const published = new Counter({ name: 'ringcast_scene_ws_published_total', help: 'Scene changes published to /scene clients', registers });
  const isAdminToken = tokenMatcher(o.adminToken);
  let open = 0;

  const send = (ws: WebSocket<SceneSocketData>, value: unknown) => {
    if (ws.getUserData().closed) return;
    ws.send(JSON.stringify(value), false);
  };

  o.routes.ws<SceneSocketData>('/scene', {
    maxPayloadLength: MAX_COMMAND_BYTES,
    maxBackpressure: MAX_BACKPRESSURE,
    closeOnBackpressureLimit: 1,
    idleTimeout: 120,
    sendPingsAutomatically: true,
    upgrade(request) {
      const token = requestToken(request.headers.authorization || undefined, new URLSearchParams(request.query));
      if (!isAdminToken(token)) {
        refused.inc();
        return { refuse: { status: 401, error: 'admin token required for /scene (Authorization: Bearer <admin token> or ?token=)' } };
      }
      return { accept: { endpoint: 'scene', token, inFlight: 0, closed: false } };
    },
    open(ws) {
      o.handles.add(ws as WebSocket<unknown>);
      clientsGauge.set(++open);
      ws.subscribe(SCENE_TOPIC);
      // The current scene first, so a client never has to ask before it can draw.
      o.callMain<{ ok: boolean; scene?: unknown }>('scene.command', { op: 'get' }).then(
        (ack) => { if (ack.ok) send(ws, { type: 'scene', timestamp: Date.now(), data: ack.scene }); },
        (error: Error) => log.warn({ err: error.message }, '/scene: could not fetch the current scene for a new client'),
      );
    },
    message(ws, message) {
      const data = ws.getUserData();
      let cmd: { id?: unknown; op?: unknown };
      try {
        cmd = JSON.parse(Buffer.from(message).toString('utf8')) as { id?: unknown; op?: unknown };
      } catch (error) {
        messages.inc({ outcome: 'malformed' });
        send(ws, { type: 'scene_ack', id: null, ok: false, error: `message is not valid JSON: ${(error as Error).message}` });
        return;
      }
      if (cmd === null || typeof cmd !== 'object' || Array.isArray(cmd)) {
        messages.inc({ outcome: 'malformed' });
        send(ws, { type: 'scene_ack', id: null, ok: false, error: 'a command is a JSON object {id?, op, ...}' });
        return;
      }
      const id = cmd.id ?? null;
      if (data.inFlight >= MAX_IN_FLIGHT) {
        messages.inc({ outcome: 'busy' });
        send(ws, { type: 'scene_ack', id, ok: false, error: `too many commands in flight (limit ${MAX_IN_FLIGHT}); wait for acks` });
        return;
      }
      data.inFlight++;
      o.callMain<{ ok: boolean; [k: string]: unknown }>('scene.command', cmd, data.token).then(
        (ack) => {
          data.inFlight--;
          messages.inc({ outcome: ack.ok ? 'ok' : 'rejected' });
          const { status: _status, ...rest } = ack;
          send(ws, rest);
        },
        (error: Error) => {
          data.inFlight--;
          messages.inc({ outcome: 'failed' });
          send(ws, { type: 'scene_ack', id, ok: false, error: `scene service unavailable: ${error.message}` });
        },
      );
    },
    close(ws) {
      o.handles.delete(ws as WebSocket<unknown>);
      ws.getUserData().closed = true;
      clientsGauge.set(--open);
    },
  });

  return {
    onRecord(data, offset, length) {
      // Header bytes read in place: this runs for every fan-out record, nearly none of them scenes.
      if (data[offset] !== FanoutType.Update || data[offset + 1] !== CONTROL_CHANNEL || (data[offset + 2] & LEVEL_BIT) === 0) return false;
      const keyLen = data[offset + 4] | (data[offset + 5] << 8);
      if (keyLen !== SCENE_KEY.length) return false;
      const keyAt = offset + FANOUT_HEADER_BYTES;
      for (let i = 0; i < keyLen; i++) if (data[keyAt + i] !== SCENE_KEY[i]) return false;
      // publish copies into each subscriber's buffer before returning, so a view into the ring is enough.
      if (open > 0) app.publish(SCENE_TOPIC, data.subarray(keyAt + keyLen, offset + length), false);
      published.inc();
      return true;
    },
    clients: () => open,
  };
}

