/**
 * The cluster deploy files: the template unit passes `systemd-analyze verify` (as a template and as
 * an instance), its command line and environment load through the real config with the shipped
 * cluster example, and each instance gets its own port, node id and data directory.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/shared/config.js';
import { repoRoot } from './helpers/python.js';

const unitFile = path.join(repoRoot, 'deploy', 'ringcast@.service');
const example = path.join(repoRoot, 'deploy', 'cluster.example.json');
const temp = mkdtempSync(path.join(tmpdir(), 'ringcast-unit-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

/** ExecStart words and Environment= pairs of the unit, with %i and %H filled in as systemd would. */
function instance(port: string, host: string): { args: string[]; env: Record<string, string> } {
  const text = readFileSync(unitFile, 'utf8').replaceAll('%i', port).replaceAll('%H', host);
  const exec = /^ExecStart=(.*)$/m.exec(text)![1].split(/\s+/);
  const env: Record<string, string> = {};
  for (const m of text.matchAll(/^Environment=([A-Z_]+)=(.*)$/gm)) env[m[1]] = m[2];
  return { args: exec.slice(2), env };
}

describe('cluster deploy files', () => {
  it('systemd-analyze verify accepts the template and an instance of it', () => {
    if (spawnSync('systemd-analyze', ['--version']).status !== 0) {
      if (process.env.CI === 'true') throw new Error('systemd-analyze not found under CI (apt-get install systemd)');
      console.warn('systemd-analyze not installed: unit syntax not verified');
      return;
    }
    const named = path.join(temp, 'ringcast@8082.service');
    copyFileSync(unitFile, named);
    for (const file of [unitFile, named]) {
      const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).not.toMatch(/Unknown key|Invalid|Failed to parse|bad-setting/i);
    }
  });

  it('an instance loads with the cluster example: its own port, node id and data dir, Redis from the file', () => {
    const { args, env } = instance('8082', 'host-1');
    const config = loadConfig(args.map((a) => (a === '/etc/ringcast/cluster.json' ? example : a)), env);
    expect(config.port).toBe(8082);
    expect(config.cluster).toMatchObject({ nodeId: 'host-1-8082', redis: 'redis://10.0.0.5:6379', nodeTimeoutMs: 5000 });
    expect(config.dataDir).toBe('/var/lib/ringcast/8082');
    expect(config.ingest.tcpPort).toBe(-1);
    expect(config.demo.enabled).toBe(false);
    const other = loadConfig(instance('8083', 'host-1').args.map((a) => (a === '/etc/ringcast/cluster.json' ? example : a)), instance('8083', 'host-1').env);
    expect([other.cluster.nodeId, other.dataDir]).toEqual(['host-1-8083', '/var/lib/ringcast/8083']);
  });
});
