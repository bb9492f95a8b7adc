/**
 * Declarative supervisor and actor specs, validated up front (piscina style): a bad
 * spec fails at construction with a message naming the field, never later at a restart.
 */
import { z } from 'zod';

export const restartStrategies = ['one_for_one', 'rest_for_one', 'one_for_all'] as const;
export type RestartStrategy = (typeof restartStrategies)[number];

const overflowPolicy = z.enum(['block', 'drop-newest', 'overwrite-oldest']);

export const recordRingSpecSchema = z.object({
  kind: z.literal('record'),
  capacityBytes: z.number().int().min(1024).max(2 ** 30),
  policy: overflowPolicy.default('drop-newest'),
  blockTimeoutMs: z.number().int().min(0).max(60_000).optional(),
}).strict();

export const slotRingSpecSchema = z.object({
  kind: z.literal('slot'),
  slots: z.number().int().min(2).max(4096),
  slotBytes: z.number().int().min(1).max(2 ** 30),
  mode: z.enum(['queue', 'latest']).default('queue'),
  policy: overflowPolicy.default('drop-newest'),
}).strict();

export const ringSpecSchema = z.discriminatedUnion('kind', [recordRingSpecSchema, slotRingSpecSchema]);
export type RingSpec = z.input<typeof ringSpecSchema>;

const name = z.string().regex(/^[a-z][a-z0-9_.-]{0,62}$/, 'lowercase letters, digits, "_", "." or "-", starting with a letter');

export const actorSpecSchema = z.object({
  name,
  /** Path or file: URL of the actor module (a `.ts` source path is mapped to its compiled twin). */
  module: z.union([z.string().min(1), z.instanceof(URL)]),
  in: z.array(name).default([]),
  out: z.array(name).default([]),
  options: z.unknown().optional(),
  /**
   * Keep a pre-spawned, module-loaded worker waiting so a restart only has to hand it
   * the rings (worker start-up and module loading dominate restart time otherwise).
   */
  standby: z.boolean().default(false),
  /**
   * The thread holds native handles only its own JavaScript can close (uWS sockets): it is
   * never terminated from outside, since that aborts the whole process. Its hang policy
   * differs (OTP-style, as data): a heartbeat silent for hangTimeoutMs is a stall, logged
   * and counted but left alone (a busy thread that catches up keeps its clients); silent
   * for hangTimeoutMs + nativeHangGraceMs it is hung, and since it cannot be restarted
   * alone the supervisor escalates (the process exits and systemd restarts it).
   */
  nativeHandles: z.boolean().default(false),
}).strict();
export type ActorSpec = z.input<typeof actorSpecSchema>;
export type ResolvedActorSpec = z.output<typeof actorSpecSchema>;

export const supervisorSpecSchema = z.object({
  strategy: z.enum(restartStrategies).default('one_for_one'),
  /** At most `intensity` restarts within `periodMs`; one more escalates (OTP semantics). */
  intensity: z.number().int().min(0).max(10_000).default(5),
  periodMs: z.number().int().min(1).max(3_600_000).default(10_000),
  backoff: z.object({
    initialMs: z.number().int().min(0).max(60_000).default(10),
    maxMs: z.number().int().min(0).max(600_000).default(2_000),
  }).strict().default({}),
  heartbeatIntervalMs: z.number().int().min(10).max(60_000).default(250),
  hangTimeoutMs: z.number().int().min(50).max(600_000).default(3_000),
  /** How much longer than hangTimeoutMs an actor with `nativeHandles` may stall before it counts as hung. */
  nativeHangGraceMs: z.number().int().min(0).max(600_000).default(10_000),
  startTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
  /** Longest an actor's `ctx.callMain` waits for the main thread before it rejects. */
  upcallTimeoutMs: z.number().int().min(10).max(600_000).default(30_000),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  rings: z.record(name, ringSpecSchema).default({}),
  actors: z.array(actorSpecSchema),
}).strict().superRefine((spec, ctx) => {
  const seen = new Set<string>();
  const producers = new Map<string, string>();
  const consumers = new Map<string, string>();
  spec.actors.forEach((actor, i) => {
    if (seen.has(actor.name)) ctx.addIssue({ code: 'custom', path: ['actors', i, 'name'], message: `duplicate actor name "${actor.name}"` });
    seen.add(actor.name);
    for (const [dir, list] of [['in', actor.in], ['out', actor.out]] as const) {
      list.forEach((ringName, j) => {
        const ring = spec.rings[ringName];
        if (!ring) {
          ctx.addIssue({ code: 'custom', path: ['actors', i, dir, j], message: `actor "${actor.name}" names ring "${ringName}", which is not declared in rings` });
          return;
        }
        // Rings are single-producer; record and queue-slot rings are also single-consumer.
        // Several producers feeding one consumer use one ring each (see merged-reader).
        const owners = dir === 'out' ? producers : consumers;
        const singleOwner = dir === 'out' || ring.kind === 'record' || ring.mode === 'queue';
        const prior = owners.get(ringName);
        if (singleOwner && prior !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['actors', i, dir, j], message: `ring "${ringName}" already has ${dir === 'out' ? 'producer' : 'consumer'} "${prior}"; rings are single-producer/single-consumer` });
        }
        owners.set(ringName, actor.name);
      });
    }
  });
});
export type SupervisorSpec = z.input<typeof supervisorSpecSchema>;
export type ResolvedSupervisorSpec = z.output<typeof supervisorSpecSchema>;

export class SpecError extends Error {
  override readonly name = 'SpecError';
}

export function resolveSupervisorSpec(spec: SupervisorSpec): ResolvedSupervisorSpec {
  const parsed = supervisorSpecSchema.safeParse(spec);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(spec)'}: ${issue.message}`);
    throw new SpecError(`invalid supervisor spec: ${lines.join('; ')}`);
  }
  return parsed.data;
}
