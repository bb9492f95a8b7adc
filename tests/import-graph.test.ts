/**
 * The layering of src/: no import cycles at all, main-thread services never import the
 * wiring that starts them (src/service.ts), and ring/actor names come from src/topology.ts.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');

function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(rel);
    return rel.endsWith('.ts') ? [rel] : [];
  });
}

/** Relative imports and re-exports of every module under src/ (type-only ones included: they are dependencies too). */
export function importGraph(files: readonly string[], read: (file: string) => string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const deps: string[] = [];
    for (const m of read(file).matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'(\.{1,2}\/[^']+)'/g)) {
      deps.push(path.normalize(path.join(path.dirname(file), m[1].replace(/\.js$/, '.ts'))));
    }
    graph.set(file, deps);
  }
  return graph;
}

/** Strongly connected components of more than one module (or a module importing itself): the cycles. */
export function importCycles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

describe('import graph of src/', () => {
  const files = sourceFiles('src');
  const graph = importGraph(files, (f) => readFileSync(path.join(ROOT, f), 'utf8'));

  it('finds a cycle when there is one (the detector itself)', () => {
    const fake: Record<string, string> = {
      'src/a.ts': "import { b } from './b.js';",
      'src/b.ts': "import type { C } from './sub/c.js';",
      'src/sub/c.ts': "export { a } from '../a.js';",
      'src/d.ts': "import { a } from './a.js';",
    };
    const cycles = importCycles(importGraph(Object.keys(fake), (f) => fake[f]));
    expect(cycles).toEqual([['src/a.ts', 'src/b.ts', 'src/sub/c.ts']]);
  });

  it('has no import cycle among the modules of src/', () => {
    expect(files.length).toBeGreaterThan(100);
    expect(importCycles(graph)).toEqual([]);
  });

  it('main-thread services depend only downward: none imports src/service.ts', () => {
    const services = files.filter((f) => f.startsWith(path.join('src', 'services') + path.sep));
    expect(services.length).toBeGreaterThan(5);
    const upward = services.filter((f) => graph.get(f)!.includes(path.join('src', 'service.ts')));
    expect(upward).toEqual([]);
  });

  it('services take ring and actor names from src/topology.ts rather than spelling them out', () => {
    const spelled = files
      .filter((f) => f.startsWith(path.join('src', 'services') + path.sep))
      .flatMap((f) => [...readFileSync(path.join(ROOT, f), 'utf8').matchAll(/'((?:ingest|fanout|control|frames)\.[a-z0-9<>]+|aggregator|compositor|encoder|gateway-\d+)'/g)].map((m) => `${f}: ${m[1]}`));
    expect(spelled).toEqual([]);
  });
});
