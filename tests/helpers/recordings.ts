/** Producing and reading recordings the way a user does: HTTP ingest in, the recording routes out. */
import { concatFrame, decodeEvent, encodeMetrics } from '../../src/shared/telemetry/event-codec.js';
import { pollUntil } from './poll.js';

export interface RecordingListing { run: string; first_step: number | null; last_step: number | null; events: number; bytes: number; segments: number; started_at: string | null; ended_at: string | null }

/** Posts metrics events for `steps` (one event each) through POST /api/ingest; `at(step)` gives each event's timestamp. */
export async function postMetrics(port: number, token: string, run: string, steps: number[], values: (step: number) => Record<string, number> = (s) => ({ loss: 1 / (s + 1), 'ppo/kl': s * 0.001 }), at: (step: number) => number = () => Date.now()): Promise<void> {
  for (let i = 0; i < steps.length; i += 200) {
    const frame = concatFrame(steps.slice(i, i + 200).map((s) => encodeMetrics(s, values(s), undefined, { timestamp: at(s) })));
    const res = await fetch(`http://127.0.0.1:${port}/api/ingest?run=${run}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, body: frame });
    const body = (await res.json()) as { accepted: number; rejected: number; errors: unknown[] };
    if (res.status !== 200 || body.rejected > 0) throw new Error(`ingest refused: ${res.status} ${JSON.stringify(body)}`);
  }
}

export async function listRecordings(port: number): Promise<RecordingListing[]> {
  const res = await fetch(`http://127.0.0.1:${port}/api/recordings`);
  if (res.status !== 200) throw new Error(`GET /api/recordings: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { runs: RecordingListing[] }).runs;
}

/** Waits until the recording of `run` holds at least `events` events. */
export function waitRecorded(port: number, run: string, events: number, ms = 15_000): Promise<RecordingListing> {
  let last: RecordingListing[] = [];
  return pollUntil(`${events} events recorded for ${run}`, ms, async () => {
    last = await listRecordings(port);
    const r = last.find((x) => x.run === run);
    return r && r.events >= events ? r : undefined;
  }, () => last);
}

/** The steps of a binary events reply (u32 length-prefixed events). */
export function stepsOfFrames(body: Buffer): number[] {
  const steps: number[] = [];
  for (let at = 0; at < body.byteLength;) {
    const len = body.readUInt32LE(at);
    const e = decodeEvent(body.subarray(at + 4, at + 4 + len));
    steps.push((e as { step: number }).step);
    at += 4 + len;
  }
  return steps;
}
