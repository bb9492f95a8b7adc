/**
 * Request/response calls over one MessagePort: the control plane between the supervisor
 * and its actor threads, in both directions.
 *
 * Why our own and not comlink: a comlink call keeps its pending entry until the peer
 * answers, so a call that timed out, or whose peer died, stays allocated for as long as the
 * port lives; and racing it against "the peer died" from outside keeps every call's result
 * reachable from that race until the peer dies. Here every call is one entry in a table,
 * removed the moment the call settles: by its reply, by its deadline, or by `close()`,
 * which rejects everything still pending. Nothing a call allocates outlives it.
 *
 * Wire format (structured clone):
 *   request  { rpc: 'call', id, method, args }
 *   reply    { rpc: 'reply', id, ok: true, value } | { rpc: 'reply', id, ok: false, error: { name, message, stack } }
 * A reply for an id that is no longer pending (it timed out) is dropped and counted.
 */
import type { MessagePort } from 'node:worker_threads';

interface CallMessage { rpc: 'call'; id: number; method: string; args: unknown[] }
interface ErrorShape { name: string; message: string; stack?: string }
type ReplyMessage = { rpc: 'reply'; id: number; ok: true; value: unknown } | { rpc: 'reply'; id: number; ok: false; error: ErrorShape };

interface Pending {
  label: string;
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

export interface RpcClientErrors {
  /** The error a call gets when the channel closes before it settled (or it is made after). */
  closed(method: string): Error;
  timedOut(method: string, timeoutMs: number): Error;
}

export class RpcClient {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  private late = 0;

  constructor(private readonly port: MessagePort, private readonly errors: RpcClientErrors) {
    port.on('message', (message: unknown) => this.onReply(message));
  }

  /** Calls in flight; 0 whenever nothing is waiting for a reply. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Replies that came after their call had timed out (and were dropped). */
  get lateReplies(): number {
    return this.late;
  }

  /** `label` names the call in its errors (default: the method). */
  call(method: string, args: unknown[], timeoutMs: number, label = method): Promise<unknown> {
    if (this.closed) return Promise.reject(this.errors.closed(label));
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) reject(this.errors.timedOut(label, timeoutMs));
      }, timeoutMs);
      // The port decides whether this thread stays alive, not a pending deadline.
      timer.unref();
      this.pending.set(id, { label, resolve, reject, timer });
      try {
        this.port.postMessage({ rpc: 'call', id, method, args } satisfies CallMessage);
      } catch (error) {
        // Arguments that cannot be cloned: the call fails here, synchronously known.
        this.take(id);
        reject(error as Error);
      }
    });
  }

  /** Rejects every pending call and refuses new ones; closes the port. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const [id, entry] of this.pending) {
      this.pending.delete(id);
      clearTimeout(entry.timer);
      entry.reject(this.errors.closed(entry.label));
    }
    this.port.close();
  }

  private take(id: number): Pending | undefined {
    const entry = this.pending.get(id);
    if (!entry) return undefined;
    this.pending.delete(id);
    clearTimeout(entry.timer);
    return entry;
  }

  private onReply(message: unknown): void {
    if (!isReply(message)) return;
    const entry = this.take(message.id);
    if (!entry) {
      this.late += 1;
      return;
    }
    if (message.ok) entry.resolve(message.value);
    else entry.reject(reviveError(message.error));
  }
}

export type RpcDispatch = (method: string, args: unknown[]) => unknown;

/**
 * Answers calls arriving on `port` through `dispatch`, which may return a value or a
 * promise; a throw or rejection reaches the caller as an error with the same name and
 * message. A result that cannot be cloned is reported as an error too.
 */
export function serveRpc(port: MessagePort, dispatch: RpcDispatch): void {
  port.on('message', (message: unknown) => {
    if (!isCall(message)) return;
    const { id, method, args } = message;
    new Promise<unknown>((resolve) => resolve(dispatch(method, args))).then(
      (value) => reply(port, id, method, { ok: true, value }),
      (error: unknown) => reply(port, id, method, { ok: false, error: errorShape(error) }),
    );
  });
}

/**
 * A dispatcher over a table of methods, looked up as own properties only: "constructor" or
 * "__proto__" are unknown methods, not inherited ones.
 */
export function dispatchTo(table: () => Record<string, unknown>, describe: string): RpcDispatch {
  return (method, args) => {
    const methods = table();
    const fn = Object.hasOwn(methods, method) ? methods[method] : undefined;
    if (typeof fn !== 'function') throw new Error(`${describe} has no method "${method}"`);
    return (fn as (...a: unknown[]) => unknown)(...args);
  };
}

function reply(port: MessagePort, id: number, method: string, body: { ok: true; value: unknown } | { ok: false; error: ErrorShape }): void {
  try {
    port.postMessage({ rpc: 'reply', id, ...body } as ReplyMessage);
  } catch (error) {
    // The value could not be cloned (a function, a class instance with native state…).
    try {
      port.postMessage({ rpc: 'reply', id, ok: false, error: { name: 'DataCloneError', message: `result of "${method}" could not be sent: ${(error as Error).message}` } } satisfies ReplyMessage);
    } catch {
      // The port is closed: nobody is waiting any more.
    }
  }
}

function errorShape(error: unknown): ErrorShape {
  if (error instanceof Error) return { name: error.name, message: error.message, stack: error.stack };
  return { name: 'Error', message: String(error) };
}

function reviveError(shape: ErrorShape): Error {
  const error = new Error(shape.message);
  error.name = shape.name;
  if (shape.stack) error.stack = shape.stack;
  return error;
}

function isCall(m: unknown): m is CallMessage {
  const c = m as CallMessage;
  return typeof c === 'object' && c !== null && c.rpc === 'call' && Number.isSafeInteger(c.id) && typeof c.method === 'string' && Array.isArray(c.args);
}

function isReply(m: unknown): m is ReplyMessage {
  const r = m as ReplyMessage;
  return typeof r === 'object' && r !== null && r.rpc === 'reply' && Number.isSafeInteger(r.id) && typeof r.ok === 'boolean';
}
