/**
 * Weighted rendezvous hashing of streams over capture nodes: every stream has exactly one
 * owner, shares follow the weights, and a join or leave moves only the streams it must.
 */
import { describe, expect, it } from 'vitest';
import { assignAll, CaptureAssignment, rendezvousOwner, unitHash, type CaptureMember } from '../src/services/cluster/capture-assign.js';

const streams = Array.from({ length: 3000 }, (_, i) => `channel_${i}`);
const nodes = (...spec: Array<[string, number]>): CaptureMember[] => spec.map(([id, captureWeight]) => ({ id, captureWeight }));
const owners = (members: CaptureMember[]) => new Map(streams.map((s) => [s, rendezvousOwner(s, members)]));

describe('capture assignment by weighted rendezvous hashing', () => {
  it('hashes into (0, 1), spread evenly', () => {
    const u = streams.map((s) => unitHash(s));
    expect(u.every((x) => x > 0 && x < 1)).toBe(true);
    const buckets = new Array(10).fill(0);
    for (const x of u) buckets[Math.floor(x * 10)]++;
    for (const b of buckets) expect(b).toBeGreaterThan(300 * 0.8);
  });

  it('balances equal weights and follows unequal ones', () => {
    const equal = assignAll(streams, nodes(['a', 1], ['b', 1], ['c', 1]));
    for (const id of ['a', 'b', 'c']) expect(Math.abs(equal.get(id)!.length - 1000)).toBeLessThan(100);
    const weighted = assignAll(streams, nodes(['a', 1], ['b', 2], ['c', 3]));
    expect(Math.abs(weighted.get('a')!.length / 3000 - 1 / 6)).toBeLessThan(0.03);
    expect(Math.abs(weighted.get('b')!.length / 3000 - 2 / 6)).toBeLessThan(0.03);
    expect(Math.abs(weighted.get('c')!.length / 3000 - 3 / 6)).toBeLessThan(0.03);
  });

  it('gives nothing to a weight-0 node, and no owner without capture nodes', () => {
    const m = assignAll(streams, nodes(['a', 1], ['viewer-only', 0]));
    expect(m.get('a')).toHaveLength(3000);
    expect(m.has('viewer-only')).toBe(false);
    expect(rendezvousOwner('x', nodes(['v', 0]))).toBeUndefined();
    expect(rendezvousOwner('x', [])).toBeUndefined();
  });

  it('moves only the joining node\'s share on a join, and only the leaving node\'s streams on a leave', () => {
    const three = nodes(['a', 1], ['b', 1], ['c', 1]);
    const before = owners(three);
    const joined = owners([...three, { id: 'd', captureWeight: 1 }]);
    let moved = 0;
    for (const s of streams) {
      if (joined.get(s) !== before.get(s)) {
        moved++;
        expect(joined.get(s)).toBe('d'); // nothing moves between the old nodes
      }
    }
    expect(Math.abs(moved - 750)).toBeLessThan(100);
    const left = owners(three.filter((m) => m.id !== 'b'));
    for (const s of streams) {
      if (before.get(s) !== 'b') expect(left.get(s)).toBe(before.get(s));
      else expect(['a', 'c']).toContain(left.get(s));
    }
  });

  it('gives each node of a cluster the same answer, and each stream to exactly one node', () => {
    const live = nodes(['node-c', 2], ['node-a', 1], ['node-b', 1]);
    const views = ['node-a', 'node-b', 'node-c'].map((id) => new CaptureAssignment(id, () => [...live].reverse()));
    const list = streams.map((name) => ({ name, priority: 50 }));
    const shares = views.map((v) => v.mine(list).map((s) => s.name));
    expect(shares.flat().sort()).toEqual([...streams].sort());
    expect(new Set(shares.flat()).size).toBe(streams.length);
    expect(views[0].ownerOf('channel_7')).toBe(rendezvousOwner('channel_7', live));
  });
});
