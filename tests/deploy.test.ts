/**
 * Deployment as the README describes it: every shipped config example passes the real config
 * schema; deploy/install.sh puts the app, config, unit and data dir under a temp root; the
 * service started the way the installed unit starts it (its ExecStart, Environment and
 * WorkingDirectory, rooted in the temp dir) with the installed example config serves /healthz
 * 200 and exits 0 on SIGTERM; `systemd-analyze verify` accepts the unit where it exists.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/shared/config.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const deployDir = path.join(root, 'deploy');
const examples = readdirSync(deployDir).filter((f) => /config.*\.json$/.test(f));
const temp = mkdtempSync(path.join(tmpdir(), 'ringcast-deploy-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

/** The unit's [Service] settings (last value wins; Environment= collects). */
function parseUnit(text: string): { execStart: string[]; env: Record<string, string>; workingDirectory: string; watchdog: string | undefined } {
  const env: Record<string, string> = {};
  let execStart: string[] = [];
  let workingDirectory = '/';
  let watchdog: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || !line.includes('=')) continue;
    const key = line.slice(0, line.indexOf('='));
    const value = line.slice(line.indexOf('=') + 1);
    if (key === 'ExecStart') execStart = value.split(/\s+/);
    else if (key === 'Environment') { const [k, ...v] = value.split('='); env[k] = v.join('='); }
    else if (key === 'WorkingDirectory') workingDirectory = value;
    else if (key === 'WatchdogSec') watchdog = value;
  }
  return { execStart, env, workingDirectory, watchdog };
}

describe('shipped config examples', () => {
  it('there is at least the production example', () => {
    expect(examples).toContain('config.example.json');
  });

  it.each(examples)('%s loads through the real config schema', (file) => {
    const config = loadConfig(['--config', path.join(deployDir, file)], {});
    expect(config.port).toBeGreaterThan(0);
  });

  it('the production example turns the demo off and keeps its data in /var/lib/ringcast', () => {
    const config = loadConfig(['--config', path.join(deployDir, 'config.example.json')], {});
    expect(config.demo.enabled).toBe(false);
    expect(config.dataDir).toBe('/var/lib/ringcast');
  });
});

describe('systemd recipe (deploy/install.sh into a temp root)', () => {
  const unitFile = path.join(deployDir, 'ringcast.service');
  const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

  it('systemd-analyze verify accepts the unit (where systemd-analyze exists)', () => {
    if (!hasAnalyze) {
      // CI installs systemd-analyze (.ci/run), so there it must run; elsewhere the unit is still
      // exercised by the start test below.
      if (process.env.CI === 'true') throw new Error('systemd-analyze not found under CI (apt-get install systemd)');
      console.warn('systemd-analyze not installed: unit syntax not verified');
      return;
    }
    const r = spawnSync('systemd-analyze', ['verify', unitFile], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/Unknown key|Invalid|Failed to parse/i);
  });

  it('installs app, overlay, config, unit and data dir; the service starts from there, serves /healthz 200 and exits 0 on SIGTERM', async () => {
    const dest = path.join(temp, 'root');
    execFileSync('bash', [path.join(deployDir, 'install.sh'), '--root', dest], { encoding: 'utf8', stdio: 'pipe' });
    const app = path.join(dest, 'opt', 'ringcast');
    for (const f of ['package.json', 'dist/src/main.js', 'overlay/board.html', 'overlay/lib', 'node_modules/better-sqlite3', 'node_modules/@ffmpeg-installer/ffmpeg']) {
      expect(existsSync(path.join(app, f)), f).toBe(true);
    }
    expect(existsSync(path.join(app, 'node_modules', 'vitest')), 'dev dependencies pruned').toBe(false);
    expect(readFileSync(path.join(dest, 'etc', 'ringcast', 'config.json'), 'utf8')).toBe(readFileSync(path.join(deployDir, 'config.example.json'), 'utf8'));
    expect(statSync(path.join(dest, 'var', 'lib', 'ringcast')).isDirectory()).toBe(true);

    const unit = parseUnit(readFileSync(path.join(dest, 'etc', 'systemd', 'system', 'ringcast.service'), 'utf8'));
    expect(unit.execStart.slice(0, 2)).toEqual(['/usr/bin/node', '/opt/ringcast/dist/src/main.js']);
    expect(unit.watchdog).toBeDefined();
    // Run it as systemd would, with every absolute path of the unit moved under the temp root.
    const rooted = (p: string) => (p.startsWith('/opt/') || p.startsWith('/etc/') || p.startsWith('/var/') ? path.join(dest, p) : p);
    const [, ...args] = unit.execStart.map(rooted);
    const env = Object.fromEntries(Object.entries(unit.env).map(([k, v]) => [k, rooted(v)]));
    expect(env.RINGCAST_DATA_DIR).toBe(path.join(dest, 'var', 'lib', 'ringcast'));
    // Only the ports differ from the example (8080 may be taken on a test machine).
    const child = spawn(process.execPath, [...args, '--port', '0', '--ingest-tcp-port', '0'], {
      cwd: rooted(unit.workingDirectory), env: { PATH: process.env.PATH, HOME: temp, NOTIFY_SOCKET: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: string[] = [];
    child.stdout.on('data', (d) => out.push(String(d)));
    child.stderr.on('data', (d) => out.push(String(d)));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    try {
      let port = 0;
      const deadline = Date.now() + 20_000;
      while (port === 0) {
        const m = /"port":(\d+)[^\n]*ringcast listening/.exec(out.join(''));
        if (m) port = Number(m[1]);
        else if (child.exitCode !== null || Date.now() > deadline) throw new Error(`installed service did not start: ${out.join('')}`);
        else await new Promise((r) => setTimeout(r, 50));
      }
      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(health.status).toBe(200);
      const h = (await health.json()) as { ok: boolean; actors: Record<string, string> };
      expect(h.ok).toBe(true);
      expect(h.actors).not.toHaveProperty('demo-trainer');
      // The overlay pages come from the installed overlay/ directory.
      expect((await fetch(`http://127.0.0.1:${port}/overlay/board`)).status).toBe(200);
      // State lands in the unit's data dir.
      expect(existsSync(path.join(env.RINGCAST_DATA_DIR, 'ringcast.db'))).toBe(true);
      child.kill('SIGTERM');
      expect(await exited).toEqual({ code: 0, signal: null });
      expect(out.join('')).toContain('stopped cleanly');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 90_000);
});
