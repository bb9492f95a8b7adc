import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { liveProcCpu, procCpu, procPeakRssBytes, procRssBytes } from '../bench/lib/proc.js';

describe('bench /proc readers', () => {
  it('read this process: CPU grows with work, its parent is the one Node reports, the peak RSS is at least the current', () => {
    const before = liveProcCpu('self');
    // Spin for 150 ms of CPU time (not wall time: a busy machine may not schedule us).
    const c0 = process.cpuUsage();
    let x = 0;
    for (let used = 0; used < 150_000; used = Object.values(process.cpuUsage(c0)).reduce((a, b) => a + b, 0)) x += Math.sqrt(x + 1);
    const after = liveProcCpu(process.pid);
    expect(x).toBeGreaterThan(0);
    expect(after.cpuMs - before.cpuMs).toBeGreaterThanOrEqual(100);
    expect(after.ppid).toBe(process.ppid);
    const rss = procRssBytes()!;
    expect(Math.abs(rss - process.memoryUsage().rss)).toBeLessThan(64 * 2 ** 20);
    expect(procPeakRssBytes()!).toBeGreaterThanOrEqual(rss);
  });

  it('count a waited-for child in childrenCpuMs', () => {
    const before = liveProcCpu().childrenCpuMs;
    spawnSync(process.execPath, ['-e', 'const c = process.cpuUsage(); while (process.cpuUsage(c).user + process.cpuUsage(c).system < 200000);']);
    expect(liveProcCpu().childrenCpuMs - before).toBeGreaterThanOrEqual(100);
  });

  it('say undefined for a process that is gone, and liveProcCpu says which', () => {
    const gone = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
    const pid = Number(gone.stdout.trim());
    expect(procCpu(pid)).toBeUndefined();
    expect(procPeakRssBytes(pid)).toBeUndefined();
    expect(() => liveProcCpu(pid)).toThrow(`process ${pid} is gone`);
  });
});
