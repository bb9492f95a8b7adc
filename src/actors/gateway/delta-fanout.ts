/**
 * The delta side of the overlay fan-out: per (channel, level, tier) topic, each state change
 * of a key is published once as what changed since the version that topic last carried.
 *
 * Versions are the latest-message store's sequence numbers (global and monotonic, so a key
 * dropped and re-created never repeats one). A delta names the version it makes (`s`) and the
 * one it was made from (the base, `s` − `b`); a client holding anything else asks for a full
 * state. A delta never changes the message type (a full message goes out instead), so it
 * does not repeat it: the client has it from the version it holds; nor its key, which the base
 * names (versions are unique across keys). Conflated tiers remember
 * the version they last published per key and level, and the state a delta client of such
 * a tier is sent is that version, so the tier's next delta follows it.
 *
 * Parsed envelopes are cached by the identity of their bytes (the store hands the same
 * Uint8Array to everyone), so each message is parsed at most once per gateway.
 */
import { diffJson } from '../../shared/telemetry/json-delta.js';
import type { FpsTier } from './fps-tiers.js';

interface Envelope { type: string; timestamp: number; data: never }
export interface Version { readonly seq: number; readonly bytes: Uint8Array }

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const OPEN_BRACE = 0x7b;
const COMMA = 0x2c;

export class DeltaFanout {
  private readonly parsed = new WeakMap<Uint8Array, Envelope | null>();
  private readonly fulls = new WeakMap<Uint8Array, Uint8Array>();
  /** Per conflated tier: `${channel}\0${key}\0${level}` → the version it last published. */
  private readonly tierVersions = new Map<FpsTier, Map<string, Version>>();
  counts = { deltas: 0, fulls: 0, deltaBytesSaved: 0 };

  constructor(private readonly onUpdate: (kind: 'delta' | 'full') => void = () => undefined) {}

  private static id(channel: number, key: string, level: number): string {
    return `${channel}\u0000${key}\u0000${level}`;
  }

  private parse(bytes: Uint8Array): Envelope | null {
    let env = this.parsed.get(bytes);
    if (env === undefined) {
      try {
        const v = JSON.parse(decoder.decode(bytes)) as unknown;
        env = v !== null && typeof v === 'object' && !Array.isArray(v) && typeof (v as Envelope).type === 'string' ? (v as Envelope) : null;
      } catch {
        env = null;
      }
      this.parsed.set(bytes, env);
    }
    return env;
  }

  /**
   * The full message with its key and version, spliced in after the envelope's first field
   * (`{"type":"…","key":…,"seq":…,"timestamp":…}`: `type` stays first for clients that sniff it).
   */
  full(key: string, version: Version): Uint8Array {
    let out = this.fulls.get(version.bytes);
    if (!out) {
      const b = version.bytes;
      const comma = b.indexOf(COMMA);
      if (b[0] !== OPEN_BRACE || comma < 0) return b;
      const mid = encoder.encode(`"key":${JSON.stringify(key)},"seq":${version.seq},`);
      out = new Uint8Array(b.byteLength + mid.byteLength);
      out.set(b.subarray(0, comma + 1), 0);
      out.set(mid, comma + 1);
      out.set(b.subarray(comma + 1), comma + 1 + mid.byteLength);
      this.fulls.set(b, out);
    }
    return out;
  }

  /** What a topic that last carried `from` publishes for `to`: a delta, or the full message when that is smaller or `from` is unknown. */
  update(key: string, from: Version | undefined, to: Version): Uint8Array {
    const full = this.full(key, to);
    if (!from || from.seq === to.seq) return this.countFull(full);
    const a = this.parse(from.bytes);
    const b = this.parse(to.bytes);
    if (!a || !b || a.type !== b.type) return this.countFull(full);
    const patch = diffJson(a.data, b.data) ?? { o: {} };
    // `s` the version made, `b` how far back the base is (a few, where the versions run to millions), `p` the patch.
    // No key: the base is a store version, unique across keys, so it names the key the client holds.
    const delta = encoder.encode(JSON.stringify({ type: 'delta', timestamp: b.timestamp, s: to.seq, b: to.seq - from.seq, p: patch }));
    if (delta.byteLength >= full.byteLength) return this.countFull(full);
    this.counts.deltas++;
    this.onUpdate('delta');
    this.counts.deltaBytesSaved += full.byteLength - delta.byteLength;
    return delta;
  }

  private countFull(full: Uint8Array): Uint8Array {
    this.counts.fulls++;
    this.onUpdate('full');
    return full;
  }

  tierVersion(tier: FpsTier, channel: number, key: string, level: number): Version | undefined {
    return this.tierVersions.get(tier)?.get(DeltaFanout.id(channel, key, level));
  }

  setTierVersion(tier: FpsTier, channel: number, key: string, level: number, version: Version): void {
    let m = this.tierVersions.get(tier);
    if (!m) this.tierVersions.set(tier, (m = new Map()));
    m.set(DeltaFanout.id(channel, key, level), version);
  }

  /** A key (or, with key '', everything) dropped from the store. */
  forget(channel: number, key: string): void {
    for (const m of this.tierVersions.values()) {
      if (key === '') { m.clear(); continue; }
      for (const id of m.keys()) if (id.startsWith(`${channel}\u0000${key}\u0000`)) m.delete(id);
    }
  }
}
