/**
 * The operator's kit in deploy/: the Grafana dashboard queries only metrics a running service
 * (with capture, compositor and encoder on) exports; the Prometheus alert rules pass
 * `promtool check rules`, their unit tests pass `promtool test rules`, and they too query only
 * exported metrics. promtool comes from Debian's `prometheus` package (.ci/run installs it).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './helpers/service-harness.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dashboardFile = path.join(root, 'deploy', 'grafana', 'ringcast.json');
const alertsFile = path.join(root, 'deploy', 'prometheus', 'alerts.yml');
const out = mkdtempSync(path.join(tmpdir(), 'ringcast-kit-'));

let h: Harness;
let exported: Set<string>;
beforeAll(async () => {
  h = await startHarness(['--output', path.join(out, 'kit.flv'), '--compose-width', '320', '--compose-height', '180']);
  // Histograms and labelled series appear in the exposition (# TYPE) from the start.
  const metrics = await (await fetch(`http://127.0.0.1:${h.service.port}/metrics`)).text();
  exported = new Set([...metrics.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
}, 60_000);
afterAll(async () => {
  await h?.close();
  rmSync(out, { recursive: true, force: true });
});

const FUNCTIONS = new Set(['sum', 'by', 'rate', 'increase', 'histogram_quantile', 'max', 'min', 'avg', 'on', 'and', 'or', 'offset', 'le', 'deriv', 'delta', 'count']);
/** Metric names a PromQL expression reads (histogram _bucket/_sum/_count mapped to the family). */
export function metricNames(expr: string): string[] {
  const withoutStrings = expr.replace(/"[^"]*"/g, '""').replace(/\{[^}]*\}/g, '{}').replace(/\[[^\]]*\]/g, '[]');
  const names = [...withoutStrings.matchAll(/\b([a-z_][a-z0-9_]*)\b(?!\s*\()/g)].map((m) => m[1])
    .filter((n) => !FUNCTIONS.has(n) && /_/.test(n) && /^(ringcast|nodejs|process)_/.test(n));
  return [...new Set(names.map((n) => n.replace(/_(bucket|sum|count)$/, '')))];
}

function dashboardExprs(): string[] {
  const dash = JSON.parse(readFileSync(dashboardFile, 'utf8')) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }> };
  return dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
}

describe('Grafana dashboard deploy/grafana/ringcast.json', () => {
  it('has the panels an operator needs', () => {
    const dash = JSON.parse(readFileSync(dashboardFile, 'utf8')) as { uid: string; panels: Array<{ type: string; title: string }> };
    expect(dash.uid).toBe('ringcast');
    const rows = dash.panels.filter((p) => p.type === 'row').map((p) => p.title);
    expect(rows).toEqual(['Actors', 'Rings', 'Ingest', 'Fan-out', 'End-to-end latency', 'Capture', 'Encoder', 'Process']);
    const queried = new Set(dashboardExprs().flatMap(metricNames));
    for (const m of ['ringcast_actor_restarts_total', 'ringcast_ring_drops_total', 'ringcast_ingest_rejected_total', 'ringcast_gateway_clients',
      'ringcast_gateway_bytes_delivered_total', 'ringcast_gateway_slow_clients', 'ringcast_e2e_latency_seconds', 'ringcast_capture_missed_ratio',
      'ringcast_capture_latency_seconds', 'ringcast_capture_streams', 'ringcast_encoder_fps', 'ringcast_encoder_frames_total', 'nodejs_heap_size_used_bytes']) {
      expect(queried, m).toContain(m);
    }
  });

  it('queries only metrics the running service exports', () => {
    const exprs = dashboardExprs();
    expect(exprs.length).toBeGreaterThan(20);
    const missing = exprs.flatMap((e) => metricNames(e).filter((n) => !exported.has(n)).map((n) => `${n} (in ${e})`));
    expect(missing).toEqual([]);
  });
});

describe('Prometheus alert rules deploy/prometheus/alerts.yml', () => {
  const promtool = (args: string[], cwd = root) => spawnSync('promtool', args, { cwd, encoding: 'utf8' });

  it('promtool check rules accepts them', () => {
    const r = promtool(['check', 'rules', alertsFile]);
    if (r.error) throw new Error(`promtool not found (apt-get install prometheus): ${r.error.message}`);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/SUCCESS: 10 rules found/);
  });

  it('promtool test rules: ring drops, restarts and escalation risk, encoder drops, slow-client closes, missing ffmpeg', () => {
    const r = promtool(['test', 'rules', 'alerts.test.yml'], path.dirname(alertsFile));
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('SUCCESS');
  });

  it('every alert expression reads metrics the running service exports', () => {
    const text = readFileSync(alertsFile, 'utf8');
    const exprs = [...text.matchAll(/expr: (>\n((?: {10}.*\n)+)|.*)/g)].map((m) => (m[2] ?? m[1]).trim());
    expect(exprs.length).toBe(10);
    const missing = exprs.flatMap((e) => metricNames(e).filter((n) => !exported.has(n)).map((n) => `${n} (in ${e})`));
    expect(missing).toEqual([]);
  });
});
