/** What each server variant run by server-child.ts exposes to it. */
import type { ServerImpl } from './ipc.js';

export interface FanoutServer {
  impl: ServerImpl;
  port: number;
  note?: string;
  /** Called by the child's ticker at 10 Hz with the tick number and the server stamp (wall ms). */
  tick(tick: number, stamp: number): void;
  /** Clients that have subscribed and not gone away. */
  clients(): number;
  stop(): Promise<void>;
}
