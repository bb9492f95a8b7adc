/**
 * The service's own files hold secrets (tokens) and state other local users have no business
 * reading, so the data directory is 0700 and every file we create in it 0600. A directory
 * found looser is tightened (we own it, and nothing of ours needs it open); a secret file found
 * readable by others is refused, because its contents may already have leaked and only the
 * operator can decide whether to keep or rotate them.
 */
import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import type { Logger } from 'pino';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;
/** Group and other permission bits. */
const SHARED_BITS = 0o077;

export class LooseSecretFileError extends Error {
  override readonly name = 'LooseSecretFileError';
  constructor(readonly file: string, readonly mode: number) {
    super(
      `${file} is readable or writable by other users (mode ${octal(mode)}); its secrets may have leaked. ` +
        `Keep them with "chmod 600 ${file}", or delete the file to generate new ones`,
    );
  }
}

export function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}

/** Creates `dir` as 0700, or tightens an existing one that group/others can enter. */
export function ensurePrivateDir(dir: string, log?: Logger): void {
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    // mkdir's mode is filtered by the umask; say it exactly.
    chmodSync(dir, PRIVATE_DIR_MODE);
    return;
  }
  const mode = statSync(dir).mode & 0o777;
  if ((mode & SHARED_BITS) === 0) return;
  chmodSync(dir, PRIVATE_DIR_MODE);
  log?.warn({ dir, was: octal(mode), now: octal(PRIVATE_DIR_MODE) }, `data directory ${dir} was open to other users (mode ${octal(mode)}); changed it to ${octal(PRIVATE_DIR_MODE)}`);
}

/** Sets 0600 on each of `files` that exists (state files are created with the process umask). */
export function restrictFiles(files: readonly string[]): void {
  for (const file of files) {
    try {
      if ((statSync(file).mode & SHARED_BITS) !== 0) chmodSync(file, PRIVATE_FILE_MODE);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
}

/** Throws LooseSecretFileError when group or others may read or write `file`. */
export function assertPrivateSecretFile(file: string): void {
  const mode = statSync(file).mode & 0o777;
  if ((mode & SHARED_BITS) !== 0) throw new LooseSecretFileError(file, mode);
}
