/**
 * The supervisor: owns every SharedArrayBuffer, runs each actor on its own worker thread,
 * watches for crashes (exit/error) and hangs (a heartbeat in shared memory that stops
 * moving), restarts with OTP strategies under a restart-intensity limit, and escalates
 * when that limit is hit.
 *
 * Why the supervisor owns the rings: a ring's positions live inside its buffer, so an
 * actor restarted onto the same buffer resumes exactly at the last committed read
 * position (consumer) or the last published record (producer). The only records a crash
 * can repeat are the consumer's uncommitted batch (see record-ring.ts); none are lost.
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { AnyRing } from '../shared/actor.js';
import { RecordRing } from '../shared/record-ring.js';
import { SlotRing } from '../shared/slot-ring.js';
import { createActorRegistry, mergeActorMetrics, registerRingMetrics } from '../shared/metrics.js';
import { runtimeModuleUrl } from '../shared/runtime-path.js';
import { ActorHandle, describeExit, type ExitInfo } from './actor-handle.js';
import { ActorState, ControlBlock } from './control-block.js';
import { DURABLE_BYTES, type HostWorkerData } from './host-protocol.js';
import { Backoff, RestartIntensity } from './restart-intensity.js';
import { resolveSupervisorSpec, type ResolvedActorSpec, type ResolvedSupervisorSpec, type SupervisorSpec } from './spec.js';

/** Replacing a standby that died unused: at once, then after 1 s, doubling up to a minute. */
const STANDBY_RESPAWN_INITIAL_MS = 1_000;
const STANDBY_RESPAWN_MAX_MS = 60_000;

/** Shortest run after which a failure restarts without backoff (see onFailure). */
const STABLE_AFTER_MIN_MS = 1_000;

export type ActorStatus = 'idle' | 'starting' | 'running' | 'restarting' | 'stopping' | 'stopped';

interface ActorSlot {
  readonly spec: ResolvedActorSpec;
  readonly index: number;
  readonly control: ControlBlock;
  /** The actor's durable words (ActorContext.durable): outlive every incarnation, like its rings. */
  readonly durable: SharedArrayBuffer;
  readonly backoff: Backoff;
  /** Delay before replacing a standby that died unused; grows while standbys keep dying. */
  readonly standbyBackoff: Backoff;
  standbyTimer?: NodeJS.Timeout;
  readonly moduleUrl: string;
  handle?: ActorHandle;
  standby?: ActorHandle;
  status: ActorStatus;
  incarnation: number;
  startedAt: number;
  lastBeat: number;
  lastBeatAt: number;
  /** Heartbeat silent past hangTimeoutMs, for an actor with nativeHandles (see spec.ts). */
  stalled: boolean;
  /** Stalled past its grace too: hung for good, and not to be waited on again. */
  hung: boolean;
}

interface RingEntry {
  ring: AnyRing;
  producer: string;
  consumer: string;
}

export interface StopResult {
  /** True when every actor finished its own stop() (drained and flushed) before the deadline. */
  clean: boolean;
  forced: string[];
  /**
   * Threads still running after the stop: they hold native handles and their event loop is
   * blocked, so nothing can end them without aborting the process (exitProcess knows).
   */
  stuck: string[];
  /** What each actor's stop() returned: its final state, for the caller to persist. */
  finals: Record<string, unknown>;
}

export interface SupervisorEvents {
  'actor-started': [actor: string, incarnation: number];
  'actor-failed': [actor: string, reason: string];
  'actor-restarted': [actor: string, incarnation: number, ms: number];
  escalate: [reason: string];
}

export class Supervisor extends EventEmitter<SupervisorEvents> {
  readonly spec: ResolvedSupervisorSpec;
  readonly registry: Registry;
  private readonly log: Logger;
  private readonly slots: ActorSlot[];
  private readonly rings = new Map<string, RingEntry>();
  private readonly intensity: RestartIntensity;
  /** Threads the supervisor killed on purpose; their exit is not a failure. */
  private readonly intentional = new WeakSet<ActorHandle>();
  /** Restarts run one at a time so strategies never interleave. */
  private restartChain: Promise<void> = Promise.resolve();
  private hangTimer?: NodeJS.Timeout;
  private stopping = false;
  private escalatedReason?: string;
  private readonly restartsTotal: Counter<'actor' | 'reason'>;
  private readonly restartSeconds: Histogram<'actor'>;
  private readonly escalations: Counter;
  private readonly standbyFailures: Counter<'actor'>;
  private readonly stalls: Counter<'actor'>;
  /** Threads kill() could not end (native handles, loop blocked), until they exit by themselves. */
  private readonly stuck = new Map<string, ActorHandle>();

  constructor(spec: SupervisorSpec, log: Logger) {
    super();
    this.spec = resolveSupervisorSpec(spec);
    this.log = log.child({ actor: 'supervisor' });
    this.intensity = new RestartIntensity(this.spec.intensity, this.spec.periodMs);
    for (const [name, ringSpec] of Object.entries(this.spec.rings)) {
      const ring = ringSpec.kind === 'record'
        ? RecordRing.create({ capacityBytes: ringSpec.capacityBytes, policy: ringSpec.policy, blockTimeoutMs: ringSpec.blockTimeoutMs, name })
        : SlotRing.create({ slots: ringSpec.slots, slotBytes: ringSpec.slotBytes, mode: ringSpec.mode, policy: ringSpec.policy, name });
      this.rings.set(name, { ring, producer: '', consumer: '' });
    }
    this.slots = this.spec.actors.map((actorSpec, index) => {
      for (const r of actorSpec.out) this.rings.get(r)!.producer = actorSpec.name;
      for (const r of actorSpec.in) {
        const entry = this.rings.get(r)!;
        entry.consumer = entry.consumer ? `${entry.consumer},${actorSpec.name}` : actorSpec.name;
      }
      return {
        spec: actorSpec,
        index,
        control: new ControlBlock(),
        durable: new SharedArrayBuffer(DURABLE_BYTES),
        backoff: new Backoff(this.spec.backoff.initialMs, this.spec.backoff.maxMs),
        standbyBackoff: new Backoff(STANDBY_RESPAWN_INITIAL_MS, STANDBY_RESPAWN_MAX_MS),
        moduleUrl: runtimeModuleUrl(actorSpec.module).href,
        status: 'idle' as ActorStatus,
        incarnation: -1,
        startedAt: 0,
        lastBeat: 0,
        lastBeatAt: 0,
        stalled: false,
        hung: false,
      };
    });

    this.registry = createActorRegistry('supervisor');
    this.restartsTotal = new Counter({
      name: 'ringcast_actor_restarts_total', help: 'Actor restarts by actor and failure reason',
      labelNames: ['actor', 'reason'], registers: [this.registry],
    });
    this.restartSeconds = new Histogram({
      name: 'ringcast_actor_restart_seconds', help: 'Time from detecting a failure until the actor runs again',
      labelNames: ['actor'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [this.registry],
    });
    this.escalations = new Counter({ name: 'ringcast_supervisor_escalations_total', help: 'Restart-intensity escalations', registers: [this.registry] });
    this.standbyFailures = new Counter({
      name: 'ringcast_standby_failures_total', help: 'Standby threads that died before they were used (each is replaced)',
      labelNames: ['actor'], registers: [this.registry],
    });
    this.stalls = new Counter({
      name: 'ringcast_actor_stalls_total', help: 'Heartbeat silences past hangTimeoutMs of actors holding native handles (left to catch up, not killed)',
      labelNames: ['actor'], registers: [this.registry],
    });
    const slots = this.slots;
    new Gauge({
      name: 'ringcast_actor_up', help: '1 when the actor is running', labelNames: ['actor'], registers: [this.registry],
      collect() { for (const s of slots) this.set({ actor: s.spec.name }, s.status === 'running' ? 1 : 0); },
    });
    new Gauge({
      name: 'ringcast_actor_heartbeat_age_seconds', help: 'Seconds since the actor last moved its heartbeat',
      labelNames: ['actor'], registers: [this.registry],
      collect() { const now = Date.now(); for (const s of slots) if (s.status === 'running') this.set({ actor: s.spec.name }, (now - s.lastBeatAt) / 1000); },
    });
    new Gauge({
      name: 'ringcast_actor_calls_pending', help: 'Calls from the main thread to the actor still waiting for its answer',
      labelNames: ['target'], registers: [this.registry],
      collect() { for (const s of slots) this.set({ target: s.spec.name }, s.handle?.pendingCalls ?? 0); },
    });
    registerRingMetrics(this.registry, () => [...this.rings].map(([ring, e]) => ({ ring, producer: e.producer, consumer: e.consumer, stats: e.ring.stats() })));
  }

  /** Starts every actor in spec order. A failure here is fatal: nothing half-started is left running. */
  async start(): Promise<void> {
    try {
      for (const slot of this.slots) await this.startActor(slot);
    } catch (error) {
      await this.stop(2_000);
      throw error;
    }
    this.hangTimer = setInterval(() => this.checkHeartbeats(), this.spec.heartbeatIntervalMs);
    this.hangTimer.unref();
  }

  ring<T extends AnyRing = AnyRing>(name: string): T {
    const entry = this.rings.get(name);
    if (!entry) throw new Error(`no ring named "${name}"`);
    return entry.ring as T;
  }

  actorNames(): string[] {
    return this.slots.map((s) => s.spec.name);
  }

  health(): { ok: boolean; actors: Record<string, ActorStatus> } {
    const actors: Record<string, ActorStatus> = {};
    for (const s of this.slots) actors[s.spec.name] = s.status;
    const ok = !this.stopping && this.slots.every((s) => s.status === 'running');
    return { ok, actors };
  }

  /** Calls a method of an actor's `api`; rejects (never hangs) if the actor dies meanwhile. */
  call(actor: string, method: string, args: unknown[] = [], timeoutMs = 5_000): Promise<unknown> {
    const slot = this.slotFor(actor);
    if (!slot.handle || slot.status !== 'running') return Promise.reject(new Error(`actor "${actor}" is ${slot.status}`));
    return slot.handle.call(method, args, timeoutMs);
  }

  /** Kills an actor's thread as if it had crashed (for tests and operators). */
  async crash(actor: string, reason = 'killed by operator'): Promise<void> {
    const slot = this.slotFor(actor);
    await slot.handle?.kill(reason);
  }

  /** Kills an actor's standby thread as if it had died by itself (for tests and operators). */
  async crashStandby(actor: string, reason = 'killed by operator'): Promise<void> {
    await this.slotFor(actor).standby?.kill(reason);
  }

  /** True while a pre-spawned standby thread exists (loading or loaded) to take over. */
  hasStandby(actor: string): boolean {
    return this.slotFor(actor).standby?.alive === true;
  }

  /** True while the actor's standby has finished everything it can do before activation. */
  standbyReady(actor: string): boolean {
    return this.slotFor(actor).standby?.ready === true;
  }

  /** Calls in flight from the main thread to the actor's current thread. */
  pendingCalls(actor: string): number {
    return this.slotFor(actor).handle?.pendingCalls ?? 0;
  }

  incarnation(actor: string): number {
    return this.slotFor(actor).incarnation;
  }

  /** One Prometheus exposition of every thread: each series labelled by `actor`. */
  async metrics(timeoutMs = 1_000): Promise<string> {
    const perThread = await Promise.all(this.slots.map(async (slot) => {
      if (!slot.handle || slot.status !== 'running') return [];
      try {
        return await slot.handle.metricsJson(timeoutMs);
      } catch {
        return []; // a dying actor must not break the scrape; its restart shows in the counters
      }
    }));
    return mergeActorMetrics([await this.registry.getMetricsAsJSON(), ...perThread]);
  }

  /**
   * Graceful stop in spec order (sources first), so that every consumer finds its
   * upstream stopped and can drain its input rings completely before flushing.
   */
  async stop(deadlineMs: number): Promise<StopResult> {
    this.stopping = true;
    if (this.hangTimer) clearInterval(this.hangTimer);
    const deadline = Date.now() + deadlineMs;
    const forced: string[] = [];
    const finals: Record<string, unknown> = {};
    for (const slot of this.slots) {
      const handle = slot.handle;
      clearTimeout(slot.standbyTimer);
      if (slot.standby) { this.intentional.add(slot.standby); void slot.standby.kill('stop'); slot.standby = undefined; }
      if (slot.hung && handle?.alive) {
        // Its loop is blocked: a stop call would only eat the others' share of the deadline.
        forced.push(slot.spec.name);
        slot.status = 'stopping';
        this.intentional.add(handle);
        if (await handle.kill('stop', 0) === undefined) this.markStuck(slot.spec.name, handle);
        slot.status = 'stopped';
        continue;
      }
      if (!handle || !handle.alive) { slot.status = 'stopped'; continue; }
      slot.status = 'stopping';
      this.intentional.add(handle);
      const remaining = Math.max(1, deadline - Date.now());
      try {
        finals[slot.spec.name] = await handle.rpc('stop', [], remaining);
      } catch (error) {
        forced.push(slot.spec.name);
        this.log.warn({ target: slot.spec.name, err: (error as Error).message }, 'actor did not stop in time; terminating its thread');
      }
      if (await handle.kill('stop') === undefined) this.markStuck(slot.spec.name, handle);
      slot.status = 'stopped';
    }
    return { clean: forced.length === 0, forced, stuck: this.stuckThreads, finals };
  }

  /** Actor threads that could not be ended and are still running (native handles, blocked loop); see exitProcess. */
  get stuckThreads(): string[] {
    return [...this.stuck.keys()];
  }

  /**
   * Waits up to `timeoutMs` for the stuck threads to exit by themselves (each has its exit
   * request queued and leaves, sockets closed, as soon as its loop runs); the ones left.
   */
  async stuckExited(timeoutMs: number): Promise<string[]> {
    if (this.stuck.size === 0) return [];
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs); });
    await Promise.race([Promise.all([...this.stuck.values()].map((h) => h.exited)), timeout]);
    clearTimeout(timer);
    return this.stuckThreads;
  }

  /** Threads of actors with nativeHandles still alive: any exit but SIGKILL would abort while they run. */
  get liveNativeThreads(): string[] {
    const names = new Set(this.stuck.keys());
    for (const s of this.slots) if (s.spec.nativeHandles && s.handle?.alive) names.add(s.spec.name);
    return [...names];
  }

  private markStuck(name: string, handle: ActorHandle): void {
    this.stuck.set(name, handle);
    void handle.exited.then(() => { if (this.stuck.get(name) === handle) this.stuck.delete(name); });
  }

  get escalated(): string | undefined {
    return this.escalatedReason;
  }

  private slotFor(actor: string): ActorSlot {
    const slot = this.slots.find((s) => s.spec.name === actor);
    if (!slot) throw new Error(`no actor named "${actor}"`);
    return slot;
  }

  /**
   * Offer a main-thread service to actors (`ctx.callMain(method, ...args)`), e.g. the
   * HTTP routes only the main thread can answer. Registering again replaces the handler.
   */
  provide(method: string, handler: (...args: never[]) => unknown): this {
    this.services.set(method, handler as (...args: unknown[]) => unknown);
    return this;
  }

  private readonly services = new Map<string, (...args: unknown[]) => unknown>();
  /** Answers every actor's `ctx.callMain(method, ...args)`. */
  private readonly upcalls = (method: string, args: unknown[]): unknown => {
    const handler = this.services.get(method);
    if (!handler) throw new Error(`no main-thread service "${method}" (provided: ${[...this.services.keys()].join(', ') || 'none'})`);
    return handler(...args);
  };

  private spawn(slot: ActorSlot): ActorHandle {
    const workerData: HostWorkerData = {
      name: slot.spec.name,
      moduleUrl: slot.moduleUrl,
      options: slot.spec.options,
      logLevel: this.spec.logLevel,
      heartbeatIntervalMs: Math.max(5, Math.floor(this.spec.heartbeatIntervalMs / 2)),
      upcallTimeoutMs: this.spec.upcallTimeoutMs,
    };
    return new ActorHandle(slot.spec.name, workerData, this.upcalls, slot.spec.nativeHandles);
  }

  private ringSabs(names: string[]): Record<string, SharedArrayBuffer> {
    const out: Record<string, SharedArrayBuffer> = {};
    for (const n of names) out[n] = this.rings.get(n)!.ring.sab;
    return out;
  }

  private async startActor(slot: ActorSlot): Promise<void> {
    const usedStandby = slot.standby;
    const handle = usedStandby ?? this.spawn(slot);
    slot.standby = undefined;
    slot.handle = handle;
    slot.status = 'starting';
    slot.startedAt = 0; // not up until activation succeeds: a failed start is no proof of stability
    slot.incarnation += 1;
    slot.control.setState(ActorState.Loading);
    this.watchExit(slot, handle);
    await handle.activate(slot.control, slot.incarnation, slot.durable, { in: this.ringSabs(slot.spec.in), out: this.ringSabs(slot.spec.out) }, this.spec.startTimeoutMs);
    const now = Date.now();
    slot.status = 'running';
    slot.startedAt = now;
    slot.lastBeat = slot.control.heartbeat();
    slot.lastBeatAt = now;
    slot.stalled = false;
    slot.hung = false;
    this.emit('actor-started', slot.spec.name, slot.incarnation);
    if (handle === usedStandby) slot.standbyBackoff.reset(); // a standby lived to be used
    if (slot.spec.standby && !this.stopping) {
      clearTimeout(slot.standbyTimer);
      slot.standbyTimer = undefined;
      this.prepareStandby(slot);
    }
  }

  private prepareStandby(slot: ActorSlot): void {
    const standby = this.spawn(slot);
    slot.standby = standby;
    void standby.exited.then((info) => {
      if (slot.standby !== standby) return; // it was activated, or replaced
      slot.standby = undefined;
      if (this.intentional.has(standby)) return;
      // A restart without a standby pays for a cold spawn, so a dead one is replaced; a
      // growing delay keeps a standby that cannot stay up from respawning in a loop.
      const delay = slot.standbyBackoff.next();
      this.standbyFailures.inc({ actor: slot.spec.name });
      this.log.warn({ target: slot.spec.name, reason: describeExit(info), respawnInMs: delay }, 'standby thread died before use; replacing it');
      clearTimeout(slot.standbyTimer);
      slot.standbyTimer = setTimeout(() => {
        slot.standbyTimer = undefined;
        if (!slot.standby && slot.status === 'running' && !this.stopping && !this.escalatedReason) this.prepareStandby(slot);
      }, delay);
      slot.standbyTimer.unref();
    });
  }

  private watchExit(slot: ActorSlot, handle: ActorHandle): void {
    void handle.exited.then((info) => {
      if (slot.handle !== handle || this.stopping || this.intentional.has(handle) || this.escalatedReason) return;
      this.onFailure(slot, info);
    });
  }

  private checkHeartbeats(): void {
    const now = Date.now();
    for (const slot of this.slots) {
      if (slot.status !== 'running' || !slot.handle) continue;
      const beat = slot.control.heartbeat();
      if (beat !== slot.lastBeat) {
        if (slot.stalled) {
          slot.stalled = false;
          this.log.warn({ target: slot.spec.name, silentMs: now - slot.lastBeatAt }, 'actor caught up: heartbeat moving again after a stall');
        }
        slot.lastBeat = beat;
        slot.lastBeatAt = now;
      } else if (slot.spec.nativeHandles) {
        this.checkNativeStall(slot, now - slot.lastBeatAt);
      } else if (now - slot.lastBeatAt > this.spec.hangTimeoutMs) {
        this.log.warn({ target: slot.spec.name, silentMs: now - slot.lastBeatAt }, 'actor hung: heartbeat stopped; terminating its thread');
        slot.status = 'restarting';
        void slot.handle.kill(`hang: no heartbeat for ${now - slot.lastBeatAt} ms`);
      }
    }
  }

  /**
   * The hang policy of an actor holding native handles: it cannot be terminated (that
   * aborts the process), and a busy thread that catches up keeps serving its clients, so a
   * silence past hangTimeoutMs is only a stall. Past nativeHangGraceMs more it is hung:
   * it is asked to exit (it does, with its sockets closed, if its loop ever runs again) and
   * the supervisor escalates, because the actor cannot be restarted while it holds its rings.
   */
  private checkNativeStall(slot: ActorSlot, silentMs: number): void {
    if (silentMs <= this.spec.hangTimeoutMs || slot.hung) return;
    if (!slot.stalled) {
      slot.stalled = true;
      this.stalls.inc({ actor: slot.spec.name });
      this.log.warn({ target: slot.spec.name, silentMs, graceMs: this.spec.nativeHangGraceMs }, 'actor stalled: heartbeat silent; it holds native handles, so it is left to catch up');
      return;
    }
    if (silentMs <= this.spec.hangTimeoutMs + this.spec.nativeHangGraceMs) return;
    slot.hung = true;
    slot.status = 'restarting';
    void this.escalate(`actor "${slot.spec.name}" hung: no heartbeat for ${silentMs} ms, and it holds native handles, so only a restart of the process can replace it`);
  }

  private onFailure(slot: ActorSlot, info: ExitInfo): void {
    const reason = describeExit(info);
    const detectedAt = performance.now();
    slot.status = 'restarting';
    const reasonLabel = info.killedFor?.startsWith('hang') ? 'hang' : info.error ? 'error' : 'exit';
    this.restartsTotal.inc({ actor: slot.spec.name, reason: reasonLabel });
    // Backoff is for crash loops. An actor that ran longer than the longest backoff delay
    // (at least STABLE_AFTER_MIN_MS, at most a whole intensity period) proved it can start:
    // delaying its restart would only lengthen the gap its consumers see, and restart
    // intensity still catches a real loop.
    const upMs = slot.startedAt > 0 ? Date.now() - slot.startedAt : 0;
    if (upMs >= Math.min(this.spec.periodMs, Math.max(STABLE_AFTER_MIN_MS, this.spec.backoff.maxMs))) slot.backoff.reset();
    const delay = slot.backoff.next();
    this.log.error({ target: slot.spec.name, incarnation: slot.incarnation, reason, upMs, backoffMs: delay }, 'actor failed');
    this.emit('actor-failed', slot.spec.name, reason);

    if (!this.intensity.allow(Date.now())) {
      void this.escalate(`restart intensity exceeded: more than ${this.spec.intensity} restarts within ${this.spec.periodMs} ms (last: actor "${slot.spec.name}" ${reason})`);
      return;
    }
    const affected = this.affectedBy(slot);
    this.restartChain = this.restartChain.then(async () => {
      if (this.stopping || this.escalatedReason) return;
      // Siblings taken down by the strategy are stopped hard: their rings keep every
      // committed position, so they resume where they were when restarted.
      await Promise.all(affected.filter((s) => s !== slot && s.handle?.alive).map(async (s) => {
        s.status = 'restarting';
        this.intentional.add(s.handle!);
        if (await s.handle!.kill(`restarted with "${slot.spec.name}" (${this.spec.strategy})`) === undefined) {
          // It still holds its rings: starting a replacement would give them two readers.
          s.hung = true;
          void this.escalate(`actor "${s.spec.name}" could not be stopped for a restart with "${slot.spec.name}": its loop is blocked and it holds native handles`);
        }
      }));
      if (delay > 0) await sleep(delay);
      for (const s of affected) {
        if (this.stopping || this.escalatedReason) return;
        try {
          await this.startActor(s);
          if (s === slot) {
            const ms = performance.now() - detectedAt;
            this.restartSeconds.observe({ actor: s.spec.name }, ms / 1000);
            this.emit('actor-restarted', s.spec.name, s.incarnation, ms);
            this.log.info({ target: s.spec.name, incarnation: s.incarnation, restartMs: Math.round(ms * 100) / 100 }, 'actor restarted');
          }
        } catch (error) {
          // A failed start is a failure like any other: it counts against intensity.
          const handle = s.handle;
          if (handle) { this.intentional.add(handle); await handle.kill('failed to start'); }
          this.onFailure(s, { code: 1, error: error as Error });
          return;
        }
      }
    });
  }

  private affectedBy(slot: ActorSlot): ActorSlot[] {
    switch (this.spec.strategy) {
      case 'one_for_one': return [slot];
      case 'rest_for_one': return this.slots.slice(slot.index);
      case 'one_for_all': return [...this.slots];
    }
  }

  private async escalate(reason: string): Promise<void> {
    if (this.escalatedReason) return;
    this.escalatedReason = reason;
    this.escalations.inc();
    this.log.fatal({ reason }, `supervisor escalating: ${reason}`);
    await this.stop(2_000);
    this.emit('escalate', reason);
  }
}
