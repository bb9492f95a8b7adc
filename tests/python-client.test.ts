/**
 * The stdlib Python trainer client (clients/python/ringcast_client.py) against Node:
 * its own unittest suite, then the real client talking to a Node ingest peer over TCP,
 * Unix socket and WebSocket, with every event decoded by the server's `decodeFrame` and
 * compared value for value with what the Python side sent.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runPython as runPythonIn } from './helpers/python.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EventKind,
  type BoardHeatmapEvent,
  type ExperienceEvent,
  type GameStateEvent,
  type MetricsEvent,
  type MilestoneEvent,
  type PolicyEvent,
  type SeAttentionEvent,
} from '../src/shared/telemetry/event-codec.js';
import { startIngestPeer, type IngestPeer, type RecordedEvent } from './helpers/ingest-peer.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const clientDir = path.join(root, 'clients', 'python');
const TOKEN = 'peer-token-123';
// The client is for Python trainers: python3 is part of the test machine's contract (.ci/run
// installs it when missing), so its absence fails these tests rather than skipping them.

const runPython = (args: string[], input?: string, timeoutMs?: number) => runPythonIn(args, { input, timeoutMs });

// Values are chosen to be exact in float32, so the comparison can be exact too.
const SNIPPET = String.raw`
import json, sys, time
from ringcast_client import StreamingHook
try:
    import numpy as np
except ImportError:
    np = None

urls, token = json.loads(sys.argv[1]), sys.argv[2]
report = {}
for url in urls:
    hook = StreamingHook(url, token=token, run="py-e2e", clock=lambda: 1700000000000.5, flush_interval=0.01)
    hook.emit_ppo_metrics({"ppo/kl_divergence_approx": 0.0125, "gradient_norm": 1.5, "ppo/entropy": float("nan")}, 42)
    weights = [[(b * 256 + c) / 1024 for c in range(256)] for b in range(9)]
    hook.cache_attention_weights(np.array(weights) if np is not None else weights, step=42)
    hook.cache_attention_weights([0.5] * 256, layer_id=4, step=42)
    hook.emit_board_heatmap([[(r * 9 + c) / 128 for c in range(9)] for r in range(9)], step=42)
    hook.emit_predictions([("7g7f", 0.5), ("2g2f", 0.25), {"move": "5i5h", "prob": 0.125}, ("8h2b+", 0.0625), ("1g1f", 0.03125)],
                          position="startpos", value=-0.25, step=42)
    hook.emit_game_state("g-1", sfen="lnsgkgsnl/1r5b1/ppppppppp/9/9/9/PPPPPPPPP/1B5R1/LNSGKGSNL b - 1",
                         moves=["7g7f", "3c3d"], last_move="3c3d", move_count=2, opening="ibisha")
    hook.emit_milestone("first_win", message="first win!", step=42, value=1)
    state = [[[((p * 81 + r * 9 + c) % 7) / 4 for c in range(9)] for r in range(9)] for p in range(46)]
    mask = [False] * 13527
    for i in (0, 9, 13526):
        mask[i] = True
    hook.emit_experience("g-1", "p-0", 3, state, 123, 0.5, False, legal_mask=mask)
    ok = hook.flush(5)
    deadline = time.time() + 5
    while hook.stats()["acks"] < 1 and time.time() < deadline:
        time.sleep(0.01)
    hook.close(2)
    report[url] = dict(hook.stats(), flushed=ok)
print(json.dumps(report))
`;

describe('python client', () => {
  let dir: string;
  let peer: IngestPeer;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ringcast-pyclient-'));
    peer = await startIngestPeer({ token: TOKEN, unixPath: path.join(dir, 'ingest.sock') });
  });

  afterAll(async () => {
    await peer?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('passes its own unittest suite', async () => {
    const { code, stdout, stderr } = await runPython(['-m', 'unittest', 'clients/python/test_ringcast_client.py']);
    expect(code, `${stdout}\n${stderr}`).toBe(0);
    expect(stderr).toMatch(/\nOK/);
  });

  it('every kind sent over tcp, unix and ws decodes in Node with the exact values', async () => {
    const urls = { tcp: `tcp://127.0.0.1:${peer.tcpPort}`, unix: `unix://${peer.unixPath}`, ws: `ws://127.0.0.1:${peer.wsPort}/ingest` };
    const { code, stdout, stderr } = await runPython(['-', JSON.stringify(Object.values(urls)), TOKEN], SNIPPET);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as Record<string, { sent: number; flushed: boolean; acks: number; server_errors: number; skipped_values: number; dropped: Record<string, number> }>;

    for (const [transport, url] of Object.entries(urls)) {
      const stats = report[url];
      expect(stats, transport).toMatchObject({ sent: 8, flushed: true, server_errors: 0, skipped_values: 1 });
      expect(stats.acks).toBeGreaterThanOrEqual(1);
      expect(Object.values(stats.dropped).every((n) => n === 0)).toBe(true);

      const got = peer.events.filter((e) => e.transport === transport);
      expect(got.map((e) => e.event.kind), transport).toEqual([1, 2, 2, 3, 4, 5, 6, 7]);
      expect(peer.rejections.filter((r) => r.transport === transport)).toEqual([]);
      const of = <T>(i: number) => got[i].event as unknown as T;
      for (const e of got) {
        expect(e.run).toBe('py-e2e');
        expect(e.event.timestamp).toBe(1700000000000.5);
      }

      const metrics = of<MetricsEvent>(0);
      expect(metrics.step).toBe(42);
      expect(metrics.names).toEqual(['ppo/kl_divergence_approx', 'gradient_norm']);
      expect(metrics.values).toEqual([0.0125, 1.5]);

      const se = of<SeAttentionEvent>(1);
      expect([se.blocks, se.channels, se.step, se.layerId]).toEqual([9, 256, 42, undefined]);
      expect(Array.from(se.weights)).toEqual(Array.from({ length: 9 * 256 }, (_, i) => i / 1024));
      const layer = of<SeAttentionEvent>(2);
      expect([layer.blocks, layer.channels, layer.layerId]).toEqual([1, 256, 4]);
      expect(layer.weights.every((w) => w === 0.5)).toBe(true);

      const heat = of<BoardHeatmapEvent>(3);
      expect(heat.step).toBe(42);
      expect(Array.from(heat.grid)).toEqual(Array.from({ length: 81 }, (_, i) => i / 128));

      const policy = of<PolicyEvent>(4);
      expect(policy.topMoves).toEqual([
        { move: '7g7f', prob: 0.5 },
        { move: '2g2f', prob: 0.25 },
        { move: '5i5h', prob: 0.125 },
        { move: '8h2b+', prob: 0.0625 },
        { move: '1g1f', prob: 0.03125 },
      ]);
      expect([policy.position, policy.value, policy.step]).toEqual(['startpos', -0.25, 42]);

      const game = of<GameStateEvent>(5);
      expect(game).toMatchObject({ gameId: 'g-1', moves: ['7g7f', '3c3d'], lastMove: '3c3d', moveCount: 2, sfen: 'lnsgkgsnl/1r5b1/ppppppppp/9/9/9/PPPPPPPPP/1B5R1/LNSGKGSNL b - 1' });
      expect(game.meta.opening).toBe('ibisha');

      const milestone = of<MilestoneEvent>(6);
      expect([milestone.name, milestone.message, milestone.step, milestone.value]).toEqual(['first_win', 'first win!', 42, 1]);

      checkExperience(got[7]);
    }
  });

  it('a bad token and a malformed event each come back as an Error the client counts', async () => {
    const snippet = String.raw`
import json, sys, time
from ringcast_client import StreamingHook
tcp, ws, token = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}
for name, url, tok in (("bad_tcp", tcp, "wrong-token-1"), ("bad_ws", ws, "wrong-token-2"), ("malformed", tcp, token)):
    hook = StreamingHook(url, token=tok, flush_interval=0.01, breaker_threshold=1, breaker_cooldown=5)
    if name == "malformed":
        # a 10-byte heatmap payload (needs 324) in the same frame as a good metrics event
        hook.emit_ppo_metrics({"loss": 0.5}, 7)
        hook.emit_event(3, {"step": 7}, b"\0" * 10)
        hook.flush(5)
    deadline = time.time() + 5
    while hook.stats()["server_errors"] < 1 and time.time() < deadline:
        time.sleep(0.01)
    out[name] = hook.stats()
    hook.close(0)
print(json.dumps(out))
`;
    const before = peer.events.length;
    const { code, stdout, stderr } = await runPython(['-', `tcp://127.0.0.1:${peer.tcpPort}`, `ws://127.0.0.1:${peer.wsPort}/ingest`, TOKEN], snippet);
    expect(code, stderr).toBe(0);
    const out = JSON.parse(stdout) as Record<string, { server_errors: number; last_server_error: Record<string, unknown>; state: string }>;
    expect(out.bad_tcp.server_errors).toBeGreaterThanOrEqual(1);
    expect(out.bad_tcp.last_server_error).toEqual({ error: 'invalid ingest token', kind: 'hello', index: 0 });
    expect(out.bad_ws.server_errors).toBeGreaterThanOrEqual(1);
    expect(out.bad_ws.last_server_error).toEqual({ error: 'invalid ingest token' });
    expect(out.malformed.server_errors).toBe(1);
    expect(out.malformed.last_server_error).toMatchObject({ kind: 'board_heatmap', error: expect.stringContaining('payload is 10 bytes, expected 324') });
    // The good event next to the bad one still counted.
    const accepted = peer.events.slice(before);
    expect(accepted.map((e) => e.event.kind)).toEqual([EventKind.Metrics]);
    expect((accepted[0].event as MetricsEvent).values).toEqual([0.5]);
  });

  it('pip installs offline (stdlib-only build backend) with its version; `python -m ringcast_client check` prints what the server acknowledged', async () => {
    const site = path.join(dir, 'site');
    const pip = spawnSync('python3', ['-m', 'pip', 'install', '--no-index', '--no-cache-dir', '--disable-pip-version-check', '--target', site, clientDir], { encoding: 'utf8', env: { ...process.env, PIP_NO_INPUT: '1' } });
    expect(pip.status, `${pip.stdout}\n${pip.stderr}`).toBe(0);
    const version = /^__version__ = "([^"]+)"/m.exec(readFileSync(path.join(clientDir, 'ringcast_client.py'), 'utf8'))![1];
    expect(readdirSync(site)).toEqual(expect.arrayContaining(['ringcast_client.py', `ringcast_client-${version}.dist-info`]));
    // Run from elsewhere with only the installed copy on the path.
    const installed = (args: string[]) => new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn('python3', ['-m', 'ringcast_client', ...args], { cwd: dir, env: { ...process.env, PYTHONPATH: site, PYTHONDONTWRITEBYTECODE: '1' } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect((await installed(['--version'])).stdout.trim()).toBe(`ringcast_client ${version}`);

    const before = peer.events.filter((e) => e.run === 'pip-check').length;
    const ok = await installed(['check', `tcp://127.0.0.1:${peer.tcpPort}`, '--token', TOKEN, '--run', 'pip-check', '--count', '12']);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/server acknowledged: run=pip-check producer_id=\d+/);
    expect(ok.stdout).toContain('sent 12 of 12 events');
    expect(ok.stdout).toContain('rejected by the server: 0');
    expect(ok.stdout).toMatch(/^OK \(\d+ ms\)$/m);
    expect(peer.events.filter((e) => e.run === 'pip-check').length - before).toBe(12);

    const refused = await installed(['check', `tcp://127.0.0.1:${peer.tcpPort}`, '--token', 'not-the-token', '--timeout', '1']);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain('no acknowledgement from the server');
    expect(refused.stdout).toMatch(/last server error: .*token/);
    expect(refused.stdout).toMatch(/^FAILED/m);
    const noToken = await installed(['check', 'tcp://127.0.0.1:1']);
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/--token is required/);
  });
});

function checkExperience(recorded: RecordedEvent): void {
  const exp = recorded.event as ExperienceEvent;
  expect(exp).toMatchObject({ gameId: 'g-1', playerId: 'p-0', turn: 3, action: 123, reward: 0.5, done: false, stateShape: [46, 9, 9], maskLen: 13527 });
  const view = new DataView(recorded.frame.buffer, recorded.frame.byteOffset, recorded.frame.byteLength);
  for (let i = 0; i < 46 * 81; i++) {
    const value = view.getFloat32(exp.stateOffset + i * 4, true);
    if (value !== (i % 7) / 4) throw new Error(`state[${i}] = ${value}, expected ${(i % 7) / 4}`);
  }
  const set: number[] = [];
  for (let i = 0; i < exp.maskLen; i++) if (recorded.frame[exp.maskOffset + (i >> 3)] & (1 << (i & 7))) set.push(i);
  expect(set).toEqual([0, 9, 13526]);
}
