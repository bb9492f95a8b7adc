/**
 * GET /readyz: is this instance doing its job right now (a load balancer or an operator
 * asks), as opposed to /healthz (is it alive: the systemd watchdog asks). Checks:
 *   actors  every actor is running (none restarting or given up)
 *   ffmpeg  a working ffmpeg, where the configuration needs one (capture, encoder)
 *   rings   no ring dropped records in the last DROP_WINDOW_MS
 *   data    while a producer is connected (TCP/Unix ingest, or the demo trainer), records
 *           reached its ring within STALE_AFTER_MS
 * Ring counters are sampled every SAMPLE_MS on the main thread (a few header reads), so a
 * drop or a stall is seen even between two /readyz calls.
 */
import type { FfmpegStatus } from './ffmpeg-status.js';
import type { AnyRing } from '../../shared/actor.js';

export const DROP_WINDOW_MS = 30_000;
export const STALE_AFTER_MS = 30_000;
const SAMPLE_MS = 1_000;

export interface ReadinessSource {
  health(): { ok: boolean; actors: Record<string, string> };
  ring(name: string): AnyRing;
  actorNames(): string[];
  call(actor: string, method: string, args?: unknown[], timeoutMs?: number): Promise<unknown>;
}

export interface ReadinessOptions {
  supervisor: ReadinessSource;
  ffmpeg: FfmpegStatus;
  rings: string[];
  /** Producer rings and how to tell whether their producer is connected now. */
  producers: Array<{ ring: string; connected: () => Promise<number> }>;
  /** Problems worth an operator's eye that do not make the instance unready (a full recordings disk). */
  warnings?: () => Promise<string[]>;
  /**
   * Rings whose drops are a warning, not unreadiness: losing their records costs nothing a
   * viewer or producer sees (the recorder's copy of each event), so a slow disk must not take
   * the instance out of a load balancer.
   */
  warnRings?: string[];
  /**
   * Checks that make the instance degraded, not unready: it still serves what it can (a cluster
   * node without Redis serves its local viewers), so a load balancer must not take it out.
   */
  advisory?: Array<{ name: string; check: () => Check }>;
  now?: () => number;
  dropWindowMs?: number;
  staleAfterMs?: number;
}

export interface Check { ok: boolean; detail: string }
export interface ReadinessReport { ready: boolean; failing: string[]; checks: Record<string, Check>; warnings: string[]; degraded?: string[] }

export class Readiness {
  private readonly drops = new Map<string, { total: number; lastAt: number }>();
  private readonly records = new Map<string, { total: number; lastAt: number }>();
  private readonly timer: NodeJS.Timeout;
  private readonly now: () => number;

  constructor(private readonly o: ReadinessOptions) {
    this.now = o.now ?? Date.now;
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
    this.timer.unref();
  }

  /** Forget drops so far: what the rings did while the actors were starting is not "now". */
  resetBaseline(): void {
    this.drops.clear();
    this.sample();
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** Reads every ring's drop and record counters; remembers when each last moved. */
  sample(): void {
    const now = this.now();
    for (const name of this.o.rings) {
      let stats;
      try {
        stats = this.o.supervisor.ring(name).stats();
      } catch {
        continue;
      }
      const dropped = Object.values(stats.drops).reduce((a, b) => a + b, 0);
      const d = this.drops.get(name);
      // The first sample is a baseline: drops from before we looked are not "now".
      if (!d) this.drops.set(name, { total: dropped, lastAt: -Infinity });
      else if (dropped !== d.total) this.drops.set(name, { total: dropped, lastAt: now });
      const r = this.records.get(name);
      if (!r || stats.recordsIn !== r.total) this.records.set(name, { total: stats.recordsIn, lastAt: now });
    }
  }

  async check(): Promise<ReadinessReport> {
    this.sample();
    const now = this.now();
    const checks: Record<string, Check> = {};

    const health = this.o.supervisor.health();
    const down = Object.entries(health.actors).filter(([, s]) => s !== 'running').map(([a, s]) => `${a} ${s}`);
    checks.actors = { ok: health.ok, detail: health.ok ? `${Object.keys(health.actors).length} running` : (down.join(', ') || 'stopping') };

    const missing = this.o.ffmpeg.details();
    const parts = Object.keys(missing);
    checks.ffmpeg = parts.length > 0
      ? { ok: false, detail: `${parts.join(', ')} ${missing[parts[0]]}` }
      : { ok: true, detail: this.o.ffmpeg.availability.ok ? `${this.o.ffmpeg.availability.ffmpeg.version} (${this.o.ffmpeg.availability.ffmpeg.source})` : 'not needed' };

    const window = this.o.dropWindowMs ?? DROP_WINDOW_MS;
    const warnRings = new Set(this.o.warnRings ?? []);
    const recent = [...this.drops].filter(([, d]) => now - d.lastAt < window);
    const dropping = recent.filter(([ring]) => !warnRings.has(ring)).map(([ring, d]) => `${ring} (${d.total} dropped)`);
    const ringWarnings = recent.filter(([ring]) => warnRings.has(ring)).map(([ring, d]) => `${ring} dropping (${d.total} dropped in all): its reader is behind`);
    checks.rings = { ok: dropping.length === 0, detail: dropping.length === 0 ? `no drops in the last ${window / 1000} s` : `dropping: ${dropping.join(', ')}` };

    const staleAfter = this.o.staleAfterMs ?? STALE_AFTER_MS;
    const stale: string[] = [];
    let connected = 0;
    for (const p of this.o.producers) {
      const n = await p.connected().catch(() => 0);
      if (n === 0) continue;
      connected += n;
      const r = this.records.get(p.ring);
      const age = r ? now - r.lastAt : Infinity;
      if (age >= staleAfter) stale.push(`${p.ring}: ${n} producer(s) connected, nothing for ${Number.isFinite(age) ? `${Math.round(age / 1000)} s` : 'ever'}`);
    }
    checks.data = { ok: stale.length === 0, detail: stale.length > 0 ? stale.join('; ') : connected === 0 ? 'no producer connected' : `fresh (${connected} producer(s))` };

    const failing = Object.entries(checks).filter(([, c]) => !c.ok).map(([name]) => name);
    const warnings = [...ringWarnings, ...(this.o.warnings ? await this.o.warnings().catch((error: Error) => [`warnings unavailable: ${error.message}`]) : [])];
    if (!this.o.advisory || this.o.advisory.length === 0) return { ready: failing.length === 0, failing, checks, warnings };
    const degraded: string[] = [];
    for (const a of this.o.advisory) {
      checks[a.name] = a.check();
      if (!checks[a.name].ok) degraded.push(a.name);
    }
    return { ready: failing.length === 0, failing, degraded, checks, warnings };
  }
}
