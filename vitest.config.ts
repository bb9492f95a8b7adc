import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // Picks the browser for the overlay tests once (system chromium, else the npm one).
    globalSetup: ['tests/global-setup.ts'],
    // Tests spawn worker threads and real servers; keep files in separate forks
    // so a crashing actor in one file cannot disturb another.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 30_000,
    fileParallelism: true,
    maxWorkers: 2,
  },
});
