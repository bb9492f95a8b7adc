/**
 * Delta stream property tests: random update sequences of fan-out-like states (sliding
 * series, changing numbers, attention cells, keys that come and go), published as the
 * gateway publishes them (DeltaFanout: delta or full, as JSON on the wire) and rebuilt by
 * the overlay's helper (overlay/lib/delta-state.js). Seeded, so a failure replays.
 */
import { describe, expect, it } from 'vitest';
import { prng } from './fixtures/ring-common.js';
import { diffJson } from '../src/shared/telemetry/json-delta.js';
import { DeltaFanout, type Version } from '../src/actors/gateway/delta-fanout.js';
// @ts-expect-error plain ES module without types
import { applyPatch, deltaState } from '../overlay/lib/delta-state.js';

type State = Record<string, unknown>;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** One step of a random run: the next state from the previous (never mutated). */
function nextState(prev: State | undefined, rnd: () => number, step: number): State {
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  const num = () => (rnd() < 0.1 ? pick([0, -1, 1e-9, 123456.789]) : Number((rnd() * 10 - 5).toPrecision(1 + Math.floor(rnd() * 6))));
  const p = (prev ?? {}) as { metrics?: Record<string, { steps: number[]; smoothed: number[]; mean: number; latest: number; min: number; max: number }>; weights?: (number[] | null)[]; top?: { move: string; prob: number }[]; text?: string; extra?: unknown };
  const metrics: Record<string, { steps: number[]; smoothed: number[]; mean: number; latest: number; min: number; max: number }> = {};
  for (const name of ['kl', 'loss', 'entropy', 'reward']) {
    if (rnd() < 0.05) continue; // a metric that vanishes for a window
    const m = p.metrics?.[name] ?? { steps: [], smoothed: [], mean: 0, latest: 0, min: 0, max: 0 };
    const add = Math.floor(rnd() * 4);
    const steps = [...m.steps, ...Array.from({ length: add }, (_, i) => step * 10 + i)];
    const smoothed = [...m.smoothed, ...Array.from({ length: add }, num)];
    const keep = 20;
    // Window statistics: often one point, so latest, mean, min and max are one value.
    const v = rnd() < 0.5 ? m.mean : num();
    metrics[name] = { steps: steps.slice(-keep), smoothed: smoothed.slice(-keep), mean: v, latest: v, min: rnd() < 0.7 ? v : num(), max: v };
  }
  const rows = rnd() < 0.05 ? 2 + Math.floor(rnd() * 3) : (p.weights?.length ?? 3);
  const weights = Array.from({ length: rows }, (_, b) => {
    const row = p.weights?.[b];
    if (rnd() < 0.1) return null;
    const base = row ?? Array.from({ length: 8 }, num);
    return base.map((x) => (rnd() < 0.2 ? num() : x));
  });
  const top = rnd() < 0.3 ? Array.from({ length: Math.floor(rnd() * 5) }, (_, i) => ({ move: `m${i}${Math.floor(rnd() * 3)}`, prob: num() })) : (p.top ?? []);
  const out: State = { run: 'r', step, metrics, weights, top, text: rnd() < 0.2 ? `text ${Math.floor(rnd() * 4)}` : (p.text ?? 'text'), explanation: explanation(p.explanation as string | undefined, rnd, num) };
  if (rnd() < 0.3) out.extra = rnd() < 0.5 ? { nested: { a: num(), b: [num()] } } : [num(), 'x', null, true];
  return out;
}

/** An explanation-like text: mostly the last one with a few numbers or words changed, sometimes new. */
function explanation(prev: string | undefined, rnd: () => number, num: () => number): string {
  const words = ['Step', 'KL', 'is', 'falling', 'flat', ' ', '  ', '\n', 'étape', '価値', '(41%),', '+0.363', '', '/', '//', 'ln/1b/9', 'ppo/kl', '/x'];
  if (prev === undefined || rnd() < 0.1) return Array.from({ length: Math.floor(rnd() * 40) }, () => (rnd() < 0.5 ? String(num()) : words[Math.floor(rnd() * words.length)])).join(rnd() < 0.8 ? ' ' : '');
  const tokens = prev.split(' ');
  for (let k = Math.floor(rnd() * 4); k > 0 && tokens.length > 0; k--) {
    const at = Math.floor(rnd() * tokens.length);
    const r = rnd();
    if (r < 0.6) tokens[at] = String(num());
    else if (r < 0.8) tokens.splice(at, 1);
    else tokens.splice(at, 0, words[Math.floor(rnd() * words.length)]);
  }
  return tokens.join(' ');
}

/** A deep copy whose objects hold their keys in a random order (as a receiver's may, after patches added keys). */
function reordered(x: unknown, rnd: () => number): unknown {
  if (Array.isArray(x)) return x.map((v) => reordered(v, rnd));
  if (x === null || typeof x !== 'object') return x;
  const entries = Object.entries(x as Record<string, unknown>);
  for (let i = entries.length - 1; i > 0; i--) { const j = Math.floor(rnd() * (i + 1)); [entries[i], entries[j]] = [entries[j], entries[i]]; }
  return Object.fromEntries(entries.map(([k, v]) => [k, reordered(v, rnd)]));
}

describe('json delta', () => {
  it('applyPatch(a, diffJson(a, b)) is b, for random sequences (1000 steps, 5 seeds)', () => {
    let edited = 0;
    let positional = 0;
    let ranges = 0;
    let pushed = 0;
    let rows = 0;
    for (let seed = 1; seed <= 5; seed++) {
      const rnd = prng(seed);
      let a: State | undefined;
      for (let i = 0; i < 1000; i++) {
        const b = nextState(a, rnd, i);
        const patch = diffJson(a as never, b as never);
        // What travels is JSON text: the patch must survive it.
        const wire = patch === undefined ? undefined : JSON.parse(JSON.stringify(patch));
        if (JSON.stringify(patch ?? null).includes('"x":[')) edited++;
        // The receiver's objects may hold their keys in another order (keys added by earlier patches).
        const rebuilt = wire === undefined ? a : applyPatch(a === undefined ? undefined : reordered(a, rnd), wire);
        expect(rebuilt).toEqual(b);
        const ops = JSON.stringify(patch ?? null);
        if (ops.includes('"k":[')) positional++;
        if (/"k":\[(?:[^\[\]]|\[[^\[\]]*\])*\[\d+,\d+\]/.test(ops)) ranges++;
        if (ops.includes('"p":[')) pushed++;
        if (ops.includes('"r":[')) rows++;
        a = b;
      }
    }
    // The texts went out as edits often enough for the property to cover them.
    expect(edited).toBeGreaterThan(500);
    // ...and so did positional object patches, shared replacements and full sliding series.
    expect(positional).toBeGreaterThan(500);
    expect(ranges).toBeGreaterThan(100);
    expect(pushed).toBeGreaterThan(100);
    // ...and top lists replaced as rows.
    expect(rows).toBeGreaterThan(100);
  });

  it('a sliding series is sent as its new points (full) or shift + append (growing), not resent', () => {
    const a = { s: Array.from({ length: 100 }, (_, i) => i + 0.5) };
    const b = { s: [...a.s.slice(3), 1, 2, 3] };
    expect(diffJson(a, b)).toEqual({ k: [0, { p: [1, 2, 3] }] });
    expect(applyPatch(a, { k: [0, { p: [1, 2, 3] }] })).toEqual(b);
    // Applying never changes what the page already holds.
    expect(a.s).toHaveLength(100);
    const c = { s: [...a.s.slice(1), 1, 2] }; // slid by one, grew by one
    expect(diffJson(a, c)).toEqual({ k: [0, { s: 1, '+': [1, 2] }] });
    expect(applyPatch(a, diffJson(a, c))).toEqual(c);
  });

  it('an object with the same keys is patched by position in sorted key order; neighbours with one new value share it', () => {
    const a = { step: 1, m: { latest: 0.5, mean: 0.5, min: 0.5, max: 0.5, count: 1, trend: 0.1 } };
    const b = { step: 2, m: { latest: 0.7, mean: 0.7, min: 0.7, max: 0.7, count: 1, trend: 0.1 } };
    // m's keys sorted: count, latest, max, mean, min, trend: latest..min are 1..4.
    expect(diffJson(a, b)).toEqual({ k: [0, { k: [[1, 4], 0.7] }, 1, 2] });
    expect(applyPatch(a, diffJson(a, b))).toEqual(b);
    // Insertion order on the receiving side does not matter: the positions are over sorted keys.
    const held = { step: 1, m: { trend: 0.1, count: 1, min: 0.5, max: 0.5, mean: 0.5, latest: 0.5 } };
    expect(applyPatch(held, diffJson(a, b))).toEqual(b);
    // A relative patch is never shared: each key gets its own.
    // (Children with other fields, so they are no table: see the column tests.)
    const x = { p: { q: 1, r: 2 }, s: { q: 1, r: 2, z: 0 } };
    const y = { p: { q: 1, r: 3 }, s: { q: 1, r: 3, z: 0 } };
    expect(diffJson(x, y)).toEqual({ k: [0, { k: [1, 3] }, 1, { k: [1, 3] }] });
    // A new or dropped key: patched by name.
    expect(diffJson({ a: 1 }, { a: 1, b: 2 })).toEqual({ o: { b: 2 } });
    expect(diffJson({ a: 1, b: 2 }, { a: 1 })).toEqual({ d: ['b'] });
    // Same count, other names (one an Object.prototype name): by name too.
    const renamed = diffJson({ x: 1 }, { toString: 2 });
    expect(applyPatch({ x: 1 }, JSON.parse(JSON.stringify(renamed)))).toEqual({ toString: 2 });
  });
});

/**
 * Objects of like objects (metrics: series that each take one point, a trend, a count), with
 * every kind of change a column could carry or not: one point onto every series, a sliding
 * series, a replaced value, a child that did not change, a field or child that comes or goes.
 */
function nextTable(prev: Record<string, Record<string, unknown>> | undefined, rnd: () => number, step: number): Record<string, Record<string, unknown>> {
  const num = () => Number((rnd() * 10 - 5).toPrecision(1 + Math.floor(rnd() * 4)));
  const names = ['a', 'b', 'c', 'd', 'e'].slice(0, 1 + Math.floor(rnd() * 5));
  const out: Record<string, Record<string, unknown>> = {};
  // One way of changing per field for every child most of the time (a column), mixed otherwise.
  const mode = () => Math.floor(rnd() * 7);
  const shared = { series: mode(), steps: mode(), trend: mode() };
  const sameStep = rnd() < 0.7;
  const names2 = prev && rnd() < 0.9 ? Object.keys(prev) : names;
  for (const name of names2) {
    const p = prev?.[name] ?? { series: [], steps: [], trend: 0, tag: 'x' };
    const m = (f: keyof typeof shared) => (rnd() < 0.85 ? shared[f] : mode());
    const grow = (xs: unknown[], how: number, v: () => unknown): unknown => {
      if (how === 0) return xs; // unchanged
      if (how === 1) return [...xs, v()]; // one point more
      if (how === 2) return xs.length > 0 ? [...xs.slice(1), v()] : [v()]; // slid by one
      if (how === 3) return [...xs, v(), v()].slice(-6); // two more, kept to 6
      if (how === 4) return [...xs, v(), v(), v()]; // three more
      if (how === 5) return xs.length >= 2 ? [...xs.slice(2), v(), v()] : [v()]; // slid by two
      return rnd() < 0.5 ? num() : { nested: num() }; // not an array any more
    };
    const series = Array.isArray(p.series) ? p.series : [];
    const steps = Array.isArray(p.steps) ? p.steps : [];
    const row: Record<string, unknown> = {
      series: grow(series, m('series'), num),
      steps: grow(steps, m('steps'), () => (sameStep ? step : step + Math.floor(rnd() * 3))),
      trend: m('trend') === 0 ? p.trend : rnd() < 0.2 ? [num()] : num(),
    };
    if (p.tag !== undefined && rnd() >= 0.03) row.tag = p.tag; // (else a field that goes)
    if (rnd() < 0.03) row.extra = num(); // or comes
    out[name] = row;
  }
  if (rnd() < 0.05) out.z = { other: 1 }; // a child unlike the others
  return JSON.parse(JSON.stringify(out)); // a state as it arrives: JSON (a field taken from a child that lacks it is absent)
}

describe('column patches', () => {
  it('applyPatch(a, diffJson(a, b)) is b for random objects of like objects (2000 steps, 5 seeds); tables are used often', () => {
    let tables = 0;
    let sharedValues = 0;
    const ops = new Set<string>();
    for (let seed = 21; seed <= 25; seed++) {
      const rnd = prng(seed);
      let a: Record<string, Record<string, unknown>> | undefined;
      for (let i = 0; i < 2000; i++) {
        const b = nextTable(a, rnd, i);
        const state = { run: 'r', metrics: b };
        const before = a === undefined ? undefined : { run: 'r', metrics: a };
        const patch = diffJson(before as never, state as never);
        const wire = patch === undefined ? undefined : JSON.parse(JSON.stringify(patch));
        const rebuilt = wire === undefined ? before : applyPatch(before === undefined ? undefined : reordered(before, rnd), wire);
        expect(rebuilt).toEqual(state);
        const c = (wire as { k?: unknown[] } | undefined)?.k?.[1] as { c?: unknown[][] } | undefined;
        if (c?.c) {
          tables++;
          for (const col of c.c[0] as unknown[][]) { ops.add(String(col[1])); if (col.length === 3) sharedValues++; }
        }
        a = b;
      }
    }
    expect(tables).toBeGreaterThan(1000); // of 10,000 (the rest: mixed changes, where a table would not be shorter)
    expect(sharedValues).toBeGreaterThan(500);
    expect([...ops].filter((op) => ['+', '=', 'p'].includes(op)).sort()).toEqual(['+', '=', 'p']);
    // Several points at once: "+2", "p2", "+3"…
    expect([...ops].filter((op) => /^[+p]\d+$/.test(op)).length).toBeGreaterThanOrEqual(3);
  });

  it('metrics that each take one point (or two) and a new trend go out as one row of values per metric; a value every metric shares goes once', () => {
    const series = (n: number, at: number) => Array.from({ length: n }, (_, i) => at + i);
    const a = { kl: { smoothed: series(100, 0), steps: series(100, 500), trend: 0.1 }, loss: { smoothed: series(100, 7), steps: series(100, 500), trend: -0.2 }, games: { smoothed: Array(100).fill(0), steps: series(100, 500), trend: 0 } };
    const b = {
      kl: { smoothed: [...a.kl.smoothed.slice(1), 0.5], steps: series(100, 501), trend: 0.11 },
      loss: { smoothed: [...a.loss.smoothed.slice(1), 0.25], steps: series(100, 501), trend: -0.2 },
      games: { smoothed: a.games.smoothed, steps: series(100, 501), trend: 0 }, // nothing new but its step
    };
    // Children sorted: games, kl, loss; fields sorted: smoothed, steps, trend.
    const patch = diffJson(a, b);
    expect(patch).toEqual({ c: [[[0, 'p'], [1, 'p', 600], [2, '=']], 0, 0, 0.5, 0.11, 0.25, -0.2] });
    expect(applyPatch(a, patch)).toEqual(b);
    // Growing series: "+".
    const g = { x: { s: [1], t: 1 }, y: { s: [2], t: 2 } };
    expect(diffJson(g, { x: { s: [1, 3], t: 1 }, y: { s: [2, 4], t: 2 } })).toEqual({ c: [[[0, '+']], 3, 4] });
    // Two points in one window (two trainer steps): "p2", the points as an array.
    const two = { kl: { ...b.kl, smoothed: [...a.kl.smoothed.slice(2), 0.5, 0.6], steps: series(100, 502) }, loss: { ...b.loss, smoothed: [...a.loss.smoothed.slice(2), 0.25, 0.3], steps: series(100, 502) }, games: { ...b.games, steps: series(100, 502) } };
    expect(diffJson(a, two)).toEqual({ c: [[[0, 'p2'], [1, 'p2', [600, 601]], [2, '=']], [0, 0], 0, [0.5, 0.6], 0.11, [0.25, 0.3], -0.2] });
    expect(applyPatch(a, diffJson(a, two))).toEqual(two);
    // Applying never changes what the page already holds.
    expect(a.kl.smoothed).toHaveLength(100);
    expect(a.kl.smoothed[99]).toBe(99);
  });
});

/**
 * A random stream through the gateway's DeltaFanout to clients that drop messages and
 * reconnect: after every step a client either holds exactly the latest full state of
 * every key or has asked for a resync, and after its resync (the full state) it holds it again.
 */
describe('compact patches', () => {
  it('a long text with a few changed numbers goes out as edits of those words only', () => {
    const a = { explanation: 'Step 413696. Health: learning. KL 0.0111 with clip fraction 0.0736 shows the policy is still moving noticeably each update. Policy loss 0.0615 is flat.' };
    const b = { explanation: a.explanation.replace('413696.', '417792.').replace('0.0736', '0.0801') };
    const patch = diffJson(a, b);
    expect(patch).toEqual({ k: [0, { x: [5, 7, '417792.', 60, 6, '0.0801'] }] });
    expect(applyPatch(a, patch)).toEqual(b);
    expect(JSON.stringify(patch).length).toBeLessThan(JSON.stringify(b).length / 2);
  });

  it('an SFEN position goes out as edits of the ranks that changed', () => {
    const a = { position: 'bnsk3+N1/lr7/4g1g1l/pppppppp1/6P2/3B4p/PP1PPP1PP/1SR3GNL/L2K1G2S b Snp 1' };
    const b = { position: 'bnsk3+N1/lr7/4g1g1l/ppRppppp1/6P2/3B4p/PP1PPP1PP/1S4GNL/L2K1G2S w SPnp 1' };
    const patch = diffJson(a, b);
    // (The side to move and the hands, one space apart, go as one edit: shorter than two.)
    expect(patch).toEqual({ k: [0, { x: [20, 9, 'ppRppppp1', 49, 7, '1S4GNL', 65, 5, 'w SPnp'] }] });
    expect(applyPatch(a, patch)).toEqual(b);
    expect(JSON.stringify(patch).length).toBeLessThan(JSON.stringify(b).length * 0.8);
  });

  it('a rewritten sentence goes out as one edit, not one per word between the words it shares with the old one', () => {
    const a = { explanation: 'Step 15. Health: exploring. KL 0.0586 is at or above 0.05: updates are large, so training may be unstable. Policy loss 0.13 is falling (improving). Value loss 0.692 is rising. Entropy 4.35 is flat.' };
    const b = { explanation: 'Step 18. Health: learning. KL 0.0416 with clip fraction 0.237 shows the policy is still moving noticeably each update. Policy loss 0.128 is falling (improving). Value loss 0.681 is rising. Entropy 4.34 is flat.' };
    const patch = diffJson(a, b) as { k: [number, { x: (number | string)[] }] };
    expect(applyPatch(a, JSON.parse(JSON.stringify(patch)))).toEqual(b);
    const edits = patch.k[1].x;
    // The step, the health word with the KL sentence, then each changed number on its own.
    expect(edits).toEqual([5, 3, '18.', 17, 89, 'learning. KL 0.0416 with clip fraction 0.237 shows the policy is still moving noticeably each update.', 119, 4, '0.128', 159, 5, '0.681', 184, 4, '4.34']);
    // Shorter than the text it rebuilds (one edit per shared word was not).
    expect(JSON.stringify(patch).length).toBeLessThan(JSON.stringify(b).length * 0.9);
  });

  it('a text too long to compare word by word whose numbers changed goes out as edits of those numbers; with words added, whole', () => {
    const metrics = ['ppo/policy_loss', 'ppo/value_loss', 'ppo/entropy', 'games_played', 'ppo/clip_fraction', 'ppo/kl_divergence_approx', 'ppo/learning_rate'];
    const text = (step: number, v: (i: number) => number) => `step ${step}; health learning: KL ${v(9)} is between 0.01 and 0.05; ` +
      metrics.map((m, i) => `${m} ${v(i)}, window mean ${v(i)} [${v(i)}, ${v(i)}], slope ${v(i + 20)}/step over 100 points (falling)`).join('; ') + '.';
    const a = { explanation: text(186, (i) => Number((0.1 + i / 7).toPrecision(3))) };
    const b = { explanation: text(187, (i) => (i === 2 || i > 8 ? Number((0.1 + i / 7).toPrecision(3)) + 0.001 : Number((0.1 + i / 7).toPrecision(3)))) };
    const tokens = a.explanation.match(/\s+|\/|[^\s/]+/g)!.length;
    expect(tokens * tokens).toBeGreaterThan(40_000); // past the word-by-word table's size
    const patch = diffJson(a, b) as { k: [number, { x: (number | string)[] }] };
    expect(applyPatch(a, JSON.parse(JSON.stringify(patch)))).toEqual(b);
    // The step, KL, entropy's four numbers and the seven slopes, neighbours merged: a fraction of the text.
    expect(patch.k[1].x.length / 3).toBeLessThanOrEqual(10);
    expect(JSON.stringify(patch).length).toBeLessThan(JSON.stringify(b).length / 3);
    // A word more, so no word-for-word pairing: replaced (no table that large is made).
    const c = { explanation: `${b.explanation} More.` .replace('health', 'health is') };
    expect(diffJson(a, c)).toEqual({ k: [0, c.explanation] });
  });

  it('a short or wholly different text is replaced, not edited', () => {
    expect(diffJson({ t: 'learning' }, { t: 'healthy' })).toEqual({ k: [0, 'healthy'] });
    const a = 'alpha beta gamma delta epsilon zeta eta theta';
    const b = 'one two three four five six seven eight nine';
    expect(diffJson({ t: a }, { t: b })).toEqual({ k: [0, b] });
  });

  it('an array is patched element by element only where that is shorter than the array', () => {
    // Two of three cells changed: [[0,4],[2,6]] as "i" is longer than [4,2,6].
    expect(diffJson({ row: [1, 2, 3] }, { row: [4, 2, 6] })).toEqual({ k: [0, [4, 2, 6]] });
    // One changed field in one of two long elements: the element patch is shorter.
    const a = { top: [{ move: '7g7f', prob: 0.5 }, { move: '2g2f', prob: 0.3 }] };
    const c = { top: [{ move: '7g7f', prob: 0.51 }, { move: '2g2f', prob: 0.3 }] };
    expect(diffJson(a, c)).toEqual({ k: [0, { i: [[0, { k: [1, 0.51] }]] }] });
  });

  it('a list of like objects that changed throughout goes out as rows: the field names once, then the values', () => {
    const a = { top: [{ move: '7g7f', prob: 0.5 }, { move: '2g2f', prob: 0.3 }, { move: '3c3d', prob: 0.1 }] };
    const b = { top: [{ move: '2g2f', prob: 0.45 }, { move: '7g7f', prob: 0.35 }, { move: '8c8d', prob: 0.05 }] };
    const patch = diffJson(a, b);
    expect(patch).toEqual({ k: [0, { r: [['move', 'prob'], '2g2f', 0.45, '7g7f', 0.35, '8c8d', 0.05] }] });
    expect(applyPatch(a, JSON.parse(JSON.stringify(patch)))).toEqual(b);
    // Not like objects (other keys), or objects without keys: the value itself.
    const mixed = [{ move: 'a', prob: 1 }, { move: 'b', p: 2 }, { move: 'c', prob: 3 }];
    expect(diffJson({ top: [] }, { top: mixed })).toEqual({ k: [0, mixed] });
    const empty = [{}, {}, {}, {}, {}, {}];
    expect(diffJson({ top: [1] }, { top: empty })).toEqual({ k: [0, empty] });
    expect(applyPatch(undefined, { r: [[]] })).toEqual([]);
  });
});

describe('delta stream with gaps and reconnects', () => {
  it('reconstructs the full state exactly; a missed sequence number is detected and recovered by a full state', () => {
    for (let seed = 11; seed <= 14; seed++) {
      const rnd = prng(seed);
      const fan = new DeltaFanout();
      const keys = ['ppo_metrics:a', 'se_attention:a', 'move_prediction:b'];
      const latest = new Map<string, Version>();
      const states = new Map<string, State>();
      let seq = 0;
      const clients = Array.from({ length: 3 }, () => ({ held: deltaState(), resyncs: 0, gaps: 0, stale: new Set<string>() }));
      const fullOf = (key: string) => JSON.parse(dec.decode(fan.full(key, latest.get(key)!)));
      let deltas = 0;
      for (let i = 0; i < 600; i++) {
        const key = keys[Math.floor(rnd() * keys.length)];
        const data = nextState(states.get(key), rnd, i);
        states.set(key, data);
        const to: Version = { seq: ++seq, bytes: enc.encode(JSON.stringify({ type: key.split(':')[0], timestamp: i, data })) };
        const wire = JSON.parse(dec.decode(fan.update(key, latest.get(key), to)));
        latest.set(key, to);
        if (wire.type === 'delta') deltas++;
        for (const [ci, c] of clients.entries()) {
          const fate = rnd();
          if (ci > 0 && fate < 0.05) { c.gaps++; c.stale.add(key); continue; } // lost: the next delta of this key will not follow
          if (ci > 0 && fate < 0.07) {
            // Reconnect: everything held is dropped; the server sends full state.
            c.held.clear();
            for (const k of latest.keys()) c.held.accept(fullOf(k));
            c.stale.clear();
            continue;
          }
          const { message, resync } = c.held.accept(wire);
          // A client that missed this key's last message must notice at its next delta.
          expect(resync).toBe(c.stale.has(key) && wire.type === 'delta');
          c.stale.delete(key);
          if (resync) {
            expect(message).toBeNull();
            c.resyncs++;
            for (const k of latest.keys()) c.held.accept(fullOf(k));
            c.stale.clear();
          } else {
            expect(message).toEqual({ type: key.split(':')[0], timestamp: i, data });
          }
          // Whatever happened, the client now holds exactly the latest state of every key it has seen.
          for (const [k, m] of c.held.messages()) if (!c.stale.has(k)) expect(m.data).toEqual(states.get(k));
        }
      }
      expect(deltas).toBeGreaterThan(300); // most updates went out as deltas
      expect(clients[0].resyncs).toBe(0); // a client that loses nothing never needs a full state
      for (const c of clients.slice(1)) expect(c.resyncs).toBeGreaterThan(0);
      for (const c of clients) expect(c.held.messages().size).toBe(keys.length);
    }
  });

  it('a delta names the version it follows: a skipped one is refused, not misapplied', () => {
    const fan = new DeltaFanout();
    const v = (seq: number, x: number): Version => ({ seq, bytes: enc.encode(JSON.stringify({ type: 't', timestamp: seq, data: { x, keep: 'same'.repeat(40) } })) });
    const held = deltaState();
    expect(held.accept(JSON.parse(dec.decode(fan.full('k', v(1, 1))))).message).toEqual({ type: 't', timestamp: 1, data: { x: 1, keep: 'same'.repeat(40) } });
    const d2 = JSON.parse(dec.decode(fan.update('k', v(1, 1), v(2, 2))));
    const d3 = JSON.parse(dec.decode(fan.update('k', v(2, 2), v(3, 3))));
    // Version 3 (s), made from the version 1 (b) back; the patch (p): keys sorted: keep, x.
    expect(d3).toEqual({ type: 'delta', timestamp: 3, s: 3, b: 1, p: { k: [1, 3] } });
    expect(Object.keys(d3).slice(0, 2)).toEqual(['type', 'timestamp']); // what load generators sniff, first
    // The type is the held message's and the key the one held at its base (s − b): the delta repeats neither.
    expect(d3).not.toHaveProperty('of');
    expect(d3).not.toHaveProperty('key');
    expect(d2).toBeDefined();
    // d2 lost: d3 follows nothing held, so it cannot apply; the client asks for a resync.
    expect(held.keyOf(d3)).toBeUndefined();
    expect(held.accept(d3)).toEqual({ message: null, resync: true });
    expect(held.messages().get('k')?.data).toEqual({ x: 1, keep: 'same'.repeat(40) }); // not misapplied
    expect(held.accept(JSON.parse(dec.decode(fan.full('k', v(3, 3))))).message?.data).toEqual({ x: 3, keep: 'same'.repeat(40) });
    // A delta from a version another key is held at never applies to this one.
    const other = JSON.parse(dec.decode(fan.full('other', v(4, 9))));
    held.accept(other);
    const d5 = JSON.parse(dec.decode(fan.update('k', v(3, 3), v(5, 5))));
    expect(held.keyOf(d5)).toBe('k');
    expect(held.accept(d5).message?.data).toEqual({ x: 5, keep: 'same'.repeat(40) });
    expect(held.messages().get('other')?.data).toEqual({ x: 9, keep: 'same'.repeat(40) });
    // An older server's delta names its key: applied only on the version held for that key.
    expect(held.accept({ type: 'delta', timestamp: 6, key: 'other', base: 5, seq: 6, patch: { k: [1, 1] } })).toEqual({ message: null, resync: true });
    expect(held.accept({ type: 'delta', timestamp: 7, key: 'k', base: 5, seq: 7, patch: { k: [1, 7] } }).message?.data).toEqual({ x: 7, keep: 'same'.repeat(40) });
  });
});
