// Start-up paths of frame capture in the service: --streams-file fills the registry (bad lines
// reported, good ones kept, nothing added twice on the next start), --interval and friends
// override the stored config only when given, --no-capture keeps the registry API without
// the actor.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startHarness, type Harness } from './helpers/service-harness.js';

const dir = mkdtempSync(path.join(tmpdir(), 'rc-capture-start-'));
const dataDir = path.join(dir, 'data');
const streamsFile = path.join(dir, 'streams.txt');
writeFileSync(streamsFile, [
  '# channels to watch',
  'channel_one',
  'Channel_Two 80   # the priority follows the name',
  '',
  'not a channel!',
  'https://example.test/live/stream.m3u8 10',
].join('\n'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const get = async (h: Harness, p: string) => (await fetch(`http://127.0.0.1:${h.service.port}${p}`)).json() as Promise<Record<string, unknown>>;

describe('capture at service start', () => {
  it('loads --streams-file into the registry and reports the bad line; --interval overrides the stored config', async () => {
    const h = await startHarness(['--no-capture', '--data-dir', dataDir, '--streams-file', streamsFile, '--interval', '7', '--quality', '720p']);
    try {
      const { streams } = (await get(h, '/api/streams')) as { streams: Array<{ name: string; priority: number }> };
      expect(streams.map((s) => [s.name, s.priority]).sort()).toEqual([
        ['channel_one', 50], ['channel_two', 80], ['https://example.test/live/stream.m3u8', 10],
      ]);
      // The bad line is named (line number and why); the good ones still loaded.
      expect(h.lines.some((l) => /^streams file: line 5: .*3 columns/.test(String(l.msg)))).toBe(true);
      expect(await get(h, '/api/config')).toEqual({ capture_interval: 7, max_concurrent: 32, quality: '720p' });
      // --no-capture: the registry API works, capture itself is reported as not running.
      expect(h.service.supervisor.actorNames()).not.toContain('capture');
      expect(((await get(h, '/api/status')) as { capture: { error: string } }).capture.error).toMatch(/not running/);
      const restart = await fetch(`http://127.0.0.1:${h.service.port}/api/restart`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(restart.status).toBe(503);
      // A run-time change that the next start must keep (no flag given for it then).
      const put = await fetch(`http://127.0.0.1:${h.service.port}/api/config`, { method: 'PUT', headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, body: JSON.stringify({ max_concurrent: 5 }) });
      expect(put.status).toBe(200);
    } finally {
      await h.close();
    }
  }, 30_000);

  it('on the next start keeps the registry and the stored config, and the streams file adds nothing twice', async () => {
    const h = await startHarness(['--no-capture', '--data-dir', dataDir, '--streams-file', streamsFile]);
    try {
      const { count } = (await get(h, '/api/streams')) as { count: number };
      expect(count).toBe(3);
      expect(await get(h, '/api/config')).toEqual({ capture_interval: 7, max_concurrent: 5, quality: '720p' });
    } finally {
      await h.close();
    }
  }, 30_000);
});
