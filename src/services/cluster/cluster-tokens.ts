/**
 * Clustered, the tokens a node was not given in its config are the cluster's: the first node to
 * start puts its own (generated, from `<dataDir>/tokens.json`) into the Redis hash
 * `ringcast:tokens` with HSETNX, and every node uses what the hash holds. So one admin token and
 * one ingest token work on every node, whichever node generated them, and each node's
 * tokens.json is rewritten to say what is in force. Tokens set in config always win (the
 * operator chose them). Redis unreachable at start, or a bad value in the hash: the node keeps
 * its local tokens and says so in the log (naming the key, never the token).
 */
import { chmodSync, writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../../shared/config.js';
import { PRIVATE_FILE_MODE } from '../../shared/private-files.js';
import type { Tokens } from '../../shared/tokens.js';
import { createRedis } from './redis-connection.js';

export const TOKENS_KEY = 'ringcast:tokens';
const START_TIMEOUT_MS = 3_000;
const FIELDS = ['ingestToken', 'adminToken'] as const;

export async function clusterTokens(config: Config, local: Tokens, log: Logger): Promise<Tokens> {
  const url = config.cluster.redis;
  const unset = FIELDS.filter((f) => !config.auth[f]);
  if (url === undefined || unset.length === 0) return local;
  const redis = createRedis(url, log, 'tokens', { redis: { maxRetriesPerRequest: 1, lazyConnect: false } });
  try {
    const shared = await Promise.race([
      (async () => {
        const multi = redis.multi();
        for (const f of unset) multi.hsetnx(TOKENS_KEY, f, local[f]);
        multi.hmget(TOKENS_KEY, ...unset);
        const replies = (await multi.exec()) ?? [];
        const [error, values] = replies[replies.length - 1] ?? [new Error('no reply')];
        if (error) throw error;
        return values as Array<string | null>;
      })(),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS).unref()),
    ]);
    const tokens: Tokens = { ...local };
    unset.forEach((f, i) => {
      const v = shared[i];
      if (typeof v === 'string' && v.length >= 8) tokens[f] = v;
      else log.error({ key: TOKENS_KEY, field: f }, `redis key ${TOKENS_KEY} field ${f} holds no usable token (missing or shorter than 8 characters); this node keeps its own`);
    });
    if (local.file && unset.some((f) => tokens[f] !== local[f])) {
      // The file says what is in force, so an operator reading it gets a token that works.
      const onFile = { ingestToken: tokens.ingestToken, adminToken: tokens.adminToken };
      writeFileSync(local.file, `${JSON.stringify(onFile, null, 2)}\n`, { mode: PRIVATE_FILE_MODE });
      chmodSync(local.file, PRIVATE_FILE_MODE);
    }
    log.info({ key: TOKENS_KEY, fields: unset }, `tokens not set in config are the cluster's (redis ${TOKENS_KEY})`);
    return tokens;
  } catch (error) {
    log.warn({ key: TOKENS_KEY, err: (error as Error).message }, 'could not read the cluster tokens from redis; this node uses its own tokens until it restarts');
    return local;
  } finally {
    redis.disconnect();
  }
}
