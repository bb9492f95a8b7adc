/**
 * Recordings and replay through the real service (in-process harness): producers post
 * metrics over HTTP ingest, the recorder writes them, and the routes read them back
 * (list, NDJSON, binary frames, CSV); replays come back on /ws under their as_run name.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, INGEST_TOKEN, OverlayClient, startHarness, type Harness, type WsMessage } from './helpers/service-harness.js';
import { listRecordings, postMetrics, stepsOfFrames, waitRecorded } from './helpers/recordings.js';
import { pollUntil } from './helpers/poll.js';
import { EventKind, concatFrame, encodeEvent, encodeMetrics, encodeMetricsPayload, float32Bytes } from '../src/shared/telemetry/event-codec.js';

let h: Harness;
let port: number;
const T0 = Date.UTC(2026, 0, 1);
const url = (p: string) => `http://127.0.0.1:${port}${p}`;
const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
const replay = (run: string, body: unknown, headers: Record<string, string> = admin) => fetch(url(`/api/recordings/${run}/replay`), { method: 'POST', headers, body: JSON.stringify(body) });

beforeAll(async () => {
  h = await startHarness();
  port = h.service.port;
  // 100 steps, 100 ms apart in trainer time; a metric name that needs CSV quoting from step 50 on.
  await postMetrics(port, INGEST_TOKEN, 'rec-a', Array.from({ length: 100 }, (_, i) => i),
    (s) => (s < 50 ? { loss: s / 100, 'ppo/kl': s * 0.001 } : { loss: s / 100, 'ppo/kl': s * 0.001, 'odd,"name"': s }), (s) => T0 + s * 100);
  await waitRecorded(port, 'rec-a', 100);
}, 60_000);
afterAll(async () => { await h?.close(); }, 30_000);

describe('recordings', () => {
  it('lists a recorded run with its steps, event count, size and times', async () => {
    const r = (await listRecordings(port)).find((x) => x.run === 'rec-a')!;
    expect(r).toMatchObject({ run: 'rec-a', first_step: 0, last_step: 99, events: 100, started_at: new Date(T0).toISOString(), ended_at: new Date(T0 + 9_900).toISOString() });
    expect(r.bytes).toBeGreaterThan(100 * 40);
  });

  it('streams the events as NDJSON, whole and by step range', async () => {
    const all = await fetch(url('/api/recordings/rec-a/events'));
    expect(all.status).toBe(200);
    expect(all.headers.get('content-type')).toMatch(/application\/x-ndjson/);
    const lines = (await all.text()).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.step)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(lines[7]).toMatchObject({ run: 'rec-a', kind: 'metrics', step: 7, time: T0 + 700, metrics: { loss: 0.07, 'ppo/kl': 0.007 } });

    const some = await fetch(url('/api/recordings/rec-a/events?from_step=10&to_step=19'));
    expect((await some.text()).trim().split('\n').map((l) => JSON.parse(l).step)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    const byTime = await fetch(url(`/api/recordings/rec-a/events?from_time=${new Date(T0 + 1000).toISOString()}&to_time=${T0 + 1500}`));
    expect((await byTime.text()).trim().split('\n').map((l) => JSON.parse(l).step)).toEqual([10, 11, 12, 13, 14, 15]);
    const tail = await fetch(url('/api/recordings/rec-a/events?from_step=95'));
    expect((await tail.text()).trim().split('\n').map((l) => JSON.parse(l).step)).toEqual([95, 96, 97, 98, 99]);
  });

  it('streams the binary frame format by ?format=binary and by Accept', async () => {
    const byQuery = await fetch(url('/api/recordings/rec-a/events?format=binary&from_step=40&to_step=44'));
    expect(byQuery.headers.get('content-type')).toBe('application/octet-stream');
    expect(stepsOfFrames(Buffer.from(await byQuery.arrayBuffer()))).toEqual([40, 41, 42, 43, 44]);
    const byAccept = await fetch(url('/api/recordings/rec-a/events?to_step=2'), { headers: { accept: 'application/octet-stream' } });
    expect(stepsOfFrames(Buffer.from(await byAccept.arrayBuffer()))).toEqual([0, 1, 2]);
  });

  it('answers 404 for an unknown run and 400 for bad names, ranges and formats', async () => {
    const cases: Array<[string, number, RegExp]> = [
      ['/api/recordings/nope/events', 404, /no recording of run "nope"/],
      ['/api/recordings/nope/metrics.csv', 404, /no recording/],
      ['/api/recordings/rec-a/events?from_step=abc', 400, /from_step must be a number/],
      ['/api/recordings/rec-a/events?from_step=9&to_step=3', 400, /from_step \(9\) is after to_step \(3\)/],
      ['/api/recordings/rec-a/events?format=xml', 400, /format must be one of ndjson, binary/],
      ['/api/recordings/rec-a/events?from_time=yesterday', 400, /from_time must be ms since the epoch or an ISO 8601 date-time/],
      [`/api/recordings/rec-a/metrics.csv?from_time=${T0 + 9}&to_time=${T0}`, 400, /from_time is after to_time/],
      ['/api/recordings/-bad/events', 400, /run name/],
    ];
    for (const [path, status, message] of cases) {
      const res = await fetch(url(path));
      expect(res.status, path).toBe(status);
      expect(((await res.json()) as { error: string }).error, path).toMatch(message);
    }
  });

  it('records every telemetry kind: NDJSON shows each with its fields, the step from the event', async () => {
    const grid = Array.from({ length: 81 }, (_, i) => i / 100);
    const frame = concatFrame([
      encodeMetrics(5, { loss: 0.5 }, undefined, { timestamp: T0 }),
      encodeEvent(EventKind.BoardHeatmap, { step: 5, source: 'attention' }, float32Bytes(grid), { timestamp: T0 + 1 }),
      encodeEvent(EventKind.Milestone, { name: 'first_win', message: 'won a game', step: 6 }, undefined, { timestamp: T0 + 2 }),
    ]);
    const res = await fetch(url('/api/ingest?run=rec-kinds'), { method: 'POST', headers: { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': 'application/octet-stream' }, body: frame });
    expect(res.status).toBe(200);
    await waitRecorded(port, 'rec-kinds', 3);
    const lines = (await (await fetch(url('/api/recordings/rec-kinds/events'))).text()).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.kind, l.step])).toEqual([['metrics', 5], ['board_heatmap', 5], ['milestone', 6]]);
    expect(lines[1].source).toBe('attention');
    expect(lines[1].grid).toHaveLength(81);
    expect(lines[1].grid[80]).toBeCloseTo(0.8, 6);
    expect(lines[2]).toMatchObject({ name: 'first_win', message: 'won a game', time: T0 + 2 });
  });

  it('exports metrics.csv: step, time, one column per metric seen, RFC 4180 quoting', async () => {
    const res = await fetch(url('/api/recordings/rec-a/metrics.csv?from_step=48&to_step=51'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    const text = await res.text();
    const rows = text.split('\r\n');
    expect(rows[0]).toBe('step,time,loss,ppo/kl,"odd,""name"""');
    expect(rows[1]).toBe(`48,${new Date(T0 + 4800).toISOString()},0.48,0.048,`);
    expect(rows[3]).toBe(`50,${new Date(T0 + 5000).toISOString()},0.5,0.05,50`);
    expect(rows.length).toBe(6); // 4 rows, a header and the empty string after the last CRLF
    expect(rows[5]).toBe('');
  });
});

describe('replay', () => {
  it('plays a recording back on /ws under as_run with the recorded steps and values (contract: speed 20)', async () => {
    const client = await OverlayClient.connect(port, { channels: ['metrics'], level: 'advanced', max_fps: 30 });
    try {
      const res = await replay('rec-a', { speed: 20, as_run: 'X' });
      expect(res.status).toBe(202);
      const { id } = (await res.json()) as { id: string };
      expect(id).toMatch(/\S/);
      const seen = new Map<number, number>();
      await pollUntil('the last recorded step on /ws as run X', 15_000, () => {
        for (const m of client.messages) {
          if (m.type !== 'ppo_metrics' || m.data?.run !== 'X') continue;
          for (const [step, loss] of seriesPoints(m, 'loss')) seen.set(step, loss);
        }
        return seen.has(99) ? true : undefined;
      }, () => [...seen.keys()]);
      // Every recorded step arrived, with its recorded value.
      for (let s = 0; s < 100; s++) expect(seen.get(s), `step ${s}`).toBeCloseTo(s / 100, 9);
      const list = await pollUntil('the replay listed as finished', 5_000, async () => {
        const r = ((await (await fetch(url('/api/replays'))).json()) as { replays: Array<Record<string, unknown>> }).replays.find((x) => x.id === id);
        return r?.state === 'finished' ? r : undefined;
      });
      expect(list).toMatchObject({ run: 'rec-a', as_run: 'X', speed: 20, events_sent: 100, progress: 1, current_step: 99 });
    } finally {
      client.close();
    }
  }, 30_000);

  it('plays a recording of spooled (late) events as live: no catching_up on the replayed run', async () => {
    // A producer's spool marks events late; the recording keeps the mark byte for byte.
    const frame = concatFrame(Array.from({ length: 30 }, (_, s) =>
      encodeEvent(EventKind.Metrics, { late: true, backlog: 30 - s }, encodeMetricsPayload(s, { loss: s / 10 }), { timestamp: T0 + s * 100 })));
    const posted = await fetch(url('/api/ingest?run=rec-late'), { method: 'POST', headers: { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': 'application/octet-stream' }, body: frame });
    expect(posted.status).toBe(200);
    await waitRecorded(port, 'rec-late', 30);
    const client = await OverlayClient.connect(port, { channels: ['metrics'], level: 'advanced', max_fps: 30 });
    try {
      expect((await replay('rec-late', { speed: 10, as_run: 'late-replayed' })).status).toBe(202);
      const seen: WsMessage[] = [];
      await pollUntil('the replayed run reaching step 29 on /ws', 15_000, () => {
        seen.splice(0, seen.length, ...client.messages.filter((m) => m.type === 'ppo_metrics' && m.data?.run === 'late-replayed'));
        return seen.some((m) => m.data?.step === 29) ? true : undefined;
      }, () => seen.map((m) => m.data?.step));
      expect(seen.filter((m) => m.data?.catching_up !== undefined).map((m) => m.data?.step)).toEqual([]);
    } finally {
      client.close();
    }
  }, 30_000);

  it('is paced by the recorded timestamps divided by speed (span within 5 %)', async () => {
    // 33 steps one recorded second apart: 32 s at speed 8 is 4 s of replay.
    await postMetrics(port, INGEST_TOKEN, 'rec-paced', Array.from({ length: 33 }, (_, i) => i), (s) => ({ loss: s }), (s) => T0 + s * 1000);
    await waitRecorded(port, 'rec-paced', 33);
    const client = await OverlayClient.connect(port, { channels: ['metrics'], level: 'advanced', max_fps: 30 });
    try {
      const arrivals = new Map<number, number>();
      client.ws.on('message', (data) => {
        const m = JSON.parse(String(data)) as WsMessage;
        if (m.type !== 'ppo_metrics' || m.data?.run !== 'paced') return;
        for (const [step] of seriesPoints(m, 'loss')) if (!arrivals.has(step)) arrivals.set(step, performance.now());
      });
      expect((await replay('rec-paced', { speed: 8, as_run: 'paced' })).status).toBe(202);
      await pollUntil('step 32 of the paced replay', 15_000, () => (arrivals.has(32) ? true : undefined), () => [...arrivals.keys()]);
      const span = arrivals.get(32)! - arrivals.get(0)!;
      const half = arrivals.get(16)! - arrivals.get(0)!;
      // Window conflation (100 ms) blurs each end by at most one window: well inside 5 % of 4 s.
      expect(Math.abs(span - 4000) / 4000, `span ${span.toFixed(0)} ms`).toBeLessThan(0.05);
      expect(Math.abs(half - 2000) / 2000, `half span ${half.toFixed(0)} ms`).toBeLessThan(0.1);
    } finally {
      client.close();
    }
  }, 40_000);

  it('runs next to live producers and several replays at once; DELETE stops one', async () => {
    await postMetrics(port, INGEST_TOKEN, 'rec-slow', Array.from({ length: 50 }, (_, i) => i), (s) => ({ loss: s }), (s) => T0 + s * 1000);
    await waitRecorded(port, 'rec-slow', 50);
    const client = await OverlayClient.connect(port, { channels: ['metrics'], level: 'advanced', max_fps: 30 });
    try {
      // 50 s of recording at speed 1: still running while the rest happens.
      const a = (await (await replay('rec-slow', { speed: 1, as_run: 'slow-1' })).json()) as { id: string };
      const b = (await (await replay('rec-slow', { speed: 2, as_run: 'slow-2', from_step: 10 })).json()) as { id: string };
      await postMetrics(port, INGEST_TOKEN, 'live-now', [7000, 7001, 7002], (s) => ({ loss: s }));
      const runsSeen = () => new Set(client.messages.filter((m) => m.type === 'ppo_metrics').map((m) => m.data?.run));
      await pollUntil('live and both replays on /ws', 10_000, () => (['slow-1', 'slow-2', 'live-now'].every((r) => runsSeen().has(r)) ? true : undefined), () => [...runsSeen()]);
      const firstOfB = client.messages.find((m) => m.type === 'ppo_metrics' && m.data?.run === 'slow-2')!;
      expect(Math.min(...seriesPoints(firstOfB, 'loss').map(([s]) => s))).toBeGreaterThanOrEqual(10);

      const running = ((await (await fetch(url('/api/replays'))).json()) as { replays: Array<{ id: string; state: string; progress: number }> }).replays;
      expect(running.filter((r) => r.state === 'running').map((r) => r.id).sort()).toEqual([a.id, b.id].sort());

      expect((await fetch(url(`/api/replays/${a.id}`), { method: 'DELETE' })).status).toBe(401);
      const del = await fetch(url(`/api/replays/${a.id}`), { method: 'DELETE', headers: admin });
      expect(del.status).toBe(200);
      expect(((await del.json()) as { stopped: string[] }).stopped).toEqual([a.id]);
      const delRun = await fetch(url('/api/recordings/rec-slow/replay'), { method: 'DELETE', headers: admin });
      expect(((await delRun.json()) as { stopped: string[] }).stopped).toEqual([b.id]);
      const after = ((await (await fetch(url('/api/replays'))).json()) as { replays: Array<{ id: string; state: string }> }).replays;
      await pollUntil('both replays stopped', 3_000, async () => {
        const l = ((await (await fetch(url('/api/replays'))).json()) as { replays: Array<{ id: string; state: string }> }).replays;
        return [a.id, b.id].every((id) => l.find((r) => r.id === id)?.state === 'stopped') ? true : undefined;
      }, () => after);
      expect((await fetch(url(`/api/replays/${a.id}`), { method: 'DELETE', headers: admin })).status).toBe(409);
      expect((await fetch(url('/api/replays/r999-x'), { method: 'DELETE', headers: admin })).status).toBe(404);
    } finally {
      client.close();
    }
  }, 40_000);

  it('validates: admin token, speed range, as_run rule, unknown run, as_run of a live run', async () => {
    await postMetrics(port, INGEST_TOKEN, 'live-run', [1, 2, 3]);
    await pollUntil('live-run seen by the aggregator', 5_000, async () => {
      const runs = ((await (await fetch(url('/api/runs'))).json()) as { runs: Array<{ run: string }> }).runs;
      return runs.some((r) => r.run === 'live-run') ? true : undefined;
    });
    const cases: Array<[string, unknown, number, RegExp, Record<string, string>?]> = [
      ['rec-a', { speed: 4, as_run: 'ok-name' }, 401, /admin token required/, { 'content-type': 'application/json' }],
      ['rec-a', { speed: 0, as_run: 'ok-name' }, 400, /"speed" must be a number 0.1–1000/],
      ['rec-a', { speed: 5000, as_run: 'ok-name' }, 400, /"speed"/],
      ['rec-a', { speed: 'fast', as_run: 'ok-name' }, 400, /"speed"/],
      ['rec-a', { speed: 4, as_run: 'has space' }, 400, /"as_run": invalid run name/],
      ['rec-a', { speed: 4 }, 400, /"as_run" is required/],
      ['rec-a', { speed: 4, as_run: 'ok-name', from_step: 9, to_step: 1 }, 400, /after "to_step"/],
      ['rec-a', { speed: 4, as_run: 'ok-name', loop: true }, 400, /unknown field\(s\) "loop"/],
      ['no-such-run', { speed: 4, as_run: 'ok-name' }, 404, /no recording of run "no-such-run"/],
      ['rec-a', { speed: 4, as_run: 'live-run' }, 409, /run "live-run" is live/],
    ];
    for (const [run, body, status, message, headers] of cases) {
      const res = await replay(run, body, headers);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(((await res.json()) as { error: string }).error, JSON.stringify(body)).toMatch(message);
    }
  });
});

/** [step, value] of one metric in a ppo_metrics message at the advanced level (its raw series). */
function seriesPoints(m: WsMessage, metric: string): Array<[number, number]> {
  const v = (m.data?.metrics as Record<string, { steps?: number[]; series?: number[] }> | undefined)?.[metric];
  if (!v?.steps || !v.series) return [];
  return v.steps.map((step, i) => [step, v.series![i]]);
}

describe('recording off', () => {
  let off: Harness;
  beforeAll(async () => { off = await startHarness(['--no-recording']); }, 60_000);
  afterAll(async () => { await off?.close(); }, 30_000);

  it('--no-recording writes nothing; the routes answer with an empty list and 404', async () => {
    const client = await OverlayClient.connect(off.service.port, { channels: ['metrics'], level: 'advanced', max_fps: 30 });
    try {
      await postMetrics(off.service.port, INGEST_TOKEN, 'unrecorded', [1, 2, 3]);
      await client.waitFor((m) => m.type === 'ppo_metrics' && m.data?.run === 'unrecorded', 5_000);
    } finally {
      client.close();
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(await listRecordings(off.service.port)).toEqual([]);
    expect((await fetch(`http://127.0.0.1:${off.service.port}/api/recordings/unrecorded/events`)).status).toBe(404);
  });
});
