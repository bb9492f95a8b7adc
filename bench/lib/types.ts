/** What a benchmark module's run() returns; bench/run.ts adds machine info and ratios. */
export interface BenchResult {
  /** Measured numbers, keyed by figure name. */
  figures: Record<string, number>;
  /** For a figure measured against something else, that something's number (same key). */
  baseline?: Record<string, number>;
  notes?: string[];
  /** Named time series ([x, y] points) for the capacity report, e.g. memory over a soak. */
  series?: Record<string, Array<[number, number]>>;
}

export interface BenchOptions {
  quick: boolean;
  /** `--minutes N`: how long a timed benchmark (soak) runs. */
  minutes?: number;
}

export type BenchModule = { run(opts: BenchOptions): Promise<BenchResult> };
