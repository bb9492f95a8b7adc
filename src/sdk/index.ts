/**
 * The producer SDK: what a trainer imports to send telemetry to ringcast.
 *
 *   createProducer(url, options)  network producer over tcp://, unix:// or ws:// (producer.ts)
 *   RingProducer                  in-process producer writing an ingest ring directly (ring-producer.ts)
 *   ExperienceConsumer            consumer of the /experience stream, an async iterator of batches (experience-consumer.ts)
 *
 * Both implement TelemetryProducer (types.ts), so a hook written against one works with the other;
 * their emit* methods are one piece of code (event-producer.ts).
 */
export { createProducer, NetworkProducer, parseProducerUrl } from './producer.js';
export type { BreakerState, NetworkProducerStats, ProducerOptions } from './producer.js';
export { RingProducer } from './ring-producer.js';
export type { RingProducerOptions } from './ring-producer.js';
export { ProducerInputError } from './encode.js';
export * from './types.js';
export { ExperienceConsumer, ExperienceRefusedError, decodeExperienceBatch } from './experience-consumer.js';
export type { ExperienceBatch, ExperienceConsumerOptions, ExperienceFilters, ExperienceRecord } from './experience-consumer.js';
