/**
 * The capture overlay's card logic (overlay/lib/capture-cards.js, a plain browser module with
 * no DOM use), run in Node: what a card says for each kind of capture record, which streams get
 * cards in which order, and the bounded thumbnail queue.
 */
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain JS module served to browsers; no type declarations
import { ageText, cardPage, describeRecord, displayName, matchesText, PROBLEM_STATES, streamOrder, thumbQueue } from '../overlay/lib/capture-cards.js';

const base = { stream: 'alpha', status: 'ok', at: 1_000, ms: { total: 50 }, frame: 7, screen: 'ok' };

describe('describeRecord', () => {
  it('an ok capture: live, its frame, the templates found in region/cell order (empty cells left out)', () => {
    const d = describeRecord({
      ...base,
      sceneChange: true,
      matches: [
        { region: 'heroes', cell: 2, template: 'moss', score: 0.97 },
        { region: 'heroes', cell: 0, template: 'kite', score: 0.991 },
        { region: 'heroes', cell: 1, template: null, score: 0.3 },
        { region: 'items', cell: 0, template: 'blink', score: 0.9 },
      ],
    });
    expect(d).toMatchObject({ stream: 'alpha', state: 'ok', label: 'live', frame: 7, at: 1_000, sceneChange: true, detail: '' });
    expect(d.matches.map((m: { template: string }) => m.template)).toEqual(['kite', 'moss', 'blink']);
    expect(matchesText(d.matches)).toBe('kite 0.99 · moss 0.97 · blink 0.90');
  });

  it('screen classifications override "live"; offline and errors carry no frame', () => {
    expect(describeRecord({ ...base, screen: 'frozen' })).toMatchObject({ state: 'frozen', label: 'frozen', frame: 7 });
    expect(describeRecord({ ...base, screen: 'offline_screen' })).toMatchObject({ state: 'offline_screen', label: 'offline screen' });
    expect(describeRecord({ ...base, screen: 'black' })).toMatchObject({ state: 'black', label: 'black screen' });
    expect(describeRecord({ stream: 'b', status: 'offline', at: 5, ms: {}, error: 'channel is offline' }))
      .toMatchObject({ state: 'offline', label: 'offline', frame: null, detail: 'channel is offline' });
    expect(describeRecord({ stream: 'c', status: 'error', at: 5, ms: {}, stage: 'segment', code: 'http', error: 'GET /x.ts returned HTTP 404' }))
      .toMatchObject({ state: 'error', label: 'error', frame: null, detail: 'segment: GET /x.ts returned HTTP 404' });
    expect(describeRecord({ stream: 'c', status: 'error', at: 5, ms: {}, stage: 'decode', code: 'stall' }).detail).toBe('decode: stall');
    expect(describeRecord({ stream: 'c', status: 'error', at: 5, ms: {}, stage: 'playlist', code: 'http', error: 'playlist: HTTP 500' }).detail).toBe('playlist: HTTP 500');
  });

  it('a malformed record is named, not shown', () => {
    expect(describeRecord(null).error).toBe('record is not an object');
    expect(describeRecord({ status: 'ok', at: 1 }).error).toBe('record has no stream name');
    expect(describeRecord({ stream: 'x', status: 'weird', at: 1 }).error).toBe('record for x has status "weird"');
    expect(describeRecord({ stream: 'x', status: 'ok', at: 'soon' }).error).toBe('record for x has no capture time');
  });
});

describe('card text', () => {
  it('matchesText keeps the first ones and counts the rest', () => {
    const many = Array.from({ length: 8 }, (_, i) => ({ region: 'r', cell: i, template: `t${i}`, score: 0.9 }));
    expect(matchesText(many, 3)).toBe('t0 0.90 · t1 0.90 · t2 0.90 · +5');
    expect(matchesText([])).toBe('');
  });

  it('displayName: Twitch names as they are; playlist URLs and paths by their last two parts', () => {
    expect(displayName('some_streamer')).toBe('some_streamer');
    expect(displayName('https://cdn.example/live/chan42/index.m3u8?token=x')).toBe('chan42/index.m3u8');
    expect(displayName('/var/lib/ringcast/demo-hls/demo1/live.m3u8')).toBe('demo1/live.m3u8');
    expect(displayName('file:///srv/hls/a.m3u8')).toBe('hls/a.m3u8');
  });

  it('ageText', () => {
    expect(ageText(500)).toBe('now');
    expect(ageText(12_400)).toBe('12 s ago');
    expect(ageText(4 * 60_000 + 5_000)).toBe('4 min ago');
    expect(ageText(3 * 3_600_000)).toBe('3 h ago');
    expect(ageText(-5)).toBe('now'); // the server-clock estimate lags by the hello's transit time
    expect(ageText(Number.NaN)).toBe('');
  });
});

interface OrderOptions {
  registered: Array<{ name: string; priority: number; enabled?: boolean }> | null;
  reporting: Iterable<string>;
  pinned: string[];
  max: number;
  page?: number;
  problemsOnly?: boolean;
  stateOf?: (name: string) => string;
}
/** What the page does each repaint: the followed streams in order, then one page of them. */
const cardOrder = (o: OrderOptions) => cardPage(streamOrder(o), o);

describe('streamOrder + cardPage', () => {
  const registered = [
    { name: 'low', priority: 10 },
    { name: 'top', priority: 90 },
    { name: 'mid_b', priority: 50 },
    { name: 'mid_a', priority: 50 },
    { name: 'off', priority: 99, enabled: false },
  ];
  const names = (o: OrderOptions) => cardOrder(o).names;

  it('registry by priority, then name; disabled streams left out; at most max', () => {
    expect(names({ registered, reporting: ['zeta', 'top'], pinned: [], max: 10 })).toEqual(['top', 'mid_a', 'mid_b', 'low']);
    expect(cardOrder({ registered, reporting: [], pinned: [], max: 2 })).toEqual({ names: ['top', 'mid_a'], page: 0, pages: 2, total: 4 });
  });

  it('before the registry has been read, the streams that report stand in, by name', () => {
    expect(names({ registered: null, reporting: new Set(['zeta', 'alpha', 'mid']).keys(), pinned: [], max: 2 })).toEqual(['alpha', 'mid']);
  });

  it('pinned streams come in the order asked, whether or not registered', () => {
    expect(names({ registered, reporting: ['zeta'], pinned: ['low', 'nobody', 'top'], max: 10 })).toEqual(['low', 'nobody', 'top']);
    expect(names({ registered, reporting: [], pinned: ['low', 'nobody', 'top'], max: 2 })).toEqual(['low', 'nobody']);
  });

  it('pages of max cards; the page number wraps so a rotating wall just counts up', () => {
    const o = { registered, reporting: [], pinned: [], max: 3 };
    expect(cardOrder({ ...o, page: 1 })).toEqual({ names: ['low'], page: 1, pages: 2, total: 4 });
    expect(cardOrder({ ...o, page: 2 }).names).toEqual(['top', 'mid_a', 'mid_b']);
    expect(cardOrder({ ...o, page: 7 }).page).toBe(1);
    expect(cardOrder({ registered: [], reporting: [], pinned: [], max: 3, page: 5 })).toEqual({ names: [], page: 0, pages: 1, total: 0 });
  });

  it('problemsOnly keeps streams in a problem state (frozen, black, offline screen, offline, error)', () => {
    const states: Record<string, string> = { top: 'ok', mid_a: 'error', mid_b: 'frozen', low: 'waiting' };
    const o = { registered, reporting: [], pinned: [], max: 10, problemsOnly: true, stateOf: (n: string) => states[n] };
    expect(cardOrder(o)).toEqual({ names: ['mid_a', 'mid_b'], page: 0, pages: 1, total: 2 });
    expect([...PROBLEM_STATES].sort()).toEqual(['black', 'error', 'frozen', 'offline', 'offline_screen']);
  });
});

describe('thumbQueue', () => {
  it('at most `limit` loads at once; one pending per stream, the newest request kept; a failing load frees its place', async () => {
    const started: string[] = [];
    const release = new Map<string, () => void>();
    let peak = 0;
    let active = 0;
    const q = thumbQueue(2, (stream: string, req: number) => {
      started.push(`${stream}#${req}`);
      active++;
      peak = Math.max(peak, active);
      return new Promise<void>((resolve, reject) => {
        release.set(`${stream}#${req}`, () => { active--; (stream === 'bad' ? reject(new Error('HTTP 404')) : resolve()); });
      });
    });
    q.request('bad', 1);
    q.request('b', 1);
    q.request('c', 1);
    q.request('c', 2); // replaces c#1, still pending
    q.request('d', 1);
    await Promise.resolve();
    expect(started).toEqual(['bad#1', 'b#1']);
    expect(q.pending).toBe(2);
    release.get('bad#1')!();
    await new Promise((r) => setTimeout(r, 0));
    expect(started).toEqual(['bad#1', 'b#1', 'c#2']);
    release.get('b#1')!();
    await new Promise((r) => setTimeout(r, 0));
    expect(started).toEqual(['bad#1', 'b#1', 'c#2', 'd#1']);
    release.get('c#2')!();
    release.get('d#1')!();
    await new Promise((r) => setTimeout(r, 0));
    expect(peak).toBe(2);
    expect(q.active).toBe(0);
    expect(q.pending).toBe(0);
  });
});
