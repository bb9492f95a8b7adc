/**
 * The main thread's heap stays flat under a day's worth of actor-backed requests.
 *
 * Every `/metrics`, `/api/state` and `/api/runs` request goes gateway thread → main thread
 * (upcall) → every actor (supervisor call) and back, so a call whose bookkeeping outlives
 * it shows up here as heap that a full GC cannot free.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './helpers/service-harness.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const MB = 2 ** 20;

async function settledHeap(): Promise<number> {
  // Twice, with a turn of the event loop between: finalizers and weak callbacks run in between.
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
  }
  return process.memoryUsage().heapUsed;
}

/** `total` GETs, `concurrency` at a time; every answer must be a 200 with a body. */
async function hammer(port: number, paths: string[], total: number, concurrency = 8): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const path = paths[next++ % paths.length];
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      const body = await res.arrayBuffer();
      if (res.status !== 200 || body.byteLength === 0) throw new Error(`${path} answered ${res.status} (${body.byteLength} bytes)`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

function supervisorHeapUsed(exposition: string): number {
  const line = exposition.split('\n').find((l) => l.startsWith('nodejs_heap_size_used_bytes{') && l.includes('actor="supervisor"'));
  if (!line) throw new Error('no nodejs_heap_size_used_bytes{actor="supervisor"} in /metrics');
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

let h: Harness;
beforeAll(async () => { h = await startHarness(); });
afterAll(async () => { await h?.close(); });

describe('main-thread memory under actor-backed requests', () => {
  it('5,000 requests to /metrics, /api/state and /api/runs leave the heap after GC within +10 MB', async () => {
    // Warm-up: JIT, lazily built router state and connection pools are not a leak.
    await hammer(h.service.port, ['/metrics', '/api/state', '/api/runs'], 300);
    const before = await settledHeap();
    await hammer(h.service.port, ['/metrics', '/api/state', '/api/runs'], 5_000);
    const after = await settledHeap();
    expect((after - before) / MB).toBeLessThan(10);
  }, 240_000);

  it('2,000 /metrics scrapes grow nodejs_heap_size_used_bytes{actor="supervisor"} by less than 20 MB', async () => {
    const scrape = async () => (await fetch(`http://127.0.0.1:${h.service.port}/metrics`)).text();
    await settledHeap();
    const before = supervisorHeapUsed(await scrape());
    await hammer(h.service.port, ['/metrics'], 2_000);
    await settledHeap();
    const after = supervisorHeapUsed(await scrape());
    expect((after - before) / MB).toBeLessThan(20);
  }, 240_000);
});
