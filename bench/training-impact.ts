/**
 * Training-impact benchmark: what does streaming telemetry from a Python trainer cost the
 * training loop? `node dist/bench/run.js training-impact [--quick]`.
 *
 * Runs bench/python/training_loop.py (a CPU-bound training-shaped loop) WITH the stdlib
 * client (clients/python/ringcast_client.py) emitting PPO metrics, 9×256 SE weights, top-5
 * predictions and a 9×9 heatmap at 10 Hz each, and WITHOUT it, two ways:
 *   - separate processes, alternately with and without, in ABBA order;
 *   - one process (hook attached) alternating 0.5 s blocks emitting / not emitting, ABBA.
 * Adjacent blocks share the machine's load at that moment, so the block pairs resolve
 * far smaller differences than whole runs on a busy machine; they give the headline.
 *
 * Receiver: a real ringcast ingest server when one answers a hello with an Ack at
 * RINGCAST_BENCH_INGEST_URL (default tcp://127.0.0.1:$RINGCAST_INGEST_TCP_PORT or 8081, token
 * RINGCAST_INGEST_TOKEN); otherwise bench/lib/ingest-receiver.ts in this process, which
 * decodes every frame with the server's decodeFrame. The notes say which one was used.
 *
 * Figures per loop (numpy; python too in the full run):
 *   <loop>_overhead_pct         median over adjacent on/off block pairs of 100 × (1 − on/off steps/s)
 *   <loop>_overhead_pct_stderr  its standard error (robust: from the pairs' interquartile range)
 *   <loop>_overhead_pct_cpu     the same from steps per process-CPU-second
 *   <loop>_steps_per_s          median steps/s of the WITH processes (baseline: WITHOUT processes)
 *   <loop>_overhead_pct_process 100 × (1 − with/without) from those medians
 *   <loop>_overhead_pct_process_cpu  the same from steps per process-CPU-second
 *   <loop>_client_cpu_pct       emit-call time + sender-thread CPU over the timed window
 *   <loop>_emit_p50_us/_p99_us  emit-call latency, wall clock (median over runs of each run's percentile)
 *   <loop>_emit_cpu_p50_us/_p99_us  the same in thread CPU time (per call, averaged over each 10 Hz
 *                               burst of four): on a loaded machine the wall figures include
 *                               time the OS gave to other processes mid-call
 *   <loop>_noise_pct            spread (max−min)/median of the WITHOUT runs: differences
 *                               smaller than this are not resolvable on this machine
 * overhead_pct / emit_p99_us repeat the first loop's figures (the bar is overhead < 0.5 %).
 */
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeFrame, encodeEvent, EventKind, lengthPrefixed, type TelemetryEvent } from '../src/shared/telemetry/event-codec.js';
import { StreamFramer } from '../src/actors/ingest/stream-framer.js';
import { IngestReceiver } from './lib/ingest-receiver.js';
import { median, percentile } from './lib/stats.js';
import type { BenchOptions, BenchResult } from './lib/types.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // <root>/dist/bench
const projectRoot = path.resolve(here, '..', '..');
const SCRIPT = path.join(projectRoot, 'bench', 'python', 'training_loop.py');
const LOCAL_TOKEN = 'bench-local-token';
const OVERHEAD_BAR_PCT = 0.5;
const BLOCK_SECONDS = 0.5;

interface LoopRun {
  mode: 'with' | 'without' | 'interleaved';
  blocks?: Array<{ on: boolean; steps: number; elapsed_s: number; cpu_s: number }>;
  steps_per_s: number;
  steps_per_cpu_s: number;
  elapsed_s: number;
  emit_p50_us?: number;
  emit_p99_us?: number;
  emit_cpu_p50_us?: number;
  emit_cpu_p99_us?: number;
  client_cpu_pct?: number;
  emits?: number;
  client?: { sent: number; dropped: Record<string, number>; lost: number; server_errors: number; last_server_error: unknown; state: string };
  error?: string;
}

interface Receiver {
  url: string;
  token: string;
  description: string;
  events: () => number | undefined;
  close: () => Promise<void>;
}

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const python = checkPython();
  const notes: string[] = [`python ${python.version}${python.numpy ? `, numpy ${python.numpy}` : ', no numpy'}; BLAS held to 1 thread`];
  const loops = python.numpy ? (opts.quick ? ['numpy'] : ['numpy', 'python']) : ['python'];
  const pairs = opts.quick ? 2 : 4;
  const seconds = opts.quick ? 1.5 : 3;
  const blockProcesses = opts.quick ? 1 : 2;
  const blocks = opts.quick ? 12 : 24;
  notes.push(`load average at start ${os.loadavg().map((l) => l.toFixed(2)).join(' / ')} on ${os.cpus().length} cpus`);

  const receiver = await pickReceiver(notes);
  const figures: Record<string, number> = {};
  const baseline: Record<string, number> = {};
  try {
    for (const loop of loops) {
      const withRuns: LoopRun[] = [];
      const withoutRuns: LoopRun[] = [];
      const pairOverheads: number[] = [];
      for (let pair = 0; pair < pairs; pair++) {
        // ABBA: with-first on even pairs, without-first on odd ones.
        const order: Array<'with' | 'without'> = pair % 2 === 0 ? ['with', 'without'] : ['without', 'with'];
        const got: Partial<Record<'with' | 'without', LoopRun>> = {};
        for (const mode of order) got[mode] = await runLoop(loop, mode, seconds, receiver);
        withRuns.push(got.with!);
        withoutRuns.push(got.without!);
        pairOverheads.push(100 * (1 - got.with!.steps_per_s / got.without!.steps_per_s));
      }
      const blockOverheads: number[] = [];
      const blockCpuOverheads: number[] = [];
      const blockRuns: LoopRun[] = [];
      for (let p = 0; p < blockProcesses; p++) {
        const result = await runLoop(loop, 'interleaved', blocks * BLOCK_SECONDS, receiver, ['--blocks', String(blocks)]);
        blockRuns.push(result);
        const b = result.blocks ?? [];
        for (let i = 0; i + 1 < b.length; i += 2) {
          const [on, off] = b[i].on ? [b[i], b[i + 1]] : [b[i + 1], b[i]];
          blockOverheads.push(100 * (1 - on.steps / on.elapsed_s / (off.steps / off.elapsed_s)));
          blockCpuOverheads.push(100 * (1 - on.steps / on.cpu_s / (off.steps / off.cpu_s)));
        }
      }
      const w = median(withRuns.map((r) => r.steps_per_s));
      const wo = median(withoutRuns.map((r) => r.steps_per_s));
      const wCpu = median(withRuns.map((r) => r.steps_per_cpu_s));
      const woCpu = median(withoutRuns.map((r) => r.steps_per_cpu_s));
      const woAll = withoutRuns.map((r) => r.steps_per_s);
      figures[`${loop}_steps_per_s`] = w;
      baseline[`${loop}_steps_per_s`] = wo;
      figures[`${loop}_overhead_pct`] = median(blockOverheads);
      figures[`${loop}_overhead_pct_cpu`] = median(blockCpuOverheads);
      figures[`${loop}_overhead_pct_process`] = 100 * (1 - w / wo);
      figures[`${loop}_overhead_pct_process_paired`] = median(pairOverheads);
      figures[`${loop}_overhead_pct_process_cpu`] = 100 * (1 - wCpu / woCpu);
      const emitting = [...withRuns, ...blockRuns];
      figures[`${loop}_client_cpu_pct`] = median(emitting.map((r) => r.client_cpu_pct ?? NaN));
      figures[`${loop}_emit_p50_us`] = median(emitting.map((r) => r.emit_p50_us ?? NaN));
      figures[`${loop}_emit_p99_us`] = median(emitting.map((r) => r.emit_p99_us ?? NaN));
      figures[`${loop}_emit_cpu_p50_us`] = median(emitting.map((r) => r.emit_cpu_p50_us ?? NaN));
      figures[`${loop}_emit_cpu_p99_us`] = median(emitting.map((r) => r.emit_cpu_p99_us ?? NaN));
      figures[`${loop}_noise_pct`] = (100 * (Math.max(...woAll) - Math.min(...woAll))) / wo;
      figures[`${loop}_block_pairs`] = blockOverheads.length;
      figures[`${loop}_overhead_pct_stderr`] = medianStdErr(blockOverheads);
      const sent = emitting.reduce((s, r) => s + (r.client?.sent ?? 0), 0);
      const dropped = emitting.reduce((s, r) => s + Object.values(r.client?.dropped ?? {}).reduce((a, b) => a + b, 0) + (r.client?.lost ?? 0), 0);
      const serverErrors = emitting.reduce((s, r) => s + (r.client?.server_errors ?? 0), 0);
      figures[`${loop}_events_per_s`] = sent / emitting.reduce((s, r) => s + (r.mode === 'interleaved' ? r.elapsed_s / 2 : r.elapsed_s), 0);
      figures[`${loop}_events_dropped`] = dropped;
      if (serverErrors > 0) notes.push(`${loop}: the receiver rejected ${serverErrors} events (last: ${JSON.stringify(emitting.find((r) => r.client?.last_server_error)?.client?.last_server_error)})`);
      const est = figures[`${loop}_overhead_pct`];
      const se = figures[`${loop}_overhead_pct_stderr`];
      // Only call it when the estimate is clear of the bar by two standard errors.
      const verdict = est + 2 * se < OVERHEAD_BAR_PCT ? 'within' : est - 2 * se > OVERHEAD_BAR_PCT ? 'OVER' : 'not resolvable against';
      notes.push(
        `${loop} loop: overhead ${est.toFixed(2)} ± ${se.toFixed(2)} % (median of ${blockOverheads.length} adjacent on/off block pairs; ${verdict} the ${OVERHEAD_BAR_PCT} % bar), ` +
          `${figures[`${loop}_overhead_pct_cpu`].toFixed(2)} % per CPU-second; the client's own CPU (emit calls + sender thread) ${figures[`${loop}_client_cpu_pct`].toFixed(2)} % of the loop's time; ` +
          `separate processes: ${figures[`${loop}_overhead_pct_process`].toFixed(2)} % (WITHOUT runs spread ${figures[`${loop}_noise_pct`].toFixed(1)} % over ${pairs} runs; ` +
          'whole runs on a shared machine see different load, so this is a coarse cross-check, not the estimate)',
      );
    }
    const first = loops[0];
    figures.overhead_pct = figures[`${first}_overhead_pct`];
    figures.emit_p99_us = figures[`${first}_emit_p99_us`];
    const delivered = receiver.events();
    if (delivered !== undefined) figures.receiver_events = delivered;
    notes.push(`per loop: ${pairs} ABBA process pairs × ${seconds} s, and ${blockProcesses} process(es) × ${blocks} blocks × ${BLOCK_SECONDS} s; figures are medians`);
  } finally {
    await receiver.close();
  }
  return { figures, baseline, notes };
}

/** Standard error of a median from a robust spread (IQR / 1.349 ≈ σ; SE ≈ 1.2533 σ / √n). */
function medianStdErr(samples: number[]): number {
  if (samples.length < 2) return NaN;
  const iqr = percentile(samples, 75) - percentile(samples, 25);
  return (1.2533 * (iqr / 1.349)) / Math.sqrt(samples.length);
}

function checkPython(): { version: string; numpy?: string } {
  const probe = spawnSync('python3', ['-c', 'import sys\ntry:\n import numpy; n = numpy.__version__\nexcept ImportError:\n n = ""\nprint(sys.version.split()[0], n)'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) throw new Error(`training-impact needs python3 on PATH (${probe.error?.message ?? probe.stderr.trim()})`);
  const [version, numpy] = probe.stdout.trim().split(' ');
  return { version, numpy: numpy || undefined };
}

function runLoop(loop: string, mode: LoopRun['mode'], seconds: number, receiver: Receiver, extra: string[] = []): Promise<LoopRun> {
  return new Promise((resolve, reject) => {
    const args = [SCRIPT, '--mode', mode, '--loop', loop, '--seconds', String(seconds), '--url', receiver.url, '--token', receiver.token, ...extra];
    const child = spawn('python3', args, {
      cwd: projectRoot,
      env: { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1', PYTHONDONTWRITEBYTECODE: '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      let parsed: LoopRun | undefined;
      try {
        parsed = JSON.parse(stdout.trim().split('\n').pop() ?? '') as LoopRun;
      } catch {
        /* reported below */
      }
      if (code !== 0 || !parsed || parsed.error) {
        reject(new Error(`training_loop.py --mode ${mode} --loop ${loop} failed (exit ${code}): ${parsed?.error ?? ''}\n${stderr.slice(-2000)}`));
        return;
      }
      resolve(parsed);
    });
  });
}

async function pickReceiver(notes: string[]): Promise<Receiver> {
  const explicit = process.env.RINGCAST_BENCH_INGEST_URL;
  const url = explicit ?? `tcp://127.0.0.1:${process.env.RINGCAST_INGEST_TCP_PORT ?? 8081}`;
  const token = process.env.RINGCAST_INGEST_TOKEN ?? '';
  const probe = await probeRingcast(url, token, 1000);
  if (probe.ok) {
    notes.push(`receiver: the ringcast ingest server at ${url} (answered the hello with an Ack)`);
    return { url, token, description: 'ringcast', events: () => undefined, close: async () => {} };
  }
  notes.push(`receiver: local bench/lib/ingest-receiver.ts over TCP (no ringcast ingest at ${url}: ${probe.reason}${explicit ? '' : '; set RINGCAST_BENCH_INGEST_URL and RINGCAST_INGEST_TOKEN to use one'})`);
  const local = await IngestReceiver.start({ token: LOCAL_TOKEN, tcpPort: 0 });
  return {
    url: `tcp://127.0.0.1:${local.tcpPort}`,
    token: LOCAL_TOKEN,
    description: 'local',
    events: () => local.counts.events,
    close: () => local.close(),
  };
}

/** Is a ringcast ingest listening at `url`? Sends a hello and waits for an Ack (or an Error). */
function probeRingcast(url: string, token: string, timeoutMs: number): Promise<{ ok: boolean; reason: string }> {
  const parsed = /^tcp:\/\/([^:/]+):(\d+)\/?$/.exec(url) ?? undefined;
  const unix = /^unix:\/\/(\/.+)$/.exec(url)?.[1];
  if (!parsed && !unix) return Promise.resolve({ ok: false, reason: `cannot probe ${url}: use tcp://host:port or unix:///path` });
  return new Promise((resolve) => {
    const socket = unix ? net.connect({ path: unix }) : net.connect({ host: parsed![1], port: Number(parsed![2]) });
    const framer = new StreamFramer(1 << 20);
    const done = (ok: boolean, reason: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok, reason });
    };
    const timer = setTimeout(() => done(false, `no answer to a hello within ${timeoutMs} ms`), timeoutMs);
    socket.on('connect', () => socket.write(lengthPrefixed(encodeEvent(EventKind.Hello, { token: token || undefined, client: 'bench-probe' }))));
    socket.on('error', (err) => done(false, err.message));
    socket.on('close', () => done(false, 'connection closed without an answer'));
    socket.on('data', (chunk: Buffer) => {
      const error = framer.push(chunk, (frame) => {
        const events: TelemetryEvent[] = [];
        decodeFrame(frame, (e) => events.push(e), () => {});
        const reply = events[0] as { kind: EventKind; meta?: Record<string, unknown> } | undefined;
        if (reply?.kind === EventKind.Ack) done(true, 'ack');
        else if (reply?.kind === EventKind.Error) done(false, `ringcast answered "${String(reply.meta?.error)}" (check RINGCAST_INGEST_TOKEN)`);
      });
      if (error !== undefined) done(false, `not a ringcast ingest: ${error}`);
    });
  });
}
