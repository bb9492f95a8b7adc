/** Shared set-up for supervisor tests: a capturing logger and a seq producer → consumer → audit topology. */
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import type { RecordRing } from '../../src/shared/record-ring.js';
import type { SupervisorSpec } from '../../src/supervisor/spec.js';

export const producerModule = new URL('../fixtures/seq-producer.ts', import.meta.url);
export const consumerModule = new URL('../fixtures/seq-consumer.ts', import.meta.url);

export interface CapturedLog { logger: Logger; lines: Array<Record<string, unknown>> }

export function capturingLogger(): CapturedLog {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

export interface SeqTopology { total: number; batch?: number; perTick?: number; tickMs?: number; strategy?: SupervisorSpec['strategy']; intensity?: number; periodMs?: number; hangTimeoutMs?: number; standby?: boolean }

export function seqTopology(t: SeqTopology): SupervisorSpec {
  return {
    strategy: t.strategy ?? 'one_for_one',
    intensity: t.intensity ?? 5,
    periodMs: t.periodMs ?? 10_000,
    backoff: { initialMs: 10, maxMs: 200 },
    heartbeatIntervalMs: 50,
    hangTimeoutMs: t.hangTimeoutMs ?? 400,
    logLevel: 'warn',
    rings: {
      seq: { kind: 'record', capacityBytes: 1 << 16, policy: 'drop-newest' },
      audit: { kind: 'record', capacityBytes: 1 << 22, policy: 'drop-newest' },
    },
    actors: [
      { name: 'producer', module: producerModule, out: ['seq'], standby: t.standby ?? false, options: { ring: 'seq', total: t.total, perTick: t.perTick ?? 200, tickMs: t.tickMs ?? 5, recordBytes: 24 } },
      { name: 'consumer', module: consumerModule, in: ['seq'], out: ['audit'], standby: t.standby ?? false, options: { in: 'seq', audit: 'audit', batch: t.batch ?? 64 } },
    ],
  };
}

/** Reads every seq the consumer has audited so far into `seen` (count per seq). */
export function drainAudit(audit: RecordRing, seen: Map<number, number>): void {
  const view = new DataView(audit.data.buffer, audit.data.byteOffset, audit.data.byteLength);
  while (audit.poll((_d, at) => { const s = view.getUint32(at, true); seen.set(s, (seen.get(s) ?? 0) + 1); }, 4096) > 0) { /* keep draining */ }
}

export async function until(cond: () => boolean, timeoutMs: number, what: string, step?: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    step?.();
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function continuity(seen: Map<number, number>, total: number): { missing: number[]; duplicated: number; maxRepeat: number } {
  const missing: number[] = [];
  let duplicated = 0;
  let maxRepeat = 0;
  for (let s = 0; s < total; s++) {
    const c = seen.get(s) ?? 0;
    if (c === 0) missing.push(s);
    if (c > 1) duplicated += c - 1;
    maxRepeat = Math.max(maxRepeat, c);
  }
  return { missing, duplicated, maxRepeat };
}
