/**
 * A process's CPU time and memory as Linux reports them in /proc, for benchmarks that
 * measure child processes (ffmpeg, redis-server, the service) from outside.
 *
 * /proc/<pid>/stat: the command name sits in parentheses and may contain spaces, so the
 * fields are read after the last ')'; there, index 1 is the parent pid, 11/12 utime/stime
 * and 13/14 the waited-for children's, in USER_HZ ticks (100 per second on Linux).
 */
import { readFileSync } from 'node:fs';

const USER_HZ = 100;

export interface ProcCpu {
  /** utime + stime, ms. */
  cpuMs: number;
  /** cutime + cstime (children already waited for), ms. */
  childrenCpuMs: number;
  ppid: number;
}

/** CPU of a process (this one by default); undefined once it has gone. */
export function procCpu(pid: number | 'self' = 'self'): ProcCpu | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ms = (a: number, b: number) => ((Number(f[a]) + Number(f[b])) * 1000) / USER_HZ;
  return { cpuMs: ms(11, 12), childrenCpuMs: ms(13, 14), ppid: Number(f[1]) };
}

/** A field of /proc/<pid>/status in bytes (VmRSS now, VmHWM the peak); undefined once gone. */
function statusBytes(pid: number | 'self', field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export const procRssBytes = (pid: number | 'self' = 'self') => statusBytes(pid, 'VmRSS');
export const procPeakRssBytes = (pid: number | 'self' = 'self') => statusBytes(pid, 'VmHWM');

/** procCpu for a process that must still be running (a benchmark's own child). */
export function liveProcCpu(pid: number | 'self' = 'self'): ProcCpu {
  const cpu = procCpu(pid);
  if (!cpu) throw new Error(`process ${pid} is gone: cannot read its CPU time from /proc`);
  return cpu;
}
