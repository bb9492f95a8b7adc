/**
 * Per-consumer experience metrics. The `consumer` label is the name a consumer gives
 * (`?consumer=`), so label cardinality is bounded by names, not connections: at most
 * MAX_CONSUMER_LABELS names per gateway thread (the first ones seen, kept for the thread's life, so
 * the series never grow past that), the rest share `other`; unnamed ones are `anonymous`.
 */
export const MAX_CONSUMER_LABELS = 32;

/** The consumer-name labels this thread has handed out (bounded). */
export class ConsumerLabels {
  private readonly names = new Set<string>();

  take(name: string | undefined): string {
    if (name === undefined) return 'anonymous';
    if (this.names.has(name)) return name;
    if (this.names.size >= MAX_CONSUMER_LABELS) return 'other';
    this.names.add(name);
    return name;
  }
}
