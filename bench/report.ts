/**
 * The capacity report: `npm run bench -- report` turns bench/results/<name>.json (falling back
 * to the committed bench/reports/<name>.json) into one self-contained page, bench/report.html:
 * inline SVG charts, no scripts, no stylesheets or fonts from anywhere, so it opens offline and
 * can be mailed around. Every chart names the file it was drawn from, with the machine, the
 * commit and the load average of that run, and the page ends with a plain-language sizing
 * table and every raw figure.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** One result file as bench/run.ts writes it (older files may lack commit and load). */
export interface ResultFile {
  name: string;
  machine?: { cpus?: number; cpuModel?: string; totalMemGiB?: number; kernel?: string; node?: string; date?: string };
  commit?: { sha: string; dirty?: boolean };
  load?: { start1m: number; end1m: number; cpus: number };
  figures: Record<string, number>;
  baseline?: Record<string, number>;
  ratios?: Record<string, number>;
  notes?: string[];
  series?: Record<string, Array<[number, number]>>;
}

interface Loaded { result: ResultFile; source: string }

export interface ReportOptions {
  projectRoot: string;
  /** Default <root>/bench/results, then <root>/bench/reports for names missing there. */
  dirs?: string[];
  /** Default <root>/bench/report.html. */
  out?: string;
}

// ------------------------------------------------------------------------------ loading

export function loadResults(dirs: string[], projectRoot: string): Map<string, Loaded> {
  const found = new Map<string, Loaded>();
  for (const dir of dirs) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.json')).sort()) {
      const name = f.slice(0, -5);
      if (found.has(name)) continue;
      const file = path.join(dir, f);
      let result: ResultFile;
      try {
        result = JSON.parse(readFileSync(file, 'utf8')) as ResultFile;
      } catch (err) {
        throw new Error(`report: ${file} is not JSON: ${(err as Error).message}`);
      }
      if (!result || typeof result.figures !== 'object' || result.figures === null) throw new Error(`report: ${file} has no "figures" object`);
      found.set(name, { result, source: path.relative(projectRoot, file) || file });
    }
  }
  return found;
}

// ------------------------------------------------------------------------------ SVG charts

const COLORS: Record<string, string> = {
  ours: '#1b6ac9', ring: '#1b6ac9',
  baseline: '#c0392b', naive: '#c0392b',
  ws_once: '#e67e22', clone: '#e67e22',
  uws_raw: '#27ae60', transfer_reuse: '#27ae60',
  transfer_fresh: '#8e44ad', batched: '#7f8c8d', ours_delta: '#16a085',
};
const PALETTE = ['#1b6ac9', '#c0392b', '#e67e22', '#27ae60', '#8e44ad', '#7f8c8d', '#16a085', '#d35400', '#2c3e50', '#f1c40f'];

export interface Line { name: string; points: Array<[number, number]>; color?: string; dashed?: boolean }
interface Axis { label: string; log?: boolean }

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function fmt(x: number): string {
  const a = Math.abs(x);
  if (a === 0) return '0';
  if (a >= 1e9) return `${+(x / 1e9).toPrecision(3)}G`;
  if (a >= 1e6) return `${+(x / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(x / 1e3).toPrecision(3)}k`;
  if (a >= 1) return `${+x.toPrecision(3)}`;
  return `${+x.toPrecision(2)}`;
}

function ticks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
    return out.filter((t) => t >= lo / 1.0001 && t <= hi * 1.0001);
  }
  const span = hi - lo || 1;
  const step = 10 ** Math.floor(Math.log10(span / 5));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => span / s <= 6) ?? step * 10;
  const out: number[] = [];
  for (let t = Math.ceil(lo / nice) * nice; t <= hi + nice * 1e-9; t += nice) out.push(+t.toPrecision(12));
  return out;
}

/** A line chart with markers; log axes where asked (points <= 0 are left out of a log axis). */
export function lineChart(title: string, x: Axis, y: Axis, lines: Line[]): string {
  const W = 760;
  const H = 340;
  const m = { l: 64, r: 250, t: 34, b: 46 };
  const usable = lines
    .map((l) => ({ ...l, points: l.points.filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b) && (!x.log || a > 0) && (!y.log || b > 0)) }))
    .filter((l) => l.points.length > 0);
  const xs = usable.flatMap((l) => l.points.map((p) => p[0]));
  const ys = usable.flatMap((l) => l.points.map((p) => p[1]));
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (!y.log) y0 = Math.min(0, y0);
  if (x.log) { x0 = 10 ** Math.floor(Math.log10(x0)); x1 = 10 ** Math.ceil(Math.log10(x1)); }
  if (y.log) { y0 = 10 ** Math.floor(Math.log10(y0)); y1 = 10 ** Math.ceil(Math.log10(y1)); }
  if (x1 === x0) { x1 = x0 + 1; }
  if (y1 === y0) { y1 = y0 + 1; }
  if (!y.log) y1 += (y1 - y0) * 0.05;
  const tx = (v: number) => m.l + ((x.log ? Math.log10(v / x0) / Math.log10(x1 / x0) : (v - x0) / (x1 - x0)) * (W - m.l - m.r));
  const ty = (v: number) => H - m.b - ((y.log ? Math.log10(v / y0) / Math.log10(y1 / y0) : (v - y0) / (y1 - y0)) * (H - m.t - m.b));
  const parts: string[] = [];
  parts.push(`<svg class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">`);
  parts.push(`<text x="${W / 2}" y="20" text-anchor="middle" class="title">${esc(title)}</text>`);
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" class="frame"/>`);
  if (usable.length === 0) {
    parts.push(`<text x="${(W - m.r + m.l) / 2}" y="${H / 2}" text-anchor="middle">no data</text></svg>`);
    return parts.join('');
  }
  for (const t of ticks(x0, x1, !!x.log)) {
    parts.push(`<line x1="${tx(t)}" x2="${tx(t)}" y1="${m.t}" y2="${H - m.b}" class="grid"/><text x="${tx(t)}" y="${H - m.b + 16}" text-anchor="middle">${fmt(t)}</text>`);
  }
  for (const t of ticks(y0, y1, !!y.log)) {
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${ty(t)}" y2="${ty(t)}" class="grid"/><text x="${m.l - 6}" y="${ty(t) + 4}" text-anchor="end">${fmt(t)}</text>`);
  }
  parts.push(`<text x="${(W - m.r + m.l) / 2}" y="${H - 8}" text-anchor="middle" class="axis">${esc(x.label)}${x.log ? ' (log)' : ''}</text>`);
  parts.push(`<text transform="translate(14 ${(H - m.b + m.t) / 2}) rotate(-90)" text-anchor="middle" class="axis">${esc(y.label)}${y.log ? ' (log)' : ''}</text>`);
  usable.forEach((l, i) => {
    const color = l.color ?? PALETTE[i % PALETTE.length];
    const pts = [...l.points].sort((a, b) => a[0] - b[0]);
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${l.dashed ? ' stroke-dasharray="6 4"' : ''} points="${pts.map(([a, b]) => `${tx(a).toFixed(1)},${ty(b).toFixed(1)}`).join(' ')}"/>`);
    for (const [a, b] of pts) parts.push(`<circle cx="${tx(a).toFixed(1)}" cy="${ty(b).toFixed(1)}" r="3" fill="${color}"><title>${esc(l.name)}: ${fmt(a)} → ${fmt(b)}</title></circle>`);
    const ly = m.t + 8 + i * 18;
    parts.push(`<line x1="${W - m.r + 10}" x2="${W - m.r + 34}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${l.dashed ? ' stroke-dasharray="6 4"' : ''}/><text x="${W - m.r + 38}" y="${ly + 4}">${esc(l.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

/** Grouped bars: one group per category, one bar per series. */
export function barChart(title: string, yLabel: string, categories: string[], bars: Array<{ name: string; values: number[]; color?: string }>): string {
  const W = 760;
  const H = 300;
  const m = { l: 64, r: 250, t: 34, b: 46 };
  const all = bars.flatMap((b) => b.values).filter(Number.isFinite);
  const parts: string[] = [];
  parts.push(`<svg class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">`);
  parts.push(`<text x="${W / 2}" y="20" text-anchor="middle" class="title">${esc(title)}</text>`);
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" class="frame"/>`);
  if (all.length === 0 || categories.length === 0) {
    parts.push(`<text x="${(W - m.r + m.l) / 2}" y="${H / 2}" text-anchor="middle">no data</text></svg>`);
    return parts.join('');
  }
  const top = Math.max(...all, 0) * 1.1 || 1;
  const ty = (v: number) => H - m.b - (v / top) * (H - m.t - m.b);
  for (const t of ticks(0, top, false)) parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${ty(t)}" y2="${ty(t)}" class="grid"/><text x="${m.l - 6}" y="${ty(t) + 4}" text-anchor="end">${fmt(t)}</text>`);
  const gw = (W - m.l - m.r) / categories.length;
  const bw = (gw * 0.7) / bars.length;
  categories.forEach((c, ci) => {
    parts.push(`<text x="${m.l + gw * (ci + 0.5)}" y="${H - m.b + 16}" text-anchor="middle">${esc(c)}</text>`);
    bars.forEach((b, bi) => {
      const v = b.values[ci];
      if (!Number.isFinite(v)) return;
      const x = m.l + gw * ci + gw * 0.15 + bw * bi;
      parts.push(`<rect x="${x.toFixed(1)}" y="${ty(v).toFixed(1)}" width="${bw.toFixed(1)}" height="${(H - m.b - ty(v)).toFixed(1)}" fill="${b.color ?? PALETTE[bi % PALETTE.length]}"><title>${esc(b.name)} ${esc(c)}: ${fmt(v)}</title></rect>`);
      parts.push(`<text x="${(x + bw / 2).toFixed(1)}" y="${(ty(v) - 3).toFixed(1)}" text-anchor="middle" class="small">${fmt(v)}</text>`);
    });
  });
  bars.forEach((b, i) => {
    const ly = m.t + 8 + i * 18;
    parts.push(`<rect x="${W - m.r + 10}" y="${ly - 6}" width="14" height="12" fill="${b.color ?? PALETTE[i % PALETTE.length]}"/><text x="${W - m.r + 30}" y="${ly + 4}">${esc(b.name)}</text>`);
  });
  parts.push(`<text transform="translate(14 ${(H - m.b + m.t) / 2}) rotate(-90)" text-anchor="middle" class="axis">${esc(yLabel)}</text>`);
  parts.push('</svg>');
  return parts.join('');
}

// ------------------------------------------------------------------------------ the figures behind each chart

/** Points [x, value] from figures named `<prefix><x><suffix>` (how older results carry per-point figures). */
function fromFigures(figures: Record<string, number> | undefined, prefix: string, suffix: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  if (!figures) return out;
  for (const [k, v] of Object.entries(figures)) {
    if (!k.startsWith(prefix) || !k.endsWith(suffix)) continue;
    const mid = k.slice(prefix.length, k.length - suffix.length);
    if (/^\d+$/.test(mid)) out.push([Number(mid), v]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

function seriesOr(r: ResultFile, name: string, fallback: () => Array<[number, number]>): Array<[number, number]> {
  const s = r.series?.[name];
  return s && s.length ? s : fallback();
}

const FANOUT_KINDS: Array<[string, string]> = [['ours', 'ours'], ['ours_delta', 'ours, delta subscriptions'], ['uws_raw', 'bare uWS (ceiling)'], ['ws_once', 'ws, serialise once'], ['baseline', 'ws, per client']];

function fanoutCharts(r: ResultFile): string[] {
  const latency: Line[] = [];
  const cpu: Line[] = [];
  for (const [k, label] of FANOUT_KINDS) {
    const p50 = seriesOr(r, `${k}_p50_ms`, () => fromFigures(r.figures, `${k}_`, '_p50_ms'));
    const p99 = seriesOr(r, `${k}_p99_ms`, () => fromFigures(r.figures, `${k}_`, '_p99_ms'));
    const us = seriesOr(r, `${k}_us_per_delivery`, () => fromFigures(r.figures, `${k}_`, '_us_per_delivery'));
    if (p50.length) latency.push({ name: `${label} p50`, points: p50, color: COLORS[k], dashed: true });
    if (p99.length) latency.push({ name: `${label} p99`, points: p99, color: COLORS[k] });
    if (us.length) cpu.push({ name: label, points: us, color: COLORS[k] });
  }
  return [
    lineChart('Fan-out latency against clients', { label: 'clients' }, { label: 'ms, server stamp to client', log: true }, latency),
    lineChart('Fan-out server CPU per delivery against clients', { label: 'clients' }, { label: 'CPU µs per delivered message' }, cpu),
  ];
}

function captureCharts(r: ResultFile): string[] {
  const get = (who: 'ours' | 'naive', what: 'cpu_ms_per_capture' | 'missed_pct') => seriesOr(r, `${who}_${what}_480p`, () => (who === 'ours'
    ? fromFigures(r.figures, `${what}_`, '_480p')
    : fromFigures(r.figures, `naive_${what}_`, '_480p').length ? fromFigures(r.figures, `naive_${what}_`, '_480p') : fromFigures(r.baseline, `${what}_`, '_480p')));
  return [
    lineChart('Capture CPU per capture against channels (480p)', { label: 'channels' }, { label: 'CPU ms per capture', log: true }, [
      { name: 'ours', points: get('ours', 'cpu_ms_per_capture'), color: COLORS.ours },
      { name: 'naive (ffmpeg per capture)', points: get('naive', 'cpu_ms_per_capture'), color: COLORS.naive },
    ]),
    lineChart('Capture deadlines missed against channels (480p)', { label: 'channels' }, { label: '% of deadlines with no frame' }, [
      { name: 'ours', points: get('ours', 'missed_pct'), color: COLORS.ours },
      { name: 'naive (ffmpeg per capture)', points: get('naive', 'missed_pct'), color: COLORS.naive },
    ]),
  ];
}

function composeCharts(r: ResultFile): string[] {
  const configs = ['1080p30', '720p60'].filter((c) => `dropped_pct_${c}` in r.figures);
  const renderKey = (c: string) => `render_p99_ms_${c === '1080p30' ? '1080p' : '720p'}`;
  const baseName = r.notes?.some((n) => /PNG/i.test(n)) ? 'baseline (PNG per frame)' : 'raw frames piped from a separate process';
  return [
    barChart('Compose: frames dropped per configuration', '% of frames dropped', configs, [
      { name: 'ours', values: configs.map((c) => r.figures[`dropped_pct_${c}`]), color: COLORS.ours },
      { name: baseName, values: configs.map((c) => r.baseline?.[`dropped_pct_${c}`] ?? NaN), color: COLORS.baseline },
    ]),
    barChart('Compose: render time p99 per configuration', 'ms per frame', configs, [
      { name: 'ours', values: configs.map((c) => r.figures[renderKey(c)]), color: COLORS.ours },
      { name: baseName, values: configs.map((c) => r.baseline?.[renderKey(c)] ?? NaN), color: COLORS.baseline },
    ]),
  ];
}

function ringCharts(r: ResultFile): string[] {
  const s = r.series ?? {};
  const lines: Line[] = [];
  const add = (key: string, name: string, color: string, dashed = false) => { if (s[key]?.length) lines.push({ name, points: s[key], color, dashed }); };
  add('ring_fulltouch_mb_per_s', 'ring', COLORS.ring);
  add('postmessage_clone_fulltouch_mb_per_s', 'postMessage clone', COLORS.clone);
  add('postmessage_transfer_reuse_fulltouch_mb_per_s', 'postMessage transfer (reuse)', COLORS.transfer_reuse);
  add('postmessage_transfer_fresh_fulltouch_mb_per_s', 'postMessage transfer (fresh)', COLORS.transfer_fresh, true);
  add('postmessage_batched_mb_per_s', 'postMessage, 64 per message', COLORS.batched, true);
  if (lines.length === 0) {
    // Older results: records/s figures by size, converted to MB/s.
    const sizes: Array<[string, number]> = [['rec_9k', 9216], ['rec_54k', 54108], ['frame_3mb', 3686400], ['frame_8mb', 8294400]];
    const pts = (suffix: string) => sizes.filter(([k]) => `${k}${suffix}` in r.figures).map(([k, n]): [number, number] => [n, (r.figures[`${k}${suffix}`] * n) / 1e6]);
    lines.push({ name: 'ring', points: pts('_per_s'), color: COLORS.ring });
    lines.push({ name: 'postMessage clone', points: pts('_clone_per_s'), color: COLORS.clone });
    lines.push({ name: 'postMessage transfer', points: pts('_transfer_per_s'), color: COLORS.transfer_fresh });
  }
  return [lineChart('Ring throughput against payload size (every byte written and read)', { label: 'payload bytes', log: true }, { label: 'MB/s of payload', log: true }, lines)];
}

function soakCharts(r: ResultFile): string[] {
  const s = r.series ?? {};
  const lines = Object.entries(s).filter(([, pts]) => pts.length).map(([k, pts]): Line => ({ name: k, points: pts.map(([t, v]) => [t / 60, v]) }));
  return lines.length ? [lineChart('Soak: memory over time', { label: 'minutes' }, { label: 'MB' }, lines)] : [];
}

// ------------------------------------------------------------------------------ page

function provenance(l: Loaded): string {
  const r = l.result;
  const m = r.machine ?? {};
  const machine = [m.cpuModel, m.cpus !== undefined ? `${m.cpus} CPUs` : undefined, m.totalMemGiB !== undefined ? `${m.totalMemGiB} GiB` : undefined, m.kernel ? `Linux ${m.kernel}` : undefined, m.node ? `Node ${m.node}` : undefined].filter(Boolean).join(', ');
  const commit = r.commit ? `commit ${r.commit.sha.slice(0, 12)}${r.commit.dirty ? ' (with uncommitted changes)' : ''}` : 'commit not recorded';
  const load = r.load ? `load average ${r.load.start1m} → ${r.load.end1m} on ${r.load.cpus} CPUs${Math.max(r.load.start1m, r.load.end1m) > r.load.cpus ? ' (busy machine: figures understate this hardware)' : ''}` : 'load not recorded';
  return `<p class="src">From <code>${esc(l.source)}</code>, ${esc(m.date ?? 'date unknown')}: ${esc(machine || 'machine not recorded')}; ${esc(commit)}; ${esc(load)}.</p>`;
}

const f = (x: number | undefined, digits = 3) => (x === undefined || !Number.isFinite(x) ? '—' : fmt(+x.toPrecision(digits)));

interface SizingRow { what: string; answer: string; bar: string; source: string }

export function sizingRows(results: Map<string, Loaded>): SizingRow[] {
  const rows: SizingRow[] = [];
  const fan = results.get('fanout');
  if (fan) {
    const g = fan.result.figures;
    const n = g.clients_at_p99_50ms;
    rows.push({
      what: 'Viewers (overlay clients on metrics, attention and predictions at 10 Hz)',
      answer: n > 0 ? `${f(n)} clients (the largest count measured that held the bar)` : 'no measured client count held the bar on this run',
      bar: '≥ 99 % of updates delivered, p99 < 50 ms',
      source: fan.source,
    });
  }
  const cap = results.get('capture');
  if (cap) {
    const held = fromFigures(cap.result.figures, 'missed_pct_', '_480p').filter(([, v]) => v <= 1).map(([k]) => k);
    const max720 = cap.result.figures.max_channels_720p;
    rows.push({
      what: 'Streams captured (one frame per channel every 3 s)',
      answer: `${held.length ? `${f(Math.max(...held))} channels at 480p` : 'no 480p channel count held the bar'}${max720 !== undefined ? `; ${f(max720)} at 720p60` : ''}`,
      bar: '≤ 1 % of deadlines without a frame of the right channel',
      source: cap.source,
    });
  }
  const comp = results.get('compose');
  if (comp) {
    const held = ['1080p30', '720p60'].filter((c) => comp.result.figures[`dropped_pct_${c}`] !== undefined && comp.result.figures[`dropped_pct_${c}`] < 1);
    rows.push({
      what: 'Composed outputs (showcase scene rendered and encoded live)',
      answer: held.length ? `1 output at ${held.join(' or ')} (one output measured at a time)` : 'no configuration held the bar',
      bar: '< 1 % of frames dropped',
      source: comp.source,
    });
  }
  const ing = results.get('ingest');
  if (ing) {
    rows.push({
      what: 'Telemetry ingest (6-metric events, one TCP producer)',
      answer: `${f(ing.result.figures.events_per_s)} events/s into the aggregator's ring (${f(ing.result.figures.tcp_drops ?? 0)} dropped)`,
      bar: '≥ 500 k events/s',
      source: ing.source,
    });
  }
  return rows;
}

function rawTable(l: Loaded): string {
  const r = l.result;
  const rows = Object.entries(r.figures).map(([k, v]) => `<tr><td><code>${esc(k)}</code></td><td>${esc(String(v))}</td><td>${r.baseline?.[k] !== undefined ? esc(String(r.baseline[k])) : ''}</td><td>${r.ratios?.[k] !== undefined ? `${esc(String(r.ratios[k]))}×` : ''}</td></tr>`);
  const notes = (r.notes ?? []).map((n) => `<li>${esc(n)}</li>`).join('');
  return `<details><summary>${esc(r.name ?? '?')}: every figure (${rows.length})</summary>${provenance(l)}<table><tr><th>figure</th><th>value</th><th>baseline</th><th>ratio</th></tr>${rows.join('')}</table><ul>${notes}</ul></details>`;
}

const STYLE = `body{font:14px/1.45 system-ui,sans-serif;max-width:1000px;margin:24px auto;padding:0 16px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
svg.chart{display:block;margin:12px 0;background:#fff;font-size:11px}svg .title{font-size:13px;font-weight:600}
svg .frame{fill:none;stroke:#999}svg .grid{stroke:#eee}svg .axis{font-size:12px}svg .small{font-size:9px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
p.src{color:#555;font-size:12px}details{margin:8px 0}code{font-size:12px}`;

export function renderReport(results: Map<string, Loaded>, generated = new Date().toISOString()): { html: string; charts: number } {
  const sections: string[] = [];
  let charts = 0;
  const section = (name: string, title: string, intro: string, draw: (r: ResultFile) => string[]) => {
    const l = results.get(name);
    if (!l) {
      sections.push(`<h2>${esc(title)}</h2><p>No <code>${esc(name)}.json</code> in bench/results or bench/reports: run <code>npm run bench -- ${esc(name)}</code>.</p>`);
      return;
    }
    const svgs = draw(l.result);
    charts += svgs.length;
    sections.push(`<h2>${esc(title)}</h2><p>${esc(intro)}</p>${provenance(l)}${svgs.join('\n')}`);
  };
  section('fanout', 'Fan-out: viewers', 'Overlay clients each receiving 3 messages at 10 Hz. Ours against a ws server that serialises once and sends to all, a naive ws server that serialises per client, and bare uWS publishing the same bytes on the same threads (the ceiling). The load generator runs in its own process; its CPU is in the raw figures (*_loadgen_cpu_pct).', fanoutCharts);
  section('capture', 'Capture: streams', 'K live HLS channels, one frame per channel every 3 s, ours against one ffmpeg per capture. Missed = deadlines that got no frame of the right channel, counted from outside both pipelines.', captureCharts);
  section('compose', 'Compose: outputs', 'The showcase scene rendered and encoded live per configuration.', composeCharts);
  section('ring', 'Rings: throughput by payload size', 'One producer thread to one consumer thread; every byte written by the producer and read by the consumer, for every transport.', ringCharts);
  const soak = results.get('soak');
  if (soak) {
    const svgs = soakCharts(soak.result);
    charts += svgs.length;
    sections.push(`<h2>Soak: memory over time</h2>${provenance(soak)}${svgs.join('\n') || '<p>The soak result carries no series.</p>'}`);
  }
  const sizing = sizingRows(results);
  const sizingHtml = sizing.length
    ? `<table id="sizing"><tr><th>one node carries</th><th>on this hardware</th><th>within the bar</th><th>from</th></tr>${sizing.map((r) => `<tr><td>${esc(r.what)}</td><td>${esc(r.answer)}</td><td>${esc(r.bar)}</td><td><code>${esc(r.source)}</code></td></tr>`).join('')}</table>`
    : '<p id="sizing">No results to size from.</p>';
  const raw = [...results.values()].map(rawTable).join('\n');
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ringcast capacity report</title><style>${STYLE}</style></head>
<body><h1>ringcast capacity report</h1>
<p>Generated ${esc(generated)} by <code>npm run bench -- report</code> from ${results.size} result files. Each chart names its file, the machine, the commit and the load average of its run; on a busy machine (load above the CPU count) every capacity figure understates the hardware.</p>
${sections.join('\n')}
<h2>Sizing</h2>
<p>What one node of the machine these results came from carries while staying within each bar. Re-run on the target hardware (<code>npm run bench -- all</code>, then <code>npm run bench -- report</code>) before sizing a deployment from it.</p>
${sizingHtml}
<h2>Raw figures</h2>
${raw}
</body></html>
`;
  return { html, charts };
}

export function writeReport(o: ReportOptions): { file: string; sources: string[]; charts: number } {
  const dirs = o.dirs ?? [path.join(o.projectRoot, 'bench', 'results'), path.join(o.projectRoot, 'bench', 'reports')];
  const results = loadResults(dirs, o.projectRoot);
  if (results.size === 0) throw new Error(`report: no result files in ${dirs.join(' or ')}; run a benchmark first (npm run bench -- <name> --quick)`);
  const { html, charts } = renderReport(results);
  const file = o.out ?? path.join(o.projectRoot, 'bench', 'report.html');
  writeFileSync(file, html);
  return { file, sources: [...results.values()].map((l) => l.source), charts };
}
