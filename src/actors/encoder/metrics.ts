/**
 * Encoder metrics (`ringcast_encoder_*`). Frame counters are read from the actor's own
 * totals at scrape time, so the hot path only increments plain numbers.
 */
import { Gauge, type Registry } from 'prom-client';
import { registerTotalCounter, registerTotalsCounter } from '../../shared/metrics.js';
import type { StreamHealth } from './progress.js';

export interface EncoderTotals {
  written: number;
  fresh: number;
  duplicated: number;
  droppedBackpressure: number;
  droppedOffline: number;
  skippedLate: number;
  superseded: number;
  tornRisk: number;
  badSize: number;
  restarts: number;
  up: boolean;
  health: StreamHealth | undefined;
}

export function registerEncoderMetrics(registry: Registry, totals: () => EncoderTotals): void {
  const registers = [registry];
  registerTotalsCounter(registry, 'ringcast_encoder_frames_total',
    'Frame-clock ticks by outcome: fresh (new frame sent), duplicate (last frame re-sent), dropped_backpressure (ffmpeg behind), dropped_offline (ffmpeg down), skipped_late (timer late), superseded (ring frames replaced before sending), bad_size',
    'result', () => {
      const t = totals();
      return {
        fresh: t.fresh,
        duplicate: t.duplicated,
        dropped_backpressure: t.droppedBackpressure,
        dropped_offline: t.droppedOffline,
        skipped_late: t.skippedLate,
        superseded: t.superseded,
        bad_size: t.badSize,
      };
    });
  registerTotalCounter(registry, 'ringcast_encoder_torn_risk_frames_total',
    'Frames whose slot the producer may have rewritten before ffmpeg finished reading it (pixels may mix two frames; the stream stays valid)',
    () => totals().tornRisk);
  registerTotalCounter(registry, 'ringcast_encoder_restarts_total',
    'ffmpeg restarts after an unexpected exit (RTMP disconnect, crash)',
    () => totals().restarts);
  new Gauge({
    name: 'ringcast_encoder_up',
    help: '1 while ffmpeg is running and accepting frames',
    registers,
    collect() { this.set(totals().up ? 1 : 0); },
  });
  const health: Array<[string, string, (h: StreamHealth) => number]> = [
    ['ringcast_encoder_fps', 'Encoded frames per second reported by ffmpeg', (h) => h.fps],
    ['ringcast_encoder_bitrate_kbps', 'Output bitrate reported by ffmpeg (kbit/s)', (h) => h.bitrateKbps],
    ['ringcast_encoder_speed_ratio', 'Encode speed as a multiple of real time (below 1 = falling behind)', (h) => h.speed],
    ['ringcast_encoder_ffmpeg_dup_frames', 'Frames ffmpeg duplicated in the current run', (h) => h.dupFrames],
    ['ringcast_encoder_ffmpeg_drop_frames', 'Frames ffmpeg dropped in the current run', (h) => h.dropFrames],
  ];
  for (const [name, help, pick] of health) {
    new Gauge({
      name, help, registers,
      collect() {
        const h = totals().health;
        this.set(h ? pick(h) : 0);
      },
    });
  }
}
