/**
 * A gateway thread whose event loop is blocked while it holds uWS sockets, seen from a child
 * process (a SIGABRT must not take the test runner with it). Tearing such a thread down from
 * outside (worker.terminate(), or the main thread's process.exit()) aborts the whole process
 * in uv_loop_close, so the supervisor must never do it: a stall is waited out, a kill only
 * asks the thread to exit, and a thread hung for good ends the process by SIGKILL after an
 * escalation, never by an abort. Runs the compiled fixture (dist/, `npx tsc -p tsconfig.json`).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const script = fileURLToPath(new URL('../dist/tests/fixtures/gateway-hang.js', import.meta.url));

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; events: Array<Record<string, any>> }

function runFixture(mode: 'stall' | 'crash' | 'hung', timeoutMs = 40_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d; });
    child.stderr.on('data', (d: Buffer) => { stderr += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`fixture ${mode} still running after ${timeoutMs} ms\n${stdout}\n${stderr}`)); }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const events = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>);
      resolve({ code, signal, stdout, stderr, events });
    });
  });
}

function expectNoAbort(run: Run): void {
  expect(run.stderr).not.toMatch(/uv_loop_close\(\) while having open handles/);
  expect(run.signal).not.toBe('SIGABRT');
}

describe('gateway hang handling (the thread holds uWS sockets)', () => {
  it('a gateway blocked past hangTimeoutMs is a stall: not killed, its client kept, the process alive', async () => {
    const run = await runFixture('stall');
    expectNoAbort(run);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain('SURVIVED');
    const done = run.events.find((e) => e.event === 'done');
    expect(done).toMatchObject({ incarnation: 0, stalls: 1, clientOpen: true });
    expect(done!.logs).toEqual(expect.arrayContaining([expect.stringMatching(/actor stalled/), expect.stringMatching(/actor caught up/)]));
    expect(run.events.some((e) => e.event === 'actor-failed')).toBe(false);
  }, 60_000);

  it('killing a blocked gateway (the restart path) waits for it to exit by itself; it restarts and the process lives', async () => {
    const run = await runFixture('crash');
    expectNoAbort(run);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.events.find((e) => e.event === 'done')).toMatchObject({ incarnation: 1 });
    expect(run.stdout).toContain('SURVIVED');
  }, 60_000);

  it('a gateway hung past hangTimeoutMs + nativeHangGraceMs escalates and the process ends by SIGKILL, not SIGABRT', async () => {
    const run = await runFixture('hung');
    expectNoAbort(run);
    expect(run.signal).toBe('SIGKILL');
    const escalation = run.events.find((e) => e.event === 'escalate');
    expect(escalation?.reason).toMatch(/actor "gateway-0" hung: no heartbeat for \d+ ms, and it holds native handles/);
    expect(escalation?.stuck).toEqual(['gateway-0']);
    expect(run.stdout).not.toContain('SURVIVED');
  }, 60_000);
});
