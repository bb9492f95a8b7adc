/**
 * Milestone clips (opt-in, `clips.onMilestone`): the encoder follows the overlay stream through
 * its own fan-out ring and, for each milestone, cuts a clip of the seconds around it, titled
 * after the milestone. At most one at a time and one per MIN_GAP_MS, so a burst of milestones
 * (a run that resumes) makes one clip, not a pile.
 */
import type { Logger } from 'pino';
import { consumeLoop } from '../../shared/consume-loop.js';
import type { RecordRing } from '../../shared/record-ring.js';
import { channelId, LEVEL_BIT } from '../../shared/telemetry/channels.js';
import { FanoutType, readFanoutRecord } from '../../shared/telemetry/ring-records.js';
import type { ClipRequest, ClipResult } from './clips.js';

const MILESTONES = channelId('milestones');
const MIN_GAP_MS = 30_000;
const BEFORE_S = 20;
const AFTER_S = 5;

export function followMilestones(ring: RecordRing, bufferSeconds: number, clip: (r: ClipRequest) => Promise<ClipResult>, signal: AbortSignal, log: Logger): Promise<unknown> {
  const decoder = new TextDecoder();
  let busy = false;
  let lastAt = -Infinity;
  const onRecord = (bytes: Uint8Array, offset: number, length: number): void => {
    try {
      const rec = readFanoutRecord(bytes, offset, length);
      if (rec.type !== FanoutType.Update || (rec.levelMask & LEVEL_BIT.beginner) === 0 || rec.channel !== MILESTONES) return;
      const message = JSON.parse(decoder.decode(bytes.subarray(rec.bodyOffset, rec.bodyOffset + rec.bodyLength))) as { type?: unknown; data?: { name?: unknown; message?: unknown } };
      if (message.type !== 'milestone' || busy || performance.now() - lastAt < MIN_GAP_MS) return;
      const name = typeof message.data?.name === 'string' ? message.data.name : typeof message.data?.message === 'string' ? message.data.message : 'milestone';
      busy = true;
      lastAt = performance.now();
      void clip({ before_s: Math.min(BEFORE_S, bufferSeconds), after_s: AFTER_S, title: `Milestone: ${name}`.slice(0, 100) })
        .then((r) => (r.ok ? log.info({ id: r.clip.id, milestone: name }, 'milestone clip made') : log.warn({ milestone: name, status: r.status, error: r.error }, 'no milestone clip')))
        .finally(() => { busy = false; });
    } catch (error) {
      log.warn({ err: (error as Error).message }, 'encoder: skipped an unreadable fan-out record');
    }
  };
  return consumeLoop(ring, onRecord, signal).catch((error: unknown) => log.error({ err: error }, 'encoder: milestone follower stopped'));
}
