/**
 * What ringcast wants OBS to show: scene presets and milestone celebrations.
 *
 * State kept here, not in OBS, so it survives OBS restarts:
 * - `requestedScene`: the scene ringcast last asked for (a preset or the scene a
 *   celebration returns to). It is re-applied after every reconnect, so a streamer who
 *   picked "board_focus" while OBS was down gets it once OBS is back.
 * - `programScene`: what OBS says it is showing (GetCurrentProgramScene at connect, then
 *   CurrentProgramSceneChanged events and our own successful switches).
 *
 * Celebrations run one at a time from a bounded queue: set the milestone text, switch to
 * the milestone scene (text first so the scene never shows a stale text), wait
 * `celebrationSeconds`, then return to the scene from before — unless someone changed
 * scene meanwhile (the streamer's choice wins). Milestones are de-duplicated by id
 * (a replay after an aggregator restart must not celebrate twice). A milestone that
 * arrives while OBS is down is skipped (counted): celebrating it minutes later would
 * be wrong.
 */
import type { Logger } from 'pino';
import type { ObsMetrics } from './metrics.js';

export const SCENE_PRESETS = ['overview', 'board_focus', 'metrics_focus', 'prediction', 'milestone'] as const;
export type ScenePreset = (typeof SCENE_PRESETS)[number];
export type SceneNames = Record<ScenePreset, string>;

export const MAX_PENDING_CELEBRATIONS = 16;
const REMEMBERED_IDS = 1024;
const MAX_TEXT = 500;

/** The part of ObsConnection the director needs (a fake in unit tests). */
export interface ObsRequester {
  readonly connected: boolean;
  request(type: string, data?: Record<string, unknown>, options?: { essential?: boolean }): Promise<unknown>;
}

export interface Celebration {
  id: string;
  name: string;
  message: string;
}

export interface CelebrationStatus {
  active: Celebration | null;
  pending: number;
  shown: number;
  dropped: number;
}

export interface DirectorOptions {
  scenes: SceneNames;
  milestoneTextInput: string;
  celebrationSeconds: number;
  obs: ObsRequester;
  log: Logger;
  metrics: ObsMetrics;
}

export function isPreset(value: unknown): value is ScenePreset {
  return typeof value === 'string' && (SCENE_PRESETS as readonly string[]).includes(value);
}

export function presetError(value: unknown): Error {
  return new Error(`unknown scene preset ${JSON.stringify(value)}; presets: ${SCENE_PRESETS.join(', ')}`);
}

export class Director {
  programScene: string | null = null;
  requestedScene: string | null = null;
  private active: Celebration | null = null;
  private readonly pending: Celebration[] = [];
  private readonly seen = new Set<string>();
  private shown = 0;
  private dropped = 0;
  private running = false;
  private stopped = false;
  private wake: (() => void) | undefined;
  private rpcCount = 0;

  constructor(private readonly o: DirectorOptions) {}

  /** Switches to a preset now. Throws for an unknown preset, or "OBS not connected" (the scene is then applied on reconnect). */
  async setScene(preset: unknown): Promise<{ preset: ScenePreset; scene: string }> {
    if (!isPreset(preset)) throw presetError(preset);
    const scene = this.o.scenes[preset];
    this.requestedScene = scene;
    if (!this.o.obs.connected) throw new Error(`OBS not connected; "${scene}" will be shown when OBS reconnects`);
    await this.switchTo(scene);
    return { preset, scene };
  }

  /** After every (re)connect: learn what OBS shows, then put back what ringcast asked for. */
  async restore(): Promise<void> {
    try {
      const current = (await this.o.obs.request('GetCurrentProgramScene')) as { currentProgramSceneName?: unknown; sceneName?: unknown } | undefined;
      const name = current?.currentProgramSceneName ?? current?.sceneName;
      if (typeof name === 'string') this.programScene = name;
    } catch (error) {
      this.o.log.warn({ err: error }, 'could not read the current OBS scene');
    }
    const wanted = this.requestedScene;
    if (wanted !== null && wanted !== this.programScene && this.active === null) {
      await this.switchTo(wanted).catch((error: unknown) => this.o.log.warn({ err: error, scene: wanted }, 'could not restore the OBS scene'));
    }
  }

  onProgramScene(name: string): void {
    this.programScene = name;
  }

  /**
   * Queues a celebration. Returns what happened to it; throws for bad input.
   * `requireConnected` (the RPC test-fire) turns "OBS is down" into an error for the caller.
   */
  celebrate(input: { id?: unknown; name?: unknown; message?: unknown }, requireConnected = false): { queued: boolean; reason?: string; position?: number } {
    if (typeof input !== 'object' || input === null) throw new Error('celebrate: expected an object {name, message?}');
    const name = typeof input.name === 'string' ? input.name.trim() : '';
    if (name.length === 0) {
      this.o.metrics.celebrations.inc({ outcome: 'invalid' });
      throw new Error('celebrate: "name" must be a non-empty string');
    }
    if (input.message !== undefined && input.message !== null && typeof input.message !== 'string') {
      this.o.metrics.celebrations.inc({ outcome: 'invalid' });
      throw new Error('celebrate: "message" must be a string');
    }
    const message = (typeof input.message === 'string' && input.message.trim() !== '' ? input.message : name).slice(0, MAX_TEXT);
    const id = typeof input.id === 'string' && input.id !== '' ? input.id : `rpc:${++this.rpcCount}:${Date.now()}`;
    if (this.seen.has(id)) {
      this.o.metrics.celebrations.inc({ outcome: 'duplicate' });
      return { queued: false, reason: 'duplicate' };
    }
    this.remember(id);
    if (!this.o.obs.connected) {
      this.o.metrics.celebrations.inc({ outcome: 'skipped' });
      if (requireConnected) throw new Error('OBS not connected');
      return { queued: false, reason: 'OBS not connected' };
    }
    if (this.pending.length >= MAX_PENDING_CELEBRATIONS) {
      // The oldest waiting one goes: the newest milestone is the one viewers care about.
      this.pending.shift();
      this.dropped++;
      this.o.metrics.celebrations.inc({ outcome: 'dropped' });
    }
    this.pending.push({ id, name: name.slice(0, 200), message });
    const position = this.pending.length + (this.active ? 1 : 0);
    void this.run();
    return { queued: true, position };
  }

  status(): CelebrationStatus {
    return { active: this.active, pending: this.pending.length, shown: this.shown, dropped: this.dropped };
  }

  stop(): void {
    this.stopped = true;
    this.pending.length = 0;
    this.wake?.();
  }

  private remember(id: string): void {
    this.seen.add(id);
    if (this.seen.size > REMEMBERED_IDS) this.seen.delete(this.seen.values().next().value!);
  }

  private async switchTo(scene: string): Promise<void> {
    await this.o.obs.request('SetCurrentProgramScene', { sceneName: scene });
    this.programScene = scene;
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (!this.stopped && this.pending.length > 0) {
        const next = this.pending.shift()!;
        this.active = next;
        try {
          await this.show(next);
        } catch (error) {
          this.o.metrics.celebrations.inc({ outcome: 'failed' });
          this.o.log.warn({ err: error, milestone: next.name }, 'milestone celebration failed');
        } finally {
          this.active = null;
        }
      }
    } finally {
      this.running = false;
    }
  }

  private async show(c: Celebration): Promise<void> {
    const milestoneScene = this.o.scenes.milestone;
    if (!this.o.obs.connected) {
      this.o.metrics.celebrations.inc({ outcome: 'skipped' });
      return;
    }
    // Where to come back to: what OBS is showing now (the streamer may have switched by hand
    // since ringcast last asked for a scene), else what ringcast asked for, else the overview.
    const showing = this.programScene !== milestoneScene ? this.programScene : null;
    const before = showing ?? this.requestedScene ?? this.o.scenes.overview;
    this.requestedScene = before;
    await this.o.obs.request('SetInputSettings', { inputName: this.o.milestoneTextInput, inputSettings: { text: c.message }, overlay: true });
    await this.switchTo(milestoneScene);
    this.shown++;
    this.o.metrics.celebrations.inc({ outcome: 'shown' });
    await this.sleep(this.o.celebrationSeconds * 1000);
    if (this.stopped) return;
    // Someone switched away meanwhile (control page, OBS itself): leave their choice alone.
    if (this.programScene !== milestoneScene) return;
    const back = this.requestedScene ?? before;
    if (!this.o.obs.connected) return; // restore() puts requestedScene back on reconnect
    await this.switchTo(back);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.wake = undefined; resolve(); }, ms);
      this.wake = () => { clearTimeout(timer); this.wake = undefined; resolve(); };
    });
  }
}
