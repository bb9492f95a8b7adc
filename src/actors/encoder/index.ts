/**
 * Encoder actor: RGBA frames from a slot ring → one ffmpeg process → H.264 (+ AAC
 * silence) to RTMP, files and/or local HLS (see options.ts for why one tee process).
 *
 * Feeding: a frame clock ticks at `fps`; each tick writes exactly one frame to ffmpeg's
 * stdin, or the last one again when nothing new arrived (a black frame before the first;
 * a tick with nothing new first waits up to half a period for a frame about to land), so
 * ffmpeg sees a steady cadence and timestamps frame n at n/fps. Which frame: from a queue-
 * mode ring (the product's), the oldest queued one, through a jitter buffer of one frame
 * (jitter-buffer.ts: one period of latency, and a frame up to two periods late, with the
 * wait, or any amount early still makes its tick); from a latest-mode ring, the newest.
 * The clock keeps itself in phase with the producer's frames (phase-lock.ts): the median
 * frame lands the buffer plus half a period before the tick that sends it.
 * Frames are written from the ring's shared memory in place (one Buffer view per slot,
 * made once); nothing is copied in JS.
 *
 * Backpressure: up to MAX_PENDING_FRAMES frames may wait in the pipe, so a stall of
 * about a frame period in ffmpeg (x264's lookahead, a pipe write the scheduler held up)
 * costs no frame. A tick that finds that many still not fully taken by the pipe drops
 * its frame and counts it (as offline while a fresh ffmpeg has not taken its first frame
 * yet). Pending frames are views of the ring's slots, not copies, so memory stays bounded
 * (nothing is allocated) however far ffmpeg falls behind; ffmpeg's own input queue is
 * capped at 4 frames by -thread_queue_size.
 *
 * The in-place write has one hazard: while ffmpeg is slow, the producer may come round
 * to the slot being written (a frame's slot is reused slots-count frames later, whether
 * one or two frames wait). The stream stays valid (byte counts do not change) but the
 * picture may mix two frames; such writes are counted as `tornRisk`.
 *
 * RPC: `stats()`. Metrics: metrics.ts.
 */
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import { defineActor, type ActorContext, type ActorInstance } from '../../shared/actor.js';
import { Gauge } from 'prom-client';
import { registerTotalCounter, registerTotalsCounter } from '../../shared/metrics.js';
import { ffmpegFeatures, listEncoders, probeHardwareEncoders, resolveFfmpeg, type ResolvedBinary } from '../../shared/ffmpeg.js';
import type { SlotMeta, SlotRing } from '../../shared/slot-ring.js';
import { setImmediate as yieldToEventLoop, setTimeout as sleep } from 'node:timers/promises';
import { FrameClock } from '../compositor/frame-clock.js';
import { registerEncoderMetrics, type EncoderTotals } from './metrics.js';
import { audioInputKind, buildFfmpegArgs, firstPart, validateEncoderOptions, type EncoderOptions, type OutputTarget } from './options.js';
import { Redactor } from './destinations.js';
import { AudioSources, type StreamAudio } from './audio-sources.js';
import { ClipMaker, type ClipRequest } from './clips.js';
import { followMilestones } from './milestone-clips.js';
import type { RecordRing } from '../../shared/record-ring.js';
import { emptyHealth, type StreamHealth } from './progress.js';
import { FfmpegRunner } from './runner.js';
import { PhaseLock } from './phase-lock.js';
import { JitterBuffer } from './jitter-buffer.js';
import { backoffDelay } from '../obs/backoff.js';

export type { EncoderOptions } from './options.js';

/** How long (fraction of a frame period) a tick waits for a frame that is about to land. */
const FRESH_GRACE = 0.5;
/** Frames that may wait in ffmpeg's stdin before a tick drops its frame (bounded: views of ring slots). */
const MAX_PENDING_FRAMES = 2;
/** Whole frames of jitter buffer for a queue-mode ring (each costs a period of latency). */
const JITTER_BUFFER_FRAMES = 1;

export interface EncoderStats extends Omit<EncoderTotals, 'health'> {
  ffmpeg: ResolvedBinary;
  encoder: string;
  outputs: Array<{ kind: OutputTarget['kind']; target: string }>;
  /** The configured audio input's kind ('silence (audio URL failed)' after its URL failed). */
  audio: string;
  /** Captured streams mixed in, and whether each is still used. */
  streamAudio: Array<{ name: string; active: boolean }>;
  audioErrors: number;
  destinationDrops: Record<string, number>;
  clips: ReturnType<ClipMaker['stats']> | undefined;
  running: boolean;
  pid: number | undefined;
  ticks: number;
  /** The frame clock's phase lock on the producer's frames (phase-lock.ts). */
  phase: ReturnType<PhaseLock['stats']>;
  /** The jitter buffer of a queue-mode ring (jitter-buffer.ts); null for a latest-mode ring (newest frame wins). */
  jitter: ReturnType<JitterBuffer['stats']> | null;
  reconnectInMs: number | null;
  health: StreamHealth;
  lastExit: { code: number | null; signal: string | null; ranMs: number; log: string[] } | undefined;
}

async function chooseEncoder(requested: string, ffmpegPath: string, log: Logger): Promise<string> {
  if (requested === 'auto') {
    const probe = await probeHardwareEncoders();
    log.info({ chosen: probe.chosen, trials: probe.trials }, 'H.264 encoder chosen by probe');
    return probe.chosen;
  }
  const names = (await listEncoders(ffmpegPath)).filter((e) => e.kind === 'video').map((e) => e.name);
  if (!names.includes(requested)) {
    throw new Error(`encoder: "${requested}" is not an encoder of ${ffmpegPath} (H.264 ones: ${names.filter((n) => /264/.test(n)).join(', ') || 'none'})`);
  }
  return requested;
}

/**
 * No usable ffmpeg: the compositor still renders into our ring, so frames are taken and
 * counted as dropped_offline (the ring never fills), and every status names the cause.
 */
function startUnavailable(ctx: ActorContext<EncoderOptions>, ring: SlotRing, reason: string): ActorInstance {
  const o = ctx.options;
  const t: EncoderTotals = {
    written: 0, fresh: 0, duplicated: 0, droppedBackpressure: 0, droppedOffline: 0, skippedLate: 0,
    superseded: 0, tornRisk: 0, badSize: 0, restarts: 0, up: false, health: undefined,
  };
  registerEncoderMetrics(ctx.metrics, () => t);
  new Gauge({ name: 'ringcast_encoder_available', help: '1 when the encoder has a usable ffmpeg', registers: [ctx.metrics], collect() { this.set(0); } });
  const drain = setInterval(() => {
    if (ring.mode === 'latest') { if (ring.readLatest(() => undefined)) t.droppedOffline++; } else t.droppedOffline += ring.poll(() => undefined);
  }, Math.max(5, Math.floor(500 / o.fps))); // twice per frame: a late timer must not let the ring fill
  ctx.log.warn({ reason }, 'encoder unavailable');
  const stats = () => ({ ...t, unavailable: `unavailable: ${reason}`, outputs: o.outputs, running: false });
  return {
    api: {
      stats,
      clip: () => ({ ok: false, status: 409, error: `no output is running: the encoder is unavailable (${reason})` }),
      setStreamAudio: () => ({ changed: false }),
    },
    stop() {
      clearInterval(drain);
      return stats();
    },
  };
}

export default defineActor<EncoderOptions>({
  async start(ctx) {
    const o = ctx.options;
    const outputs = validateEncoderOptions(o);
    const ring = ctx.in[o.inRing] as SlotRing | undefined;
    if (!ring || !('slotBytes' in ring)) throw new Error(`encoder: "${o.inRing}" is not a slot ring among this actor's in rings (${Object.keys(ctx.in).join(', ') || 'none'})`);
    const frameBytes = o.width * o.height * 4;
    if (ring.slotBytes < frameBytes) {
      throw new Error(`encoder: ring "${o.inRing}" has ${ring.slotBytes}-byte slots; ${o.width}x${o.height} RGBA needs ${frameBytes}`);
    }
    if (o.unavailable !== undefined) return startUnavailable(ctx, ring, o.unavailable);
    const ffmpeg = o.ffmpeg ?? resolveFfmpeg();
    const encoderName = await chooseEncoder(o.encoder, ffmpeg.path, ctx.log);
    const features = ffmpegFeatures(ffmpeg.path);
    const redactor = new Redactor(Object.values(o.destinations ?? {}).map((d) => d.key));
    const redact = redactor.apply;
    const audioKind = audioInputKind(o.audio);
    const audio = new AudioSources(o.audio, redactor, ctx.log);
    // A destination the tee let go (see options.ts) is brought back by restarting ffmpeg after a backoff.
    const drops: Record<string, number> = {};
    let dropAttempt = 0;
    let lastDropAt = 0;
    let reconnectTimer: NodeJS.Timeout | undefined;
    const dropLabel = (i: number): string => {
      const configured = o.outputs[i] ?? '';
      return /^(twitch|youtube|x)$/i.test(configured) ? configured.toLowerCase() : `output${i}`;
    };
    const destinationDropped = (index: number): void => {
      const out = outputs[index];
      if (!out || out.kind !== 'rtmp') return;
      const label = dropLabel(index);
      drops[label] = (drops[label] ?? 0) + 1;
      const now = performance.now();
      if (now - lastDropAt > 60_000) dropAttempt = 0;
      lastDropAt = now;
      if (reconnectTimer || ctx.signal.aborted) return;
      // The same backoff as a crashed ffmpeg gets: the others see a short gap at each try.
      const delay = backoffDelay(dropAttempt++, { initialMs: o.restartInitialMs ?? 500, maxMs: o.restartMaxMs ?? 10_000 });
      ctx.log.warn({ output: out.shown, reconnectInMs: delay }, 'a destination dropped; the others carry on, and ffmpeg restarts later to reconnect it');
      reconnectTimer = setTimeout(() => {
        reconnectTimer = undefined;
        runner.recycle();
      }, delay);
    };
    const clips = o.clips ? new ClipMaker(o.clips, o.keyframeSeconds, o.fps, ffmpeg.path, ctx.log) : undefined;

    // One Buffer per slot over the shared memory, made once: writes never copy or allocate views.
    const slotBufs: Buffer[] = [];
    for (let i = 0; i < ring.slots; i++) {
      const v = ring.slotView(i);
      slotBufs.push(Buffer.from(v.buffer, v.byteOffset, frameBytes));
    }
    const black = Buffer.alloc(frameBytes);
    for (let i = 3; i < frameBytes; i += 4) black[i] = 255;

    const t: EncoderTotals = {
      written: 0, fresh: 0, duplicated: 0, droppedBackpressure: 0, droppedOffline: 0, skippedLate: 0,
      superseded: 0, tornRisk: 0, badSize: 0, restarts: 0, up: false, health: undefined,
    };
    let ticks = 0;
    const runner: FfmpegRunner = new FfmpegRunner({
      ffmpegPath: ffmpeg.path,
      argsFor: (part) => {
        clips?.startRun(part, () => t.written);
        const inputs = audio.forRun();
        return buildFfmpegArgs(o, encoderName, outputs, part, features, inputs.audio, inputs.streams);
      },
      redact,
      onLogLine: (line) => {
        const slave = /Slave muxer #(\d+) failed/.exec(line);
        if (slave) destinationDropped(Number(slave[1]));
        // ffmpeg names the input in its error lines ("<url>: Connection refused", "... 404 Not Found").
        audio.onLogLine(line);
      },
      onUnexpectedExit: (exit) => audio.onExit(exit.log),
      firstPart: firstPart(outputs, ctx.incarnation, existsSync),
      log: ctx.log,
      restartInitialMs: o.restartInitialMs ?? 500,
      restartMaxMs: o.restartMaxMs ?? 10_000,
    });
    const totals = (): EncoderTotals => {
      t.restarts = runner.restarts;
      t.up = runner.running;
      t.health = runner.health;
      // Through tee ffmpeg reports no bitrate; the clip buffer's segments give it.
      if (t.health && t.health.bitrateKbps === 0 && clips) t.health.bitrateKbps = Math.round(clips.bitrateKbps());
      t.skippedLate = clock.skipped;
      if (ring.mode === 'latest') t.superseded = ring.skipped;
      return t;
    };
    registerEncoderMetrics(ctx.metrics, totals);
    registerTotalCounter(ctx.metrics, 'ringcast_encoder_audio_errors_total', 'Audio input failures (a URL that could not be opened or broke off); the show continues with silence', () => audio.errors);
    clips?.registerMetrics(ctx.metrics);
    registerTotalsCounter(ctx.metrics, 'ringcast_encoder_destination_drops_total', 'RTMP destinations the tee let go while other outputs carried on (each is reconnected by a restart after a backoff), by output (destination name or output<i>)', 'output', () => drops);
    new Gauge({ name: 'ringcast_encoder_available', help: '1 when the encoder has a usable ffmpeg', registers: [ctx.metrics], collect() { this.set(1); } });

    // The frame being sent (slot and frame number; slot -1 = the black frame).
    let curSlot = -1;
    let curFrame = 0;
    let curStamp = 0;
    let got = false;
    // Until a run's first frame is fully taken, ffmpeg is still starting (x264 init takes
    // ~100 ms): a full pipe then means "not ready", counted as offline, not as falling behind.
    let acceptedPid: number | undefined;
    const onFrame = (_view: Uint8Array, _seq: number, meta: SlotMeta): void => {
      if (meta.length !== frameBytes) {
        t.badSize++;
        return;
      }
      if (got) t.superseded++; // queue mode: a frame taken but passed over for a newer one
      got = true;
      curSlot = meta.slot;
      curFrame = meta.frame;
      curStamp = meta.timestamp;
    };
    const fetchNewest = (): boolean => {
      got = false;
      ring.readLatest(onFrame);
      return got;
    };
    // Queue mode: the oldest frame (one a tick); a frame of the wrong size is counted and passed.
    const fetchOldest = (): boolean => {
      got = false;
      while (!got && ring.poll(onFrame, 1) > 0) { /* next */ }
      return got;
    };
    const fetch = ring.mode === 'latest' ? fetchNewest : fetchOldest;
    // Called when a frame has been fully handed to the pipe; `frame` 0 = the black frame.
    const onWritten = (error: Error | null | undefined, frame: number): void => {
      if (error) return;
      acceptedPid = runner.pid;
      if (frame === 0) return;
      // Frame f sits in slot f mod N; the producer reaches that slot again at frame f + N.
      if (ring.recordsWritten + 1 >= frame + ring.slots) t.tornRisk++;
    };

    const clock = new FrameClock(o.fps);
    const graceMs = clock.periodMs * FRESH_GRACE;
    const jitter = ring.mode === 'queue' ? new JitterBuffer(clock.periodMs, { frames: JITTER_BUFFER_FRAMES }) : undefined;
    const phase = new PhaseLock(clock.periodMs, jitter ? { targetLeadMs: jitter.targetLeadMs } : {});
    new Gauge({
      name: 'ringcast_encoder_frame_lead_ms',
      help: 'Smoothed time from a frame\'s publish to the tick that sends it (the phase lock holds it near the jitter buffer plus half a frame period; negative: frames come after the tick)',
      registers: [ctx.metrics],
      collect() { this.set(Number.isNaN(phase.leadMs) ? 0 : phase.leadMs); },
    });
    // The tick the phase lock added by moving the clock back a period (phase-lock.ts).
    let extraTick = false;
    const tick = async (): Promise<void> => {
      ticks++;
      const tickAt = Date.now();
      // The tick the lock added stands for the frame a slower producer never made: with a
      // jitter buffer it sends a duplicate and leaves the queue alone (taking a frame would
      // make every later frame a period early).
      let fresh = extraTick && jitter ? false : fetch();
      // Two frame clocks (producer's and ours) at the same rate but another phase: a frame
      // due "now" may land a moment after our tick. Waiting a little for it beats sending a
      // duplicate now and superseding that frame at the next tick.
      if (!fresh && curSlot >= 0 && !extraTick && await ring.waitReadableAsync(graceMs)) fresh = fetch();
      extraTick = false;
      if (fresh) {
        // A backlog (the late frame of a duplicate tick, frames of skipped ticks) is passed over, counted.
        if (jitter) for (let n = jitter.passOver(tickAt - curStamp, ring.available()); n > 0; n--) ring.poll(onFrame, 1);
        const shift = phase.observe(tickAt - curStamp);
        clock.shift(shift);
        extraTick = shift < -clock.periodMs / 2;
      }
      const stdin = runner.stdin;
      if (!stdin) {
        t.droppedOffline++;
        return;
      }
      // Bytes not yet taken by the pipe, in frames (a partly taken one counts whole).
      if (stdin.writableLength > (MAX_PENDING_FRAMES - 1) * frameBytes) {
        if (acceptedPid === runner.pid) t.droppedBackpressure++;
        else t.droppedOffline++;
        return;
      }
      if (fresh) t.fresh++;
      else t.duplicated++;
      t.written++;
      const frame = curSlot >= 0 ? curFrame : 0;
      stdin.write(curSlot >= 0 ? slotBufs[curSlot] : black, (error) => onWritten(error, frame));
    };

    runner.start();
    const milestoneRing = o.milestoneRing ? (ctx.in[o.milestoneRing] as RecordRing | undefined) : undefined;
    if (o.milestoneRing && !milestoneRing) throw new Error(`encoder: "${o.milestoneRing}" is not among this actor's in rings`);
    const milestones = clips && milestoneRing
      ? followMilestones(milestoneRing, o.clips!.bufferSeconds, (r) => clips.clip(r, runner.running, runner.health?.speed ?? 1), ctx.signal, ctx.log)
      : undefined;
    const loop = (async () => {
      while (!ctx.signal.aborted) {
        const wait = clock.delayMs();
        if (wait > 0) await sleep(Math.max(1, Math.ceil(wait)));
        else await yieldToEventLoop(); // behind: still let RPC and stdin events run
        if (ctx.signal.aborted) break;
        clock.take();
        try {
          await tick();
        } catch (error) {
          ctx.log.error({ err: error }, 'encoder tick failed');
        }
      }
    })();
    ctx.log.info({ encoder: encoderName, ffmpeg, outputs: outputs.map((x) => x.shown), audio: audioKind, size: `${o.width}x${o.height}`, fps: o.fps }, 'encoder started');

    const stats = (): EncoderStats => {
      const { health, ...rest } = totals();
      return {
        ...rest,
        ffmpeg,
        encoder: encoderName,
        outputs: outputs.map(({ kind, shown }) => ({ kind, target: shown })),
        ...audio.stats(),
        audioErrors: audio.errors,
        destinationDrops: { ...drops },
        clips: clips?.stats(),
        running: runner.running,
        pid: runner.pid,
        ticks,
        phase: phase.stats(),
        jitter: jitter?.stats() ?? null,
        reconnectInMs: runner.reconnectInMs(),
        health: { ...(health ?? emptyHealth()) },
        lastExit: runner.lastExit,
      };
    };

    return {
      api: {
        stats,
        /** The audio of these captured streams under the show (their video layers ask for it); restarts ffmpeg when it changes. */
        setStreamAudio: (list: StreamAudio[]) => {
          const changed = audio.setStreams(list);
          if (changed) runner.recycle();
          return { changed };
        },
        clip: (request: ClipRequest) => (clips ? clips.clip(request, runner.running, runner.health?.speed ?? 1) : { ok: false, status: 409, error: 'clips are off (clips.enabled is false)' }),
      },
      async stop() {
        clearTimeout(reconnectTimer);
        await loop;
        await milestones;
        await clips?.close();
        const result = await runner.stop(o.stopTimeoutMs ?? 5_000);
        ctx.log.info({ ...result }, 'encoder stopped');
        return { ...stats(), stop: result };
      },
    };
  },
});
