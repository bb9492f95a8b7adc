/**
 * Small statistics and printing helpers shared by the benchmarks.
 * Percentiles use the nearest-rank method on a sorted copy, so p99 of 100 samples is
 * the 99th value: simple, and honest about how few samples a tail estimate rests on.
 */

export function sorted(samples: ArrayLike<number>): Float64Array {
  const s = Float64Array.from(samples as ArrayLike<number>);
  s.sort();
  return s;
}

/** Nearest-rank percentile, p in [0, 100]. NaN for no samples. */
export function percentile(samples: ArrayLike<number>, p: number): number {
  if (samples.length === 0) return NaN;
  const s = sorted(samples);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1];
}

export function median(samples: ArrayLike<number>): number {
  return percentile(samples, 50);
}

export function mean(samples: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i];
  return samples.length === 0 ? NaN : sum / samples.length;
}

/** Rounds to `digits` significant digits (keeps JSON results readable). */
export function sig(x: number, digits = 4): number {
  if (!Number.isFinite(x) || x === 0) return x;
  return Number(x.toPrecision(digits));
}

/** 12345678 -> "12.35 M" and so on. */
export function human(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1e9) return `${(x / 1e9).toFixed(2)} G`;
  if (a >= 1e6) return `${(x / 1e6).toFixed(2)} M`;
  if (a >= 1e4) return `${(x / 1e3).toFixed(1)} k`;
  if (a >= 100) return x.toFixed(0);
  if (a >= 1) return x.toFixed(2);
  return x.toPrecision(3);
}

/** Renders rows as an aligned text table; the first row is the heading. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => { widths[i] = Math.max(widths[i] ?? 0, cell.length); });
  const line = (row: string[]) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  const out = [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const row of rows.slice(1)) out.push(line(row));
  return out.join('\n');
}
