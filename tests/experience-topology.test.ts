/**
 * How the experience settings shape the service's wiring: each gateway thread's fan-out ring
 * (which every experience record passes through) takes experience.ringBytes, and the aggregator
 * records experience events only when recording.experience says so.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/shared/config.js';
import { serviceTopology } from '../src/topology.js';

const tokens = { ingestToken: 'ingest-token-123', adminToken: 'admin-token-123' };
const topology = (args: string[]) => serviceTopology(loadConfig(['--no-demo', '--fanout-threads', '2', ...args], {}), { tokens, port: 1 });
const aggregatorOptions = (spec: ReturnType<typeof topology>) => spec.actors.find((a) => a.name === 'aggregator')!.options as { recordRing?: string; recordExperience?: boolean };

describe('experience wiring', () => {
  it("each gateway's fan-out ring is experience.ringBytes (32 MiB unless set)", () => {
    const byDefault = topology([]);
    expect(byDefault.rings!['fanout.gw0']).toMatchObject({ kind: 'record', capacityBytes: 32 << 20 });
    expect(byDefault.rings!['fanout.gw1']).toMatchObject({ kind: 'record', capacityBytes: 32 << 20 });
    expect(topology(['--experience-ring-bytes', String(4 << 20)]).rings!['fanout.gw1']).toMatchObject({ capacityBytes: 4 << 20 });
    expect(() => loadConfig(['--experience-ring-bytes', '1000'], {})).toThrow(/experience\.ringBytes/);
  });

  it('records experience only with --recording-experience, and never without a recording', () => {
    expect(aggregatorOptions(topology([]))).toMatchObject({ recordRing: 'record.events', recordExperience: false });
    expect(aggregatorOptions(topology(['--recording-experience']))).toMatchObject({ recordRing: 'record.events', recordExperience: true });
    const off = aggregatorOptions(topology(['--no-recording', '--recording-experience']));
    expect(off.recordRing).toBeUndefined();
  });
});
