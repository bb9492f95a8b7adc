/**
 * Instant-replay clips on disk: `<dataDir>/clips/<id>.mp4` with `<id>.json` beside it
 * (title, times, size). The encoder writes them, the main thread lists them and the gateways
 * serve the files; this module is the one format all three read.
 */
import { randomBytes } from 'node:crypto';
import { readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface ClipInfo {
  id: string;
  title: string;
  /** Wall-clock time of the clip's first frame (ISO 8601). */
  started_at: string;
  duration_s: number;
  bytes: number;
  /** When the clip was cut (ISO 8601, ms): orders clips that start at the same moment. */
  made_at?: string;
}

/** A clip id: also the file's base name, so nothing else can be asked for by id. */
export const CLIP_ID_PATTERN = /^clip-\d{8}-\d{6}-[a-f0-9]{6}$/;

export function newClipId(now = new Date()): string {
  const t = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `clip-${t}-${randomBytes(3).toString('hex')}`;
}

export const clipFile = (dir: string, id: string): string => join(dir, `${id}.mp4`);
export const clipInfoFile = (dir: string, id: string): string => join(dir, `${id}.json`);

/** Every finished clip (its JSON written last), oldest first. Unreadable entries are skipped. */
export async function listClips(dir: string): Promise<ClipInfo[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const clips: ClipInfo[] = [];
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    const id = name.slice(0, -5);
    if (!CLIP_ID_PATTERN.test(id)) continue;
    try {
      const info = JSON.parse(await readFile(join(dir, name), 'utf8')) as ClipInfo;
      if (info.id === id) clips.push(info);
    } catch {
      // half-deleted or foreign: not a clip
    }
  }
  // Oldest = cut first: two clips asked for back to back can start on the same segment, or (their
  // starts placed by encoded time on a box that encodes slower than real time) in either order.
  const order = (c: ClipInfo) => `${c.made_at ?? c.started_at}|${c.started_at}|${c.id}`;
  return clips.sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
}

/** Deletes the oldest clips until at most maxCount and maxBytes remain; returns how many went. */
export async function enforceClipBounds(dir: string, maxCount: number, maxBytes: number): Promise<number> {
  const clips = await listClips(dir);
  let bytes = clips.reduce((a, c) => a + c.bytes, 0);
  let deleted = 0;
  while (clips.length > 0 && (clips.length > maxCount || bytes > maxBytes)) {
    const oldest = clips.shift()!;
    bytes -= oldest.bytes;
    // The JSON first: a clip without it is not listed, so a half-deleted one never shows.
    await rm(clipInfoFile(dir, oldest.id), { force: true });
    await rm(clipFile(dir, oldest.id), { force: true });
    deleted++;
  }
  return deleted;
}

/** Size of a clip's MP4, or undefined when there is none. */
export async function clipSize(dir: string, id: string): Promise<number | undefined> {
  if (!CLIP_ID_PATTERN.test(id)) return undefined;
  try {
    return (await stat(clipFile(dir, id))).size;
  } catch {
    return undefined;
  }
}
