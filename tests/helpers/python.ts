/**
 * Runs python3 with the repository's Python client importable (PYTHONPATH = clients/python).
 * python3 is part of the test machine's contract (.ci/run installs it when missing), so its
 * absence fails the tests that need it rather than skipping them.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const pythonClientDir = path.join(repoRoot, 'clients', 'python');

export interface PythonResult { code: number | null; stdout: string; stderr: string }

/** `python3 <args>` with `input` on stdin; killed after `timeoutMs`. Resolves with its exit code and output. */
export function runPython(args: string[], { input = '', timeoutMs = 25_000, python = 'python3' }: { input?: string; timeoutMs?: number; python?: string } = {}): Promise<PythonResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, args, { cwd: repoRoot, env: { ...process.env, PYTHONPATH: pythonClientDir, PYTHONDONTWRITEBYTECODE: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    child.stdin.end(input);
  });
}
