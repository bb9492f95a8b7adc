/**
 * The compiled entry point (dist/src/main.js) run as an operator runs it: its own process,
 * its output collected, its port read from the "ringcast listening" line. Every process and
 * temp dir made here is ended and removed by `cleanupMainProcesses()` (call it in afterEach).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repoRoot } from './python.js';

export const mainJs = path.join(repoRoot, 'dist', 'src', 'main.js');

export interface MainExit { code: number | null; signal: string | null; at: number }
export interface MainRun { child: ChildProcess; out: string[]; exited: Promise<MainExit> }

const children: ChildProcess[] = [];
const dirs: string[] = [];

/** Ends `child` at cleanup, like the processes runMain starts. */
export function trackChild(child: ChildProcess): ChildProcess {
  children.push(child);
  return child;
}

export function cleanupMainProcesses(): void {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export function tempDir(prefix = 'ringcast-main-'): string {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/**
 * Starts `node dist/src/main.js <args>`. A producer TCP port of 0 is added unless given, so
 * parallel test files never fight over the default one; `env` is laid over this process's.
 */
export function runMain(args: string[], env: NodeJS.ProcessEnv = {}, baseEnv: NodeJS.ProcessEnv = process.env): MainRun {
  if (!args.includes('--ingest-tcp-port')) args = [...args, '--ingest-tcp-port', '0'];
  const child = spawn(process.execPath, [mainJs, ...args], { env: { ...baseEnv, NOTIFY_SOCKET: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const out: string[] = [];
  child.stdout!.on('data', (d) => out.push(String(d)));
  child.stderr!.on('data', (d) => out.push(String(d)));
  const exited = new Promise<MainExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() }));
  });
  return { child, out, exited };
}

/** The port from the service's "ringcast listening" log line; throws if it exits or never listens. */
export async function listeningPort(r: Pick<MainRun, 'child' | 'out'>, timeoutMs = 20_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const m = /"port":(\d+)[^\n]*ringcast listening/.exec(r.out.join(''));
    if (m) return Number(m[1]);
    if (r.child.exitCode !== null) throw new Error(`exited early: ${r.out.join('')}`);
    await new Promise((res) => setTimeout(res, 25));
  }
  throw new Error(`never listened: ${r.out.join('')}`);
}
