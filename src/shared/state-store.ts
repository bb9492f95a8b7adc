/**
 * Durable key/value state, namespaced ('streams', 'prediction_games', 'scene' …),
 * values stored as JSON.
 *
 * Callers depend on the StateStore interface only, so a networked store (Redis)
 * can replace SQLite later. The interface is synchronous because better-sqlite3
 * is, and it keeps transactions simple; a remote implementation would sit
 * behind a local write-through cache rather than change every caller.
 *
 * Keep the SQLite store in the supervisor thread: better-sqlite3 works in
 * workers, but one writer per database file avoids SQLITE_BUSY juggling.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, restrictFiles } from './private-files.js';

export interface StoredEntry<T> {
  key: string;
  value: T;
  /** Milliseconds since the epoch of the last put. */
  updatedAt: number;
}

export interface StateStore {
  get<T = unknown>(ns: string, key: string): T | undefined;
  /** Stores any JSON-serialisable value; throws TypeError for values JSON cannot represent. */
  put(ns: string, key: string, value: unknown): void;
  /** True when something was deleted. */
  delete(ns: string, key: string): boolean;
  /** Every entry of a namespace, ordered by key. */
  list<T = unknown>(ns: string): Array<StoredEntry<T>>;
  /** Runs fn atomically: if it throws, none of its writes happen and the error propagates. */
  transaction<R>(fn: (store: StateStore) => R): R;
  close(): void;
}

function encode(value: unknown): string {
  const json = JSON.stringify(value);
  if (json === undefined) throw new TypeError(`state value must be JSON-serialisable, got ${typeof value}`);
  return json;
}

/**
 * Schema migrations, applied in order. PRAGMA user_version records how many
 * have run; append new ones, never edit old ones.
 */
const MIGRATIONS: ReadonlyArray<(db: Database.Database) => void> = [
  (db) => {
    db.exec(`
      CREATE TABLE state (
        ns         TEXT    NOT NULL,
        key        TEXT    NOT NULL,
        value      TEXT    NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (ns, key)
      ) WITHOUT ROWID;
    `);
  },
];

export const STATE_SCHEMA_VERSION = MIGRATIONS.length;

export class SqliteStateStore implements StateStore {
  private readonly db: Database.Database;
  private readonly statements: {
    get: Database.Statement<[string, string], { value: string }>;
    put: Database.Statement<[string, string, string, number]>;
    delete: Database.Statement<[string, string]>;
    list: Database.Statement<[string], { key: string; value: string; updated_at: number }>;
  };

  /** Opens (creating if needed) the database at `path`; `:memory:` works too. */
  constructor(path: string) {
    if (path !== ':memory:') {
      mkdirSync(dirname(path), { recursive: true, mode: PRIVATE_DIR_MODE });
      // SQLite gives its -wal and -shm files the database file's mode, so creating the
      // file 0600 first keeps all three private; existing ones are tightened.
      closeSync(openSync(path, 'a', PRIVATE_FILE_MODE));
      restrictFiles([path, `${path}-wal`, `${path}-shm`]);
    }
    this.db = new Database(path);
    // WAL: readers never block the writer and commits are a sequential append.
    // NORMAL is durable against process crashes in WAL mode; only an OS crash or
    // power loss can lose the last few commits, which is fine for this state.
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
    this.statements = {
      get: this.db.prepare('SELECT value FROM state WHERE ns = ? AND key = ?'),
      put: this.db.prepare(
        `INSERT INTO state (ns, key, value, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      ),
      delete: this.db.prepare('DELETE FROM state WHERE ns = ? AND key = ?'),
      list: this.db.prepare('SELECT key, value, updated_at FROM state WHERE ns = ? ORDER BY key'),
    };
  }

  private migrate(): void {
    const current = this.db.pragma('user_version', { simple: true }) as number;
    if (current > MIGRATIONS.length) {
      throw new Error(
        `state database schema version ${current} is newer than this build understands (${MIGRATIONS.length}); refusing to run an older ringcast against it`,
      );
    }
    const apply = this.db.transaction(() => {
      for (let version = current; version < MIGRATIONS.length; version++) MIGRATIONS[version](this.db);
      this.db.pragma(`user_version = ${MIGRATIONS.length}`);
    });
    apply();
  }

  /** The SQLite journal mode in effect (expected: 'wal'). */
  journalMode(): string {
    return this.db.pragma('journal_mode', { simple: true }) as string;
  }

  schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  get<T = unknown>(ns: string, key: string): T | undefined {
    const row = this.statements.get.get(ns, key);
    return row ? (JSON.parse(row.value) as T) : undefined;
  }

  put(ns: string, key: string, value: unknown): void {
    this.statements.put.run(ns, key, encode(value), Date.now());
  }

  delete(ns: string, key: string): boolean {
    return this.statements.delete.run(ns, key).changes > 0;
  }

  list<T = unknown>(ns: string): Array<StoredEntry<T>> {
    return this.statements.list
      .all(ns)
      .map((row) => ({ key: row.key, value: JSON.parse(row.value) as T, updatedAt: row.updated_at }));
  }

  transaction<R>(fn: (store: StateStore) => R): R {
    // better-sqlite3 turns nested calls into savepoints, so transactions compose.
    return this.db.transaction(() => fn(this))();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/** In-memory store with the same semantics (JSON round-trip, rollback), for tests. */
export class MemoryStateStore implements StateStore {
  private namespaces = new Map<string, Map<string, { json: string; updatedAt: number }>>();
  private closed = false;

  private assertOpen(): void {
    if (this.closed) throw new Error('state store is closed');
  }

  get<T = unknown>(ns: string, key: string): T | undefined {
    this.assertOpen();
    const entry = this.namespaces.get(ns)?.get(key);
    return entry ? (JSON.parse(entry.json) as T) : undefined;
  }

  put(ns: string, key: string, value: unknown): void {
    this.assertOpen();
    const json = encode(value);
    let entries = this.namespaces.get(ns);
    if (!entries) this.namespaces.set(ns, (entries = new Map()));
    entries.set(key, { json, updatedAt: Date.now() });
  }

  delete(ns: string, key: string): boolean {
    this.assertOpen();
    return this.namespaces.get(ns)?.delete(key) ?? false;
  }

  list<T = unknown>(ns: string): Array<StoredEntry<T>> {
    this.assertOpen();
    const entries = [...(this.namespaces.get(ns) ?? new Map<string, { json: string; updatedAt: number }>())];
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return entries.map(([key, e]) => ({ key, value: JSON.parse(e.json) as T, updatedAt: e.updatedAt }));
  }

  transaction<R>(fn: (store: StateStore) => R): R {
    this.assertOpen();
    // Entries are immutable records, so copying the maps is a full snapshot.
    const snapshot = new Map([...this.namespaces].map(([ns, entries]) => [ns, new Map(entries)]));
    try {
      return fn(this);
    } catch (error) {
      this.namespaces = snapshot;
      throw error;
    }
  }

  close(): void {
    this.closed = true;
  }
}
