/**
 * A real redis-server (Debian's `redis-server` package) on a random loopback port, for the cluster tests.
 *
 * Under CI the binary must exist (`.ci/run` installs it) and a missing one fails the test file. On a developer's
 * machine without it, `describeWithRedis` skips its tests with the reason printed, the one skip the project allows.
 *
 * Each server runs with no persistence unless asked (`appendonly`), so a restart within a test starts empty or from
 * its append-only file in the server's own temp directory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe } from 'vitest';
import { reservePort } from '../../src/shared/reserve-port.js';

const BINARY = process.env.RINGCAST_TEST_REDIS_SERVER ?? 'redis-server';

/** Why redis-server cannot run here, or undefined when it can. */
export function redisUnavailableReason(): string | undefined {
  const r = spawnSync(BINARY, ['--version'], { encoding: 'utf8', timeout: 5_000 });
  if (r.error) return `${BINARY} not found (apt-get install redis-server): ${r.error.message}`;
  if (r.status !== 0) return `${BINARY} --version exited ${r.status}: ${r.stderr}`;
  return undefined;
}

/** `describe` that runs when redis-server can, skips (outside CI only) when it cannot. */
export function describeWithRedis(name: string, body: () => void): void {
  const reason = redisUnavailableReason();
  if (reason === undefined) {
    describe(name, body);
    return;
  }
  if (process.env.CI) throw new Error(`CI needs redis-server for "${name}": ${reason}`);
  console.warn(`skipping "${name}": ${reason}`);
  describe.skip(name, body);
}


async function waitForPing(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect(port, '127.0.0.1');
      let buf = '';
      sock.setTimeout(500, () => { sock.destroy(); resolve(false); });
      sock.once('error', () => resolve(false));
      sock.on('data', (d) => {
        buf += d.toString();
        if (buf.includes('+PONG')) { sock.destroy(); resolve(true); }
      });
      sock.once('connect', () => sock.write('PING\r\n'));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface RedisServerOptions {
  /** Keep an append-only file so a restart keeps the data (default false: a restart starts empty). */
  appendonly?: boolean;
}

export class RedisServer {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'ringcast-redis-'));
  port = 0;
  private child: ChildProcess | undefined;
  private log: string[] = [];

  constructor(private readonly options: RedisServerOptions = {}) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts (or restarts, on the same port) the server and waits until it answers PING. */
  async start(): Promise<this> {
    if (this.child) throw new Error('redis-server already running');
    if (this.port === 0) this.port = await reservePort('127.0.0.1', 0);
    const args = [
      '--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '',
      '--appendonly', this.options.appendonly ? 'yes' : 'no', '--protected-mode', 'no', '--loglevel', 'warning',
    ];
    const child = spawn(BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (d) => this.pushLog(String(d)));
    child.stderr?.on('data', (d) => this.pushLog(String(d)));
    this.child = child;
    child.once('exit', () => { if (this.child === child) this.child = undefined; });
    try {
      await waitForPing(this.port, 10_000);
    } catch (error) {
      throw new Error(`${(error as Error).message}; its output: ${this.log.join('').slice(-2000)}`);
    }
    return this;
  }

  /** Stops the server (SIGKILL by default: Redis dies without a goodbye, as in a crash). */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
    this.child = undefined;
  }

  async restart(downMs = 0): Promise<void> {
    await this.stop();
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
    await this.start();
  }

  /** Stops the server and removes its directory. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private pushLog(s: string): void {
    this.log.push(s);
    if (this.log.length > 200) this.log.splice(0, this.log.length - 200);
  }
}

export async function startRedisServer(options?: RedisServerOptions): Promise<RedisServer> {
  return new RedisServer(options).start();
}

/**
 * A redis-server for the enclosing describe: started before its tests (a client on it handed
 * to `onClient`), the client disconnected and the server disposed after them. Called first
 * in a describe, its teardown runs after the describe's own afterAll hooks.
 */
export function useRedisServer(onClient: (client: Redis) => void): RedisServer {
  const server = new RedisServer();
  let client: Redis | undefined;
  beforeAll(async () => {
    await server.start();
    client = new Redis(server.url, { maxRetriesPerRequest: 1 });
    onClient(client);
  });
  afterAll(async () => {
    client?.disconnect();
    await server.dispose();
  });
  return server;
}
