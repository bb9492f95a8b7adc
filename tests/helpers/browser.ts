/**
 * Headless Debian chromium driven by playwright-core (no browser download: the system
 * binary). Screenshots go to tests/artifacts/ (git-ignored) as test artifacts.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = process.env.RINGCAST_CHROMIUM ?? '/usr/bin/chromium';
export const chromiumAvailable = existsSync(CHROMIUM);
export const ARTIFACTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
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
