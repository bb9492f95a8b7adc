/**
 * How captured frames travel from the capture actor to its readers (the analysis workers and
 * the compositor): one `latest`-mode slot ring (`frames.capture`) shared by every stream. Each
 * slot holds one decoded frame as packed RGB24 (width × height × 3, the capture size), published
 * with `tag` = captureStreamTag(stream name) and `timestamp` = wall-clock ms of the decode.
 *
 * The tag lets a reader that was not told "frame F is in slot i" (the compositor, which wants
 * the newest frame of the streams its scene shows) find a stream's frames by scanning the slot
 * metadata. A 32-bit hash can collide; readers that care (the compositor) map tags to the names
 * they want and treat a collision between two wanted names as "one of them is unbound".
 */

/** FNV-1a over the UTF-16 code units of the name; never 0 (0 = "no stream" in older frames). */
export function captureStreamTag(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h === 0 ? 1 : h;
}

/** Bytes per pixel in the capture ring. */
export const CAPTURE_BYTES_PER_PIXEL = 3;

/**
 * A stream name as a viewer reads it: a Twitch channel as is, a playlist URL or path by its
 * most telling part (".../demo1/live.m3u8" → "demo1").
 */
export function streamDisplayName(name: string): string {
  if (!/[/\\]/.test(name)) return name;
  const parts = name.replace(/[?#].*$/, '').split(/[/\\]+/).filter(Boolean);
  const last = parts.at(-1) ?? name;
  if (/\.m3u8$/i.test(last) && parts.length >= 2) {
    const base = last.replace(/\.m3u8$/i, '');
    return /^(live|index|playlist|master|stream|chunklist.*)$/i.test(base) ? parts[parts.length - 2] : base;
  }
  return last;
}
