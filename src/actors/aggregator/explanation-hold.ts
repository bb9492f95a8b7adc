/**
 * An explanation is text a viewer reads, not a gauge: its numbers (step, KL, losses) move
 * every window, ten times a second, faster than anyone reads them, and each change is bytes
 * to every viewer. So a new text whose words are the held one's (only numbers differ) goes
 * out once the held text has stood `holdMs`; a change of words (a verdict, a trend, a metric
 * appearing) goes out at once. The cards beside the text show the live numbers.
 */
import type { Level } from '../../shared/telemetry/channels.js';

/**
 * A standalone number in running text ("220.", "0.0418", "+0.706", "(11%),", "1.5e-4"), with
 * the punctuation around it. Move names such as "7g7f" or "P*5e" are words, not numbers.
 */
const NUMBER_TOKEN = /^([(]?)[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(%?[),.;:]*)$/;

/** The text with each standalone number replaced by `#` (its surrounding punctuation kept). */
export function wordsOf(text: string): string {
  return text.split(/(\s+)/).map((t) => t.replace(NUMBER_TOKEN, '$1#$2')).join('');
}

export class ExplanationHold {
  private readonly held = new Map<Level, { text: string; words: string; since: number }>();

  constructor(readonly holdMs: number) {}

  /** The text to send at `now` for a level whose explanation is now `text`. */
  next(level: Level, text: string, now: number): string {
    const h = this.held.get(level);
    if (h && (h.text === text || (now - h.since < this.holdMs && h.words === wordsOf(text)))) return h.text;
    this.held.set(level, { text, words: wordsOf(text), since: now });
    return text;
  }
}
