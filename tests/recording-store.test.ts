/**
 * The recorder's writer and the shared reader on a real temp directory: what is written
 * reads back; a torn tail is cut on load and nothing before it is lost; a failing disk
 * drops (counted) without leaving garbage; the size and age bounds delete the oldest
 * segments, counted by reason; the step index never skips a record that matches.
 */
import { appendFileSync, mkdtempSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RecordingStore, type DeleteReason, type DropReason, type StoreBounds } from '../src/actors/recorder/store.js';
import { SEGMENT_HEADER_BYTES, recordBytes } from '../src/shared/recording/format.js';
import { runRecords } from '../src/shared/recording/reader.js';
import { EventKind, decodeEvent, encodeEvent, encodeMetrics, float32Bytes, type MetricsEvent } from '../src/shared/telemetry/event-codec.js';
import { eventStep } from '../src/actors/recorder/event-step.js';
import { capturingLogger } from './helpers/supervisor-harness.js';

let root: string;
beforeEach(() => { root = mkdtempSync(path.join(tmpdir(), 'ringcast-store-')); });
afterEach(() => { rmSync(root, { recursive: true, force: true }); });

const BIG: StoreBounds = { segmentBytes: 8 << 20, maxBytesPerRun: 64 << 20, maxBytesTotal: 128 << 20, maxAgeHours: 24, maxOpenSegments: 8, idleCloseMs: 60_000 };

function counting() {
  const c = { dropped: {} as Record<string, number>, deleted: {} as Record<string, number>, torn: [] as Array<{ run: string; bytes: number; problem: string }>, written: 0 };
  return {
    c,
    events: {
      dropped: (r: DropReason, n: number) => { c.dropped[r] = (c.dropped[r] ?? 0) + n; },
      deleted: (r: DeleteReason) => { c.deleted[r] = (c.deleted[r] ?? 0) + 1; },
      tornTail: (run: string, _seq: number, bytes: number, problem: string) => { c.torn.push({ run, bytes, problem }); },
      written: (n: number) => { c.written += n; },
    },
  };
}

function makeStore(bounds = BIG, opts: { now?: () => number; write?: typeof writeSync } = {}) {
  const k = counting();
  const store = new RecordingStore(root, bounds, k.events, capturingLogger().logger, opts.now ?? Date.now, opts.write ?? writeSync);
  return { store, ...k };
}

const metricsEvent = (step: number, pad = 0) => encodeMetrics(step, pad > 0 ? { loss: step, pad: 'x'.repeat(pad).length } : { loss: step }, undefined, { timestamp: 1_000_000 + step });
function append(store: RecordingStore, run: string, steps: number[], extraNames = 0): void {
  for (const s of steps) {
    const values: Record<string, number> = { loss: s };
    for (let i = 0; i < extraNames; i++) values[`metric_with_a_long_name_${i}`] = i;
    store.append(run, 1_000_000 + s, s, 2_000_000 + s, encodeMetrics(s, values, undefined, { timestamp: 1_000_000 + s }));
  }
}

async function readSteps(run: string, range = {}): Promise<number[]> {
  const out: number[] = [];
  for await (const r of runRecords(path.join(root, run), range)) {
    const e = decodeEvent(r.event) as MetricsEvent;
    expect(e.step).toBe(r.step);
    out.push(r.step);
  }
  return out;
}

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
const segFiles = (run: string) => readdirSync(path.join(root, run)).filter((n) => n.endsWith('.seg')).sort();

describe('RecordingStore', () => {
  it('writes records that read back in order, and a reload lists the same run', async () => {
    const { store, c } = makeStore();
    await store.load();
    append(store, 'run-a', range(0, 300));
    store.flush();
    expect(c.written).toBe(300);
    const listed = store.list()[0];
    expect(listed).toMatchObject({ run: 'run-a', first_step: 0, last_step: 299, events: 300, segments: 1, started_at: new Date(1_000_000).toISOString(), ended_at: new Date(1_000_299).toISOString() });
    expect(listed.bytes).toBe(statSync(path.join(root, 'run-a', segFiles('run-a')[0])).size);
    expect(await readSteps('run-a')).toEqual(range(0, 300));
    store.close();

    const again = makeStore();
    await again.store.load();
    expect(again.store.list()[0]).toMatchObject({ ...listed, recording: false });
    expect(again.c.torn).toEqual([]);
  });

  it('cuts a torn tail on load (counted), keeps everything before it, and appends after it', async () => {
    const { store } = makeStore();
    await store.load();
    append(store, 'run-t', range(0, 50));
    store.flush();
    // Simulate a crash mid-append: no summary written, half a record at the end.
    const file = path.join(root, 'run-t', segFiles('run-t')[0]);
    const good = statSync(file).size;
    const half = Buffer.alloc(recordBytes(metricsEvent(50).byteLength));
    half.writeUInt32LE(half.byteLength - 8, 0);
    appendFileSync(file, half.subarray(0, 30));

    const next = makeStore();
    await next.store.load();
    expect(next.c.torn).toEqual([{ run: 'run-t', bytes: 30, problem: expect.stringMatching(/truncated record/) }]);
    expect(statSync(file).size).toBe(good);
    expect(next.store.list()[0]).toMatchObject({ events: 50, first_step: 0, last_step: 49 });
    append(next.store, 'run-t', range(50, 60));
    next.store.flush();
    expect(await readSteps('run-t')).toEqual(range(0, 60));
  });

  it('cuts a tail whose checksum does not match', async () => {
    const { store } = makeStore();
    await store.load();
    append(store, 'run-c', range(0, 10));
    store.flush();
    const file = path.join(root, 'run-c', segFiles('run-c')[0]);
    const size = statSync(file).size;
    // Flip a byte inside the last record's payload.
    const fd = (await import('node:fs')).openSync(file, 'r+');
    writeSync(fd, Buffer.from([0xff]), 0, 1, size - 3);
    (await import('node:fs')).closeSync(fd);
    const next = makeStore();
    await next.store.load();
    expect(next.c.torn).toEqual([{ run: 'run-c', bytes: recordBytes(metricsEvent(9).byteLength), problem: expect.stringMatching(/checksum mismatch/) }]);
    expect(await readSteps('run-c')).toEqual(range(0, 9));
  });

  it('a full disk is a counted drop and a problem, never garbage: the file is cut back and later writes read back', async () => {
    let failing = false;
    // A disk that fills up halfway through a write: part of the bytes land, then ENOSPC.
    const write = ((fd: number, data: Uint8Array, off: number, len: number, pos: number) => {
      if (failing && len > 64) {
        writeSync(fd, data, off, 64, pos);
        throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      }
      return writeSync(fd, data, off, len, pos);
    }) as typeof writeSync;
    const { store, c } = makeStore(BIG, { write });
    await store.load();
    append(store, 'run-f', range(0, 20));
    store.flush();
    failing = true;
    append(store, 'run-f', range(20, 30));
    store.flush();
    expect(c.dropped).toEqual({ disk_full: 10 });
    expect(store.status().problem).toMatch(/disk is full \(ENOSPC\)/);
    expect(store.list()[0]).toMatchObject({ events: 20, last_step: 19 });
    const file = path.join(root, 'run-f', segFiles('run-f')[0]);
    expect(statSync(file).size).toBe(store.list()[0].bytes);
    failing = false;
    append(store, 'run-f', range(30, 40));
    store.flush();
    expect(store.status().problem).toBeNull();
    expect(await readSteps('run-f')).toEqual([...range(0, 20), ...range(30, 40)]);
    store.close();
    const next = makeStore();
    await next.store.load();
    expect(next.c.torn).toEqual([]);
  });

  it('holds the per-run and total bounds by deleting the oldest closed segments, counted by reason', async () => {
    const bounds: StoreBounds = { ...BIG, segmentBytes: 64 * 1024, maxBytesPerRun: 200 * 1024, maxBytesTotal: 300 * 1024 };
    const { store, c } = makeStore(bounds);
    await store.load();
    // ~1 KiB per event: 600 events is ~600 KiB for one run.
    for (let i = 0; i < 6; i++) { append(store, 'run-a', range(i * 100, i * 100 + 100), 25); store.flush(); }
    expect(c.deleted.run_bytes).toBeGreaterThan(0);
    const a = store.list().find((r) => r.run === 'run-a')!;
    expect(a.bytes).toBeLessThanOrEqual(bounds.maxBytesPerRun);
    expect(a.last_step).toBe(599);
    expect(a.first_step).toBeGreaterThan(0);
    const steps = await readSteps('run-a');
    expect(steps).toEqual(range(a.first_step!, 600)); // the oldest went, whole segments, nothing in between
    expect(steps.length).toBe(a.events);

    for (let i = 0; i < 2; i++) { append(store, 'run-b', range(i * 100, i * 100 + 100), 25); store.flush(); }
    expect(c.deleted.total_bytes).toBeGreaterThan(0);
    expect(store.status().bytes).toBeLessThanOrEqual(bounds.maxBytesTotal);
    expect(store.list().reduce((n, r) => n + r.bytes, 0)).toBe(store.status().bytes);
    // run-a's segments were the oldest: they went first, run-b is whole.
    expect(store.list().find((r) => r.run === 'run-b')).toMatchObject({ first_step: 0, last_step: 199, events: 200 });
  });

  it('drops (counted, with a problem) when only open segments are left and the total bound still cannot be met', async () => {
    const bounds: StoreBounds = { ...BIG, segmentBytes: 64 * 1024, maxBytesPerRun: 64 * 1024, maxBytesTotal: 100 * 1024 };
    const { store, c } = makeStore(bounds);
    await store.load();
    append(store, 'run-a', range(0, 55), 25);
    append(store, 'run-b', range(0, 55), 25);
    store.flush();
    expect(c.dropped.total_bound).toBeGreaterThan(0);
    expect(store.status().problem).toMatch(/total bound/);
    expect(store.status().bytes).toBeLessThanOrEqual(bounds.maxBytesTotal);
  });

  it('deletes closed segments older than maxAgeHours', async () => {
    let now = Date.UTC(2026, 0, 1);
    const bounds: StoreBounds = { ...BIG, segmentBytes: 64 * 1024, maxAgeHours: 2 };
    const { store, c } = makeStore(bounds, { now: () => now });
    await store.load();
    append(store, 'run-old', range(0, 100), 25); // more than one segment: the first ones close
    store.flush();
    const before = store.list()[0].segments;
    expect(before).toBeGreaterThan(1);
    now += 3 * 3_600_000;
    store.enforceAge();
    expect(c.deleted.age).toBe(before - 1); // every closed one; the open one stays
    expect(store.list()[0].segments).toBe(1);
  });

  it('reads step ranges through the sparse index without losing records when steps go backwards', async () => {
    const { store } = makeStore();
    await store.load();
    // A trainer that restarted: steps 0..1999, then 0..299 again.
    append(store, 'run-i', range(0, 2000));
    append(store, 'run-i', range(0, 300));
    store.flush();
    const idx = readdirSync(path.join(root, 'run-i')).find((n) => n.endsWith('.idx'))!;
    expect(statSync(path.join(root, 'run-i', idx)).size).toBeGreaterThan(0);
    expect(await readSteps('run-i', { fromStep: 1500, toStep: 1504 })).toEqual(range(1500, 1505));
    expect(await readSteps('run-i', { fromStep: 250 })).toEqual([...range(250, 2000), ...range(250, 300)]);
    expect(await readSteps('run-i', { toStep: 2 })).toEqual([0, 1, 2, 0, 1, 2]);
    // Times (1_000_000 + step) went backwards with the steps: the time index must not skip the second pass either.
    expect(await readSteps('run-i', { fromTime: 1_000_000 + 1995 })).toEqual(range(1995, 2000));
    expect(await readSteps('run-i', { fromTime: 1_000_000 + 298, toTime: 1_000_000 + 299 })).toEqual([298, 299, 298, 299]);
  });

  it('a segment with a bad header is removed on load, counted as torn', async () => {
    const { store } = makeStore();
    await store.load();
    append(store, 'run-h', range(0, 5));
    store.flush();
    store.close();
    appendFileSync(path.join(root, 'run-h', '000000000009.seg'), Buffer.from('not a segment'));
    const next = makeStore();
    await next.store.load();
    expect(next.c.torn).toEqual([{ run: 'run-h', bytes: 13, problem: expect.stringMatching(/header/) }]);
    expect(segFiles('run-h')).toHaveLength(1);
    expect(statSync(path.join(root, 'run-h', segFiles('run-h')[0])).size).toBeGreaterThan(SEGMENT_HEADER_BYTES);
  });
});

describe('eventStep', () => {
  it('reads the metrics payload step, else meta.step, else NaN, without decoding', () => {
    expect(eventStep(encodeMetrics(1234, { loss: 1 }, 'r'))).toBe(1234);
    expect(eventStep(encodeEvent(EventKind.Milestone, { name: 'm', step: 77 }))).toBe(77);
    expect(eventStep(encodeEvent(EventKind.BoardHeatmap, { step: 9 }, float32Bytes(new Array(81).fill(0))))).toBe(9);
    expect(eventStep(encodeEvent(EventKind.BoardHeatmap, undefined, float32Bytes(new Array(81).fill(0))))).toBeNaN();
    expect(eventStep(encodeEvent(EventKind.Milestone, { name: 'm', step: 'soon' }))).toBeNaN();
    expect(eventStep(new Uint8Array(4))).toBeNaN();
  });
});
