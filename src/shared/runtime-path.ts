/**
 * Worker threads can only load JavaScript. Production runs from `dist/`, where every
 * module URL already points at compiled `.js`. Under vitest the supervisor itself is
 * loaded from TypeScript source, so a module URL like `<root>/src/x/y.ts` must be
 * mapped to its compiled twin `<root>/dist/src/x/y.js` before it is handed to `new Worker`.
 * Keeping that mapping here means no other module needs to know how it is run.
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import { existsSync } from 'node:fs';

const here = path.dirname(fileURLToPath(import.meta.url));
// here is <root>/src/shared (source) or <root>/dist/src/shared (compiled)
const runningCompiled = path.basename(path.resolve(here, '..', '..')) === 'dist';
export const projectRoot = runningCompiled ? path.resolve(here, '..', '..', '..') : path.resolve(here, '..', '..');

export function runtimeModuleUrl(moduleRef: string | URL): URL {
  const url = typeof moduleRef === 'string'
    ? (moduleRef.startsWith('file:') ? new URL(moduleRef) : pathToFileURL(path.resolve(moduleRef)))
    : moduleRef;
  let file = fileURLToPath(url);
  // `new URL('./x.js', import.meta.url)` written in a module that vitest runs from source
  // names a .js file next to the .ts one, which only exists in dist/.
  if (file.endsWith('.js') && !existsSync(file) && existsSync(file.replace(/\.js$/, '.ts'))) file = file.replace(/\.js$/, '.ts');
  if (!file.endsWith('.ts')) return url;
  const rel = path.relative(projectRoot, file);
  if (rel.startsWith('..') || rel.startsWith(`dist${path.sep}`)) return url;
  const compiled = path.join(projectRoot, 'dist', rel.replace(/\.ts$/, '.js'));
  if (!existsSync(compiled)) {
    throw new Error(`module ${file} has no compiled twin at ${compiled}; run "npm run build" first`);
  }
  return pathToFileURL(compiled);
}
