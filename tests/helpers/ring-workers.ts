/**
 * Starting ring test fixtures in worker threads. Workers cannot load TypeScript, so the
 * fixtures run from their compiled twins in dist/tests/fixtures (build first:
 * `npx tsc -p tsconfig.json`).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

export function fixtureUrl(name: string): URL {
  const url = new URL(`../../dist/tests/fixtures/${name}.js`, import.meta.url);
  if (!existsSync(fileURLToPath(url))) {
    throw new Error(`compiled fixture ${fileURLToPath(url)} is missing: run "npx tsc -p tsconfig.json" before the ring tests`);
  }
  return url;
}

export interface Running<T> {
  worker: Worker;
  /** The fixture's single result message; rejects if it throws or exits first. */
  result: Promise<T>;
}

export function startFixture<T>(name: string, data: unknown): Running<T> {
  const worker = new Worker(fixtureUrl(name), { workerData: data });
  const result = new Promise<T>((resolve, reject) => {
    worker.once('message', (m: T) => resolve(m));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`fixture ${name} exited (code ${code}) without a result`)));
  });
  // A test that terminates a fixture on purpose never awaits its result.
  result.catch(() => undefined);
  return { worker, result };
}

/** Control block shared with fixtures (see CTL_* in fixtures/ring-common.ts). */
export function newCtl(): { sab: SharedArrayBuffer; i32: Int32Array } {
  const sab = new SharedArrayBuffer(64);
  return { sab, i32: new Int32Array(sab) };
}

export async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
