/**
 * Streaming destinations by name (`twitch`, `youtube`, `x`): an RTMP base URL per service and
 * the stream key from the environment, so the key never sits in a config file, a flag (the
 * process list shows flags) or the config the service reports. Everything that may print a
 * target (logs, stats, ffmpeg's own error lines) goes through `redactor`.
 */

export interface DestinationPreset {
  /** Base URL; the stream key is appended as the last path segment. */
  url: string;
}

/**
 * Twitch: the global ingest from Twitch's "Get Ingest Servers" docs (`live.twitch.tv/app`
 * still routes to the nearest ingest). YouTube: the primary RTMP ingest of YouTube Live.
 * X: ingest URLs are per region and per source (X Livestream API, POST /2/sources returns
 * `rtmp_url`/`rtmps_url` for the region); the default is X's US-East RTMP ingest, and
 * RINGCAST_OUTPUT_URL_X overrides it with the one Media Studio or the API gave you.
 */
export const DESTINATION_PRESETS: Readonly<Record<string, DestinationPreset>> = {
  twitch: { url: 'rtmp://live.twitch.tv/app' },
  youtube: { url: 'rtmp://a.rtmp.youtube.com/live2' },
  x: { url: 'rtmp://va.pscp.tv:80/x' },
};

export const streamKeyEnv = (name: string): string => `RINGCAST_STREAM_KEY_${name.toUpperCase()}`;
export const outputUrlEnv = (name: string): string => `RINGCAST_OUTPUT_URL_${name.toUpperCase()}`;

export function isDestinationName(output: string): boolean {
  return Object.hasOwn(DESTINATION_PRESETS, output.toLowerCase());
}

export interface ResolvedDestination {
  /** Full URL with the stream key (only ever handed to ffmpeg). */
  url: string;
  /** The stream key, to be redacted wherever text may show it. */
  key: string;
}

/**
 * Resolves every named destination in `outputs` against `env`. Throws (with the env var's
 * name, never a value) when a key is missing, empty or unusable in a URL path.
 */
export function resolveDestinations(outputs: readonly string[], env: NodeJS.ProcessEnv): Record<string, ResolvedDestination> {
  const out: Record<string, ResolvedDestination> = {};
  for (const output of outputs) {
    if (!isDestinationName(output)) continue;
    const name = output.toLowerCase();
    const keyVar = streamKeyEnv(name);
    const key = env[keyVar]?.trim();
    if (!key) throw new Error(`output "${output}" needs its stream key in the environment variable ${keyVar} (unset or empty)`);
    // tee uses '|', '[' and ']'; a '/', '?' or whitespace would change the URL's meaning.
    if (!/^[A-Za-z0-9_.~=+-]+$/.test(key)) throw new Error(`${keyVar} holds characters a stream key cannot have (allowed: letters, digits, _ . ~ = + -)`);
    const urlVar = outputUrlEnv(name);
    const base = (env[urlVar]?.trim() || DESTINATION_PRESETS[name].url).replace(/\/+$/, '');
    if (!/^rtmps?:\/\/[^\s|[\]]+$/i.test(base)) throw new Error(`${urlVar} must be an rtmp:// or rtmps:// URL without spaces, '|', '[' or ']'`);
    out[name] = { url: `${base}/${key}`, key };
  }
  return out;
}

/** Replaces every secret in a text by `<redacted>`; short secrets (< 4 chars) are left alone to avoid mangling text. */
export class Redactor {
  private list: string[] = [];

  constructor(secrets: readonly string[] = []) {
    for (const secret of secrets) this.add(secret);
  }

  /** Secrets learnt later (a stream URL's token) are redacted from then on. */
  add(secret: string): void {
    if (secret.length < 4 || this.list.includes(secret)) return;
    this.list = [...this.list, secret].sort((a, b) => b.length - a.length);
  }

  readonly apply = (text: string): string => {
    let s = text;
    for (const secret of this.list) if (s.includes(secret)) s = s.split(secret).join('<redacted>');
    return s;
  };
}

export function redactor(secrets: readonly string[]): (text: string) => string {
  return new Redactor(secrets).apply;
}
