/**
 * `!clip [title]` for moderators and the broadcaster: asks the main thread for an
 * instant-replay clip of the last seconds (the same path as POST /api/clips) and answers in
 * chat when it is made. Rate-limited for the whole channel (one every MIN_GAP_MS, one at a
 * time): a clip costs disk and a child ffmpeg, and a raid of mods must not queue dozens.
 */

export const CLIP_BEFORE_S = 20;
export const CLIP_AFTER_S = 5;
const MIN_GAP_MS = 30_000;
const MAX_TITLE = 100;

type ClipAnswer = { ok: true; clip: { title: string; duration_s: number } } | { ok: false; status: number; error: string };

export interface ClipCommand {
  /** Answers through `reply`; `refused` names why nothing was asked (for the errors counter). */
  run(by: string, args: string, reply: (text: string) => void, refused: (reason: string, text: string) => void): void;
}

export function clipCommand(callMain: <T>(method: string, ...args: unknown[]) => Promise<T>, now: () => number = () => performance.now()): ClipCommand {
  let busy = false;
  let lastAt = -Infinity;
  return {
    run(by, args, reply, refused) {
      if (busy) return refused('clip_busy', 'a clip is already being made; it will be announced here');
      const wait = Math.ceil((lastAt + MIN_GAP_MS - now()) / 1000);
      if (wait > 0) return refused('clip_rate', `one clip per ${MIN_GAP_MS / 1000} s; try again in ${wait} s`);
      // Control characters would reach file metadata and overlays.
      const title = args.replace(/[\u0000-\u001f\u007f]/g, ' ').trim().slice(0, MAX_TITLE) || `Clip by ${by}`;
      busy = true;
      lastAt = now();
      reply(`clipping the last ${CLIP_BEFORE_S} s and the next ${CLIP_AFTER_S} s…`);
      callMain<ClipAnswer>('clips.create', { before_s: CLIP_BEFORE_S, after_s: CLIP_AFTER_S, title })
        .then((r) => reply(r.ok ? `clip saved: "${r.clip.title}" (${Math.round(r.clip.duration_s)} s)` : `no clip: ${r.error.slice(0, 200)}`))
        .catch((error: unknown) => reply(`no clip: ${String((error as Error)?.message ?? error).slice(0, 200)}`))
        .finally(() => { busy = false; });
    },
  };
}
