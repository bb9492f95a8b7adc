/**
 * The Node SDK's offline spool (src/sdk/spool.ts, `spoolDir` of createProducer): the file
 * format's promises on their own (torn records skipped, the bound drops the oldest and counts
 * them, what was acknowledged is not read back), and a producer through a real service
 * stopped for 4 s, with the trainer itself restarted during the outage.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createProducer } from '../src/sdk/producer.js';
import { markLate, Spool } from '../src/sdk/spool.js';
import { reservePort } from '../src/shared/reserve-port.js';
import { decodeEvent, encodeMetrics, type MetricsEvent } from '../src/shared/telemetry/event-codec.js';
import { cleanupMainProcesses, listeningPort, runMain, tempDir } from './helpers/main-process.js';
import { OverlayClient } from './helpers/service-harness.js';

const dirs: string[] = [];
const scratch = () => { const d = mkdtempSync(path.join(os.tmpdir(), 'ringcast-sdk-spool-')); dirs.push(d); return d; };
afterEach(() => {
  cleanupMainProcesses();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const stepOf = (e: Uint8Array) => (decodeEvent(e) as MetricsEvent).step;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('sdk spool: the file format', () => {
  it('a torn record is skipped, the rest kept in order; acknowledged records are not read back', () => {
    const dir = scratch();
    const a = new Spool(dir, 1 << 20);
    a.append(Array.from({ length: 10 }, (_, i) => encodeMetrics(i + 1, { loss: i })));
    a.close();
    const [seg] = readdirSync(dir).filter((f) => f.endsWith('.rcspool'));
    const file = path.join(dir, seg);
    const data = Buffer.from(readFileSync(file));
    let off = 0;
    for (let i = 0; i < 3; i++) off += 12 + data.readUInt32LE(off + 4);
    data[off + 12 + 20] ^= 0xff; // record 4 fails its CRC
    const first = data.subarray(0, 12 + data.readUInt32LE(4));
    writeFileSync(file, Buffer.concat([data, first.subarray(0, first.length >> 1)])); // and a half-written record at the end
    const b = new Spool(dir, 1 << 20);
    expect([b.pending, b.torn]).toEqual([9, 2]);
    const batch = b.readBatch(100, 1 << 20)!;
    expect(batch.events.map(stepOf)).toEqual([1, 2, 3, 5, 6, 7, 8, 9, 10]);
    b.commit(batch.segment, batch.end, batch.events.length);
    b.close();
    expect(new Spool(dir, 1 << 20).pending).toBe(0);
  });

  it('past maxBytes whole oldest segments go, counted; the newest survive in order', () => {
    const dir = scratch();
    const s = new Spool(dir, 64 << 10);
    const wide = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`metric_${i}`, i]));
    for (let step = 1; step <= 300; step++) s.append([encodeMetrics(step, wide)]);
    expect(s.droppedOldest).toBeGreaterThan(0);
    expect(s.bytes).toBeLessThanOrEqual(64 << 10);
    expect(s.pending).toBe(300 - s.droppedOldest);
    const steps: number[] = [];
    for (let b = s.readBatch(64, 1 << 20); b; b = s.readBatch(64, 1 << 20)) steps.push(...b.events.map(stepOf));
    expect(steps).toEqual(Array.from({ length: s.pending }, (_, i) => s.droppedOldest + 1 + i));
    s.close();
  });

  it('one process per spool directory; a lock left by a process that is gone is taken over', () => {
    const dir = scratch();
    const a = new Spool(dir, 1 << 20);
    expect(() => new Spool(dir, 1 << 20)).toThrow(`spool directory ${dir} is in use by process ${process.pid}`);
    a.close();
    const gone = spawnSync(process.execPath, ['-e', '0']);
    writeFileSync(path.join(dir, 'lock'), `${gone.pid}\n`);
    new Spool(dir, 1 << 20).close();
  });

  it('markLate adds late and backlog to the meta and keeps the payload, step and time', () => {
    const e = encodeMetrics(42, { loss: 0.5 }, 'r1', { timestamp: 1234.5 });
    const late = decodeEvent(markLate(e, 7)) as MetricsEvent;
    expect(late).toMatchObject({ late: true, backlog: 7, step: 42, values: [0.5], run: 'r1', timestamp: 1234.5 });
  });
});

describe('sdk spool: through a stopped service', () => {
  it('steps 5000-5199, the service stopped 4 s in the middle and the trainer restarted meanwhile: every step arrives once, in step order', async () => {
    const dataDir = tempDir('ringcast-sdk-spool-');
    const spoolDir = scratch();
    const [httpPort, tcpPort] = [await reservePort('127.0.0.1', 0), await reservePort('127.0.0.1', 0)];
    const args = ['--port', String(httpPort), '--ingest-tcp-port', String(tcpPort), '--data-dir', dataDir, '--no-demo', '--ingest-token', 'sdk-spool-token', '--series-points', '1000'];
    const first = runMain(args);
    await listeningPort(first);
    const url = `tcp://127.0.0.1:${tcpPort}`;
    const options = { token: 'sdk-spool-token', run: 'sdk-spool', spoolDir, spoolRate: 100, flushIntervalMs: 10, reconnect: { initialMs: 50, maxMs: 300 }, breaker: { openMs: 100 } };

    const a = createProducer(url, options);
    for (let step = 5000; step < 5050; step++) { a.emitPpoMetrics({ loss: 1 / step }, step); await sleep(10); }
    await sleep(200);
    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);
    for (let step = 5050; step < 5100; step++) { a.emitPpoMetrics({ loss: 1 / step }, step); await sleep(10); }
    await a.close(500); // the trainer exits during the outage: what it holds stays on disk
    const sa = a.stats();
    expect(sa.spoolBacklog).toBeGreaterThanOrEqual(50);
    expect(Object.values(sa.dropped).reduce((x, y) => x + y, 0)).toBe(0);
    await sleep(4000 - 500 - 500);

    const second = runMain(args);
    await listeningPort(second);
    const b = createProducer(url, options); // the restarted trainer: finds the spool, sends it late
    expect(b.stats().spoolBacklog).toBe(sa.spoolBacklog);
    for (let step = 5100; step < 5200; step++) { b.emitPpoMetrics({ loss: 1 / step }, step); await sleep(5); }
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && (b.stats().spoolBacklog > 0 || b.stats().unacked > 0 || b.stats().queued > 0)) await sleep(50);
    const sb = b.stats();
    await b.close(2000);
    expect([sb.spoolBacklog, sb.droppedOldest]).toEqual([0, 0]);
    expect(sb.sentFromSpool).toBe(sa.spoolBacklog);
    await sleep(300);

    const runs = await (await fetch(`http://127.0.0.1:${httpPort}/api/runs`)).json() as {
      runs: Array<{ run: string; events: number; step: number }>; previous: Array<{ run: string; events: number; step: number }>;
    };
    const before = runs.previous.find((r) => r.run === 'sdk-spool')!;
    const after = runs.runs.find((r) => r.run === 'sdk-spool')!;
    expect(before.events + after.events).toBe(200);
    expect(after.step).toBe(5199);
    const viewer = await OverlayClient.connect(httpPort, { channels: ['metrics'], level: 'advanced' });
    const snap = await viewer.waitFor((m) => m.type === 'ppo_metrics' && m.data?.run === 'sdk-spool' && m.data?.series === 'full', 5_000);
    viewer.close();
    const steps = (snap.data!.metrics as Record<string, { steps: number[] }>).loss.steps;
    expect(steps).toEqual(Array.from({ length: 5199 - before.step }, (_, i) => before.step + 1 + i));
    // The recording holds the whole run across the outage: both processes appended to it.
    const recordings = await (await fetch(`http://127.0.0.1:${httpPort}/api/recordings`)).json() as {
      runs: Array<{ run: string; first_step: number; last_step: number; events: number }>;
    };
    expect(recordings.runs.find((r) => r.run === 'sdk-spool')).toMatchObject({ first_step: 5000, last_step: 5199, events: 200 });
    const ndjson = await (await fetch(`http://127.0.0.1:${httpPort}/api/recordings/sdk-spool/events`)).text();
    const recorded = ndjson.trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step).sort((x, y) => x - y);
    expect(recorded).toEqual(Array.from({ length: 200 }, (_, i) => 5000 + i));
    second.child.kill('SIGTERM');
    await second.exited;
  }, 60_000);
});
