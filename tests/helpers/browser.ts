/**
 * Headless chromium driven by playwright-core (which never downloads a browser). The browser
 * is chosen once per test run in tests/global-setup.ts (helpers/chromium.ts: system chromium,
 * else the npm one) and handed to the test files; a machine with no browser at all fails the
 * browser tests instead of skipping them. Screenshots go to tests/artifacts/ (git-ignored).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { inject } from 'vitest';
import type { ChromiumChoice } from './chromium.js';

export const ARTIFACTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');

declare module 'vitest' {
  export interface ProvidedContext {
    chromium: ChromiumChoice | { error: string };
  }
}

/** The browser chosen for this test run; throws (the test fails, it is not skipped) when there is none. */
export function chromiumChoice(): ChromiumChoice {
  const c = inject('chromium');
  if ('error' in c) throw new Error(c.error);
  return c;
}

export async function launchBrowser(): Promise<Browser> {
  const c = chromiumChoice();
  return chromium.launch({ executablePath: c.path, args: c.args, env: { ...process.env, ...c.env } as Record<string, string> });
}

/** `url` with the `test=1` query flag: only then does an overlay page publish its `window.__overlay` test hook. */
export function withTestFlag(url: string): string {
  // Appended as text so the rest of the query reaches the page exactly as written.
  return `${url}${url.includes('?') ? '&' : '?'}test=1`;
}

/** Opens an overlay page in test mode (see withTestFlag); `testHook: false` opens it as production does. */
export async function openPage(browser: Browser, url: string, { testHook = true } = {}): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
  page.on('pageerror', (error) => { throw error; });
  await page.goto(testHook ? withTestFlag(url) : url);
  return page;
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, omitBackground: true });
  return file;
}
