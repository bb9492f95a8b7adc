import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryStateStore, SqliteStateStore, STATE_SCHEMA_VERSION, type StateStore } from '../src/shared/state-store.js';

const dir = mkdtempSync(join(tmpdir(), 'ringcast-state-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let dbCounter = 0;
function freshDbPath(): string {
  // A nested path also proves the store creates its directory.
  return join(dir, `case-${dbCounter++}`, 'nested', 'ringcast.db');
}

describe('SqliteStateStore', () => {
  it('runs in WAL mode at the current schema version', () => {
    const store = new SqliteStateStore(freshDbPath());
    expect(store.journalMode()).toBe('wal');
    expect(store.schemaVersion()).toBe(STATE_SCHEMA_VERSION);
    store.close();
  });

  it('keeps data across close and reopen', () => {
    const path = freshDbPath();
    const first = new SqliteStateStore(path);
    first.put('streams', 'main', { url: 'rtmp://example/live', bitrate: 6000 });
    first.close();

    const second = new SqliteStateStore(path);
    expect(second.get('streams', 'main')).toEqual({ url: 'rtmp://example/live', bitrate: 6000 });
    second.close();
  });
});

// Both implementations must behave the same; run the shared contract on each.
const implementations: Array<[string, () => StateStore]> = [
  ['SqliteStateStore', () => new SqliteStateStore(freshDbPath())],
  ['MemoryStateStore', () => new MemoryStateStore()],
];

describe.each(implementations)('%s contract', (_name, open) => {
  it('puts, gets, lists and deletes within a namespace', () => {
    const store = open();
    const before = Date.now();
    store.put('scene', 'b', { layout: 'split' });
    store.put('scene', 'a', [1, 2, 3]);
    store.put('streams', 'a', 'other namespace');
    store.put('scene', 'b', { layout: 'full' }); // overwrite

    expect(store.get('scene', 'b')).toEqual({ layout: 'full' });
    expect(store.get('scene', 'missing')).toBeUndefined();

    const listed = store.list('scene');
    expect(listed.map((e) => [e.key, e.value])).toEqual([
      ['a', [1, 2, 3]],
      ['b', { layout: 'full' }],
    ]);
    expect(listed.every((e) => e.updatedAt >= before && e.updatedAt <= Date.now())).toBe(true);

    expect(store.delete('scene', 'a')).toBe(true);
    expect(store.delete('scene', 'a')).toBe(false);
    expect(store.list('scene').map((e) => e.key)).toEqual(['b']);
    expect(store.get('streams', 'a')).toBe('other namespace');
    store.close();
  });

  it('rolls back every write of a transaction that throws', () => {
    const store = open();
    store.put('prediction_games', 'g1', { open: true });
    expect(() =>
      store.transaction((tx) => {
        tx.put('prediction_games', 'g1', { open: false });
        tx.put('prediction_games', 'g2', { open: true });
        throw new Error('settlement failed');
      }),
    ).toThrow('settlement failed');
    expect(store.get('prediction_games', 'g1')).toEqual({ open: true });
    expect(store.get('prediction_games', 'g2')).toBeUndefined();

    expect(store.transaction((tx) => (tx.put('prediction_games', 'g3', 1), 'committed'))).toBe('committed');
    expect(store.get('prediction_games', 'g3')).toBe(1);
    store.close();
  });

  it('refuses values JSON cannot represent', () => {
    const store = open();
    expect(() => store.put('scene', 'x', undefined)).toThrow(TypeError);
    store.close();
  });
});
