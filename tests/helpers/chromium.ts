/**
 * Which headless chromium the browser tests drive (see helpers/browser.ts): RINGCAST_CHROMIUM
 * if set (it must run), else Debian's /usr/bin/chromium when it runs, else the headless shell
 * that ships inside the `@sparticuz/chromium` npm package (unpacked into the temp dir on first
 * use, no network). Imported by tests/global-setup.ts, so it must not import vitest.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createBrotliDecompress } from 'node:zlib';

export const SYSTEM_CHROMIUM = '/usr/bin/chromium';

export interface ChromiumChoice {
  path: string;
  source: 'env' | 'system' | 'npm';
  version: string;
  /** Extra launch arguments and environment the binary needs. */
  args: string[];
  env: Record<string, string>;
}

const BASE_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'];

function versionOf(bin: string, env: Record<string, string> = {}): string | undefined {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env } });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Shared libraries the npm headless shell needs that this machine lacks (ldd "not found"). */
function missingLibraries(bin: string): string[] {
  try {
    return execFileSync('ldd', [bin], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('not found')).map((l) => l.trim().split(' ')[0]);
  } catch {
    return [];
  }
}

/**
 * The package also ships the NSS libraries it is linked against (for hosts without them); a
 * machine without Debian's chromium often lacks libnss3, so they are unpacked beside it.
 */
async function shippedLibraries(pkgDir: string): Promise<string> {
  const dir = path.join(tmpdir(), 'ringcast-chromium-libs');
  if (existsSync(path.join(dir, 'lib', 'libnss3.so'))) return path.join(dir, 'lib');
  const work = `${dir}.${process.pid}`;
  mkdirSync(work, { recursive: true });
  const tar = path.join(work, 'libs.tar');
  await pipeline(createReadStream(path.join(pkgDir, 'bin', 'al2023.tar.br')), createBrotliDecompress(), createWriteStream(tar));
  execFileSync('tar', ['-xf', tar, '-C', work]);
  rmSync(tar);
  try {
    renameSync(work, dir);
  } catch {
    rmSync(work, { recursive: true, force: true }); // another run got there first
  }
  return path.join(dir, 'lib');
}

/** Picks the browser; called once per `vitest` run by tests/global-setup.ts. */
export async function resolveChromium(env: NodeJS.ProcessEnv = process.env): Promise<ChromiumChoice> {
  const override = env.RINGCAST_CHROMIUM;
  if (override) {
    const version = versionOf(override);
    if (!version) throw new Error(`RINGCAST_CHROMIUM=${override} does not run (--version failed)`);
    return { path: override, source: 'env', version, args: BASE_ARGS, env: {} };
  }
  const system = versionOf(SYSTEM_CHROMIUM);
  if (system) return { path: SYSTEM_CHROMIUM, source: 'system', version: system, args: BASE_ARGS, env: {} };
  const { default: packaged } = await import('@sparticuz/chromium');
  const bin = await packaged.executablePath();
  const launchEnv: Record<string, string> = {};
  if (missingLibraries(bin).length > 0) {
    const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'node_modules', '@sparticuz', 'chromium');
    launchEnv.LD_LIBRARY_PATH = [await shippedLibraries(pkgDir), env.LD_LIBRARY_PATH].filter(Boolean).join(':');
  }
  const version = versionOf(bin, launchEnv);
  if (!version) throw new Error(`no browser for the overlay tests: ${SYSTEM_CHROMIUM} does not run and the @sparticuz/chromium binary (${bin}) does not either (missing libraries: ${missingLibraries(bin).join(', ') || 'none'})`);
  // The same flags as Debian's: the package's own (single process, SwiftShader GL) starve a loaded 2-core box
  // once a test keeps several pages open.
  return { path: bin, source: 'npm', version, args: BASE_ARGS, env: launchEnv };
}

