/** The soak benchmark's growth figure: a saw-tooth heap is not growth, a rising floor is. */
import { describe, expect, it } from 'vitest';
import { byActor, fittedSlopePerHour, floorSlopePerHour } from '../bench/soak.js';

const HOUR = 3_600_000;
/** 1,000 samples a second apart: a saw-tooth of 5 MB collected every 500 s, plus `mbPerHour` of growth. */
const sawtooth = (mbPerHour: number) => Array.from({ length: 1000 }, (_, i): [number, number] => [i * 1000, 10 + (i % 500) / 100 + (i * 1000 * mbPerHour) / HOUR]);

describe('soak growth figures', () => {
  it('reads a saw-tooth with a flat floor as no growth, where a least-squares fit would not', () => {
    expect(floorSlopePerHour(sawtooth(0))).toBeCloseTo(0, 6);
    expect(fittedSlopePerHour(sawtooth(0))).toBeGreaterThan(5);
  });

  it('reads a rising floor as its rate of growth', () => {
    expect(floorSlopePerHour(sawtooth(10))).toBeCloseTo(10, 0);
    expect(floorSlopePerHour(sawtooth(-4))).toBeCloseTo(-4, 0);
  });

  it('takes each thread of a Prometheus exposition by its actor label', () => {
    const text = 'nodejs_heap_size_used_bytes{actor="supervisor"} 123\nnodejs_heap_size_used_bytes{actor="gateway-0"} 4.5e6\nother{actor="x"} 1\n';
    expect(byActor(text, 'nodejs_heap_size_used_bytes')).toEqual({ supervisor: 123, 'gateway-0': 4.5e6 });
  });
});
