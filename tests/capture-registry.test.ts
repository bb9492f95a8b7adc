import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpRouter, bearerToken } from '../src/shared/http-router.js';
import { HttpError } from '../src/shared/http-server.js';
import { MemoryStateStore, SqliteStateStore } from '../src/shared/state-store.js';
import { DEFAULT_CAPTURE_CONFIG, RegistryError, StreamRegistry, normaliseStreamName } from '../src/services/capture/registry.js';
import { registerCaptureRoutes } from '../src/services/capture/routes.js';
import { parseStreamsFile } from '../src/services/capture/streams-file.js';

const TOKEN = 'sekrit';

function code(fn: () => unknown): string | undefined {
  try { fn(); } catch (error) { return error instanceof RegistryError ? error.code : 'other'; }
  return undefined;
}

describe('StreamRegistry', () => {
  it('adds, normalises case, defaults priority, rejects duplicates', () => {
    const r = new StreamRegistry(new MemoryStateStore(), { now: () => new Date(0) });
    expect(r.add('Dota2TI')).toEqual({ name: 'dota2ti', priority: 50, addedAt: '1970-01-01T00:00:00.000Z', enabled: true });
    expect(code(() => r.add('DOTA2TI'))).toBe('duplicate');
    expect(() => r.add('dota2ti')).toThrow(/already registered/);
    expect(r.get('DoTa2ti')?.name).toBe('dota2ti');
  });

  it('accepts http(s) .m3u8 URLs and playlist files verbatim, rejects bad names', () => {
    const r = new StreamRegistry(new MemoryStateStore());
    expect(r.add('http://127.0.0.1:9000/Live/index.m3u8?x=1').name).toBe('http://127.0.0.1:9000/Live/index.m3u8?x=1');
    expect(r.add('/tmp/a.m3u8').name).toBe('/tmp/a.m3u8');
    for (const bad of ['ab', 'a'.repeat(26), 'bad-name', 'has space', '', 'http://x/y.mp4', 'ftp://x/y.m3u8', '/tmp/a.ts', 42, null]) {
      expect(code(() => r.add(bad)), String(bad)).toBe('invalid');
    }
    expect(normaliseStreamName('  Foo_Bar ')).toEqual({ ok: true, name: 'foo_bar' });
  });

  it('validates priority as an integer 0-100', () => {
    const r = new StreamRegistry(new MemoryStateStore());
    expect(r.add('zero', 0).priority).toBe(0);
    expect(r.add('hundred', 100).priority).toBe(100);
    for (const bad of [-1, 101, 1.5, '5', null, Number.NaN]) expect(code(() => r.add('other', bad)), String(bad)).toBe('invalid');
    expect(r.count()).toBe(2);
  });

  it('lists by priority desc then name; setPriority and remove', () => {
    const r = new StreamRegistry(new MemoryStateStore());
    r.add('ccc', 10); r.add('bbb', 90); r.add('aaa', 10); r.add('ddd');
    expect(r.list().map((s) => s.name)).toEqual(['bbb', 'ddd', 'aaa', 'ccc']);
    expect(r.setPriority('CCC', 95).priority).toBe(95);
    expect(r.list()[0].name).toBe('ccc');
    expect(code(() => r.setPriority('nobody', 5))).toBe('not_found');
    expect(code(() => r.setPriority('ccc', 500))).toBe('invalid');
    expect(code(() => r.setPriority('ccc', undefined))).toBe('invalid');
    expect(r.remove('AAA')).toBe(true);
    expect(r.remove('aaa')).toBe(false);
    expect(r.get('aaa')).toBeUndefined();
  });

  it('bulk add reports each item and loses nothing valid', () => {
    const r = new StreamRegistry(new MemoryStateStore());
    r.add('existing');
    const res = r.addMany(['one', 'EXISTING', 'bad-name', { username: 'two', priority: 70 }, { priority: 3 }, { username: 'three', priority: 'x' }, 'one', 7]);
    expect(res.map((x) => x.status)).toEqual(['added', 'duplicate', 'invalid', 'added', 'invalid', 'invalid', 'duplicate', 'invalid']);
    expect(res[4].reason).toMatch(/missing username/);
    expect(res[5].reason).toMatch(/priority/);
    expect(r.list().map((s) => s.name)).toEqual(['two', 'existing', 'one']);
  });

  it('limits the total number of streams', () => {
    const r = new StreamRegistry(new MemoryStateStore(), { maxStreams: 3 });
    r.add('aaa'); r.add('bbb');
    const res = r.addMany(['ccc', 'ddd']);
    expect(res[0].status).toBe('added');
    expect(res[1]).toMatchObject({ status: 'invalid', reason: expect.stringMatching(/limit/) });
    expect(code(() => r.add('eee'))).toBe('full');
    expect(() => r.add('eee')).toThrow(/limit reached \(3\)/);
  });

  it('keeps capture config with defaults, partial updates and validation', () => {
    const r = new StreamRegistry(new MemoryStateStore());
    expect(r.getConfig()).toEqual(DEFAULT_CAPTURE_CONFIG);
    expect(r.updateConfig({ capture_interval: 10 })).toEqual({ ...DEFAULT_CAPTURE_CONFIG, capture_interval: 10 });
    expect(r.updateConfig({ quality: '720p60', max_concurrent: 1000 })).toEqual({ capture_interval: 10, max_concurrent: 1000, quality: '720p60' });
    for (const bad of [{ capture_interval: 0 }, { capture_interval: 3601 }, { capture_interval: 2.5 }, { max_concurrent: 0 }, { max_concurrent: 1001 }, { quality: '1080p' }, { capture_interval: '3' }, { bogus: 1 }]) {
      expect(code(() => r.updateConfig(bad)), JSON.stringify(bad)).toBe('invalid');
    }
    expect(() => r.updateConfig({ bogus: 1 })).toThrow(/unknown config key.*bogus/);
    expect(r.getConfig().capture_interval).toBe(10);
  });

  it('survives a restart over the same MemoryStateStore', () => {
    const store = new MemoryStateStore();
    const a = new StreamRegistry(store);
    a.add('kept', 80); a.updateConfig({ quality: 'best' });
    const b = new StreamRegistry(store);
    expect(b.get('kept')?.priority).toBe(80);
    expect(b.getConfig().quality).toBe('best');
  });

  describe('with SQLite', () => {
    let dir: string | undefined;
    afterEach(() => { if (dir) rmSync(dir, { recursive: true, force: true }); dir = undefined; });

    it('survives closing and reopening the database', () => {
      dir = mkdtempSync(join(tmpdir(), 'ringcast-registry-'));
      const path = join(dir, 'state.db');
      const s1 = new SqliteStateStore(path);
      const r1 = new StreamRegistry(s1);
      r1.add('alpha', 10);
      r1.addMany(['beta', { username: 'gamma', priority: 99 }]);
      r1.remove('beta');
      r1.setPriority('alpha', 20);
      r1.updateConfig({ capture_interval: 7, max_concurrent: 32 });
      s1.close();

      const s2 = new SqliteStateStore(path);
      const r2 = new StreamRegistry(s2);
      expect(r2.list().map((s) => [s.name, s.priority])).toEqual([['gamma', 99], ['alpha', 20]]);
      expect(r2.getConfig()).toEqual({ capture_interval: 7, max_concurrent: 32, quality: '480p' });
      expect(code(() => r2.add('alpha'))).toBe('duplicate');
      s2.close();
    });
  });
});

describe('parseStreamsFile', () => {
  it('parses names, priorities, comments and blank lines with line-numbered errors', () => {
    const text = [
      '# my channels',
      'Dota2TI',
      '',
      '  purgegamers 90   # favourite',
      'bad-name',
      'ok_one 101',
      'ok_two abc',
      'too many cols',
      'dota2ti',
      'https://example.com/live.m3u8 5',
      '\t',
    ].join('\r\n');
    const { entries, errors } = parseStreamsFile(text);
    expect(entries).toEqual([
      { name: 'dota2ti', line: 2 },
      { name: 'purgegamers', priority: 90, line: 4 },
      { name: 'https://example.com/live.m3u8', priority: 5, line: 10 },
    ]);
    expect(errors.map((e) => e.line)).toEqual([5, 6, 7, 8, 9]);
    expect(errors[0].reason).toMatch(/Twitch channel name/);
    expect(errors[1].reason).toMatch(/0 and 100/);
    expect(errors[2].reason).toMatch(/integer/);
    expect(errors[4].reason).toMatch(/duplicate/);
  });

  it('never throws on odd content', () => {
    expect(parseStreamsFile('')).toEqual({ entries: [], errors: [] });
    expect(() => parseStreamsFile('\u0000\uffff\n###\n  #\n' + 'x'.repeat(10_000))).not.toThrow();
  });

  it('feeds the bulk add', () => {
    const r = new StreamRegistry(new MemoryStateStore());
    const { entries } = parseStreamsFile('aaa 1\nbbb\n');
    expect(r.addMany(entries.map((e) => ({ username: e.name, priority: e.priority }))).every((x) => x.status === 'added')).toBe(true);
    expect(r.get('aaa')?.priority).toBe(1);
  });
});

describe('capture REST routes', () => {
  function setup(status?: () => unknown) {
    const router = new HttpRouter();
    const registry = new StreamRegistry(new MemoryStateStore(), { maxStreams: 5 });
    const requireAdmin = (headers: Record<string, string>, query: URLSearchParams) => {
      if (bearerToken(headers, query) !== TOKEN) throw new HttpError(401, 'admin token required');
    };
    registerCaptureRoutes(router, { registry, requireAdmin, status });
    const call = async (method: string, path: string, body?: unknown, opts: { auth?: boolean; raw?: string; token?: string } = {}) => {
      const headers: Record<string, string> = opts.auth === false ? {} : { authorization: `Bearer ${opts.token ?? TOKEN}` };
      const payload = opts.raw ?? (body === undefined ? '' : JSON.stringify(body));
      const reply = await router.dispatch({ method, path, query: '', headers, body: Buffer.from(payload) });
      const text = typeof reply.body === 'string' ? reply.body : Buffer.from(reply.body).toString();
      return { status: reply.status, json: text ? JSON.parse(text) : undefined };
    };
    return { router, registry, call };
  }

  it('adds, lists, gets, reprioritises and deletes', async () => {
    const { call } = setup();
    expect(await call('POST', '/api/streams', { username: 'Alpha_1', priority: 10 })).toMatchObject({ status: 201, json: { stream: { name: 'alpha_1', priority: 10, enabled: true } } });
    expect((await call('POST', '/api/streams', { username: 'beta' })).json.stream.priority).toBe(50);
    const list = await call('GET', '/api/streams', undefined, { auth: false });
    expect(list.status).toBe(200);
    expect(list.json.streams.map((s: { name: string }) => s.name)).toEqual(['beta', 'alpha_1']);
    expect((await call('GET', '/api/streams/ALPHA_1', undefined, { auth: false })).json.stream.name).toBe('alpha_1');
    expect(await call('PUT', '/api/streams/alpha_1/priority', { priority: 99 })).toMatchObject({ status: 200, json: { stream: { priority: 99 } } });
    expect(await call('DELETE', '/api/streams/beta')).toMatchObject({ status: 200, json: { removed: 'beta' } });
    expect((await call('GET', '/api/streams/beta', undefined, { auth: false })).status).toBe(404);
  });

  it('handles URL-encoded direct HLS names in the path', async () => {
    const { call } = setup();
    const url = 'http://127.0.0.1:8080/live/index.m3u8';
    expect((await call('POST', '/api/streams', { username: url })).status).toBe(201);
    expect((await call('GET', `/api/streams/${encodeURIComponent(url)}`)).json.stream.name).toBe(url);
    expect((await call('DELETE', `/api/streams/${encodeURIComponent(url)}`)).status).toBe(200);
  });

  it('bulk add reports per item', async () => {
    const { call } = setup();
    await call('POST', '/api/streams', { username: 'dup' });
    const res = await call('POST', '/api/streams/bulk', { streams: ['aaa', 'DUP', 'x', { username: 'bbb', priority: 5 }, { username: 'ccc', priority: 500 }] });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ added: 2, duplicate: 1, invalid: 2 });
    expect(res.json.results.map((r: { status: string }) => r.status)).toEqual(['added', 'duplicate', 'invalid', 'added', 'invalid']);
  });

  it('requires the admin token for every write, not for reads', async () => {
    const { call, registry } = setup();
    registry.add('exists');
    const writes: Array<[string, string, unknown]> = [
      ['POST', '/api/streams', { username: 'new_one' }],
      ['POST', '/api/streams/bulk', { streams: ['new_two'] }],
      ['DELETE', '/api/streams/exists', undefined],
      ['PUT', '/api/streams/exists/priority', { priority: 1 }],
      ['PUT', '/api/config', { capture_interval: 5 }],
    ];
    for (const [m, p, b] of writes) expect((await call(m, p, b, { auth: false })).status, `${m} ${p}`).toBe(401);
    // Wrong token is as bad as none; even an invalid body gets 401 first.
    const wrong = await call('POST', '/api/streams', {}, { token: 'nope', raw: '{' });
    expect(wrong.status).toBe(401);
    expect(registry.list().map((s) => s.name)).toEqual(['exists']);
    expect(registry.getConfig()).toEqual(DEFAULT_CAPTURE_CONFIG);
    for (const p of ['/api/streams', '/api/streams/exists', '/api/config', '/api/status']) expect((await call('GET', p, undefined, { auth: false })).status, p).toBe(200);
  });

  it('rejects every bad body with a 400 that says what is wrong', async () => {
    const { call, registry } = setup();
    registry.add('exists');
    const cases: Array<[string, string, unknown, RegExp, string?]> = [
      ['POST', '/api/streams', undefined, /not valid JSON/, '{"username":'],
      ['POST', '/api/streams', undefined, /empty/, ''],
      ['POST', '/api/streams', [], /JSON object/],
      ['POST', '/api/streams', 'alpha', /JSON object/],
      ['POST', '/api/streams', null, /JSON object/],
      ['POST', '/api/streams', {}, /missing "username"/],
      ['POST', '/api/streams', { priority: 5 }, /missing "username"/],
      ['POST', '/api/streams', { username: 'no' }, /Twitch channel name/],
      ['POST', '/api/streams', { username: 'bad name!' }, /Twitch channel name/],
      ['POST', '/api/streams', { username: 'http://x/y.mp4' }, /\.m3u8/],
      ['POST', '/api/streams', { username: 12345 }, /must be a string/],
      ['POST', '/api/streams', { username: 'fine', priority: 101 }, /between 0 and 100/],
      ['POST', '/api/streams', { username: 'fine', priority: -1 }, /between 0 and 100/],
      ['POST', '/api/streams', { username: 'fine', priority: 2.5 }, /integer/],
      ['POST', '/api/streams', { username: 'fine', priority: '5' }, /integer/],
      ['POST', '/api/streams/bulk', {}, /"streams" must be an array/],
      ['POST', '/api/streams/bulk', { streams: 'aaa' }, /"streams" must be an array/],
      ['POST', '/api/streams/bulk', undefined, /not valid JSON/, 'nope'],
      ['PUT', '/api/streams/exists/priority', {}, /missing priority/],
      ['PUT', '/api/streams/exists/priority', { priority: 1000 }, /between 0 and 100/],
      ['PUT', '/api/streams/exists/priority', { priority: 'high' }, /integer/],
      ['PUT', '/api/streams/exists/priority', undefined, /not valid JSON/, '{'],
      ['PUT', '/api/config', { bogus: 1 }, /unknown config key.*bogus/],
      ['PUT', '/api/config', { capture_interval: 0 }, /capture_interval/],
      ['PUT', '/api/config', { capture_interval: 3601 }, /capture_interval/],
      ['PUT', '/api/config', { capture_interval: '3' }, /capture_interval/],
      ['PUT', '/api/config', { max_concurrent: 0 }, /max_concurrent/],
      ['PUT', '/api/config', { max_concurrent: 1.5 }, /max_concurrent/],
      ['PUT', '/api/config', { quality: '1080p' }, /quality/],
      ['PUT', '/api/config', [], /JSON object/],
      ['PUT', '/api/config', undefined, /not valid JSON/, 'capture_interval=3'],
    ];
    for (const [m, p, b, msg, raw] of cases) {
      const res = await call(m, p, b, raw === undefined ? {} : { raw });
      const label = `${m} ${p} ${raw ?? JSON.stringify(b)}`;
      expect(res.status, label).toBe(400);
      expect(res.json.error, label).toMatch(msg);
    }
    expect(registry.list().map((s) => [s.name, s.priority])).toEqual([['exists', 50]]);
    expect(registry.getConfig()).toEqual(DEFAULT_CAPTURE_CONFIG);
  });

  it('404 for unknown streams, 409 for duplicates and a full registry', async () => {
    const { call } = setup();
    expect((await call('GET', '/api/streams/ghost')).status).toBe(404);
    expect((await call('DELETE', '/api/streams/ghost')).status).toBe(404);
    expect((await call('PUT', '/api/streams/ghost/priority', { priority: 5 })).status).toBe(404);
    await call('POST', '/api/streams', { username: 'twice' });
    const dup = await call('POST', '/api/streams', { username: 'TWICE' });
    expect(dup.status).toBe(409);
    expect(dup.json.error).toMatch(/already registered/);
    await call('POST', '/api/streams/bulk', { streams: ['s_1', 's_2', 's_3', 's_4'] });
    const full = await call('POST', '/api/streams', { username: 'overflow' });
    expect(full.status).toBe(409);
    expect(full.json.error).toMatch(/limit reached \(5\)/);
  });

  it('config: get defaults, partial put, get reflects it', async () => {
    const { call } = setup();
    expect((await call('GET', '/api/config')).json).toEqual({ capture_interval: 3, max_concurrent: 32, quality: '480p' });
    expect((await call('PUT', '/api/config', { max_concurrent: 64 })).json).toEqual({ capture_interval: 3, max_concurrent: 64, quality: '480p' });
    expect((await call('PUT', '/api/config', { capture_interval: 10, quality: 'worst' })).json).toEqual({ capture_interval: 10, max_concurrent: 64, quality: 'worst' });
    expect((await call('GET', '/api/config')).json.quality).toBe('worst');
  });

  it('status reports counts and the injected status', async () => {
    const { call } = setup(() => ({ running: 3 }));
    await call('POST', '/api/streams/bulk', { streams: ['aaa', 'bbb'] });
    const res = await call('GET', '/api/status', undefined, { auth: false });
    expect(res.json).toEqual({ streams: { total: 2, enabled: 2, limit: 5 }, config: DEFAULT_CAPTURE_CONFIG, capture: { running: 3 } });
    const bare = setup();
    expect((await bare.call('GET', '/api/status')).json.capture).toBeUndefined();
  });
});
