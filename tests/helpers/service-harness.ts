/** Start the whole service in-process (actors on worker threads) and talk to it like a user would. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import WebSocket from 'ws';
import { loadConfig } from '../../src/shared/config.js';
import { startService, type Service } from '../../src/service.js';
import { capturingLogger } from './supervisor-harness.js';

export const INGEST_TOKEN = 'e2e-ingest-token';
export const ADMIN_TOKEN = 'e2e-admin-token';

export interface Harness {
  service: Service;
  dataDir: string;
  tcpPort: number;
  unixPath: string;
  lines: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

export async function startHarness(extraArgs: string[] = []): Promise<Harness> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'ringcast-e2e-'));
  const config = loadConfig([
    '--no-demo', '--port', '0', '--data-dir', dataDir, '--ingest-tcp-port', '0', '--fanout-threads', '2',
    '--log-level', 'warn', '--ingest-token', INGEST_TOKEN, '--admin-token', ADMIN_TOKEN, ...extraArgs,
  ], {});
  const { logger, lines } = capturingLogger();
  const service = await startService(config, logger);
  const address = (await service.supervisor.call('ingest', 'address')) as { tcpPort: number; unixPath: string };
  return {
    service, dataDir, lines, tcpPort: address.tcpPort, unixPath: address.unixPath,
    async close() {
      await service.stop('test done');
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The service with the demo trainer emitting Keisei-sized experience at a brisk pace, started
 * before the enclosing describe's (or file's) tests and closed after them; `onStarted` gets it
 * and its `/experience` URL.
 */
export function useDemoExperienceService(onStarted: (h: Harness, experienceUrl: string) => void): void {
  let h: Harness | undefined;
  beforeAll(async () => {
    h = await startHarness(['--demo', '--demo-streams', '0', '--demo-moves-per-sec', '200', '--demo-steps-per-sec', '20']);
    onStarted(h, `ws://127.0.0.1:${h.service.port}/experience`);
  }, 60_000);
  afterAll(async () => { await h?.close(); });
}

export interface WsMessage { type: string; timestamp?: number; data?: Record<string, unknown> & { [k: string]: unknown }; [k: string]: unknown }

/** An overlay client: connects to /ws, subscribes, and records every JSON message. */
export class OverlayClient {
  readonly messages: WsMessage[] = [];
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => this.messages.push(JSON.parse(String(data)) as WsMessage));
  }

  static async connect(port: number, subscription: Record<string, unknown>): Promise<OverlayClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const client = new OverlayClient(ws);
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
    ws.send(JSON.stringify(subscription));
    await client.waitFor((m) => m.type === 'connection_established', 5_000);
    return client;
  }

  async waitFor(match: (m: WsMessage) => boolean, timeoutMs: number, what = 'a matching message'): Promise<WsMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(this.messages.map((m) => [m.type, m.data?.run, m.data?.step]))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): void {
    this.ws.terminate();
  }
}
