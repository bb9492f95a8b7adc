/**
 * Milestones of one run: those the trainer sends, and those detected from the data.
 *
 * Detected rules (thresholds from config.aggregate.milestones):
 *  - kl_settled        KL below klSettledBelow for klSettledWindows windows in a row
 *                      (windows that brought KL values; quiet windows neither count nor reset)
 *  - entropy_collapse  entropy below entropyCollapseBelow
 *  - loss_plateau      |policy-loss trend| below lossPlateauSlope for lossPlateauWindows windows in a row
 *  - best_win_rate     a win-rate metric beats the best announced so far by at least 0.01
 *                      (the first value only sets the baseline: "best so far" of one value is noise)
 *  - games             the number of distinct finished games reaches one of gameMarks
 * Each condition fires once and re-arms when it stops holding, so a flapping metric
 * cannot flood the milestone channel.
 *
 * Ids are stable so clients can drop replays: a trainer milestone's id is built from its
 * own fields (the ring re-delivers an uncommitted batch verbatim after an aggregator
 * restart), a detected one from the rule and what it marks (`games:100`), or from the
 * rule and its occurrence number in this run, which a restarted aggregator re-detects
 * with the same number.
 */
import type { MilestoneEvent } from '../../shared/telemetry/event-codec.js';
import { findRole } from './metric-roles.js';

export interface MilestoneRules {
  klSettledBelow: number;
  klSettledWindows: number;
  entropyCollapseBelow: number;
  lossPlateauWindows: number;
  lossPlateauSlope: number;
  gameMarks: number[];
  bestWinRate: boolean;
}

export interface Milestone {
  id: string;
  run: string;
  name: string;
  message: string;
  source: 'trainer' | 'admin' | 'detected';
  step: number | null;
  value: number | null;
  meta?: Record<string, unknown>;
  /** A milestone that reached the server late, at a step older than the run shows: history, not news. */
  late?: true;
}

/** What the detector needs to know about one metric at a window close. */
export interface WindowMetric {
  latest: number;
  trend: number;
  /** Values received during the window that just closed. */
  count: number;
  /** Points in the kept series (a trend over two points says little). */
  points: number;
}

const BEST_WIN_RATE_MIN_GAIN = 0.01;
const RECENT_GAMES = 4096;
const MIN_PLATEAU_POINTS = 3;

export function checkRules(r: MilestoneRules): void {
  const num = (k: keyof MilestoneRules, min: number) => {
    const v = r?.[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new RangeError(`milestones.${k} must be a finite number >= ${min} (got ${String(v)})`);
  };
  num('klSettledBelow', 0);
  num('klSettledWindows', 1);
  num('entropyCollapseBelow', 0);
  num('lossPlateauWindows', 1);
  num('lossPlateauSlope', 0);
  if (!Array.isArray(r.gameMarks) || r.gameMarks.some((m) => !Number.isInteger(m) || m < 1)) throw new RangeError('milestones.gameMarks must be an array of positive integers');
  if (typeof r.bestWinRate !== 'boolean') throw new RangeError('milestones.bestWinRate must be true or false');
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toPrecision(3);
}

const PERSISTED_GAMES = 256;

export interface PersistedDetector {
  klStreak: number; klFired: boolean; klCount: number;
  entropyFired: boolean; entropyCount: number;
  plateauStreak: number; plateauFired: boolean; plateauCount: number;
  bestWin: Array<[string, number]>;
  announcedWin: Array<[string, number]>;
  recentGames: string[];
  gamesFinished: number;
}

export class MilestoneDetector {
  readonly run: string;
  private readonly rules: MilestoneRules;
  private readonly marks: number[];
  private klStreak = 0;
  private klFired = false;
  private klCount = 0;
  private entropyFired = false;
  private entropyCount = 0;
  private plateauStreak = 0;
  private plateauFired = false;
  private plateauCount = 0;
  private bestWin = new Map<string, number>();
  private announcedWin = new Map<string, number>();
  /** Recently finished game ids, oldest first, to ignore repeated final states. */
  private recentGames = new Set<string>();
  gamesFinished = 0;

  constructor(run: string, rules: MilestoneRules) {
    checkRules(rules);
    this.run = run;
    this.rules = rules;
    this.marks = [...new Set(rules.gameMarks)].sort((a, b) => a - b);
  }

  /** The detector's memory (streaks, what fired, best values, counted games), for another node to continue from. */
  persist(): PersistedDetector {
    return {
      klStreak: this.klStreak, klFired: this.klFired, klCount: this.klCount,
      entropyFired: this.entropyFired, entropyCount: this.entropyCount,
      plateauStreak: this.plateauStreak, plateauFired: this.plateauFired, plateauCount: this.plateauCount,
      bestWin: [...this.bestWin], announcedWin: [...this.announcedWin],
      // The newest game ids only: enough to recognise a trainer repeating its last final states.
      recentGames: [...this.recentGames].slice(-PERSISTED_GAMES),
      gamesFinished: this.gamesFinished,
    };
  }

  restore(p: PersistedDetector): void {
    this.klStreak = p.klStreak; this.klFired = p.klFired; this.klCount = p.klCount;
    this.entropyFired = p.entropyFired; this.entropyCount = p.entropyCount;
    this.plateauStreak = p.plateauStreak; this.plateauFired = p.plateauFired; this.plateauCount = p.plateauCount;
    this.bestWin = new Map(p.bestWin);
    this.announcedWin = new Map(p.announcedWin);
    this.recentGames = new Set(p.recentGames);
    this.gamesFinished = p.gamesFinished;
  }

  fromTrainer(e: Pick<MilestoneEvent, 'name' | 'message' | 'step' | 'value' | 'timestamp' | 'meta'>, receivedAt: number): Milestone {
    const when = e.step !== undefined ? `s${e.step}` : `t${e.timestamp || receivedAt}`;
    const { name: _n, message: _m, step: _s, value: _v, run: _r, source: claimed, ...extra } = e.meta as Record<string, unknown>;
    // Milestones fired by hand (control page, admin API) say so; anything else came from a trainer.
    const source = claimed === 'admin' ? 'admin' : 'trainer';
    return {
      id: `${this.run}:${source}:${e.name}:${when}`,
      run: this.run,
      name: e.name,
      message: e.message ?? e.name,
      source,
      step: e.step ?? null,
      value: e.value ?? null,
      ...(Object.keys(extra).length > 0 ? { meta: extra } : {}),
    };
  }

  private detected(name: string, key: string, message: string, step: number | null, value: number | null): Milestone {
    return { id: `${this.run}:${name}:${key}`, run: this.run, name, message, source: 'detected', step, value };
  }

  /** Per metric value, as it arrives: best win rate. */
  onMetric(name: string, value: number, step: number): Milestone[] {
    if (!this.rules.bestWinRate || findRole([name], 'winRate') === undefined) return [];
    const best = this.bestWin.get(name);
    if (best === undefined) {
      this.bestWin.set(name, value);
      this.announcedWin.set(name, value);
      return [];
    }
    if (value <= best) return [];
    this.bestWin.set(name, value);
    if (value < this.announcedWin.get(name)! + BEST_WIN_RATE_MIN_GAIN) return [];
    this.announcedWin.set(name, value);
    const pct = (value * 100).toFixed(1);
    return [this.detected('best_win_rate', `${name}:${value}`, `New best win rate: ${value <= 1 ? `${pct}%` : fmt(value)} (${name}) at step ${step}`, step, value)];
  }

  /**
   * A game_state event with a result. `counted` is false for a game already counted (the
   * trainer repeating its final state, or a replay); `milestones` holds game-count marks.
   */
  onGameFinished(gameId: string, step: number | null): { counted: boolean; milestones: Milestone[] } {
    if (this.recentGames.has(gameId)) return { counted: false, milestones: [] };
    this.recentGames.add(gameId);
    if (this.recentGames.size > RECENT_GAMES) this.recentGames.delete(this.recentGames.values().next().value!);
    this.gamesFinished++;
    const n = this.gamesFinished;
    if (!this.marks.includes(n)) return { counted: true, milestones: [] };
    return { counted: true, milestones: [this.detected('games', String(n), `${n} games played`, step, n)] };
  }

  /** At each window close, with every metric that has a value. */
  onWindow(metrics: ReadonlyMap<string, WindowMetric>, step: number): Milestone[] {
    const out: Milestone[] = [];
    const names = [...metrics.keys()];
    const r = this.rules;

    const klName = findRole(names, 'kl');
    const kl = klName === undefined ? undefined : metrics.get(klName)!;
    if (kl && kl.count > 0) {
      if (kl.latest < r.klSettledBelow) {
        this.klStreak++;
        if (this.klStreak >= r.klSettledWindows && !this.klFired) {
          this.klFired = true;
          this.klCount++;
          out.push(this.detected('kl_settled', String(this.klCount), `KL divergence settled below ${r.klSettledBelow} for ${r.klSettledWindows} windows (now ${fmt(kl.latest)})`, step, kl.latest));
        }
      } else {
        this.klStreak = 0;
        this.klFired = false;
      }
    }

    const entName = findRole(names, 'entropy');
    const ent = entName === undefined ? undefined : metrics.get(entName)!;
    if (ent && ent.count > 0) {
      if (ent.latest < r.entropyCollapseBelow) {
        if (!this.entropyFired) {
          this.entropyFired = true;
          this.entropyCount++;
          out.push(this.detected('entropy_collapse', String(this.entropyCount), `Policy entropy fell below ${r.entropyCollapseBelow} (now ${fmt(ent.latest)}): the policy has become nearly deterministic`, step, ent.latest));
        }
      } else {
        this.entropyFired = false;
      }
    }

    const lossName = findRole(names, 'policyLoss');
    const loss = lossName === undefined ? undefined : metrics.get(lossName)!;
    if (loss && loss.count > 0 && loss.points >= MIN_PLATEAU_POINTS) {
      if (Math.abs(loss.trend) < r.lossPlateauSlope) {
        this.plateauStreak++;
        if (this.plateauStreak >= r.lossPlateauWindows && !this.plateauFired) {
          this.plateauFired = true;
          this.plateauCount++;
          out.push(this.detected('loss_plateau', String(this.plateauCount), `Policy loss has plateaued at ${fmt(loss.latest)} (flat for ${r.lossPlateauWindows} windows)`, step, loss.latest));
        }
      } else {
        this.plateauStreak = 0;
        this.plateauFired = false;
      }
    }
    return out;
  }
}
