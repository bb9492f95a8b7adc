/**
 * Outgoing chat: Twitch's bot limits enforced on our side, because tmi.js has no limiter and
 * going over the limit blocks the account from sending for 30 minutes.
 *
 *  - Send limiter: at most `limit` messages in any `windowMs` (20 / 30 s, or 100 as moderator),
 *    as a sliding window of send times. A token bucket with burst N and refill N per 30 s can
 *    send 2N inside one 30 s window, which is exactly what Twitch punishes, so the window is
 *    kept exact; a small margin covers network jitter. Non-moderators also keep `minIntervalMs`
 *    between messages: Twitch's per-channel 1 message/s for ordinary users, plus a margin,
 *    because two lines sent exactly 1,000 ms apart can reach Twitch 950 ms apart and the
 *    second is then silently dropped.
 *  - Duplicates: Twitch drops a line identical to one sent in the last 30 s, so a repeated
 *    line gets an invisible variation (a trailing tag character, ignored by chat clients).
 *  - Server refusals (NOTICE msg_ratelimit / msg_duplicate / msg_slowmode): the refused line
 *    goes back to the front of the queue, up to `maxRetries` times, after a pause.
 *  - Bounded queue (`capacity`): when full, the oldest low-priority reply goes first, then the
 *    oldest normal one; announcements (high) are only dropped for newer announcements.
 *  - Per-user cooldown: a user gets at most one reply per `userCooldownMs`; their commands still
 *    take effect (votes count), only the reply is skipped.
 *  - Merging: when replies back up behind the limiter, several go out as one line
 *    `@a: … | @b: …` (≤ maxLength), so a busy chat costs fewer messages.
 *  - Staleness: a reply that waited longer than `maxAgeMs` is dropped rather than sent late.
 *
 * Pure logic with an injected clock: the actor calls pump(now) from a timer.
 */

export type Priority = 'high' | 'normal' | 'low';
export type DropReason = 'queue_full' | 'cooldown' | 'stale' | 'read_only' | 'send_failed' | 'refused';

export interface Reply {
  /** Addressed user (display name), or undefined for an announcement. */
  user?: string;
  /** Cooldown key (user id or login); defaults to `user`. */
  userKey?: string;
  text: string;
  priority: Priority;
}

interface Queued extends Reply {
  at: number;
  /** A line that was already rendered and sent once (a retry): goes out as it is, alone. */
  line?: string;
  retries?: number;
}

export interface OutboxOptions {
  limit: number;
  windowMs: number;
  minIntervalMs: number;
  capacity: number;
  userCooldownMs: number;
  maxLength: number;
  maxAgeMs: number;
  /** How long Twitch remembers a line for its duplicate rule (30 s, plus a margin). */
  duplicateWindowMs: number;
  /** How often a line the server refused is sent again before it is dropped. */
  maxRetries: number;
}

export interface OutboxHooks {
  deliver(text: string): void;
  sent?(count: number): void;
  dropped?(reason: DropReason, count: number): void;
  merged?(count: number): void;
  limiterWait?(): void;
}

export interface OutboxStats {
  queued: number;
  sent: number;
  merged: number;
  dropped: Record<DropReason, number>;
  limiterWaits: number;
  retried: number;
  varied: number;
}

const PRIORITY_RANK: Readonly<Record<Priority, number>> = { low: 0, normal: 1, high: 2 };

export function outboxDefaults(moderator: boolean, userCooldownMs: number): OutboxOptions {
  return {
    limit: moderator ? 100 : 20,
    windowMs: 30_000 + 1_000, // 1 s margin: our clock and Twitch's see the same messages a little apart
    minIntervalMs: moderator ? 0 : 1_100,
    capacity: 50,
    userCooldownMs,
    // Twitch allows 500 characters, but tmi.js splits any line of length >= 500 into two messages.
    maxLength: 499,
    maxAgeMs: 60_000,
    duplicateWindowMs: 30_000 + 1_000,
    maxRetries: 2,
  };
}

/** One line of chat: no line breaks (IRC injection), no leading command character, ≤ max UTF-16 units. */
export function sanitizeLine(text: string, max: number): string {
  let s = text.replace(/[\r\n\u0000]+/g, ' ').replace(/\s+/g, ' ').trim();
  if (/^[./\\]/.test(s)) s = `\u200b${s}`; // tmi.js would send ".x" or "/x" as a chat command
  if (s.length > max) {
    // UTF-16 length, as tmi.js measures it; never cut a surrogate pair in half.
    let cut = s.slice(0, max - 1);
    if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
    s = `${cut}…`;
  }
  return s;
}

function render(r: Reply): string {
  return r.user ? `@${r.user}: ${r.text}` : r.text;
}

export class Outbox {
  private readonly queue: Queued[] = [];
  private readonly sendTimes: number[] = [];
  private readonly lastReplyTo = new Map<string, number>();
  /** Lines delivered inside the duplicate window (bounded by the send limit), oldest first. */
  private readonly recentLines: { text: string; at: number; retries: number }[] = [];
  /** After a server refusal: nothing goes out before this time. */
  private pauseUntil = 0;
  private readOnly = false;
  readonly stats: OutboxStats = {
    queued: 0, sent: 0, merged: 0, limiterWaits: 0, retried: 0, varied: 0,
    dropped: { queue_full: 0, cooldown: 0, stale: 0, read_only: 0, send_failed: 0, refused: 0 },
  };

  constructor(private readonly opts: OutboxOptions, private readonly hooks: OutboxHooks) {}

  /** Anonymous connections cannot send: every reply is dropped (and counted). */
  setReadOnly(readOnly: boolean): void {
    this.readOnly = readOnly;
  }

  get length(): number {
    return this.queue.length;
  }

  /** Queue a reply; false when it was dropped (cooldown, read-only, or no room). */
  enqueue(reply: Reply, now: number): boolean {
    if (this.readOnly) return this.drop('read_only');
    const key = reply.userKey ?? reply.user;
    if (key !== undefined && reply.priority !== 'high' && this.opts.userCooldownMs > 0) {
      const last = this.lastReplyTo.get(key);
      if (last !== undefined && now - last < this.opts.userCooldownMs) return this.drop('cooldown');
    }
    if (this.queue.length >= this.opts.capacity && !this.evictFor(reply.priority)) return this.drop('queue_full');
    if (key !== undefined) {
      this.lastReplyTo.delete(key);
      this.lastReplyTo.set(key, now);
      if (this.lastReplyTo.size > 10_000) this.lastReplyTo.delete(this.lastReplyTo.keys().next().value as string);
    }
    this.queue.push({ ...reply, text: sanitizeLine(reply.text, this.opts.maxLength), at: now });
    this.stats.queued = this.queue.length;
    return true;
  }

  /** Make room by dropping the oldest entry of the lowest priority not above `incoming`. */
  private evictFor(incoming: Priority): boolean {
    for (let rank = 0; rank <= PRIORITY_RANK[incoming]; rank++) {
      const i = this.queue.findIndex((q) => PRIORITY_RANK[q.priority] === rank);
      if (i >= 0) {
        this.queue.splice(i, 1);
        this.drop('queue_full');
        return true;
      }
    }
    return false;
  }

  private drop(reason: DropReason, count = 1): false {
    this.stats.dropped[reason] += count;
    this.hooks.dropped?.(reason, count);
    return false;
  }

  /** When the limiter next allows a message (≤ now: already). */
  nextSendAt(now: number): number {
    const times = this.sendTimes;
    while (times.length > 0 && now - times[0] >= this.opts.windowMs) times.shift();
    let at = Math.max(now, this.pauseUntil);
    if (times.length >= this.opts.limit) at = Math.max(at, times[times.length - this.opts.limit] + this.opts.windowMs);
    if (times.length > 0) at = Math.max(at, times[times.length - 1] + this.opts.minIntervalMs);
    return at;
  }

  /**
   * Send what the limiter allows now. `canSend` false (disconnected) keeps everything queued.
   * Returns the delay until the next attempt is useful, or undefined when the queue is empty.
   */
  pump(now: number, canSend = true): number | undefined {
    this.dropStale(now);
    while (this.queue.length > 0) {
      if (!canSend) return 1_000;
      const at = this.nextSendAt(now);
      if (at > now) {
        this.stats.limiterWaits++;
        this.hooks.limiterWait?.();
        return at - now;
      }
      const { line, retries } = this.takeLine();
      const text = this.unlikeRecent(line, now);
      this.recentLines.push({ text, at: now, retries });
      this.sendTimes.push(now);
      this.stats.sent++;
      this.hooks.sent?.(1);
      this.hooks.deliver(text);
    }
    this.stats.queued = 0;
    return undefined;
  }

  /**
   * A line is never identical to one sent inside the duplicate window: each repeat gets one
   * more invisible tag character (U+E0000) at the end; one that cannot fit is cut to fit.
   */
  private unlikeRecent(line: string, now: number): string {
    const recent = this.recentLines;
    while (recent.length > 0 && now - recent[0].at >= this.opts.duplicateWindowMs) recent.shift();
    if (!recent.some((r) => r.text === line)) return line;
    this.stats.varied++;
    let text = line;
    for (let n = 1; recent.some((r) => r.text === text); n++) {
      const suffix = ` ${'\u{E0000}'.repeat(n)}`;
      text = `${line.slice(0, Math.max(0, this.opts.maxLength - suffix.length))}${suffix}`;
    }
    return text;
  }

  /**
   * The server refused the last line (NOTICE msg_ratelimit, msg_duplicate, msg_slowmode): it is
   * queued again at the front, after a pause of `pauseMs`, at most `maxRetries` times; then dropped.
   * Returns true when it will be retried.
   */
  refused(now: number, pauseMs: number, duplicate = false): boolean {
    const last = this.recentLines.at(-1);
    if (!last) return false;
    this.pauseUntil = Math.max(this.pauseUntil, now + pauseMs);
    if (last.retries >= this.opts.maxRetries) {
      this.drop('refused');
      return false;
    }
    // A rate refusal: the copy never reached chat, so the retry may repeat it word for word.
    // A duplicate refusal: keep it, so the retry gets the next variation.
    if (!duplicate) this.recentLines.pop();
    this.queue.unshift({ text: last.text, line: last.text, priority: 'high', at: now, retries: last.retries + 1 });
    this.stats.retried++;
    this.stats.queued = this.queue.length;
    return true;
  }

  /**
   * A delivery that failed (the link dropped mid-send): the message never reached Twitch, so
   * its limiter slot is given back (the latest one; close enough for a rare event) and it is counted.
   */
  sendFailed(): void {
    this.sendTimes.pop();
    this.recentLines.pop();
    this.drop('send_failed');
  }

  private dropStale(now: number): void {
    const before = this.queue.length;
    for (let i = this.queue.length - 1; i >= 0; i--) if (now - this.queue[i].at > this.opts.maxAgeMs) this.queue.splice(i, 1);
    if (this.queue.length < before) this.drop('stale', before - this.queue.length);
  }

  /**
   * The next line: the highest-priority oldest entry, plus as many other queued replies as fit
   * (a reply to the same user joins theirs: `@a: x; y`). Announcements go out alone.
   */
  private takeLine(): { line: string; retries: number } {
    let first = 0;
    for (let i = 1; i < this.queue.length; i++) if (PRIORITY_RANK[this.queue[i].priority] > PRIORITY_RANK[this.queue[first].priority]) first = i;
    const head = this.queue.splice(first, 1)[0];
    if (head.line !== undefined) {
      this.stats.queued = this.queue.length;
      return { line: head.line, retries: head.retries ?? 0 };
    }
    if (!head.user || this.queue.length === 0) {
      this.stats.queued = this.queue.length;
      return { line: render(head), retries: 0 };
    }
    const parts: { user: string; texts: string[] }[] = [{ user: head.user, texts: [head.text] }];
    const lineOf = (ps: typeof parts) => ps.map((p) => `@${p.user}: ${p.texts.join('; ')}`).join(' | ');
    let merged = 0;
    for (let i = 0; i < this.queue.length; ) {
      const q = this.queue[i];
      if (!q.user || q.line !== undefined) { i++; continue; }
      const trial = parts.map((p) => ({ user: p.user, texts: [...p.texts] }));
      const same = trial.find((p) => p.user === q.user);
      if (same) same.texts.push(q.text);
      else trial.push({ user: q.user, texts: [q.text] });
      if (lineOf(trial).length > this.opts.maxLength) { i++; continue; }
      parts.splice(0, parts.length, ...trial);
      this.queue.splice(i, 1);
      merged++;
    }
    if (merged > 0) {
      this.stats.merged += merged;
      this.hooks.merged?.(merged);
    }
    this.stats.queued = this.queue.length;
    return { line: lineOf(parts), retries: 0 };
  }
}
