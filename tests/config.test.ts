import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, describeConfig, loadConfig } from '../src/shared/config.js';

const dir = mkdtempSync(join(tmpdir(), 'ringcast-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeConfigFile(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function loadError(argv: string[], env: NodeJS.ProcessEnv = {}): ConfigError {
  try {
    loadConfig(argv, env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected loadConfig to throw');
}

describe('loadConfig', () => {
  it('fills every key from defaults, deriving stateDbPath from dataDir', () => {
    const config = loadConfig([], {});
    expect(config).toEqual({
      host: '127.0.0.1',
      port: 8080,
      logLevel: 'info',
      dataDir: './data',
      stateDbPath: join('./data', 'ringcast.db'),
      shutdownDeadlineMs: 8000,
      heartbeatIntervalMs: 250,
      hangTimeoutMs: 3000,
      restart: {
        strategy: 'one_for_one',
        intensity: 5,
        periodMs: 10000,
        backoffInitialMs: 10,
        backoffMaxMs: 2000,
        standby: false,
      },
      demo: { enabled: true, ratePerSec: 2000, recordBytes: 256, crashEveryMs: 0 },
    });
  });

  it('layers file < env < flags, key by key', () => {
    const file = writeConfigFile(
      'layers.json',
      JSON.stringify({ port: 1111, host: '10.0.0.1', logLevel: 'warn', demo: { ratePerSec: 5 } }),
    );
    const config = loadConfig(['--port=3333', '--demo-rate', '7'], {
      RINGCAST_CONFIG: file,
      RINGCAST_PORT: '2222',
      RINGCAST_HOST: '10.0.0.2',
      RINGCAST_DATA_DIR: '/srv/ringcast',
    });
    expect(config.port).toBe(3333); // flag beats env and file
    expect(config.host).toBe('10.0.0.2'); // env beats file
    expect(config.logLevel).toBe('warn'); // file beats default
    expect(config.demo).toEqual({ enabled: true, ratePerSec: 7, recordBytes: 256, crashEveryMs: 0 }); // nested merge keeps defaults
    expect(config.stateDbPath).toBe(join('/srv/ringcast', 'ringcast.db'));
  });

  it('takes --config over RINGCAST_CONFIG', () => {
    const fromFlag = writeConfigFile('flag.json', JSON.stringify({ port: 1 }));
    const fromEnv = writeConfigFile('env.json', JSON.stringify({ port: 2 }));
    expect(loadConfig(['--config', fromFlag], { RINGCAST_CONFIG: fromEnv }).port).toBe(1);
  });

  it('names the key, the value and the source for a non-numeric port', () => {
    expect(loadError(['--port', 'nope']).message).toBe(
      'invalid config: port = "nope" (from --port): expected an integer 0–65535',
    );
  });

  it('rejects an out-of-range port from the environment', () => {
    const message = loadError([], { RINGCAST_PORT: '70000' }).message;
    expect(message).toContain('port = 70000 (from RINGCAST_PORT)');
    expect(message).toContain('0–65535');
  });

  it('rejects an unknown flag by name', () => {
    expect(loadError(['--prot', '80']).message).toMatch(/invalid config: Unknown option '--prot'/);
  });

  it('rejects unknown config-file keys, nested ones included', () => {
    const file = writeConfigFile('unknown.json', JSON.stringify({ prot: 80, restart: { intensty: 3 } }));
    const error = loadError(['--config', file]);
    expect(error.issues.map((i) => i.key).sort()).toEqual(['prot', 'restart.intensty']);
    expect(error.message).toContain(`invalid config: prot (from config file ${file}): unknown key; allowed keys are host, port`);
  });

  it('reports a missing config file clearly', () => {
    const missing = join(dir, 'does-not-exist.json');
    expect(loadError(['--config', missing]).message).toBe(
      `invalid config: config file ${JSON.stringify(missing)} (from --config) does not exist`,
    );
  });

  it('reports a config file that is not valid JSON', () => {
    const file = writeConfigFile('broken.json', '{ "port": 80,');
    expect(loadError([], { RINGCAST_CONFIG: file }).message).toContain('(from RINGCAST_CONFIG) is not valid JSON');
  });

  it('rejects a shutdown deadline of 10000 ms or more', () => {
    expect(loadConfig(['--shutdown-deadline-ms', '9999'], {}).shutdownDeadlineMs).toBe(9999);
    expect(loadError(['--shutdown-deadline-ms', '10000']).message).toContain(
      'shutdownDeadlineMs = 10000 (from --shutdown-deadline-ms)',
    );
  });

  it('describes every key with a flag, env var and default', () => {
    const rows = describeConfig();
    const port = rows.find((r) => r.key === 'port');
    expect(port).toMatchObject({ flag: '--port', env: 'RINGCAST_PORT', default: '8080' });
    expect(rows.map((r) => r.key)).toContain('restart.backoffMaxMs');
  });
});
