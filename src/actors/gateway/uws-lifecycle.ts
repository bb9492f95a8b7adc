/**
 * Keeping a uWS worker thread exit-safe.
 *
 * A worker thread whose uv loop still holds uWS poll handles when it exits makes Node
 * abort the WHOLE process ("uv_loop_close() while having open handles"). So every handle
 * this thread opens is tracked here: the listen socket and every WebSocket. `closeAll`
 * closes them all (politely with `end` on a graceful stop, abruptly with `close` on a
 * crash), then `app.close()` drops idle keep-alive HTTP connections.
 *
 * The crash guard turns an uncaught exception or unhandled rejection into: close every
 * handle, then exit the worker with code 1 on a later tick (the closes must reach the
 * loop first), so the supervisor sees an ordinary crash and restarts the actor.
 *
 * The same guard closes every handle from the thread's `exit` event, which runs
 * synchronously on any process.exit() in this thread (and after an uncaught error that
 * slipped past the handlers): closing there is still early enough (verified).
 *
 * What this cannot cover: `worker.terminate()` stops JavaScript at once, without an `exit`
 * event, so no handle can be closed and the process aborts. So the gateways are marked
 * `nativeHandles` in their actor spec and the supervisor never terminates them: it asks the
 * thread to exit (this guard's exit hook then closes everything) and waits; a thread whose
 * loop stays blocked escalates to a process restart instead (supervisor/process-exit.ts).
 */
import type { TemplatedApp, WebSocket, us_listen_socket } from 'uWebSockets.js';
import type { UwsModule } from '../../shared/http-server.js';

export class UwsHandles {
  private listenSocket: us_listen_socket | undefined;
  private readonly sockets = new Set<WebSocket<unknown>>();
  private closed = false;

  constructor(private readonly uws: UwsModule, private readonly app: TemplatedApp) {}

  get isClosed(): boolean {
    return this.closed;
  }

  setListenSocket(socket: us_listen_socket): void {
    this.listenSocket = socket;
  }

  add(ws: WebSocket<unknown>): void {
    this.sockets.add(ws);
  }

  delete(ws: WebSocket<unknown>): void {
    this.sockets.delete(ws);
  }

  get openSockets(): number {
    return this.sockets.size;
  }

  /** Stop accepting new connections (the other gateway threads keep serving the port). */
  closeListen(): void {
    if (this.listenSocket) {
      this.uws.us_listen_socket_close(this.listenSocket);
      this.listenSocket = undefined;
    }
  }

  /** Sends a close frame to every WebSocket; they close once their peers answer. */
  endAll(code: number, reason: string): void {
    for (const ws of [...this.sockets]) {
      try {
        ws.end(code, reason);
      } catch {
        this.sockets.delete(ws); // already closed
      }
    }
  }

  /** Closes everything at once, without waiting for anyone. Safe to call twice. */
  closeAll(): void {
    this.closeListen();
    for (const ws of [...this.sockets]) {
      try {
        ws.close();
      } catch {
        // already closed
      }
    }
    this.sockets.clear();
    if (!this.closed) {
      this.closed = true;
      // Native uWS has close() (missing from the typings): closes idle HTTP keep-alive sockets.
      (this.app as TemplatedApp & { close?: () => void }).close?.();
    }
  }
}

/**
 * Installs the process-level crash guard of this worker thread. `onCrash` runs first
 * (log), then every handle is closed and the thread exits with code 1 on a later tick.
 */
export function installCrashGuard(handles: UwsHandles, onCrash: (error: unknown, origin: string) => void): () => void {
  let crashing = false;
  const handler = (origin: string) => (error: unknown) => {
    if (crashing) return;
    crashing = true;
    try {
      onCrash(error, origin);
    } catch {
      // logging must not stop the cleanup
    }
    try {
      handles.closeAll();
    } finally {
      // A macrotask later: uWS has processed the closes by then, so the loop is handle-free.
      setTimeout(() => process.exit(1), 0);
    }
  };
  const onException = handler('uncaughtException');
  const onRejection = handler('unhandledRejection');
  const onExit = () => handles.closeAll();
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  process.on('exit', onExit);
  return () => {
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onRejection);
    process.off('exit', onExit);
  };
}
