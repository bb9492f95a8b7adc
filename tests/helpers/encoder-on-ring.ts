/**
 * An encoder actor alone under a supervisor, reading raw RGBA frames from a slot ring the test
 * publishes into (the compositor's side of the product's frame ring, played by the test).
 * Needs the compiled actor: run `npx tsc -p .` first.
 */
import pino from 'pino';
import type { EncoderStats } from '../../src/actors/encoder/index.js';
import type { EncoderOptions } from '../../src/actors/encoder/options.js';
import type { SlotRing } from '../../src/shared/slot-ring.js';
import { Supervisor } from '../../src/supervisor/supervisor.js';

export interface SlotRingSpec { kind: 'slot'; slots: number; slotBytes: number; mode: 'queue'; policy: 'drop-newest' }

export interface EncoderOnRing {
  supervisor: Supervisor;
  ring: SlotRing;
  stats(): Promise<EncoderStats>;
  /** Publishes frame k (a flat colour that changes with k); false when every slot is busy. */
  publish(k: number): boolean;
}

/**
 * Starts the encoder (libx264 ultrafast, no audio, writing `output`) on `ring`, by default the
 * product's frame ring shape: 5 slots, queue mode, drop-newest. Resolves once ffmpeg runs;
 * `started` receives the supervisor first, so the test can stop it even if start-up fails.
 */
export async function startEncoderOnRing(o: {
  output: string; width: number; height: number; ring?: SlotRingSpec; started: (s: Supervisor) => void;
}): Promise<EncoderOnRing> {
  const { width, height } = o;
  const frameBytes = width * height * 4;
  const options: EncoderOptions = {
    inRing: 'frames', width, height, fps: 30, bitrateKbps: 400, preset: 'ultrafast', keyframeSeconds: 1, encoder: 'libx264', audio: 'none',
    outputs: [o.output],
  };
  const supervisor = new Supervisor({
    heartbeatIntervalMs: 100, hangTimeoutMs: 5_000, startTimeoutMs: 20_000, logLevel: 'error',
    rings: { frames: o.ring ?? { kind: 'slot', slots: 5, slotBytes: frameBytes, mode: 'queue', policy: 'drop-newest' } },
    actors: [{ name: 'encoder', module: new URL('../../src/actors/encoder/index.ts', import.meta.url), in: ['frames'], options }],
  }, pino({ level: 'warn' }));
  o.started(supervisor);
  await supervisor.start();
  const ring = supervisor.ring<SlotRing>('frames');
  const stats = async () => (await supervisor.call('encoder', 'stats')) as EncoderStats;
  for (let i = 0; i < 100 && !(await stats()).running; i++) await new Promise((r) => setTimeout(r, 100));
  const publish = (k: number): boolean => {
    const slot = ring.acquire();
    if (slot < 0) return false;
    ring.slotI32(slot).fill((255 << 24) | ((k * 5) & 255), 0, width * height);
    ring.publish(slot, frameBytes, width, Date.now());
    return true;
  };
  return { supervisor, ring, stats, publish };
}
