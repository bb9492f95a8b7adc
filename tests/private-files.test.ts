/**
 * Secrets and state stay private: the data directory 0700, tokens.json and the state
 * database (with its -wal/-shm) 0600; a looser directory is tightened, a tokens.json that
 * others can read is refused with a message saying how to fix it.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ensurePrivateDir, LooseSecretFileError } from '../src/shared/private-files.js';
import { SqliteStateStore } from '../src/shared/state-store.js';
import { loadConfig } from '../src/shared/config.js';
import { resolveTokens } from '../src/shared/tokens.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const mainJs = path.join(root, 'dist', 'src', 'main.js');
const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'ringcast-modes-'));
  dirs.push(d);
  return d;
}
const modeOf = (p: string) => statSync(p).mode & 0o777;

function runMain(args: string[], until: (out: string) => boolean, timeoutMs = 20_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [mainJs, ...args], { env: { ...process.env, NOTIFY_SOCKET: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let signalled = false;
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`timed out: ${out}`)); }, timeoutMs);
    const onData = (d: Buffer) => {
      out += String(d);
      if (!signalled && until(out)) { signalled = true; child.kill('SIGTERM'); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

describe('private files', () => {
  it('creates a missing data directory 0700 and tightens an existing 0755 one', () => {
    const base = tempDir();
    const fresh = path.join(base, 'a', 'b');
    ensurePrivateDir(fresh);
    expect(modeOf(fresh)).toBe(0o700);
    const loose = path.join(base, 'loose');
    mkdirSync(loose, { mode: 0o755 });
    chmodSync(loose, 0o755);
    ensurePrivateDir(loose);
    expect(modeOf(loose)).toBe(0o700);
  });

  it('keeps the state database and its -wal/-shm files 0600, tightening an existing 0644 database', () => {
    const dir = tempDir();
    const db = path.join(dir, 'state.db');
    writeFileSync(db, '');
    chmodSync(db, 0o644);
    const store = new SqliteStateStore(db);
    store.put('ns', 'k', { v: 1 });
    const files = readdirSync(dir).filter((f) => f.startsWith('state.db'));
    expect(files).toEqual(expect.arrayContaining(['state.db', 'state.db-wal', 'state.db-shm']));
    for (const f of files) expect([f, modeOf(path.join(dir, f))]).toEqual([f, 0o600]);
    store.close();
  });

  it('refuses a tokens.json that other users can read, naming the file and the fix', () => {
    const dir = tempDir();
    const file = path.join(dir, 'tokens.json');
    writeFileSync(file, JSON.stringify({ ingestToken: 'ingest-token-1', adminToken: 'admin-token-1' }));
    chmodSync(file, 0o644);
    const config = loadConfig(['--data-dir', dir], {});
    expect(() => resolveTokens(config)).toThrow(LooseSecretFileError);
    expect(() => resolveTokens(config)).toThrow(`chmod 600 ${file}`);
    chmodSync(file, 0o600);
    expect(resolveTokens(config).ingestToken).toBe('ingest-token-1');
  });

  it('the service run from its entry point leaves a 0700 data directory with 0600 tokens and database files', async () => {
    const dataDir = path.join(tempDir(), 'data');
    const { code, out } = await runMain(['--no-demo', '--no-capture', '--port', '0', '--ingest-tcp-port', '0', '--data-dir', dataDir], (o) => o.includes('ringcast listening'));
    expect(code, out).toBe(0);
    expect(modeOf(dataDir)).toBe(0o700);
    const files = readdirSync(dataDir).filter((f) => f === 'tokens.json' || f.startsWith('ringcast.db'));
    expect(files).toEqual(expect.arrayContaining(['tokens.json', 'ringcast.db']));
    for (const f of files) expect([f, modeOf(path.join(dataDir, f))]).toEqual([f, 0o600]);
  });

  it('the entry point exits 2 on a world-readable tokens.json, and says how to fix it', async () => {
    const dataDir = tempDir();
    const file = path.join(dataDir, 'tokens.json');
    writeFileSync(file, JSON.stringify({ ingestToken: 'ingest-token-1', adminToken: 'admin-token-1' }));
    chmodSync(file, 0o644);
    const { code, out } = await runMain(['--no-demo', '--no-capture', '--port', '0', '--ingest-tcp-port', '0', '--data-dir', dataDir], (o) => o.includes('ringcast listening'));
    expect(code, out).toBe(2);
    expect(out).toContain(`${file} is readable or writable by other users (mode 0644)`);
    expect(out).toContain(`chmod 600 ${file}`);
  });
});
