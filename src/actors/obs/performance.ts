/**
 * Live figures for the OBS performance text, derived only from the fan-out stream the
 * actor sees (no extra calls): training step and PPO health from `ppo_metrics`, finished
 * games from `game_state`, and the overlay message rate.
 *
 *   "step 12,345 · healthy · 10.0 msg/s · games 42"
 *
 * Figures not seen yet are left out rather than invented; before any data arrives the
 * text says so.
 */
export const NO_DATA_TEXT = 'ringcast · waiting for training data';

export class PerformanceTracker {
  private step: number | null = null;
  private health: string | null = null;
  private games: number | null = null;
  private count = 0;
  private total = 0;
  private windowStart: number;

  constructor(now = Date.now()) {
    this.windowStart = now;
  }

  /** Counts one overlay message (every type) toward the message rate. */
  countMessage(): void {
    this.count++;
    this.total++;
  }

  /** Takes the figures out of one parsed message body `{type, data}`. */
  observe(type: string, data: unknown): void {
    if (typeof data !== 'object' || data === null) return;
    const d = data as Record<string, unknown>;
    if (type === 'ppo_metrics') {
      if (typeof d.step === 'number' && Number.isFinite(d.step)) this.step = d.step;
      const health = d.health as { status?: unknown } | undefined;
      if (typeof health?.status === 'string') this.health = health.status;
    } else if (type === 'game_state') {
      if (typeof d.games_finished === 'number' && Number.isFinite(d.games_finished)) this.games = d.games_finished;
    }
  }

  /** The text for now; also starts a new rate window. */
  text(now = Date.now()): string {
    const seconds = Math.max(0.001, (now - this.windowStart) / 1000);
    const rate = this.count / seconds;
    this.count = 0;
    this.windowStart = now;
    if (this.total === 0) return NO_DATA_TEXT;
    const parts: string[] = [];
    if (this.step !== null) parts.push(`step ${Math.round(this.step).toLocaleString('en-US')}`);
    if (this.health !== null) parts.push(this.health);
    parts.push(`${rate.toFixed(1)} msg/s`);
    if (this.games !== null) parts.push(`games ${this.games.toLocaleString('en-US')}`);
    return parts.join(' · ');
  }
}
