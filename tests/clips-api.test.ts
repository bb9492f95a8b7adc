/**
 * Instant-replay clips through the real service: POST /api/clips (admin) while an output runs,
 * GET /api/clips lists it with a url, the gateway streams the MP4 (whole and by range), and
 * the 409s (no output; buffer not yet long enough) and 400s. Needs `npx tsc -p .` first.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startHarness, type Harness } from './helpers/service-harness.js';
import { ffprobe } from './helpers/rtmp-server.js';

const out = mkdtempSync(path.join(tmpdir(), 'ringcast-clips-api-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
const SMALL = ['--compose-width', '640', '--compose-height', '360', '--x264-preset', 'ultrafast', '--no-capture'];

describe('clips API', () => {
  it('with an output running ≥ 15 s: POST {before_s: 6, after_s: 1} → 201, listed with a url, the MP4 served there is 5–9 s', async () => {
    h = await startHarness(['--output', path.join(out, 'show.mp4'), ...SMALL]);
    const base = `http://127.0.0.1:${h.service.port}`;
    const post = (body: unknown, headers: Record<string, string> = admin) => fetch(`${base}/api/clips`, { method: 'POST', headers, body: JSON.stringify(body) });

    // Too early: the buffer does not hold 6 s yet.
    const early = await post({ before_s: 6, after_s: 1 });
    expect(early.status).toBe(409);
    expect(((await early.json()) as { error: string }).error).toMatch(/clip buffer holds .* needs/);
    // Not admin, bad fields.
    expect((await post({ before_s: 6 }, { 'content-type': 'application/json' })).status).toBe(401);
    const bad = await post({ before_s: -1, after_s: 1 });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/"before_s" must be a number of seconds in \(0, 60\]/);
    expect((await post({ before_s: 5, after_s: 99 })).status).toBe(400);
    expect((await post({ before_s: 5, colour: 'red' })).status).toBe(400);

    await sleep(15_000);
    const made = await post({ before_s: 6, after_s: 1, title: 'contract' });
    const madeBody = (await made.json()) as { clip: { id: string; url: string; duration_s: number } };
    expect(made.status, JSON.stringify(madeBody)).toBe(201);
    const list = (await (await fetch(`${base}/api/clips`)).json()) as { clips: Array<{ id: string; title: string; started_at: string; duration_s: number; bytes: number; url: string }>; count: number };
    expect(list.count).toBe(1);
    const listed = list.clips[0];
    expect(listed).toMatchObject({ id: madeBody.clip.id, title: 'contract', url: `/api/clips/${madeBody.clip.id}.mp4` });
    expect(Date.parse(listed.started_at)).toBeGreaterThan(Date.now() - 60_000);
    expect(listed.bytes).toBeGreaterThan(1000);

    const served = await fetch(base + listed.url);
    expect(served.status).toBe(200);
    expect(served.headers.get('content-type')).toBe('video/mp4');
    const bytes = Buffer.from(await served.arrayBuffer());
    expect(bytes.length).toBe(listed.bytes);
    const file = path.join(h.dataDir, 'served.mp4');
    writeFileSync(file, bytes);
    const probe = await ffprobe(file);
    const duration = Number(probe.format?.duration);
    expect(duration).toBeGreaterThanOrEqual(5);
    expect(duration).toBeLessThanOrEqual(9);
    expect(probe.streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);

    // A byte range (browsers seek this way).
    const part = await fetch(base + listed.url, { headers: { range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 10-19/${listed.bytes}`);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(bytes.subarray(10, 20));
    expect((await fetch(`${base}/api/clips/clip-20200101-000000-abcdef.mp4`)).status).toBe(404);
    expect((await fetch(`${base}/api/clips/..%2Ftokens.json`)).status).toBe(404);
  }, 90_000);

  it('no output running: POST /api/clips is a 409 that says so; the list is empty', async () => {
    h = await startHarness(['--no-capture']);
    const base = `http://127.0.0.1:${h.service.port}`;
    const r = await fetch(`${base}/api/clips`, { method: 'POST', headers: admin, body: JSON.stringify({ before_s: 5, after_s: 0 }) });
    expect(r.status).toBe(409);
    expect(((await r.json()) as { error: string }).error).toMatch(/no output is running/);
    expect(await (await fetch(`${base}/api/clips`)).json()).toEqual({ clips: [], count: 0 });
  });

  it('clips.onMilestone: a milestone cuts a clip titled after it', async () => {
    h = await startHarness(['--output', path.join(out, 'milestone.mp4'), '--clips-on-milestone', '--clips-buffer-seconds', '8', ...SMALL]);
    const base = `http://127.0.0.1:${h.service.port}`;
    await sleep(10_000);
    const fired = await fetch(`${base}/api/admin/milestone`, { method: 'POST', headers: admin, body: JSON.stringify({ name: 'first_blood', message: 'Win rate passed 60%!' }) });
    expect(fired.status).toBe(202);
    const deadline = Date.now() + 30_000;
    let clips: Array<{ title: string; duration_s: number }> = [];
    while (Date.now() < deadline && clips.length === 0) {
      await sleep(500);
      clips = ((await (await fetch(`${base}/api/clips`)).json()) as { clips: typeof clips }).clips;
    }
    expect(clips).toHaveLength(1);
    expect(clips[0].title).toMatch(/^Milestone: first_blood/);
    // 8 s before (the whole buffer) + 5 s after, within a keyframe interval (2 s).
    expect(Math.abs(clips[0].duration_s - 13), JSON.stringify(clips[0])).toBeLessThanOrEqual(2);
  }, 90_000);
});
