/**
 * The encoder actor alone under a real Supervisor, fed frames at ~30 fps from this thread.
 */
import pino from 'pino';
import type { EncoderStats } from '../../src/actors/encoder/index.js';
import type { EncoderOptions } from '../../src/actors/encoder/options.js';
import type { SlotRing } from '../../src/shared/slot-ring.js';
import { Supervisor } from '../../src/supervisor/supervisor.js';
import { exec } from './rtmp-server.js';
import { resolveFfmpeg } from '../../src/shared/ffmpeg.js';

export interface EncoderUnderTest {
  supervisor: Supervisor;
  stats(): Promise<EncoderStats>;
  /** Stops feeding and the supervisor (ffmpeg finishes its files). */
  stop(): Promise<void>;
}

export async function startFedEncoder(o: Partial<EncoderOptions> & Pick<EncoderOptions, 'outputs'>): Promise<EncoderUnderTest> {
  const options: EncoderOptions = {
    inRing: 'frames', width: 320, height: 180, fps: 30, bitrateKbps: 600, preset: 'ultrafast', keyframeSeconds: 1, encoder: 'libx264', audio: 'silence',
    restartInitialMs: 200, restartMaxMs: 1_000, ...o,
  };
  const supervisor = new Supervisor({
    heartbeatIntervalMs: 100, hangTimeoutMs: 5_000, startTimeoutMs: 20_000, logLevel: 'error',
    rings: { frames: { kind: 'slot', slots: 4, slotBytes: options.width * options.height * 4, mode: 'latest' } },
    actors: [{ name: 'encoder', module: new URL('../../src/actors/encoder/index.ts', import.meta.url), in: ['frames'], options }],
  }, pino({ level: 'warn' }));
  await supervisor.start();
  const ring = supervisor.ring<SlotRing>('frames');
  let feeding = true;
  const feeder = (async () => {
    let i = 0;
    while (feeding) {
      const slot = ring.acquire();
      if (slot >= 0) {
        ring.slotI32(slot).fill((255 << 24) | ((i++ * 3) & 255), 0, options.width * options.height);
        ring.publish(slot, options.width * options.height * 4, options.width);
      }
      await new Promise((r) => setTimeout(r, 33));
    }
  })();
  return {
    supervisor,
    stats: async () => (await supervisor.call('encoder', 'stats')) as EncoderStats,
    async stop() {
      feeding = false;
      await feeder;
      await supervisor.stop(10_000);
    },
  };
}

/** Mean and max volume (dB) of a media file's audio, from ffmpeg's volumedetect. */
export async function volumeOf(file: string, fromS = 0): Promise<{ mean: number; max: number }> {
  const r = await exec(resolveFfmpeg().path, ['-hide_banner', '-nostats', '-ss', String(fromS), '-i', file, '-map', '0:a', '-af', 'volumedetect', '-f', 'null', '-'], 30_000);
  const mean = /mean_volume:\s*(-?[\d.]+|-inf) dB/.exec(r.stderr);
  const max = /max_volume:\s*(-?[\d.]+|-inf) dB/.exec(r.stderr);
  if (!mean || !max) throw new Error(`no volumedetect result for ${file}: ${r.stderr.slice(-400)}`);
  const n = (s: string) => (s === '-inf' ? -Infinity : Number(s));
  return { mean: n(mean[1]), max: n(max[1]) };
}

/** A sine tone file made with ffmpeg's lavfi (no fixture to keep in the repo). */
export async function makeTone(file: string, seconds = 2, hz = 440): Promise<void> {
  const r = await exec(resolveFfmpeg().path, ['-hide_banner', '-y', '-f', 'lavfi', '-i', `sine=frequency=${hz}:sample_rate=48000:duration=${seconds}`, '-c:a', 'aac', '-b:a', '96k', file], 30_000);
  if (r.code !== 0) throw new Error(`could not make a tone: ${r.stderr.slice(-300)}`);
}
