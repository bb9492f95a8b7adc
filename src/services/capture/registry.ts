/**
 * Stream registry for frame capture: which channels to capture, at what
 * priority, plus the run-time capture config. Everything lives in the StateStore so a restart
 * (a new registry over the same store) sees exactly what was there before.
 */
import { z } from 'zod';
import type { StateStore } from '../../shared/state-store.js';

export const STREAMS_NS = 'streams';
export const CAPTURE_NS = 'capture';
export const CONFIG_KEY = 'config';
export const DEFAULT_PRIORITY = 50;
export const DEFAULT_MAX_STREAMS = 2000;

export const QUALITIES = ['best', 'worst', '720p60', '720p', '480p', '360p', '160p'] as const;
export type Quality = (typeof QUALITIES)[number];

export interface StreamEntry {
  /** Lower-case Twitch channel name, or a direct HLS URL / file path kept verbatim. */
  name: string;
  priority: number;
  /** ISO timestamp. */
  addedAt: string;
  enabled: boolean;
}

export const captureConfigSchema = z.object({
  capture_interval: z.number().int().min(1).max(3600),
  max_concurrent: z.number().int().min(1).max(1000),
  quality: z.enum(QUALITIES),
}).strict();
export type CaptureConfig = z.infer<typeof captureConfigSchema>;
/** Partial updates: unknown keys are rejected (strict) so a typo is an error, not a silent no-op. */
export const captureConfigPatchSchema = captureConfigSchema.partial().strict();

export const DEFAULT_CAPTURE_CONFIG: CaptureConfig = { capture_interval: 3, max_concurrent: 32, quality: '480p' };

const TWITCH_NAME = /^[a-z0-9_]{3,25}$/i;

export class RegistryError extends Error {
  constructor(readonly code: 'invalid' | 'duplicate' | 'not_found' | 'full', message: string) {
    super(message);
    this.name = 'RegistryError';
  }
}

/** Normalises a stream name or returns why it is not acceptable. */
export function normaliseStreamName(raw: unknown): { ok: true; name: string } | { ok: false; reason: string } {
  if (typeof raw !== 'string') return { ok: false, reason: `stream name must be a string, got ${raw === null ? 'null' : typeof raw}` };
  const name = raw.trim();
  if (name === '') return { ok: false, reason: 'stream name is empty' };
  if (/^https?:\/\//i.test(name)) {
    let url: URL;
    try { url = new URL(name); } catch { return { ok: false, reason: `"${name}" is not a valid URL` }; }
    if (!url.pathname.toLowerCase().endsWith('.m3u8')) return { ok: false, reason: `URL "${name}" must point at an HLS playlist (.m3u8)` };
    return { ok: true, name };
  }
  // A local playlist file (tests, recorded streams): absolute or ./relative path ending in .m3u8.
  if (/^(\/|\.\.?\/)/.test(name)) {
    if (!name.toLowerCase().endsWith('.m3u8')) return { ok: false, reason: `file "${name}" must be an HLS playlist (.m3u8)` };
    return { ok: true, name };
  }
  if (!TWITCH_NAME.test(name)) return { ok: false, reason: `"${name}" is not a valid Twitch channel name (3-25 letters, digits or _) nor an http(s) .m3u8 URL` };
  return { ok: true, name: name.toLowerCase() };
}

export function validatePriority(raw: unknown): { ok: true; priority: number } | { ok: false; reason: string } {
  if (raw === undefined) return { ok: true, priority: DEFAULT_PRIORITY };
  if (typeof raw !== 'number' || !Number.isInteger(raw)) return { ok: false, reason: `priority must be an integer 0-100, got ${JSON.stringify(raw) ?? typeof raw}` };
  if (raw < 0 || raw > 100) return { ok: false, reason: `priority must be between 0 and 100, got ${raw}` };
  return { ok: true, priority: raw };
}

export type BulkItem = string | { username?: unknown; name?: unknown; priority?: unknown };
export interface BulkResult {
  input: unknown;
  name?: string;
  status: 'added' | 'duplicate' | 'invalid';
  reason?: string;
}

export interface StreamRegistryOptions {
  maxStreams?: number;
  now?: () => Date;
}

export class StreamRegistry {
  private readonly maxStreams: number;
  private readonly now: () => Date;

  constructor(private readonly store: StateStore, options: StreamRegistryOptions = {}) {
    this.maxStreams = options.maxStreams ?? DEFAULT_MAX_STREAMS;
    this.now = options.now ?? (() => new Date());
  }

  /** Adds one stream; throws RegistryError (invalid / duplicate / full). */
  add(rawName: unknown, rawPriority?: unknown): StreamEntry {
    const n = normaliseStreamName(rawName);
    if (!n.ok) throw new RegistryError('invalid', n.reason);
    const p = validatePriority(rawPriority);
    if (!p.ok) throw new RegistryError('invalid', p.reason);
    return this.store.transaction((tx) => {
      if (tx.get(STREAMS_NS, n.name) !== undefined) throw new RegistryError('duplicate', `stream "${n.name}" is already registered`);
      if (tx.list(STREAMS_NS).length >= this.maxStreams) throw new RegistryError('full', `stream limit reached (${this.maxStreams}); remove some first`);
      const entry: StreamEntry = { name: n.name, priority: p.priority, addedAt: this.now().toISOString(), enabled: true };
      tx.put(STREAMS_NS, n.name, entry);
      return entry;
    });
  }

  /** Adds many; each item reported on its own so one bad line never loses the others. */
  addMany(items: readonly unknown[]): BulkResult[] {
    return this.store.transaction((tx) => {
      let count = tx.list(STREAMS_NS).length;
      const results: BulkResult[] = [];
      for (const item of items) {
        let rawName: unknown = item;
        let rawPriority: unknown;
        if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
          const o = item as Record<string, unknown>;
          rawName = o.username ?? o.name;
          rawPriority = o.priority;
          if (rawName === undefined) { results.push({ input: item, status: 'invalid', reason: 'missing username' }); continue; }
        }
        const n = normaliseStreamName(rawName);
        if (!n.ok) { results.push({ input: item, status: 'invalid', reason: n.reason }); continue; }
        const p = validatePriority(rawPriority);
        if (!p.ok) { results.push({ input: item, name: n.name, status: 'invalid', reason: p.reason }); continue; }
        if (tx.get(STREAMS_NS, n.name) !== undefined) { results.push({ input: item, name: n.name, status: 'duplicate', reason: 'already registered' }); continue; }
        if (count >= this.maxStreams) { results.push({ input: item, name: n.name, status: 'invalid', reason: `stream limit reached (${this.maxStreams})` }); continue; }
        tx.put(STREAMS_NS, n.name, { name: n.name, priority: p.priority, addedAt: this.now().toISOString(), enabled: true } satisfies StreamEntry);
        count++;
        results.push({ input: item, name: n.name, status: 'added' });
      }
      return results;
    });
  }

  /** Lookup key: Twitch names are case-insensitive, URLs are kept verbatim. */
  private key(name: string): string {
    const n = normaliseStreamName(name);
    return n.ok ? n.name : name;
  }

  get(name: string): StreamEntry | undefined {
    return this.store.get<StreamEntry>(STREAMS_NS, this.key(name));
  }

  remove(name: string): boolean {
    return this.store.delete(STREAMS_NS, this.key(name));
  }

  setPriority(name: string, rawPriority: unknown): StreamEntry {
    if (rawPriority === undefined) throw new RegistryError('invalid', 'missing priority');
    const p = validatePriority(rawPriority);
    if (!p.ok) throw new RegistryError('invalid', p.reason);
    const key = this.key(name);
    return this.store.transaction((tx) => {
      const entry = tx.get<StreamEntry>(STREAMS_NS, key);
      if (!entry) throw new RegistryError('not_found', `stream "${name}" is not registered`);
      const updated = { ...entry, priority: p.priority };
      tx.put(STREAMS_NS, key, updated);
      return updated;
    });
  }

  /** Priority descending, then name, so the scheduler can take the head when over capacity. */
  list(): StreamEntry[] {
    return this.store.list<StreamEntry>(STREAMS_NS).map((e) => e.value)
      .sort((a, b) => b.priority - a.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  count(): number {
    return this.store.list(STREAMS_NS).length;
  }

  get limit(): number { return this.maxStreams; }

  /** Stored config merged over defaults; a corrupt stored value falls back to defaults rather than crash. */
  getConfig(): CaptureConfig {
    const stored = this.store.get<unknown>(CAPTURE_NS, CONFIG_KEY);
    const merged = captureConfigSchema.safeParse({ ...DEFAULT_CAPTURE_CONFIG, ...(stored && typeof stored === 'object' ? stored : {}) });
    return merged.success ? merged.data : { ...DEFAULT_CAPTURE_CONFIG };
  }

  /** Partial update; throws RegistryError('invalid') listing every problem. */
  updateConfig(patch: unknown): CaptureConfig {
    const parsed = captureConfigPatchSchema.safeParse(patch);
    if (!parsed.success) throw new RegistryError('invalid', formatZodError(parsed.error));
    const next = { ...this.getConfig(), ...parsed.data };
    this.store.put(CAPTURE_NS, CONFIG_KEY, next);
    return next;
  }
}

export function formatZodError(error: z.ZodError): string {
  return error.issues.map((i) => {
    const path = i.path.join('.');
    if (i.code === 'unrecognized_keys') return `unknown config key(s): ${(i as { keys: string[] }).keys.join(', ')}`;
    return path ? `${path}: ${i.message}` : i.message;
  }).join('; ');
}
