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
      nativeHangGraceMs: 10_000,
      restart: {
        strategy: 'one_for_one',
        intensity: 5,
        periodMs: 10000,
        backoffInitialMs: 10,
        backoffMaxMs: 2000,
        standby: false,
      },
      demo: { enabled: true, run: 'demo', stepsPerSec: 10, movesPerSec: 3, crashEveryMs: 0 },
      auth: {},
      ingest: { tcpPort: 8081, unixPath: join('./data', 'ingest.sock'), maxFrameBytes: 16 * 1024 * 1024, maxConnections: 1024, helloTimeoutMs: 5000, preAuthMaxBytes: 64 * 1024, maxPreAuthPerAddress: 64 },
      fanout: { threads: 0, softLimitBytes: 256 * 1024, hardLimitBytes: 8 * 1024 * 1024, maxFps: 60, maxClients: 50_000, snapshotIntervalMs: 1000, compression: 'off' },
      aggregate: expect.objectContaining({ windowMs: 100, health: { klHealthy: 0.01, clipHealthy: 0.1, klLearning: 0.05 } }),
      experience: { batchSize: 32, timeoutMs: 100, queueBatches: 64, retainBytes: 64 * 1024 * 1024, retainMs: 60_000, maxRate: 0, ringBytes: 32 * 1024 * 1024 },
      twitch: expect.objectContaining({ username: 'ringcast_bot', predictionSeconds: 30, moderator: false }),
      obs: expect.objectContaining({ celebrationSeconds: 8, scenes: expect.objectContaining({ overview: 'Overview' }) }),
      capture: { enabled: true, width: 640, height: 360, decoders: 0, decoderSyncEvery: 8, analysisThreads: 1, slots: 48, historyLength: 50, fetchTimeoutMs: 5000, offlineRecheckMs: 30000, demoStreams: 3 },
      compose: { width: 1920, height: 1080, fps: 30, outputs: [], bitrateKbps: 4500, preset: 'veryfast', keyframeSeconds: 2, encoder: 'auto', audio: 'silence', audioVolume: 1 },
      clips: { enabled: true, bufferSeconds: 60, maxCount: 100, maxBytes: 2 * 1024 ** 3, onMilestone: false },
      http: { rateLimitPerMin: 600, rateLimitBurst: 100, previewThreads: 1, previewQueue: 4 },
      cluster: { heartbeatMs: 1000, nodeTimeoutMs: 5000, leaseMs: 3000, captureWeight: 1 },
      recording: { enabled: true, experience: false, segmentBytes: 8 * 1024 * 1024, maxBytesPerRun: 512 * 1024 * 1024, maxBytesTotal: 4096 * 1024 * 1024, maxAgeHours: 168, maxReplays: 4, replaySpeed: 1 },
    });
  });

  it('layers file < env < flags, key by key', () => {
    const file = writeConfigFile(
      'layers.json',
      JSON.stringify({ port: 1111, host: '10.0.0.1', logLevel: 'warn', demo: { stepsPerSec: 5 } }),
    );
    const config = loadConfig(['--port=3333', '--demo-steps-per-sec', '7'], {
      RINGCAST_CONFIG: file,
      RINGCAST_PORT: '2222',
      RINGCAST_HOST: '10.0.0.2',
      RINGCAST_DATA_DIR: '/srv/ringcast',
    });
    expect(config.port).toBe(3333); // flag beats env and file
    expect(config.host).toBe('10.0.0.2'); // env beats file
    expect(config.logLevel).toBe('warn'); // file beats default
    expect(config.demo).toEqual({ enabled: true, run: 'demo', stepsPerSec: 7, movesPerSec: 3, crashEveryMs: 0 }); // nested merge keeps defaults
    expect(config.stateDbPath).toBe(join('/srv/ringcast', 'ringcast.db'));
  });

  it('takes --config over RINGCAST_CONFIG', () => {
    const fromFlag = writeConfigFile('flag.json', JSON.stringify({ port: 1 }));
    const fromEnv = writeConfigFile('env.json', JSON.stringify({ port: 2 }));
    expect(loadConfig(['--config', fromFlag], { RINGCAST_CONFIG: fromEnv }).port).toBe(1);
  });

  it('names the key, the value and the source for a non-numeric port', () => {
    expect(loadError(['--port', 'nope']).message).toBe(
      'invalid config: port = "nope" (from --port): expected an integer 0–65535 (HTTP and WebSocket port; 0 picks a free port below the kernel ephemeral range)',
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

  it('takes fractional thresholds from flags and env, and checks cross-key rules of the new sections', () => {
    const config = loadConfig(['--health-kl-healthy', '0.02'], { RINGCAST_SMOOTHING_ALPHA: '0.5', RINGCAST_INGEST_TOKEN: 'abcdefgh12' });
    expect(config.aggregate.health.klHealthy).toBe(0.02);
    expect(config.aggregate.smoothingAlpha).toBe(0.5);
    expect(config.auth.ingestToken).toBe('abcdefgh12');
    expect(loadError(['--health-kl-healthy', '0.5']).message).toMatch(/aggregate\.health\.klHealthy = 0\.5.*must not exceed aggregate\.health\.klLearning \(aggregate\.health\.klLearning = 0\.05 from defaults\)/);
    expect(loadError(['--fanout-soft-limit-bytes', '9000000']).message).toMatch(/fanout\.softLimitBytes = 9000000.*must be less than fanout\.hardLimitBytes/);
    expect(loadError(['--smoothing-alpha', 'lots']).message).toMatch(/aggregate\.smoothingAlpha = "lots".*expected a number 0\.001–1/);
    expect(loadError([], { RINGCAST_ADMIN_TOKEN: 'short' }).message).toMatch(/auth\.adminToken.*RINGCAST_ADMIN_TOKEN.*at least 8 characters/);
  });

  it('describes every key with a flag, env var and default', () => {
    const rows = describeConfig();
    const port = rows.find((r) => r.key === 'port');
    expect(port).toMatchObject({ flag: '--port', env: 'RINGCAST_PORT', default: '8080' });
    expect(rows.map((r) => r.key)).toContain('restart.backoffMaxMs');
  });
});

describe('README', () => {
  it('documents every config key exactly as the schema describes it', async () => {
    const { readFileSync } = await import('node:fs');
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const start = readme.indexOf('<!-- config-table:start -->\n') + '<!-- config-table:start -->\n'.length;
    const end = readme.indexOf('<!-- config-table:end -->');
    const { configTableMarkdown } = await import('../src/shared/config.js');
    expect(readme.slice(start, end).trim()).toBe(configTableMarkdown());
  });
});

describe('negative numbers on the command line', () => {
  it('--ingest-tcp-port -1 disables TCP ingest (parseArgs alone would call it ambiguous)', () => {
    expect(loadConfig(['--ingest-tcp-port', '-1'], {}).ingest.tcpPort).toBe(-1);
    expect(loadConfig(['--ingest-tcp-port=-1'], {}).ingest.tcpPort).toBe(-1);
  });
});

describe('repeatable flags', () => {
  it('--output may be given several times; RINGCAST_OUTPUTS is comma-separated; a bad output names the rule', () => {
    expect(loadConfig(['--output', 'rtmp://live.twitch.tv/app/key', '--output', 'show.mp4'], {}).compose.outputs).toEqual(['rtmp://live.twitch.tv/app/key', 'show.mp4']);
    expect(loadConfig([], { RINGCAST_OUTPUTS: 'a.mp4, rtmp://x/y' }).compose.outputs).toEqual(['a.mp4', 'rtmp://x/y']);
    expect(loadConfig([], {}).compose.outputs).toEqual([]);
    expect(loadError(['--output', 'nonsense']).message).toMatch(/compose\.outputs\.0 = "nonsense".*rtmp:\/\//);
  });
});

describe('short flags (the frame processor\'s CLI)', () => {
  it('-h -p -i -m -q -f -d mean host, port, interval, max concurrent, quality, streams file, debug', () => {
    const c = loadConfig(['-h', '0.0.0.0', '-p', '9090', '-i', '5', '-m', '10', '-q', '720p', '-f', 'streams.txt', '-d'], {});
    expect(c).toMatchObject({ host: '0.0.0.0', port: 9090, logLevel: 'debug', capture: { interval: 5, maxConcurrent: 10, quality: '720p', streamsFile: 'streams.txt' } });
    // Joined forms and the long flags agree; a bad value names the long key.
    expect(loadConfig(['-p0'], {}).port).toBe(0);
    expect(loadConfig(['-p', '7'], {})).toEqual(loadConfig(['--port', '7'], {}));
    expect(loadError(['-p', 'nope']).message).toMatch(/port = "nope"/);
    expect(loadError(['-x']).message).toMatch(/Unknown option '-x'.*-p\/--port/);
  });
});

describe('capture flags', () => {
  it('takes --debug, --interval, --max-concurrent, --quality, --streams-file and the Twitch endpoint flags', () => {
    const c = loadConfig(['--debug', '--interval', '5', '--max-concurrent', '10', '--quality', '720p', '--streams-file', 'streams.txt',
      '--twitch-gql-url', 'http://127.0.0.1:9/gql', '--twitch-usher-url', 'http://127.0.0.1:9'], {});
    expect(c.logLevel).toBe('debug');
    expect(c.capture).toMatchObject({ interval: 5, maxConcurrent: 10, quality: '720p', streamsFile: 'streams.txt', twitchGqlUrl: 'http://127.0.0.1:9/gql', twitchUsherUrl: 'http://127.0.0.1:9' });
  });

  it('leaves interval, max-concurrent and quality unset when not given, so the stored config wins', () => {
    const c = loadConfig([], {});
    expect(c.capture.interval).toBeUndefined();
    expect(c.capture.maxConcurrent).toBeUndefined();
    expect(c.capture.quality).toBeUndefined();
  });

  it('names the key and the rule for bad capture values', () => {
    expect(() => loadConfig(['--quality', '4k'], {})).toThrow(/capture\.quality/);
    expect(() => loadConfig(['--interval', '0'], {})).toThrow(/capture\.interval/);
    expect(() => loadConfig(['--twitch-gql-url', 'not a url'], {})).toThrow(/capture\.twitchGqlUrl/);
  });
});

describe('run names and the ingest pre-auth budget', () => {
  it('--demo-run follows the one run-name rule producers are held to', () => {
    expect(loadConfig(['--demo-run', 'keisei:7'], {}).demo.run).toBe('keisei:7');
    expect(loadError(['--demo-run', '../etc']).message).toMatch(/demo\.run = "\.\.\/etc" \(from --demo-run\): .*a run name is 1-128 characters/);
  });

  it('takes the pre-auth flags and env vars, with bounds', () => {
    const c = loadConfig(['--ingest-hello-timeout-ms', '1500', '--ingest-pre-auth-max-bytes', '4096'], { RINGCAST_INGEST_MAX_PRE_AUTH_PER_ADDRESS: '8' });
    expect(c.ingest).toMatchObject({ helloTimeoutMs: 1500, preAuthMaxBytes: 4096, maxPreAuthPerAddress: 8 });
    expect(loadError(['--ingest-hello-timeout-ms', '0']).message).toMatch(/ingest\.helloTimeoutMs/);
    expect(loadError(['--ingest-max-pre-auth-per-address', '0']).message).toMatch(/ingest\.maxPreAuthPerAddress/);
  });
});

describe('fan-out compression', () => {
  it('is off by default; --fanout-compression / RINGCAST_FANOUT_COMPRESSION pick shared; anything else names the key', () => {
    expect(loadConfig([], {}).fanout.compression).toBe('off');
    expect(loadConfig(['--fanout-compression', 'shared'], {}).fanout.compression).toBe('shared');
    expect(loadConfig([], { RINGCAST_FANOUT_COMPRESSION: 'shared' }).fanout.compression).toBe('shared');
    expect(() => loadConfig(['--fanout-compression', 'dedicated'], {})).toThrow(/fanout\.compression/);
  });
});
