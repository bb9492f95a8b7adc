import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { createSystemdNotifier } from '../src/supervisor/systemd-notify.js';

const dir = mkdtempSync(join(tmpdir(), 'ringcast-notify-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A stand-in systemd-notify that appends its arguments, one call per line.
const fakeBinDir = join(dir, 'bin');
const fakeNotify = join(fakeBinDir, 'systemd-notify');
mkdirSync(fakeBinDir, { recursive: true });
writeFileSync(fakeNotify, '#!/bin/sh\necho "$*" >> "$NOTIFY_RECORD"\n');
chmodSync(fakeNotify, 0o755);

let recordCounter = 0;
function notifyEnv(extra: NodeJS.ProcessEnv = {}): { env: NodeJS.ProcessEnv; record: string } {
  const record = join(dir, `calls-${recordCounter++}.log`);
  return {
    record,
    env: {
      // Fake first on PATH: proves the PATH lookup, not just an injected path.
      PATH: `${fakeBinDir}:${process.env.PATH ?? ''}`,
      NOTIFY_SOCKET: '/run/systemd/notify',
      NOTIFY_RECORD: record,
      ...extra,
    },
  };
}

function calls(record: string): string[] {
  return existsSync(record) ? readFileSync(record, 'utf8').trim().split('\n').filter(Boolean) : [];
}

describe('createSystemdNotifier', () => {
  it('sends READY=1 and STOPPING=1 through systemd-notify with our pid', async () => {
    const { env, record } = notifyEnv();
    const notifier = createSystemdNotifier({ env, pid: 4242 });
    expect(notifier.enabled).toBe(true);

    await notifier.ready('serving on :8080');
    await notifier.stopping();
    expect(calls(record)).toEqual(['--pid=4242 READY=1 STATUS=serving on :8080', '--pid=4242 STOPPING=1']);
  });

  it('pings WATCHDOG=1 every WATCHDOG_USEC/2 only while healthy', async () => {
    const { env, record } = notifyEnv({ WATCHDOG_USEC: '100000', WATCHDOG_PID: String(process.pid) });
    const notifier = createSystemdNotifier({ env });
    expect(notifier.watchdogIntervalMs).toBe(50);

    let healthy = true;
    notifier.startWatchdog(() => healthy);
    await sleep(400);
    healthy = false;
    await sleep(300); // let pings already in flight land
    const pingsWhileHealthy = calls(record).filter((line) => line.endsWith('WATCHDOG=1')).length;
    await sleep(400);
    const pingsAfter = calls(record).filter((line) => line.endsWith('WATCHDOG=1')).length;
    notifier.stopWatchdog();

    expect(pingsWhileHealthy).toBeGreaterThanOrEqual(3);
    expect(pingsAfter).toBe(pingsWhileHealthy);
    expect(calls(record)[0]).toBe(`--pid=${process.pid} WATCHDOG=1`);
  });

  it('does not ping when the watchdog belongs to another pid', () => {
    const { env } = notifyEnv({ WATCHDOG_USEC: '100000', WATCHDOG_PID: '1' });
    expect(createSystemdNotifier({ env, pid: 4242 }).watchdogIntervalMs).toBeUndefined();
  });

  it('does nothing without NOTIFY_SOCKET', async () => {
    const { env, record } = notifyEnv({ NOTIFY_SOCKET: undefined, WATCHDOG_USEC: '100000' });
    const notifier = createSystemdNotifier({ env });
    expect(notifier.enabled).toBe(false);
    await notifier.ready();
    notifier.startWatchdog(() => true);
    await sleep(200);
    notifier.stopWatchdog();
    expect(existsSync(record)).toBe(false);
  });

  it('swallows a failing systemd-notify and logs it only once', async () => {
    const warnings: unknown[] = [];
    const logger = { warn: (...args: unknown[]) => warnings.push(args) } as never;
    const { env } = notifyEnv();
    const notifier = createSystemdNotifier({ env, logger, binary: join(dir, 'no-such-binary') });
    await expect(notifier.ready()).resolves.toBeUndefined();
    await expect(notifier.status('still here')).resolves.toBeUndefined();
    expect(warnings).toHaveLength(1);
  });
});
