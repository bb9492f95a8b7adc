/**
 * Streams file: one channel (or .m3u8 URL) per line, optional priority in a second column,
 * `#` starts a comment. Never throws on content: a bad line becomes an error naming its line
 * number so the rest of the file is still usable at startup.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../../shared/config.js';
import { normaliseStreamName, validatePriority } from './registry.js';

export interface StreamsFileEntry { name: string; priority?: number; line: number }
export interface StreamsFileError { line: number; text: string; reason: string }

/**
 * Reads the streams file the operator named. A file that is missing or unreadable is a
 * configuration error (exit 2, naming the file and the flag), not a start-up crash.
 */
export function readStreamsFile(filePath: string): string {
  try {
    return readFileSync(filePath, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EISDIR' ? 'is a directory' : `cannot be read (${code ?? (error as Error).message})`;
    throw new ConfigError(`capture.streamsFile (--streams-file / RINGCAST_STREAMS_FILE): ${JSON.stringify(filePath)} ${why}`);
  }
}

export function parseStreamsFile(content: string): { entries: StreamsFileEntry[]; errors: StreamsFileError[] } {
  const entries: StreamsFileEntry[] = [];
  const errors: StreamsFileError[] = [];
  const seen = new Set<string>();
  const lines = content.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = i + 1;
    // '#' inside a URL (fragment) is rare for playlists; treat " #" or leading "#" as a comment.
    const text = raw.replace(/(^|\s)#.*$/, '').trim();
    if (text === '') return;
    const cols = text.split(/\s+/);
    if (cols.length > 2) { errors.push({ line, text: raw, reason: `expected "name [priority]", got ${cols.length} columns` }); return; }
    const n = normaliseStreamName(cols[0]);
    if (!n.ok) { errors.push({ line, text: raw, reason: n.reason }); return; }
    let priority: number | undefined;
    if (cols.length === 2) {
      const p = /^-?\d+$/.test(cols[1]) ? validatePriority(Number(cols[1])) : { ok: false as const, reason: `priority must be an integer 0-100, got "${cols[1]}"` };
      if (!p.ok) { errors.push({ line, text: raw, reason: p.reason }); return; }
      priority = p.priority;
    }
    if (seen.has(n.name)) { errors.push({ line, text: raw, reason: `duplicate of an earlier line: "${n.name}"` }); return; }
    seen.add(n.name);
    entries.push(priority === undefined ? { name: n.name, line } : { name: n.name, priority, line });
  });
  return { entries, errors };
}
