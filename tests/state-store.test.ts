import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stateStoreContract } from './helpers/state-store-contract.js';
import { MemoryStateStore, SqliteStateStore, STATE_SCHEMA_VERSION } from '../src/shared/state-store.js';

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

// Both implementations must behave the same; run the shared contract on each (and on Redis: state-store-redis.test.ts).
stateStoreContract('SqliteStateStore', () => new SqliteStateStore(freshDbPath()));
stateStoreContract('MemoryStateStore', () => new MemoryStateStore());
