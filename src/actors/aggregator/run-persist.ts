/**
 * A run's aggregate state as text, kept in Redis by its owning node so that the node that
 * takes the run over continues from it. What comes back from Redis is checked field by
 * field: bad data is refused with an error naming the field, never half-applied.
 */
import { z } from 'zod';
import type { PersistedRun, RunState } from './run-state.js';

/** JSON turns NaN and the infinities into null: they come back as NaN. */
const num = z.number().nullable().transform((v) => v ?? NaN);
const nums = z.array(num);

const metricWindow = z.object({
  steps: nums, raw: nums, smooth: nums,
  smoothedLast: z.number().nullable(),
  latest: num, latestStep: num, total: z.number().int().nonnegative(),
  closed: z.object({ mean: num, min: num, max: num, count: z.number().int().nonnegative() }),
});

const milestone = z.object({
  id: z.string(), run: z.string(), name: z.string(), message: z.string(),
  source: z.enum(['trainer', 'admin', 'detected']),
  step: z.number().nullable(), value: z.number().nullable(),
  meta: z.record(z.unknown()).optional(),
});

const persistedRun = z.object({
  run: z.string(),
  firstSeenMs: z.number(), lastSeenMs: z.number(), events: z.number().int().nonnegative(), step: num,
  metrics: z.array(z.tuple([z.string(), metricWindow])),
  values: z.array(z.tuple([z.string(), num])),
  heatmap: z.object({ grid: nums, source: z.enum(['trainer', 'policy']), detail: z.string(), step: z.number().nullable() }).nullable(),
  // Plain data the overlays show as is; their own code checked it on the way in.
  prediction: z.record(z.unknown()).nullable(),
  game: z.record(z.unknown()).nullable(),
  recentMilestones: z.array(milestone),
  detector: z.object({
    klStreak: z.number(), klFired: z.boolean(), klCount: z.number(),
    entropyFired: z.boolean(), entropyCount: z.number(),
    plateauStreak: z.number(), plateauFired: z.boolean(), plateauCount: z.number(),
    bestWin: z.array(z.tuple([z.string(), z.number()])),
    announcedWin: z.array(z.tuple([z.string(), z.number()])),
    recentGames: z.array(z.string()),
    gamesFinished: z.number().int().nonnegative(),
  }),
});

export function encodeRun(run: RunState): string {
  return JSON.stringify(run.persist());
}

/** The persisted run of `expected`, or an Error saying what is wrong with the text. */
export function decodeRun(text: string, expected: string): PersistedRun {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`run snapshot is not JSON: ${(error as Error).message}`);
  }
  const parsed = persistedRun.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`run snapshot field ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  if (parsed.data.run !== expected) throw new Error(`run snapshot is of run "${parsed.data.run}", not "${expected}"`);
  return parsed.data as unknown as PersistedRun;
}
