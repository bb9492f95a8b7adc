/** What a benchmark module's run() returns; bench/run.ts adds machine info and ratios. */
export interface BenchResult {
  /** Measured numbers, keyed by figure name. */
  figures: Record<string, number>;
  /** For a figure measured against something else, that something's number (same key). */
  baseline?: Record<string, number>;
  notes?: string[];
}

export interface BenchOptions {
  quick: boolean;
}

export type BenchModule = { run(opts: BenchOptions): Promise<BenchResult> };
