/**
 * Once per `vitest` run, before any test file: choose the browser for the overlay tests (see
 * helpers/browser.ts) so parallel test files never race to unpack the npm one.
 */
import type { TestProject } from 'vitest/node';
import { resolveChromium } from './helpers/chromium.js';

export default async function setup(project: TestProject): Promise<void> {
  try {
    project.provide('chromium', await resolveChromium());
  } catch (error) {
    project.provide('chromium', { error: (error as Error).message });
  }
}
