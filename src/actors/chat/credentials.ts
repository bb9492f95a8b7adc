/**
 * Where the bot's Twitch login comes from: the configured token (flag, env RINGCAST_TWITCH_TOKEN,
 * config file), else a credentials file `{"username", "token"}`, else none (anonymous, read-only).
 * Errors name the file and the problem, never its contents.
 */
import { readFileSync } from 'node:fs';

export interface TwitchCredentials {
  username: string;
  /** OAuth token, with or without the "oauth:" prefix. */
  token: string;
}

export type CredentialsResult =
  | { kind: 'token'; credentials: TwitchCredentials; source: 'options' | 'file' }
  | { kind: 'anonymous'; error?: string };

const USERNAME = /^[a-z0-9_]{3,25}$/i;

export function resolveCredentials(opts: { username: string; token?: string; credentialsFile?: string }): CredentialsResult {
  if (opts.token) return { kind: 'token', credentials: { username: opts.username.toLowerCase(), token: opts.token }, source: 'options' };
  if (!opts.credentialsFile) return { kind: 'anonymous' };
  const file = opts.credentialsFile;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { kind: 'anonymous', error: `credentials file ${file}: ${code ? `cannot be read (${code})` : 'is not valid JSON'}` };
  }
  const c = parsed as Partial<Record<'username' | 'token', unknown>> | null;
  if (c === null || typeof c !== 'object') return { kind: 'anonymous', error: `credentials file ${file}: must hold a JSON object {"username", "token"}` };
  if (typeof c.token !== 'string' || c.token.length === 0) return { kind: 'anonymous', error: `credentials file ${file}: needs a non-empty "token" string` };
  const username = c.username === undefined ? opts.username : c.username;
  if (typeof username !== 'string' || !USERNAME.test(username)) return { kind: 'anonymous', error: `credentials file ${file}: "username" must be 3–25 letters, digits or _` };
  return { kind: 'token', credentials: { username: username.toLowerCase(), token: c.token }, source: 'file' };
}
