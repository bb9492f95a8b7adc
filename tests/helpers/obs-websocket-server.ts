/**
 * A local obs-websocket **v5** server for tests: what OBS Studio's built-in server says
 * to a client, close enough that obs-websocket-js cannot tell the difference.
 *
 * Protocol (obs-websocket 5.x, rpcVersion 1):
 *   server → Hello (op 0) {obsWebSocketVersion, rpcVersion, authentication?: {challenge, salt}}
 *   client → Identify (op 1) {rpcVersion, authentication?, eventSubscriptions?}
 *            authentication = base64(sha256(base64(sha256(password + salt)) + challenge))
 *   server → Identified (op 2) {negotiatedRpcVersion}, or close 4009 (bad auth), 4010 (bad rpcVersion)
 *   client → Request (op 6) {requestType, requestId, requestData} → RequestResponse (op 7)
 *   server → Event (op 5) {eventType, eventIntent, eventData} (only the subscribed intents)
 * Subprotocols: `obswebsocket.json` (text frames) and `obswebsocket.msgpack` (binary
 * frames); the first one the client offers that we support is selected. A client that
 * offers none gets JSON, as OBS does.
 *
 * Every request is recorded (also failing ones) so tests can assert exactly what OBS
 * would have been asked to do. The peer can stop and start again on the same port
 * (OBS quitting and coming back) and can be told to stop answering (a hung OBS).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decode as msgpackDecode, encode as msgpackEncode } from '@msgpack/msgpack';
import { WebSocketServer, type WebSocket } from 'ws';
import { startHarness, ADMIN_TOKEN, type Harness } from './service-harness.js';

export const OBS_JSON = 'obswebsocket.json';
export const OBS_MSGPACK = 'obswebsocket.msgpack';
type Protocol = typeof OBS_JSON | typeof OBS_MSGPACK;

/** obs-websocket close codes (WebSocketCloseCode in the server's source). */
export const CloseCode = {
  UnknownReason: 4000, MessageDecodeError: 4002, MissingDataField: 4003, InvalidDataFieldType: 4004,
  UnknownOpCode: 4006, NotIdentified: 4007, AlreadyIdentified: 4008, AuthenticationFailed: 4009,
  UnsupportedRpcVersion: 4010,
} as const;

/** RequestStatus codes used here. */
export const Status = {
  Success: 100, UnknownRequestType: 204, MissingRequestField: 300, InvalidRequestFieldType: 400, ResourceNotFound: 600,
} as const;

const EVENT_INTENT_SCENES = 1 << 2;
const EVENT_SUBSCRIPTION_ALL = 0x7ff;

export interface RecordedRequest {
  requestType: string;
  requestData: Record<string, unknown> | undefined;
  /** Status code the peer answered with (undefined while hanging). */
  code?: number;
  protocol: Protocol;
  at: number;
}

export interface ObsPeerOptions {
  /** Set → authentication required. */
  password?: string;
  /** 0 (default) picks a free port on the first start; restarts reuse it. */
  port?: number;
  scenes?: string[];
  inputs?: string[];
  /** Subprotocols this peer supports, in preference order when the client offers several. */
  protocols?: Protocol[];
}

interface Session {
  ws: WebSocket;
  protocol: Protocol;
  identified: boolean;
  subscriptions: number;
  challenge: string;
}

const DEFAULT_SCENES = ['Overview', 'Board Focus', 'Metrics Focus', 'Prediction', 'Milestone'];
const DEFAULT_INPUTS = ['ringcast-milestone', 'ringcast-performance'];

function sha256Base64(text: string): string {
  return createHash('sha256').update(text).digest('base64');
}

export class ObsWebSocketPeer {
  readonly requests: RecordedRequest[] = [];
  /** Close codes this peer sent (4009 for a bad password, …). */
  readonly closes: number[] = [];
  /** Clients that completed Identify. */
  identifiedCount = 0;
  currentScene: string;
  readonly scenes: string[];
  readonly inputSettings = new Map<string, Record<string, unknown>>();
  /** While true, requests are recorded but never answered (a hung OBS). */
  hang = false;
  port: number;

  private server: WebSocketServer | undefined;
  private readonly sessions = new Set<Session>();
  private readonly salt = randomBytes(24).toString('base64');
  private readonly protocols: Protocol[];

  private constructor(private readonly options: ObsPeerOptions) {
    this.port = options.port ?? 0;
    this.scenes = [...(options.scenes ?? DEFAULT_SCENES)];
    this.currentScene = this.scenes[0]!;
    for (const input of options.inputs ?? DEFAULT_INPUTS) this.inputSettings.set(input, {});
    this.protocols = options.protocols ?? [OBS_JSON, OBS_MSGPACK];
  }

  static async start(options: ObsPeerOptions = {}): Promise<ObsWebSocketPeer> {
    const peer = new ObsWebSocketPeer(options);
    await peer.restart();
    return peer;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  /** Starts listening (again) on the same port. */
  async restart(): Promise<void> {
    if (this.server) return;
    const server = new WebSocketServer({
      host: '127.0.0.1',
      port: this.port,
      // Select the first protocol the client offered that we speak; none offered → JSON (OBS's default).
      handleProtocols: (offered: Set<string>) => [...offered].find((p) => (this.protocols as string[]).includes(p)) ?? false,
    });
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    this.port = (server.address() as { port: number }).port;
    server.on('connection', (ws) => this.accept(ws));
    this.server = server;
  }

  /** OBS quits: every client gets 1001 (going away) and the port closes. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const s of this.sessions) s.ws.close(1001, 'OBS is shutting down');
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // A client that does not answer the close handshake is cut off.
    setTimeout(() => { for (const s of this.sessions) s.ws.terminate(); }, 500).unref();
    await closed;
    this.sessions.clear();
  }

  /** The streamer picks a scene in OBS itself: no request, only the event every client sees. */
  switchByHand(sceneName: string): void {
    if (!this.scenes.includes(sceneName)) throw new Error(`no scene ${sceneName}`);
    this.currentScene = sceneName;
    this.broadcast('CurrentProgramSceneChanged', EVENT_INTENT_SCENES, { sceneName, sceneUuid: this.uuid(sceneName) });
  }

  clearRequests(): void {
    this.requests.length = 0;
  }

  requestsOf(type: string): RecordedRequest[] {
    return this.requests.filter((r) => r.requestType === type);
  }

  /** Requests other than the read-only ones a client makes to learn state. */
  actions(): Array<{ requestType: string; requestData: Record<string, unknown> | undefined }> {
    return this.requests
      .filter((r) => !r.requestType.startsWith('Get'))
      .map(({ requestType, requestData }) => ({ requestType, requestData }));
  }

  async waitFor<T>(probe: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = probe();
      if (found) return found;
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; requests: ${JSON.stringify(this.requests.map((r) => [r.requestType, r.requestData]))}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private accept(ws: WebSocket): void {
    const protocol: Protocol = ws.protocol === OBS_MSGPACK ? OBS_MSGPACK : OBS_JSON;
    const session: Session = { ws, protocol, identified: false, subscriptions: EVENT_SUBSCRIPTION_ALL, challenge: randomBytes(24).toString('base64') };
    this.sessions.add(session);
    ws.on('close', () => this.sessions.delete(session));
    ws.on('error', () => this.sessions.delete(session));
    ws.on('message', (raw, isBinary) => this.onMessage(session, raw as Buffer, isBinary));
    this.send(session, 0, {
      obsWebSocketVersion: '5.5.2',
      rpcVersion: 1,
      ...(this.options.password !== undefined ? { authentication: { challenge: session.challenge, salt: this.salt } } : {}),
    });
  }

  private close(session: Session, code: number, reason: string): void {
    this.closes.push(code);
    session.ws.close(code, reason);
  }

  private send(session: Session, op: number, d: unknown): void {
    if (session.ws.readyState !== session.ws.OPEN) return;
    const message = { op, d };
    session.ws.send(session.protocol === OBS_MSGPACK ? msgpackEncode(message) : JSON.stringify(message));
  }

  private onMessage(session: Session, raw: Buffer, isBinary: boolean): void {
    let message: { op?: unknown; d?: unknown };
    try {
      // A msgpack session must send binary frames and a JSON one text frames, as in OBS.
      if (session.protocol === OBS_MSGPACK) {
        if (!isBinary) throw new Error('text frame on a msgpack session');
        message = msgpackDecode(raw) as typeof message;
      } else {
        if (isBinary) throw new Error('binary frame on a json session');
        message = JSON.parse(raw.toString('utf8')) as typeof message;
      }
    } catch (error) {
      this.close(session, CloseCode.MessageDecodeError, `Unable to decode message: ${(error as Error).message}`);
      return;
    }
    if (typeof message !== 'object' || message === null || typeof message.op !== 'number') {
      this.close(session, CloseCode.MissingDataField, 'Your request is missing an `op`.');
      return;
    }
    const d = (message.d ?? undefined) as Record<string, unknown> | undefined;
    if (typeof d !== 'object' || d === null) {
      this.close(session, CloseCode.MissingDataField, 'Your request is missing a `d`.');
      return;
    }
    switch (message.op) {
      case 1: this.identify(session, d); return;
      case 3: // Reidentify
        if (!session.identified) return this.close(session, CloseCode.NotIdentified, 'You must identify before sending other messages.');
        if (typeof d.eventSubscriptions === 'number') session.subscriptions = d.eventSubscriptions;
        this.send(session, 2, { negotiatedRpcVersion: 1 });
        return;
      case 6:
        if (!session.identified) return this.close(session, CloseCode.NotIdentified, 'You must identify before sending other messages.');
        this.request(session, d);
        return;
      default:
        this.close(session, CloseCode.UnknownOpCode, `Unknown OpCode: ${message.op}`);
    }
  }

  private identify(session: Session, d: Record<string, unknown>): void {
    if (session.identified) return this.close(session, CloseCode.AlreadyIdentified, 'You are already Identified with the obs-websocket server.');
    if (d.rpcVersion !== 1) return this.close(session, CloseCode.UnsupportedRpcVersion, `Your requested RPC version (${String(d.rpcVersion)}) is not supported by this server.`);
    if (this.options.password !== undefined) {
      const expected = sha256Base64(sha256Base64(this.options.password + this.salt) + session.challenge);
      if (d.authentication !== expected) return this.close(session, CloseCode.AuthenticationFailed, 'Authentication failed.');
    }
    if (typeof d.eventSubscriptions === 'number') session.subscriptions = d.eventSubscriptions;
    session.identified = true;
    this.identifiedCount++;
    this.send(session, 2, { negotiatedRpcVersion: 1 });
  }

  private request(session: Session, d: Record<string, unknown>): void {
    const requestType = typeof d.requestType === 'string' ? d.requestType : '';
    const requestId = typeof d.requestId === 'string' ? d.requestId : '';
    const requestData = (typeof d.requestData === 'object' && d.requestData !== null ? d.requestData : undefined) as Record<string, unknown> | undefined;
    const record: RecordedRequest = { requestType, requestData, protocol: session.protocol, at: Date.now() };
    this.requests.push(record);
    if (!requestType || !requestId) {
      this.close(session, CloseCode.MissingDataField, 'Your request is missing a `requestType` or `requestId`.');
      return;
    }
    if (this.hang) return;
    const { code, comment, responseData, after } = this.execute(requestType, requestData);
    record.code = code;
    this.send(session, 7, {
      requestType,
      requestId,
      requestStatus: { result: code === Status.Success, code, ...(comment ? { comment } : {}) },
      ...(responseData ? { responseData } : {}),
    });
    after?.();
  }

  private execute(type: string, data: Record<string, unknown> | undefined): { code: number; comment?: string; responseData?: Record<string, unknown>; after?: () => void } {
    const field = (name: string) => data?.[name];
    const missing = (name: string) => ({ code: Status.MissingRequestField, comment: `Your request is missing the \`${name}\` field.` });
    switch (type) {
      case 'GetVersion':
        return {
          code: Status.Success,
          responseData: {
            obsVersion: '30.0.2', obsWebSocketVersion: '5.5.2', rpcVersion: 1,
            availableRequests: ['GetVersion', 'GetSceneList', 'GetCurrentProgramScene', 'SetCurrentProgramScene', 'SetInputSettings', 'TriggerHotkeyByName'],
            supportedImageFormats: ['png', 'jpg'], platform: 'linux', platformDescription: 'ringcast test peer',
          },
        };
      case 'GetSceneList':
        return {
          code: Status.Success,
          responseData: {
            currentProgramSceneName: this.currentScene, currentProgramSceneUuid: this.uuid(this.currentScene), currentPreviewSceneName: null, currentPreviewSceneUuid: null,
            // OBS lists scenes bottom-up: index 0 is the last scene in the UI list.
            scenes: this.scenes.map((sceneName, i) => ({ sceneIndex: this.scenes.length - 1 - i, sceneName, sceneUuid: this.uuid(sceneName) })).reverse(),
          },
        };
      case 'GetCurrentProgramScene':
        return { code: Status.Success, responseData: { currentProgramSceneName: this.currentScene, sceneName: this.currentScene, sceneUuid: this.uuid(this.currentScene) } };
      case 'SetCurrentProgramScene': {
        const sceneName = field('sceneName');
        if (sceneName === undefined) return missing('sceneName');
        if (typeof sceneName !== 'string') return { code: Status.InvalidRequestFieldType, comment: 'The field value of `sceneName` must be a string.' };
        if (!this.scenes.includes(sceneName)) return { code: Status.ResourceNotFound, comment: `No source was found by the name of \`${sceneName}\`.` };
        return {
          code: Status.Success,
          after: () => {
            this.currentScene = sceneName;
            this.broadcast('CurrentProgramSceneChanged', EVENT_INTENT_SCENES, { sceneName, sceneUuid: this.uuid(sceneName) });
          },
        };
      }
      case 'SetInputSettings': {
        const inputName = field('inputName');
        const inputSettings = field('inputSettings');
        if (inputName === undefined) return missing('inputName');
        if (inputSettings === undefined) return missing('inputSettings');
        if (typeof inputName !== 'string') return { code: Status.InvalidRequestFieldType, comment: 'The field value of `inputName` must be a string.' };
        if (typeof inputSettings !== 'object' || inputSettings === null || Array.isArray(inputSettings)) return { code: Status.InvalidRequestFieldType, comment: 'The field value of `inputSettings` must be an object.' };
        const current = this.inputSettings.get(inputName);
        if (!current) return { code: Status.ResourceNotFound, comment: `No source was found by the name of \`${inputName}\`.` };
        // overlay defaults to true: merge into the existing settings; false replaces them.
        this.inputSettings.set(inputName, field('overlay') === false ? { ...inputSettings } : { ...current, ...inputSettings });
        return { code: Status.Success };
      }
      case 'TriggerHotkeyByName': {
        const hotkeyName = field('hotkeyName');
        if (hotkeyName === undefined) return missing('hotkeyName');
        if (typeof hotkeyName !== 'string') return { code: Status.InvalidRequestFieldType, comment: 'The field value of `hotkeyName` must be a string.' };
        return { code: Status.Success };
      }
      default:
        return { code: Status.UnknownRequestType, comment: `Your request type is not valid: ${type}` };
    }
  }

  private broadcast(eventType: string, eventIntent: number, eventData: Record<string, unknown>): void {
    for (const s of this.sessions) {
      if (s.identified && (s.subscriptions & eventIntent) !== 0) this.send(s, 5, { eventType, eventIntent, eventData });
    }
  }

  private uuid(name: string): string {
    const h = createHash('sha1').update(name).digest('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
  }
}

// ── ringcast with the OBS actor pointed at a peer (shared by the OBS service tests) ──

export const OBS_PASSWORD = 'obs-test-password-9f3c';

export interface ObsStatus {
  connected: boolean;
  breaker: 'closed' | 'open' | 'half-open';
  url: string;
  currentScene: string | null;
  requestedScene: string | null;
  lastError: string | null;
  queued: number;
  celebrations: { active: unknown; pending: number; shown: number; dropped: number };
  performanceText: string | null;
}

/** `performanceEveryMs` has no CLI flag: it comes from a config file. */
export async function startWithObs(url: string, extra: string[] = [], obsFile: Record<string, unknown> = {}): Promise<Harness> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ringcast-obs-'));
  const file = path.join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ obs: { performanceEveryMs: 500, ...obsFile } }));
  const h = await startHarness(['--config', file, '--obs-url', url, '--obs-celebration-seconds', '1', ...extra]);
  return { ...h, async close() { await h.close(); rmSync(dir, { recursive: true, force: true }); } };
}

export function obsStatus(h: Harness): Promise<ObsStatus> {
  return h.service.supervisor.call('obs', 'status') as Promise<ObsStatus>;
}

export async function until(probe: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function fireMilestone(h: Harness, body: Record<string, unknown>): Promise<Response> {
  return fetch(`http://127.0.0.1:${h.service.port}/api/admin/milestone`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}
