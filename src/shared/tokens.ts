/**
 * Ingest and admin tokens. Taken from config (file, RINGCAST_INGEST_TOKEN /
 * RINGCAST_ADMIN_TOKEN, flags); a token left unset is generated once and kept in
 * `<dataDir>/tokens.json` (mode 0600) so producers keep working across restarts. The log
 * names the file, never the token. A tokens.json that other users can read is refused
 * (LooseSecretFileError), never used silently.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { assertPrivateSecretFile, ensurePrivateDir, PRIVATE_FILE_MODE } from './private-files.js';

export interface Tokens {
  ingestToken: string;
  adminToken: string;
  /** Where generated tokens live, when any were generated. */
  file?: string;
}

export function resolveTokens(config: Config, log?: Logger): Tokens {
  const { ingestToken, adminToken } = config.auth;
  if (ingestToken && adminToken) return { ingestToken, adminToken };
  const file = join(config.dataDir, 'tokens.json');
  let stored: Partial<Tokens> = {};
  if (existsSync(file)) {
    assertPrivateSecretFile(file);
    try {
      stored = JSON.parse(readFileSync(file, 'utf8')) as Partial<Tokens>;
    } catch (error) {
      throw new Error(`${file} is not valid JSON (${(error as Error).message}); delete it to generate new tokens`);
    }
  }
  const generated = {
    ingestToken: typeof stored.ingestToken === 'string' && stored.ingestToken.length >= 8 ? stored.ingestToken : randomBytes(24).toString('base64url'),
    adminToken: typeof stored.adminToken === 'string' && stored.adminToken.length >= 8 ? stored.adminToken : randomBytes(24).toString('base64url'),
  };
  if (generated.ingestToken !== stored.ingestToken || generated.adminToken !== stored.adminToken) {
    ensurePrivateDir(config.dataDir, log);
    writeFileSync(file, `${JSON.stringify(generated, null, 2)}\n`, { mode: PRIVATE_FILE_MODE });
    chmodSync(file, PRIVATE_FILE_MODE);
  }
  log?.info({ file, ingestFromConfig: Boolean(ingestToken), adminFromConfig: Boolean(adminToken) }, `tokens not set in config are kept in ${file}`);
  return { ingestToken: ingestToken ?? generated.ingestToken, adminToken: adminToken ?? generated.adminToken, file };
}

/**
 * A constant-time check against one secret: both sides are hashed first, so the comparison
 * takes the same time whatever the candidate's length or content.
 */
export function tokenMatcher(secret: string): (candidate: string | undefined) => candidate is string {
  const expected = sha256(secret);
  return (candidate): candidate is string => typeof candidate === 'string' && candidate.length > 0 && timingSafeEqual(sha256(candidate), expected);
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
