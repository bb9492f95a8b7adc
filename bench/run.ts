/**
 * Benchmark harness: `node dist/bench/run.js <name|all|report> [--quick]`.
 *
 * Runs the module dist/bench/<name>.js (compiled from bench/<name>.ts), which exports
 * `async function run({ quick }): Promise<BenchResult>`, and writes
 * bench/results/<name>.json:
 *
 *   { name, machine: { cpus, cpuModel, totalMemGiB, kernel, node, platform, date },
 *     commit: { sha, dirty }, load: { start1m, end1m, cpus },
 *     figures, baseline, ratios, notes? }
 *
 * The commit and the load average make a figure traceable: which code produced it, and
 * how busy the machine was meanwhile (a 1-minute load above the core count means other
 * work competed for the CPUs, so capacity figures understate the hardware).
 *
 * `all` runs every benchmark in turn, each in its own process (one that fails or hangs
 * its workers cannot take the others down), and exits non-zero if any failed.
 * `report` turns the results into bench/report.html (bench/report.ts).
 *
 * `baseline[k]` is what figure k was measured against (e.g. postMessage for the same
 * workload) and `ratios[k] = figures[k] / baseline[k]` for every k present in both.
 * The JSON is printed, followed by a readable table.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { human, sig, table } from './lib/stats.js';
import type { BenchModule, BenchResult } from './lib/types.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // <root>/dist/bench
const projectRoot = path.resolve(here, '..', '..');
const resultsDir = path.join(projectRoot, 'bench', 'results');

/** Compiled modules next to this one that export run(). */
function availableBenches(): string[] {
  return readdirSync(here)
    .filter((f) => f.endsWith('.js') && f !== 'run.js')
    .filter((f) => /export\s+(async\s+)?function\s+run\s*\(/.test(readFileSync(path.join(here, f), 'utf8')))
    .map((f) => f.slice(0, -3))
    .sort();
}

function usage(message: string): never {
  const names = availableBenches();
  console.error(`${message}\nusage: node dist/bench/run.js <name|all|report> [--quick] [--minutes N]\navailable benchmarks: ${names.length ? names.join(', ') : '(none compiled: run npx tsc -p tsconfig.json)'}`);
  process.exit(1);
}

function machine() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model?.trim() ?? 'unknown',
    totalMemGiB: sig(os.totalmem() / 2 ** 30, 3),
    kernel: os.release(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    date: new Date().toISOString(),
  };
}

/**
 * The commit the figures were measured on; dirty = uncommitted changes to tracked files, and
 * `changed` names them (at most 20), so a reader can tell a README edit from a code change.
 */
export function gitCommit(cwd: string): { sha: string; dirty: boolean; changed?: string[] } | { sha: 'unknown'; error: string } {
  try {
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const changed = status.split('\n').filter((l) => l.trim() !== '').map((l) => l.slice(3));
    return changed.length ? { sha, dirty: true, changed: changed.slice(0, 20) } : { sha, dirty: false };
  } catch (err) {
    return { sha: 'unknown', error: (err as Error).message.split('\n', 1)[0] };
  }
}

const load1m = () => sig(os.loadavg()[0], 3);

/** Runs every benchmark, one process each, in turn; a failure is reported and the rest still run. */
function runAll(passThrough: string[]): never {
  const names = availableBenches();
  const failed: string[] = [];
  for (const name of names) {
    console.log(`\n=== ${name} ===`);
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), name, ...passThrough], { stdio: 'inherit' });
    if (r.status !== 0) {
      failed.push(`${name} (${r.signal ? `signal ${r.signal}` : `exit ${r.status}`})`);
      console.error(`=== ${name} FAILED: ${failed.at(-1)}; continuing with the rest`);
    }
  }
  console.log(`\nall: ${names.length - failed.length} of ${names.length} benchmarks wrote bench/results/<name>.json${failed.length ? `; failed: ${failed.join(', ')}` : ''}`);
  process.exit(failed.length ? 1 : 0);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  let minutes: number | undefined;
  const minutesAt = args.indexOf('--minutes');
  if (minutesAt >= 0) {
    minutes = Number(args[minutesAt + 1]);
    if (!Number.isFinite(minutes) || minutes <= 0) usage(`--minutes needs a positive number, got ${JSON.stringify(args[minutesAt + 1] ?? '')}`);
    args.splice(minutesAt, 2);
  }
  const unknownFlags = args.filter((a) => a.startsWith('-') && a !== '--quick');
  if (unknownFlags.length) usage(`unknown option ${unknownFlags.join(' ')}`);
  const name = args.find((a) => !a.startsWith('-'));
  if (!name) usage('no benchmark named');
  if (name === 'all') runAll(process.argv.slice(2).filter((a) => a !== 'all'));
  if (name === 'report') {
    const { writeReport } = (await import(pathToFileURL(path.join(here, 'report.js')).href)) as typeof import('./report.js');
    const r = writeReport({ projectRoot });
    console.log(`report: ${path.relative(process.cwd(), r.file) || r.file} from ${r.sources.length} result files (${r.sources.join(', ')}); ${r.charts} charts`);
    return;
  }
  if (!/^[\w-]+$/.test(name) || !availableBenches().includes(name)) usage(`unknown benchmark "${name}"`);

  const mod = (await import(pathToFileURL(path.join(here, `${name}.js`)).href)) as BenchModule;
  const loadStart = load1m();
  const started = performance.now();
  const result: BenchResult = await mod.run({ quick, minutes });
  const seconds = (performance.now() - started) / 1000;

  const figures: Record<string, number> = {};
  for (const [k, v] of Object.entries(result.figures)) figures[k] = sig(v);
  const baseline: Record<string, number> = {};
  for (const [k, v] of Object.entries(result.baseline ?? {})) baseline[k] = sig(v);
  const ratios: Record<string, number> = {};
  for (const k of Object.keys(baseline)) {
    if (k in figures && baseline[k] !== 0 && Number.isFinite(baseline[k])) ratios[k] = sig(figures[k] / baseline[k], 3);
  }
  const notes = [...(result.notes ?? []), `${quick ? 'quick' : 'full'} run took ${seconds.toFixed(1)} s`];
  const load = { start1m: loadStart, end1m: load1m(), cpus: os.cpus().length };
  if (Math.max(load.start1m, load.end1m) > load.cpus) {
    notes.push(`machine busy: 1-minute load average ${load.start1m} at start, ${load.end1m} at end, on ${load.cpus} CPUs; other work competed for the cores, so capacity figures understate this hardware`);
  }
  const out = { name, machine: machine(), commit: gitCommit(projectRoot), load, figures, baseline, ratios, notes, ...(result.series ? { series: result.series } : {}) };

  if (!existsSync(resultsDir)) mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);

  console.log(JSON.stringify(out, null, 2));
  const rows = [['figure', 'value', 'baseline', 'ratio']];
  for (const [k, v] of Object.entries(figures)) {
    rows.push([k, human(v), k in baseline ? human(baseline[k]) : '', k in ratios ? `${ratios[k]}x` : '']);
  }
  console.log(`\n${name} (${quick ? 'quick' : 'full'}, ${out.machine.cpus} cpus, ${out.machine.cpuModel}, node ${out.machine.node}, load ${load.start1m} -> ${load.end1m})`);
  console.log(table(rows));
  for (const n of notes) console.log(`- ${n}`);
  console.log(`\nwritten to ${path.relative(process.cwd(), file) || file}`);
}

main().then(
  // Benchmarks may leave idle workers or timers behind; results are written, so leave.
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
