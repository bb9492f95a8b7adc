/**
 * Which node captures which stream: weighted rendezvous (highest random weight) hashing
 * over the live members that capture (captureWeight > 0).
 *
 * Every node computes the same answer from the same member list, with no coordination:
 * for each stream, each member gets a score from a hash of (member, stream) scaled by its
 * weight, and the highest score captures the stream. A member joining takes only the
 * streams it now wins (about weight/total of them), a member leaving gives up only its own:
 * nothing else moves. Score = -weight / ln(u) with u uniform in (0, 1) from the hash, which
 * gives each member a share proportional to its weight.
 */

/** What the assignment needs of a member (membership.ts's Member has both). */
export interface CaptureMember {
  id: string;
  captureWeight: number;
}

/** Two independent 32-bit FNV-1a hashes, each finished with a murmur-style mix, as 52 bits in (0, 1). */
export function unitHash(text: string): number {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  a = mix(a);
  b = mix(b ^ a);
  // 32 + 20 bits, shifted off 0 so ln(u) is finite and negative.
  return ((a >>> 0) * 2 ** 20 + (b >>> 12) + 0.5) / 2 ** 52;
}

function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}

/** The member that captures `stream`, or undefined when no live member captures. */
export function rendezvousOwner(stream: string, members: readonly CaptureMember[]): string | undefined {
  let best: string | undefined;
  let bestScore = -Infinity;
  for (const m of members) {
    if (!(m.captureWeight > 0)) continue;
    const score = -m.captureWeight / Math.log(unitHash(`${m.id}\u0000${stream}`));
    // Ties (practically never) go to the smaller id, so every node still agrees.
    if (score > bestScore || (score === bestScore && best !== undefined && m.id < best)) {
      best = m.id;
      bestScore = score;
    }
  }
  return best;
}

/** Streams per member id under the given members. */
export function assignAll(streams: readonly string[], members: readonly CaptureMember[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const s of streams) {
    const owner = rendezvousOwner(s, members);
    if (owner === undefined) continue;
    let list = out.get(owner);
    if (!list) out.set(owner, (list = []));
    list.push(s);
  }
  return out;
}

/**
 * This node's share of the streams, from the live member list. When Redis is away the
 * member list is the last one read, so a node keeps capturing its share rather than
 * stopping (or taking everyone's).
 */
export class CaptureAssignment {
  constructor(
    readonly selfId: string,
    private readonly live: () => readonly CaptureMember[],
  ) {}

  mine<T extends { name: string }>(streams: readonly T[]): T[] {
    const members = this.live();
    return streams.filter((s) => rendezvousOwner(s.name, members) === this.selfId);
  }

  ownerOf(stream: string): string | undefined {
    return rendezvousOwner(stream, this.live());
  }
}

/** What the capture wiring needs of the cluster service and the shared store. */
export interface CaptureClusterDeps {
  selfId: string;
  captureWeight: number;
  /** Live members (membership.live()); `change` fires when they change. */
  membership: { live(): readonly CaptureMember[]; on(event: 'change', fn: () => void): unknown };
  /** The shared store: `change` (ns, key) when another node edited it. */
  store: { on(event: 'change', fn: (ns: string, key: string) => void): unknown };
  streamsNs: string;
  configNs: string;
}

/**
 * This node's share, recomputed from the live members (this node counted even before its
 * own heartbeat is read back, or while Redis is away), and the notices that make capture
 * re-push its streams: members joined or left, or the registry or config changed elsewhere.
 */
export function captureShare(d: CaptureClusterDeps): { assignment: CaptureAssignment; onChange(fn: (what: 'streams' | 'config') => void): void } {
  const live = (): CaptureMember[] => {
    const members = [...d.membership.live()];
    if (!members.some((m) => m.id === d.selfId)) members.push({ id: d.selfId, captureWeight: d.captureWeight });
    return members;
  };
  const assignment = new CaptureAssignment(d.selfId, live);
  return {
    assignment,
    onChange(fn) {
      d.membership.on('change', () => fn('streams'));
      // A bulk add changes many keys at once: one push for them all, on the next turn.
      let pending: Set<'streams' | 'config'> | undefined;
      d.store.on('change', (ns) => {
        const what = ns === d.streamsNs ? 'streams' : ns === d.configNs ? 'config' : undefined;
        if (!what) return;
        if (!pending) {
          pending = new Set();
          setTimeout(() => { const p = pending!; pending = undefined; for (const w of p) fn(w); }, 50);
        }
        pending.add(what);
      });
    },
  };
}
