/** Prometheus metrics of one gateway thread (every series also carries `actor="gateway-<i>"`). */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type DisconnectReason = 'client' | 'too_slow' | 'critical_queue_full' | 'server_full' | 'flood' | 'auth' | 'fatal' | 'shutdown';

export interface GatewayMetrics {
  clients: Gauge<'endpoint'>;
  subscriptions: Gauge<'channel'>;
  published: Counter<'channel'>;
  deliveries: Counter<'channel'>;
  bytesDelivered: Counter<'channel'>;
  skippedSlow: Counter;
  slowClients: Gauge;
  criticalQueued: Counter;
  criticalDropped: Counter;
  disconnects: Counter<'endpoint' | 'reason'>;
  protocolErrors: Counter<'endpoint'>;
  stateKeys: Gauge;
  stateKeysRefused: Counter;
  experienceBatches: Counter<'outcome'>;
  experienceRecords: Counter<'outcome'>;
  experienceConsumerRecords: Counter<'consumer' | 'outcome'>;
  experienceConsumerBytes: Counter<'consumer'>;
  experienceConsumerLag: Gauge<'consumer'>;
  experienceRetainedRecords: Gauge;
  experienceRetainedBytes: Gauge;
  httpRequests: Counter<'route' | 'outcome'>;
  recordErrors: Counter;
  snapshots: Counter<'outcome'>;
  deltaUpdates: Counter<'kind'>;
  resyncs: Counter;
  e2eLatency: Histogram<'channel'>;
}

export function createGatewayMetrics(registry: Registry): GatewayMetrics {
  const r = [registry];
  return {
    clients: new Gauge({ name: 'ringcast_gateway_clients', help: 'Open WebSocket connections on this gateway thread, by endpoint (overlay, ingest, experience)', labelNames: ['endpoint'], registers: r }),
    subscriptions: new Gauge({ name: 'ringcast_gateway_subscriptions', help: 'Overlay clients subscribed to each channel', labelNames: ['channel'], registers: r }),
    published: new Counter({ name: 'ringcast_gateway_messages_published_total', help: 'Topic publishes (one per message per fps tier and level), by channel', labelNames: ['channel'], registers: r }),
    deliveries: new Counter({ name: 'ringcast_gateway_deliveries_total', help: 'Estimated messages delivered to clients: per publish, the topic\'s subscriber count', labelNames: ['channel'], registers: r }),
    bytesDelivered: new Counter({ name: 'ringcast_gateway_bytes_delivered_total', help: 'Estimated message bytes delivered to clients: per publish, its size times the topic\'s subscriber count', labelNames: ['channel'], registers: r }),
    skippedSlow: new Counter({ name: 'ringcast_gateway_skipped_slow_total', help: 'Conflatable updates not sent to clients over the soft limit (they get the latest state once drained)', registers: r }),
    slowClients: new Gauge({ name: 'ringcast_gateway_slow_clients', help: 'Overlay clients currently over the soft limit (criticals only)', registers: r }),
    criticalQueued: new Counter({ name: 'ringcast_gateway_critical_queued_total', help: 'Critical messages queued for slow clients', registers: r }),
    criticalDropped: new Counter({ name: 'ringcast_gateway_critical_dropped_total', help: 'Critical messages lost because a slow client\'s queue was full (the client is disconnected)', registers: r }),
    disconnects: new Counter({ name: 'ringcast_gateway_disconnects_total', help: 'Connections closed, by endpoint and reason (client, too_slow, critical_queue_full, server_full, flood, auth, fatal, shutdown)', labelNames: ['endpoint', 'reason'], registers: r }),
    protocolErrors: new Counter({ name: 'ringcast_gateway_protocol_errors_total', help: 'Bad client messages answered with an error (malformed subscription, text on /ingest, ...)', labelNames: ['endpoint'], registers: r }),
    stateKeys: new Gauge({ name: 'ringcast_gateway_state_keys', help: 'Message keys held for snapshots and conflation', registers: r }),
    stateKeysRefused: new Counter({ name: 'ringcast_gateway_state_keys_refused_total', help: 'Updates with a new key not retained because the key table is full (still published live)', registers: r }),
    experienceBatches: new Counter({ name: 'ringcast_gateway_experience_batches_total', help: 'Experience batches, by outcome (sent, dropped)', labelNames: ['outcome'], registers: r }),
    experienceRecords: new Counter({ name: 'ringcast_gateway_experience_records_total', help: 'Experience records, by outcome (sent, dropped)', labelNames: ['outcome'], registers: r }),
    // `consumer` is the name a consumer gives (?consumer=), at most 32 per thread (then `other`): bounded series.
    experienceConsumerRecords: new Counter({ name: 'ringcast_gateway_experience_consumer_records_total', help: 'Experience records per consumer name, by outcome: delivered, filtered (did not pass its filters or sampling), dropped (queue full or over max_rate), missed (sequence numbers no longer retained when it resumed)', labelNames: ['consumer', 'outcome'], registers: r }),
    experienceConsumerBytes: new Counter({ name: 'ringcast_gateway_experience_consumer_bytes_total', help: 'Experience batch bytes sent per consumer name', labelNames: ['consumer'], registers: r }),
    experienceConsumerLag: new Gauge({ name: 'ringcast_gateway_experience_consumer_lag', help: 'Sequence numbers between the newest retained experience record and the consumer position (largest among consumers of a name)', labelNames: ['consumer'], registers: r }),
    experienceRetainedRecords: new Gauge({ name: 'ringcast_gateway_experience_retained_records', help: 'Experience records held in this gateway thread retained window', registers: r }),
    experienceRetainedBytes: new Gauge({ name: 'ringcast_gateway_experience_retained_bytes', help: 'Bytes of experience records held in this gateway thread retained window', registers: r }),
    httpRequests: new Counter({ name: 'ringcast_gateway_http_requests_total', help: 'HTTP requests, by route (ingest, state, forward) and outcome (ok, client_error, too_large, upstream_error)', labelNames: ['route', 'outcome'], registers: r }),
    snapshots: new Counter({ name: 'ringcast_gateway_snapshots_total', help: 'Overlay snapshots by outcome: sent, deferred (a re-subscription within fanout.snapshotIntervalMs, sent when it is up), coalesced (joined one already owed)', labelNames: ['outcome'], registers: r }),
    deltaUpdates: new Counter({ name: 'ringcast_gateway_delta_updates_total', help: 'State changes published to delta subscribers, by kind: delta, or full (no earlier version on that topic, or the delta was not smaller)', labelNames: ['kind'], registers: r }),
    resyncs: new Counter({ name: 'ringcast_gateway_resyncs_total', help: 'Resync requests from delta subscribers that lost track of a key (each answered with the full state)', registers: r }),
    recordErrors: new Counter({ name: 'ringcast_gateway_record_errors_total', help: 'Fan-out records skipped because handling them threw (a bug; see the log)', registers: r }),
    e2eLatency: new Histogram({
      name: 'ringcast_e2e_latency_seconds', help: 'Source timestamp (the trainer\'s, or receipt when it sent none) to the gateway sending the live message to its subscribers, by channel (clock skew between trainer and server shows here; below 0 counts as 0)',
      labelNames: ['channel'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: r,
    }),
  };
}
