/**
 * Whole-node cluster measurements for bench/cluster.ts: real `node dist/src/main.js`
 * processes on one redis-server, as an operator runs them.
 *
 *   takeover_s   SIGKILL of the node that owns a run → the first state of that run produced
 *                by the new owner (a step the producer sent after the kill, seen in the new
 *                owner's /api/state, polled every 25 ms). Default lease (cluster.leaseMs).
 *   capture_<n>nodes_missed_pct     1 − captures made / captures due (streams × window ÷ interval)
 *   capture_<n>nodes_cpu_ms_per_capture   CPU of the node processes and their ffmpeg children
 *                                   over the window, per capture made
 * for 1 node (no Redis: the single-node path) and 3 nodes sharing the streams.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeMetricsEvent } from '../../src/sdk/encode.js';
import { encodeSegments, startLiveHls } from './live-hls.js';
import { procCpu } from './proc.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // <root>/dist/bench/lib
const MAIN = path.resolve(here, '..', '..', 'src', 'main.js');
const TOKEN = 'bench-cluster-ingest-token';
const ADMIN = 'bench-cluster-admin-token';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface NodeProc { child: ChildProcess; port: number; out: string[]; dir: string }

async function startNode(args: string[]): Promise<NodeProc> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ringcast-bench-node-'));
  const child = spawn(process.execPath, [MAIN, '--port', '0', '--ingest-tcp-port', '0', '--data-dir', dir, '--no-demo', '--fanout-threads', '1',
    '--ingest-token', TOKEN, '--admin-token', ADMIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NOTIFY_SOCKET: '' } });
  const out: string[] = [];
  // The last lines only: enough for an error message, bounded however long the node runs.
  const keep = (d: unknown) => { out.push(String(d)); if (out.length > 200) out.splice(0, out.length - 200); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const m = /"port":(\d+)[^\n]*ringcast listening/.exec(out.join(''));
    if (m) return { child, port: Number(m[1]), out, dir };
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`bench node did not start: ${out.join('').slice(-2000)}`);
    await sleep(50);
  }
}

function stopNode(n: NodeProc): void {
  if (n.child.exitCode === null && n.child.signalCode === null) n.child.kill('SIGKILL');
  rmSync(n.dir, { recursive: true, force: true });
}

const post = (n: NodeProc, run: string, body: Uint8Array) => fetch(`http://127.0.0.1:${n.port}/api/ingest?run=${run}`, {
  method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream' }, body,
});

async function runStep(n: NodeProc, run: string): Promise<number | undefined> {
  try {
    const s = await (await fetch(`http://127.0.0.1:${n.port}/api/state`)).json() as { runs: Record<string, { step: number }> };
    return s.runs[run]?.step;
  } catch {
    return undefined;
  }
}

/** Seconds from SIGKILL of a run's owner to the first state of the run made by the node that took it. */
export async function measureTakeover(redisUrl: string, trials: number, say: (s: string) => void): Promise<number[]> {
  const out: number[] = [];
  for (let t = 0; t < trials; t++) {
    const run = `takeover-${t}`;
    const [a, b] = await Promise.all([startNode(['--redis', redisUrl, '--node-id', `bench-a${t}`]), startNode(['--redis', redisUrl, '--node-id', `bench-b${t}`])]);
    try {
      let step = 0;
      await post(a, run, encodeMetricsEvent({ loss: 1 }, step++, undefined, { copy: true }));
      for (let i = 0; i < 200 && (await runStep(a, run)) === undefined; i++) await sleep(25);
      // The producer feeds B (which forwards to A) at 20 Hz; then A dies.
      let stop = false;
      const producing = (async () => {
        while (b.child.exitCode === null && !stop) {
          await post(b, run, encodeMetricsEvent({ loss: 1 / (step + 1) }, step++, undefined, { copy: true })).catch(() => undefined);
          await sleep(50);
        }
      })();
      await sleep(1500);
      a.child.kill('SIGKILL');
      const killedAt = performance.now();
      const firstAfter = step;
      let seen = 0;
      while (performance.now() - killedAt < 30_000) {
        const s = await runStep(b, run);
        if (s !== undefined && s >= firstAfter) { seen = performance.now(); break; }
        await sleep(25);
      }
      stop = true;
      await producing;
      if (!seen) throw new Error(`no takeover of ${run} within 30 s`);
      out.push((seen - killedAt) / 1000);
      say(`takeover ${t + 1}/${trials}: ${((seen - killedAt) / 1000).toFixed(3)} s`);
    } finally {
      stopNode(a);
      stopNode(b);
    }
  }
  return out;
}

/** utime + stime (ms) of a process and every descendant alive now, from /proc. */
function treeCpuMs(root: number): number {
  const parent = new Map<number, number>();
  const cpu = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = procCpu(Number(name));
    if (!stat) continue; // gone meanwhile
    parent.set(Number(name), stat.ppid);
    cpu.set(Number(name), stat.cpuMs + stat.childrenCpuMs);
  }
  let total = 0;
  for (const [pid, ms] of cpu) {
    for (let p: number | undefined = pid, hops = 0; p !== undefined && p > 1 && hops < 20; p = parent.get(p), hops++) {
      if (p === root) { total += ms; break; }
    }
  }
  return total;
}

export interface CaptureFigures { missedPct: number; cpuMsPerCapture: number; captures: number; due: number }

/**
 * Captures `streams` loopback channels for `windowS` seconds at `intervalS`, on one node
 * (redisUrl undefined) or `nodes` nodes sharing a Redis, counted from the stored results.
 */
export async function measureCapture(o: { redisUrl?: string; nodes: number; streams: number; intervalS: number; windowS: number; say: (s: string) => void }): Promise<CaptureFigures> {
  const cache = path.join(os.tmpdir(), 'ringcast-live-hls-cache');
  mkdirSync(cache, { recursive: true });
  const segments = await encodeSegments({ dir: cache, width: 320, height: 180, fps: 30, segmentSeconds: 1, segments: 2, source: 'black', noise: 4 });
  const hls = await startLiveHls({ segmentSeconds: 1 });
  const names = Array.from({ length: o.streams }, (_, i) => `bench_${String(i).padStart(3, '0')}`);
  for (const s of names) hls.addChannel(s, { variants: { '480p': segments } });
  const procs: NodeProc[] = [];
  try {
    const args = ['--capture', '--interval', String(o.intervalS), '--capture-width', '160', '--capture-height', '90', '--decoders', '1', '--analysis-threads', '1',
      '--twitch-gql-url', hls.gqlUrl, '--twitch-usher-url', hls.usherUrl];
    for (let i = 0; i < o.nodes; i++) {
      procs.push(await startNode([...args, ...(o.redisUrl ? ['--redis', o.redisUrl, '--node-id', `bench-cap-${o.nodes}-${i}`] : [])]));
    }
    if (o.redisUrl) await sleep(2500); // every node sees the others before the streams arrive
    const res = await fetch(`http://127.0.0.1:${procs[0].port}/api/streams/bulk`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ streams: names }) });
    if (!res.ok) throw new Error(`bulk add: ${res.status} ${await res.text()}`);
    await sleep(2 * o.intervalS * 1000); // first captures spread over the first interval
    const from = Date.now();
    const cpu0 = procs.reduce((s, p) => s + treeCpuMs(p.child.pid!), 0);
    await sleep(o.windowS * 1000);
    const cpu1 = procs.reduce((s, p) => s + treeCpuMs(p.child.pid!), 0);
    const to = Date.now();
    let captures = 0;
    for (const s of names) {
      const d = await (await fetch(`http://127.0.0.1:${procs[0].port}/api/streams/${s}`)).json() as { history: Array<{ at: number }> };
      captures += d.history.filter((r) => r.at >= from && r.at < to).length;
    }
    const due = (o.streams * o.windowS) / o.intervalS;
    const figures = { missedPct: Math.max(0, 100 * (1 - captures / due)), cpuMsPerCapture: (cpu1 - cpu0) / Math.max(1, captures), captures, due };
    o.say(`capture on ${o.nodes} node(s): ${captures}/${due} captures in ${o.windowS} s, ${figures.cpuMsPerCapture.toFixed(1)} ms CPU per capture${o.redisUrl ? `, membership changes seen ${procs.map((p) => (p.out.join('').match(/members changed/g) ?? []).length).join('/')}` : ''}`);
    return figures;
  } finally {
    for (const p of procs) stopNode(p);
    await hls.close();
  }
}
