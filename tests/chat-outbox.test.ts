import { describe, expect, it } from 'vitest';
import { Outbox, outboxDefaults, sanitizeLine, type OutboxOptions } from '../src/actors/chat/outbox.js';

function make(overrides: Partial<OutboxOptions> = {}) {
  const sent: { at: number; text: string }[] = [];
  let clock = 0;
  const box = new Outbox({ ...outboxDefaults(false, 0), ...overrides }, { deliver: (text) => sent.push({ at: clock, text }) });
  /** Drive the outbox like the actor's timer does, up to `until`. */
  const run = (until: number) => {
    for (;;) {
      const delay = box.pump(clock);
      if (delay === undefined || clock + delay > until) { clock = until; return; }
      clock += delay;
    }
  };
  return { box, sent, run, at: (t: number) => { clock = t; }, now: () => clock };
}

describe('Outbox rate limiting', () => {
  it('never sends more than 20 lines in any 31 s window, and keeps ≥1.1 s between lines (non-moderator: Twitch 1 s rule plus a margin)', () => {
    const { box, sent, run } = make({ maxAgeMs: 1e9, capacity: 100 });
    for (let i = 0; i < 45; i++) box.enqueue({ text: `announcement ${i}`, priority: 'high' }, 0);
    run(120_000);
    expect(sent).toHaveLength(45);
    for (let i = 0; i < sent.length; i++) {
      const inWindow = sent.filter((s) => s.at >= sent[i].at && s.at < sent[i].at + 31_000).length;
      expect(inWindow).toBeLessThanOrEqual(20);
      if (i > 0) expect(sent[i].at - sent[i - 1].at).toBeGreaterThanOrEqual(1_100);
    }
    expect(sent[20].at).toBe(31_000); // the 21st waits for the first to leave the window
    expect(box.stats.limiterWaits).toBeGreaterThan(0);
  });

  it('allows 100 per window and no spacing as a moderator', () => {
    const sent: number[] = [];
    const box = new Outbox({ ...outboxDefaults(true, 0), capacity: 200 }, { deliver: () => sent.push(0) });
    for (let i = 0; i < 150; i++) box.enqueue({ text: `a${i}`, priority: 'high' }, 0);
    expect(box.pump(0)).toBe(31_000);
    expect(sent).toHaveLength(100);
  });

  it('holds everything while disconnected', () => {
    const { box, sent } = make();
    box.enqueue({ text: 'hello', priority: 'high' }, 0);
    expect(box.pump(0, false)).toBe(1_000);
    expect(sent).toHaveLength(0);
    box.pump(10, true);
    expect(sent).toHaveLength(1);
  });

  it('gives the limiter slot back when a send fails', () => {
    const { box } = make({ limit: 1, minIntervalMs: 0 });
    box.enqueue({ text: 'x', priority: 'high' }, 0);
    box.pump(0);
    expect(box.nextSendAt(1)).toBe(31_000);
    box.sendFailed();
    expect(box.nextSendAt(1)).toBe(1);
    expect(box.stats.dropped.send_failed).toBe(1);
  });
});

describe('Outbox merging, queue bound and cooldown', () => {
  it('merges replies that back up behind the limiter into one line shorter than 500 chars', () => {
    const { box, sent, run, at } = make({ userCooldownMs: 0 });
    box.enqueue({ user: 'first', text: 'sent at once', priority: 'normal' }, 0);
    run(0);
    expect(sent.map((s) => s.text)).toEqual(['@first: sent at once']);
    at(100);
    box.enqueue({ user: 'a', text: 'vote counted: P-7f', priority: 'low' }, 100);
    box.enqueue({ user: 'b', text: 'no legal move matches "P-7e"', priority: 'normal' }, 100);
    box.enqueue({ user: 'a', text: 'level set', priority: 'normal' }, 100);
    run(1_100);
    expect(sent[1].text).toBe('@b: no legal move matches "P-7e" | @a: vote counted: P-7f; level set');
    expect(box.stats.merged).toBe(2);
    // Long replies do not merge past the limit; what is left goes out next.
    at(2_200);
    for (const u of ['x', 'y', 'z']) box.enqueue({ user: u, text: 'w'.repeat(200), priority: 'normal' }, 2_200);
    box.pump(2_200); // first line: x + y (≤ 500), z waits
    at(3_300);
    box.pump(3_300);
    const last = sent.slice(-2).map((s) => s.text);
    expect(last[0].length).toBeLessThan(500); // tmi.js would split a line of 500
    expect(last[0]).toMatch(/^@x: w+ \| @y: w+$/);
    expect(last[1]).toMatch(/^@z: w+$/);
  });

  it('a timer that fires early never sends before the gap (it is waited out, not rounded away)', () => {
    const { box, sent, at } = make();
    box.enqueue({ text: 'one', priority: 'high' }, 0);
    box.enqueue({ text: 'two', priority: 'high' }, 0);
    const delay = box.pump(0)!;
    expect(delay).toBe(1_100);
    at(delay - 1);
    expect(box.pump(delay - 1)).toBe(1);
    expect(sent.map((s) => s.text)).toEqual(['one']);
    at(delay);
    box.pump(delay);
    expect(sent.map((s) => s.at)).toEqual([0, 1_100]);
  });

  it('never repeats a line within 31 s: each repeat gets one more invisible character', () => {
    const { box, sent, run, at } = make({ userCooldownMs: 0 });
    for (let i = 0; i < 3; i++) box.enqueue({ text: 'Vote now!', priority: 'high' }, 0);
    run(10_000);
    expect(sent.map((s) => s.text)).toEqual(['Vote now!', 'Vote now! \u{E0000}', 'Vote now! \u{E0000}\u{E0000}']);
    expect(box.stats.varied).toBe(2);
    at(32_000);
    box.enqueue({ text: 'Vote now!', priority: 'high' }, 32_000);
    run(32_000);
    expect(sent.at(-1)).toEqual({ at: 32_000, text: 'Vote now!' }); // the first left Twitch's window
    const long = make({ userCooldownMs: 0 });
    for (let i = 0; i < 2; i++) long.box.enqueue({ text: 'x'.repeat(600), priority: 'high' }, 0);
    long.run(5_000);
    expect(long.sent[1].text.length).toBeLessThanOrEqual(499);
    expect(long.sent[1].text).not.toBe(long.sent[0].text);
  });

  it('sends a line the server refused again, after a pause, then gives up and counts it', () => {
    const { box, sent, run, at } = make();
    box.enqueue({ user: 'a', text: 'hello', priority: 'low' }, 0);
    run(0);
    at(50);
    box.enqueue({ user: 'b', text: 'later', priority: 'low' }, 50);
    expect(box.refused(50, 2_000)).toBe(true); // msg_ratelimit for "@a: hello"
    run(2_050);
    expect(sent.map((s) => [s.at, s.text])).toEqual([[0, '@a: hello'], [2_050, '@a: hello']]); // the retry first, alone
    expect(box.refused(2_060, 2_000)).toBe(true); // second retry
    run(4_060);
    expect(box.refused(4_070, 2_000)).toBe(false); // maxRetries (2) spent: dropped and counted
    run(10_000);
    expect(sent.map((s) => s.text)).toEqual(['@a: hello', '@a: hello', '@a: hello', '@b: later']);
    expect(box.stats.retried).toBe(2);
    expect(box.stats.dropped.refused).toBe(1);
  });

  it('drops the oldest low-priority reply when full, and counts it', () => {
    const { box, sent, run } = make({ capacity: 3, userCooldownMs: 0, maxLength: 40 });
    box.enqueue({ user: 'a', text: 'low 1', priority: 'low' }, 0);
    box.enqueue({ user: 'b', text: 'normal', priority: 'normal' }, 0);
    box.enqueue({ user: 'c', text: 'low 2', priority: 'low' }, 0);
    expect(box.enqueue({ text: 'announcement', priority: 'high' }, 0)).toBe(true);
    expect(box.stats.dropped.queue_full).toBe(1);
    expect(box.length).toBe(3);
    box.enqueue({ user: 'd', text: 'low 3', priority: 'low' }, 0); // evicts low 2
    expect(box.enqueue({ text: 'x', priority: 'low' }, 0)).toBe(true); // evicts low 3
    run(10_000);
    const all = sent.map((s) => s.text).join(' / ');
    expect(all).toContain('announcement');
    expect(all).toContain('@b: normal');
    expect(all).not.toContain('low 1');
    expect(all).not.toContain('low 2');
    expect(box.stats.dropped.queue_full).toBe(3);
  });

  it('replies to one user at most once per cooldown, but announcements are exempt', () => {
    const { box } = make({ userCooldownMs: 5_000 });
    expect(box.enqueue({ user: 'Alice', userKey: '1', text: 'a', priority: 'normal' }, 0)).toBe(true);
    expect(box.enqueue({ user: 'Alice', userKey: '1', text: 'b', priority: 'normal' }, 4_999)).toBe(false);
    expect(box.enqueue({ user: 'Bob', userKey: '2', text: 'c', priority: 'normal' }, 4_999)).toBe(true);
    expect(box.enqueue({ user: 'Alice', userKey: '1', text: 'd', priority: 'normal' }, 5_000)).toBe(true);
    expect(box.enqueue({ text: 'game!', priority: 'high' }, 5_000)).toBe(true);
    expect(box.stats.dropped.cooldown).toBe(1);
  });

  it('drops stale replies and everything when read-only', () => {
    const { box, sent } = make({ maxAgeMs: 10_000 });
    box.enqueue({ user: 'a', text: 'old', priority: 'normal' }, 0);
    box.pump(20_000, false);
    box.pump(20_001, true);
    expect(sent).toHaveLength(0);
    expect(box.stats.dropped.stale).toBe(1);
    box.setReadOnly(true);
    expect(box.enqueue({ text: 'x', priority: 'high' }, 0)).toBe(false);
    expect(box.stats.dropped.read_only).toBe(1);
  });
});

describe('sanitizeLine', () => {
  it('keeps one safe line', () => {
    expect(sanitizeLine('a\r\nPRIVMSG #x :evil', 500)).toBe('a PRIVMSG #x :evil');
    expect(sanitizeLine('/ban someone', 500)).toBe('\u200b/ban someone');
    expect(sanitizeLine('.timeout x', 500).startsWith('.')).toBe(false);
    expect(sanitizeLine('x'.repeat(600), 500)).toHaveLength(500);
    expect(sanitizeLine(`${'x'.repeat(498)}😀😀`, 500)).toBe(`${'x'.repeat(498)}…`); // no half surrogate pair
  });
});
