/**
 * The experience stream end to end through the real service with the demo trainer emitting
 * Keisei-sized experience (46×9×9 float32 state, 13,527-action mask), consumed with the Node
 * SDK's ExperienceConsumer: batch contents and metadata, filters, live configure, stats,
 * resume without gap or duplicate across a reconnect to another gateway thread, and every
 * filter validation error naming its field.
 */
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ExperienceConsumer, ExperienceRefusedError, type ExperienceBatch } from '../src/sdk/index.js';
import { INGEST_TOKEN, useDemoExperienceService, type Harness } from './helpers/service-harness.js';

let h: Harness;
let url: string;
useDemoExperienceService((started, experienceUrl) => { h = started; url = experienceUrl; });

async function take(c: ExperienceConsumer, n: number, timeoutMs = 15_000): Promise<ExperienceBatch[]> {
  const out: ExperienceBatch[] = [];
  const timer = setTimeout(() => c.close(), timeoutMs);
  for await (const b of c) {
    out.push(b);
    if (out.length >= n) break;
  }
  clearTimeout(timer);
  return out;
}

function seqs(batches: ExperienceBatch[]): number[] {
  return batches.flatMap((b) => b.records.map((r) => r.seq));
}

describe('experience consumer against the service with the demo running', () => {
  it('delivers Keisei-sized records with metadata, honours min_turn, applies configure(terminal_only) live, and reports stats', async () => {
    const c = await ExperienceConsumer.connect(url, { token: INGEST_TOKEN, minTurn: 6, batchSize: 8, name: 'sdk-test' });
    const first = await take(c, 3);
    expect(first).toHaveLength(3);
    for (const b of first) {
      expect(b.records.length).toBeGreaterThan(0);
      expect(b.seqFirst).toBe(b.records[0].seq);
      expect(b.seqLast).toBe(b.records[b.records.length - 1].seq);
      expect(Math.abs(b.serverTime - Date.now())).toBeLessThan(10_000);
      for (const r of b.records) {
        expect(r.state.length).toBe(3726);
        expect(r.stateShape).toEqual([46, 9, 9]);
        expect(r.maskLen).toBeGreaterThanOrEqual(13_527);
        expect(r.legalMask.byteLength * 8).toBeGreaterThanOrEqual(13_527);
        expect(r.turn).toBeGreaterThanOrEqual(6);
        // the played action is legal in its own mask
        expect(r.legalMask[r.action >> 3] & (1 << (r.action & 7))).not.toBe(0);
      }
    }
    const configured = await c.configure({ terminal_only: true, batch_size: 1 });
    expect(configured.filters).toMatchObject({ terminal_only: true, batch_size: 1, min_turn: 6 });
    expect(typeof configured.cursor).toBe('number');
    // Records from the cursor on were decided by the new filter: only terminal ones (batches
    // already queued, here or on the server, may still hold earlier records).
    const afterRecords: ExperienceBatch['records'] = [];
    const timer = setTimeout(() => c.close(), 30_000);
    for await (const b of c) {
      afterRecords.push(...b.records.filter((r) => r.seq >= configured.cursor!));
      if (afterRecords.length >= 3) break;
    }
    clearTimeout(timer);
    expect(afterRecords.length).toBeGreaterThanOrEqual(3);
    expect(afterRecords.every((r) => r.done)).toBe(true);
    const stats = await c.stats();
    expect(stats).toMatchObject({ type: 'stats', filters: { terminal_only: true } });
    expect(stats.delivered).toBeGreaterThanOrEqual(afterRecords.length);
    expect(stats.filtered).toBeGreaterThan(0);
    expect(typeof stats.lag).toBe('number');
    expect(stats.bytes).toBeGreaterThan(3726 * 4);
    c.close();
    const metrics = await (await fetch(`http://127.0.0.1:${h.service.port}/metrics`)).text();
    expect(metrics).toMatch(/ringcast_gateway_experience_consumer_records_total\{[^}]*consumer="sdk-test"[^}]*outcome="delivered"[^}]*\} [1-9]/);
  }, 60_000);

  it('resumes after the last batch with no gap and no duplicate, on another gateway thread', async () => {
    const a = await ExperienceConsumer.connect(url, { token: INGEST_TOKEN, batchSize: 4, start: 'earliest' });
    const gwA = (await a.stats()).gateway;
    const before = await take(a, 5);
    a.close();
    const resumeAt = before[before.length - 1].seqLast + 1;
    // Reconnect until the kernel hands the connection to the other thread (SO_REUSEPORT hashes by source port).
    let b: ExperienceConsumer | undefined;
    for (let i = 0; i < 16 && !b; i++) {
      const c = await ExperienceConsumer.connect(url, { token: INGEST_TOKEN, batchSize: 4, start: resumeAt });
      if ((await c.stats()).gateway !== gwA) b = c;
      else c.close();
    }
    expect(b, 'a connection on the other gateway thread').toBeDefined();
    const afterBatches = await take(b!, 5);
    b!.close();
    const all = seqs([...before, ...afterBatches]);
    expect(afterBatches[0].records[0].seq).toBe(resumeAt);
    for (let i = 1; i < all.length; i++) expect(all[i]).toBe(all[i - 1] + 1);
    expect(afterBatches.every((x) => x.missed === 0 && x.dropped === 0)).toBe(true);
  }, 60_000);

  it('reconnects by itself after the connection drops and continues without gap or duplicate', async () => {
    const c = await ExperienceConsumer.connect(url, { token: INGEST_TOKEN, batchSize: 4, start: 'earliest' });
    const got: ExperienceBatch[] = [];
    const timer = setTimeout(() => c.close(), 30_000);
    for await (const batch of c) {
      got.push(batch);
      if (got.length === 3) (c as unknown as { ws: { terminate(): void } }).ws.terminate();
      if (got.length >= 8) break;
    }
    clearTimeout(timer);
    c.close();
    expect(got).toHaveLength(8);
    expect(c.counts.reconnects).toBeGreaterThanOrEqual(1);
    const all = seqs(got);
    for (let i = 1; i < all.length; i++) expect(all[i]).toBe(all[i - 1] + 1);
  }, 60_000);

  it('compress=deflate delivers the same records in fewer bytes', async () => {
    const plain = await ExperienceConsumer.connect(url, { token: INGEST_TOKEN, batchSize: 16, start: 'earliest' });
    const packed = await ExperienceConsumer.connect(url, { token: INGEST_TOKEN, batchSize: 16, start: 'earliest', compress: 'deflate' });
    const [a, b] = await Promise.all([take(plain, 4), take(packed, 4)]);
    const [sa, sb] = await Promise.all([plain.stats(), packed.stats()]);
    plain.close();
    packed.close();
    const ra = a.flatMap((x) => x.records);
    const rb = b.flatMap((x) => x.records);
    expect(rb.length).toBe(ra.length);
    expect(rb.map((r) => r.seq)).toEqual(ra.map((r) => r.seq));
    for (let i = 0; i < ra.length; i++) {
      expect(Buffer.from(rb[i].state.buffer)).toEqual(Buffer.from(ra[i].state.buffer));
      expect(Buffer.from(rb[i].legalMask)).toEqual(Buffer.from(ra[i].legalMask));
    }
    expect(sb.compress).toBe('deflate');
    // Keisei planes are mostly 0/1 and masks mostly 0: several times smaller per record.
    expect((sb.bytes as number) / (sb.delivered as number)).toBeLessThan(((sa.bytes as number) / (sa.delivered as number)) / 4);
  }, 60_000);

  it('refuses every invalid filter with an error naming the field, at connect and in configure', async () => {
    const bad: Array<[string, string]> = [
      ['games', 'games=' + 'x'.repeat(200)], ['players', 'players=a,,b'], ['min_turn', 'min_turn=abc'], ['max_turn', 'max_turn=1e999'],
      ['reward_min', 'reward_min=nan'], ['reward_max', 'reward_max=x'], ['terminal_only', 'terminal_only=maybe'],
      ['sample_rate', 'sample_rate=1.5'], ['per_game_cap', 'per_game_cap=0'], ['batch_size', 'batch_size=0'],
      ['timeout_ms', 'timeout_ms=-1'], ['max_rate', 'max_rate=0'], ['max_turn', 'min_turn=5&max_turn=2'],
      ['reward_max', 'reward_min=1&reward_max=0'], ['start', 'start=yesterday'], ['v', 'v=3'], ['compress', 'compress=gzip'],
      ['colour', 'colour=blue'],
    ];
    for (const [field, query] of bad) {
      const answer = await new Promise<{ status: number; body: string }>((resolve) => {
        const ws = new WebSocket(`${url}?${query}`, { headers: { authorization: `Bearer ${INGEST_TOKEN}` } });
        ws.on('unexpected-response', (_q, res) => {
          let body = '';
          res.on('data', (d: Buffer) => { body += d.toString(); });
          res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }); ws.terminate(); });
        });
        ws.on('open', () => { resolve({ status: 101, body: '' }); ws.close(); });
        ws.on('error', () => undefined);
      });
      expect(answer.status, query).toBe(400);
      expect((JSON.parse(answer.body) as { error: string }).error, query).toMatch(new RegExp(`^${field}: `));
    }
    // The SDK surfaces the same message.
    await expect(ExperienceConsumer.connect(url, { token: INGEST_TOKEN, sampleRate: 2 })).rejects.toThrow(/^sample_rate: must be a number in 0 \.\. 1/);
    await expect(ExperienceConsumer.connect(url, { token: 'wrong-token-123' })).rejects.toBeInstanceOf(ExperienceRefusedError);
    const c = await ExperienceConsumer.connect(url, { token: INGEST_TOKEN });
    const badConfigure: Array<[string, Record<string, unknown>]> = [
      ['games', { games: [1, 2] }], ['players', { players: 'a,' + 'y'.repeat(300) }], ['min_turn', { min_turn: 'x' }],
      ['max_turn', { max_turn: true }], ['reward_min', { reward_min: [] }], ['reward_max', { reward_max: {} }],
      ['terminal_only', { terminal_only: 'yes' }], ['sample_rate', { sample_rate: -0.1 }], ['per_game_cap', { per_game_cap: 1.5 }],
      ['batch_size', { batch_size: 100_000 }], ['timeout_ms', { timeout_ms: 0 }], ['max_rate', { max_rate: 'fast' }], ['colour', { colour: 1 }],
    ];
    for (const [field, filters] of badConfigure) {
      await expect(c.configure(filters as never), JSON.stringify(filters)).rejects.toThrow(new RegExp(`^${field}: `));
    }
    // A refused configure leaves the filters as they were.
    expect((await c.stats()).filters).toMatchObject({ games: null, terminal_only: false, batch_size: 32 });
    c.close();
  }, 60_000);
});
