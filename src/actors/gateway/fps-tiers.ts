/**
 * Frame-rate tiers of the overlay fan-out.
 *
 * A client's max_fps picks one tier: the largest tier rate at or below it. Tiers that
 * can take every update (rate × aggregation window ≥ 1 s) all collapse into one shared
 * `live` tier that gets each update as it arrives; the tiers below it are conflated:
 * each tier keeps a timer and, when its interval elapses, publishes the latest value of
 * every key that changed since its last flush. The conflation is done once per tier,
 * not per client, so a thousand 2-fps viewers cost the same as one.
 */
export const TIER_RATES = [1, 2, 5, 10, 15, 20, 30, 60, 120, 240] as const;

export interface FpsTier {
  /** Topic component: `live` or the rate. */
  readonly name: string;
  /** Publishes per second (for `live`: up to the update rate). */
  readonly fps: number;
  readonly live: boolean;
  /** Flush interval of a conflated tier. */
  readonly intervalMs: number;
}

export interface TierPlan {
  readonly tiers: readonly FpsTier[];
  readonly live: FpsTier | undefined;
  /** The tier serving a client that asked for `maxFps` (already capped at the server's maxFps). */
  tierFor(maxFps: number): FpsTier;
}

export function planTiers(serverMaxFps: number, tickMs: number): TierPlan {
  const rates: number[] = TIER_RATES.filter((r) => r <= serverMaxFps);
  if (!rates.includes(serverMaxFps)) rates.push(serverMaxFps);
  const isLive = (fps: number) => fps * tickMs >= 1000;
  const conflated: FpsTier[] = rates.filter((r) => !isLive(r)).map((fps) => ({ name: String(fps), fps, live: false, intervalMs: Math.round(1000 / fps) }));
  const liveRates = rates.filter(isLive);
  const live: FpsTier | undefined = liveRates.length > 0 ? { name: 'live', fps: Math.max(...liveRates), live: true, intervalMs: 0 } : undefined;
  const tiers = live ? [...conflated, live] : conflated;
  return {
    tiers,
    live,
    tierFor(maxFps: number): FpsTier {
      if (live && isLive(maxFps)) return live;
      let chosen = tiers[0];
      for (const t of conflated) if (t.fps <= maxFps) chosen = t;
      return chosen;
    },
  };
}
