import { configDefaults, defineConfig } from 'vitest/config';

// Three layers (unit, native, integration) run by one command: `npm test`.
// Integration tests share one PostgreSQL and one RabbitMQ, but each test file
// works in its own schema / vhost-free queue names, so files may run in parallel.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The fault suite starts and crashes its own services: `npm run test:faults` runs it alone.
    exclude: [...configDefaults.exclude, 'test/faults/**'],
    globalSetup: ['./test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
