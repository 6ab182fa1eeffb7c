import { defineConfig } from 'vitest/config';

// `npm run test:faults` (issue 9): the fault-injection suite, test/faults/.
// It starts its own PostgreSQL and RabbitMQ node and crashes them, so it runs
// alone, one file, one fork, never as part of `npm test` (vitest.config.ts
// excludes test/faults). Its scenarios run one after another (~4 minutes).
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    testTimeout: 150_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
