// The capacity report (bench/report.ts) drawn from small fixture result files.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeReport } from '../bench/report.js';

const FIXTURES = path.join(import.meta.dirname, 'fixtures', 'bench-report');
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(tmpdir(), 'ringcast-report-'));
  dirs.push(d);
  return d;
};
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

/** The page with every text node removed: what is left are tags and attributes. */
const markupOnly = (html: string) => html.replace(/<style>[\s\S]*?<\/style>/, '<style></style>').replace(/>[^<]*</g, '><');

describe('capacity report', () => {
  it('draws at least four inline SVG charts, references nothing outside the page, and ends with the sizing table', () => {
    const root = tmp();
    const out = path.join(root, 'report.html');
    const r = writeReport({ projectRoot: root, dirs: [FIXTURES], out });
    const html = readFileSync(out, 'utf8');

    const svgs = html.match(/<svg[\s>][\s\S]*?<\/svg>/g) ?? [];
    expect(svgs.length).toBeGreaterThanOrEqual(4);
    expect(r.charts).toBe(svgs.length);
    // Every chart has drawn data (a polyline or bars), not just an empty frame.
    for (const svg of svgs) expect(svg).toMatch(/<polyline|<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="[\d.]+" fill=/);
    expect(html).toContain('Fan-out latency against clients');
    expect(html).toContain('Capture deadlines missed against channels');
    expect(html).toContain('Ring throughput against payload size');
    expect(html).toContain('Soak: memory over time');

    // Self-contained: no URL in any tag or attribute, no scripts, no external style sheets.
    const markup = markupOnly(html);
    expect(markup).not.toMatch(/https?:\/\//);
    expect(markup).not.toMatch(/<script|<link|<img|<iframe|@import|url\(/i);
    // The fixture note's URL is shown as text.
    expect(html).toContain('https://example.invalid/why');

    // Sizing table: one row per thing sized, with the answer from the fixtures and its source file.
    const sizing = /<table id="sizing">([\s\S]*?)<\/table>/.exec(html)?.[1] ?? '';
    expect(sizing).toContain('3000 clients');
    expect(sizing).toContain('200 channels at 480p'); // 500 missed 7.5 %: over the bar
    expect(sizing).toContain('300 at 720p60');
    expect(sizing).toContain('1 output at 1080p30'); // 720p60 dropped 3.2 %: over the bar
    expect(sizing).toMatch(/fanout\.json/);
    // Provenance: the commit and a busy machine are said.
    expect(html).toContain('commit 0123456789ab');
    expect(html).toMatch(/load average 3\.1 → 4\.2 on 2 CPUs \(busy machine/);
  });

  it('prefers bench/results over bench/reports and says which benchmarks are missing', () => {
    const root = tmp();
    const results = path.join(root, 'bench', 'results');
    const reports = path.join(root, 'bench', 'reports');
    mkdirSync(results, { recursive: true });
    mkdirSync(reports, { recursive: true });
    copyFileSync(path.join(FIXTURES, 'fanout.json'), path.join(reports, 'fanout.json'));
    copyFileSync(path.join(FIXTURES, 'ring.json'), path.join(reports, 'ring.json'));
    const fresh = JSON.parse(readFileSync(path.join(FIXTURES, 'fanout.json'), 'utf8'));
    fresh.figures.clients_at_p99_50ms = 7500;
    writeFileSync(path.join(results, 'fanout.json'), JSON.stringify(fresh));
    const r = writeReport({ projectRoot: root });
    const html = readFileSync(path.join(root, 'bench', 'report.html'), 'utf8');
    expect(r.sources.sort()).toEqual([path.join('bench', 'reports', 'ring.json'), path.join('bench', 'results', 'fanout.json')]);
    expect(html).toContain('7500 clients');
    expect(html).toContain('No <code>capture.json</code>');
  });

  it('names the file when a result is not JSON, and refuses to write a report from nothing', () => {
    const root = tmp();
    expect(() => writeReport({ projectRoot: root })).toThrow(/no result files/);
    const results = path.join(root, 'bench', 'results');
    mkdirSync(results, { recursive: true });
    writeFileSync(path.join(results, 'ring.json'), '{ not json');
    expect(() => writeReport({ projectRoot: root })).toThrow(/ring\.json is not JSON/);
  });
});
