import { describe, expect, it } from 'vitest';
import { resolve } from 'node:path';

import { loadConfig } from '../../src/shared/config.js';
import { ConfigError } from '../../src/shared/errors.js';

describe('loadConfig: bridge settings', () => {
  it('leaves every bridge setting to the bridge when nothing is set', () => {
    expect(loadConfig({}).bridge).toEqual({});
    expect(loadConfig({ WEFT_BREAKER_FAILURE_THRESHOLD: '' }).bridge).toEqual({});
  });

  it('reads each WEFT_BREAKER_* and WEFT_BRIDGE_* variable into the field configure() takes', () => {
    const env = {
      WEFT_BREAKER_FAILURE_THRESHOLD: '9',
      WEFT_BREAKER_SUCCESS_THRESHOLD: '3',
      WEFT_BREAKER_COOLDOWN_MS: '15000',
      WEFT_BREAKER_SLOW_CALL_MS: '2000',
      WEFT_BREAKER_HALF_OPEN_PROBES: '2',
      WEFT_BRIDGE_GRACE_MS: '5000',
      WEFT_BRIDGE_QUEUE_CAPACITY: '64',
      WEFT_BRIDGE_SYNC_WAIT_US: '0',
      WEFT_BRIDGE_IDLE_SPIN_US: '50',
    };
    expect(loadConfig(env).bridge).toEqual({
      failureThreshold: 9,
      successThreshold: 3,
      cooldownMs: 15000,
      slowCallMs: 2000,
      halfOpenMaxProbes: 2,
      graceMs: 5000,
      queueCapacity: 64,
      syncWaitUs: 0,
      idleSpinUs: 50,
    });
  });

  it('refuses a value that is not an integer in range, naming the variable and the range', () => {
    const bad = (env: Record<string, string>) => () => loadConfig(env);
    expect(bad({ WEFT_BREAKER_FAILURE_THRESHOLD: '0' })).toThrow(ConfigError);
    expect(bad({ WEFT_BREAKER_FAILURE_THRESHOLD: '0' })).toThrow(
      'WEFT_BREAKER_FAILURE_THRESHOLD="0" is not an integer from 1 to 1000000; unset it to use the bridge\'s default',
    );
    expect(bad({ WEFT_BREAKER_COOLDOWN_MS: '5s' })).toThrow('WEFT_BREAKER_COOLDOWN_MS="5s" is not an integer from 0 to 86400000');
    expect(bad({ WEFT_BRIDGE_SYNC_WAIT_US: '2000000' })).toThrow('WEFT_BRIDGE_SYNC_WAIT_US="2000000" is not an integer from 0 to 1000000');
    expect(bad({ WEFT_LEASE_MS: '10' })).toThrow('WEFT_LEASE_MS="10" is not an integer ≥ 100; unset it to use 30000');
  });
});

describe('loadConfig: API limits', () => {
  it('defaults to a 2 MiB body, a 16 MiB budget, 60000 tasks per token per minute, and reads each setting', () => {
    const d = loadConfig({});
    expect(d.api).toEqual({
      bodyLimitBytes: 2_097_152,
      bodyBudgetBytes: 16_777_216,
      requestTimeoutMs: 30_000,
      maxConnections: 2_048,
      allowedHosts: [],
      templateRateLimitPerMinute: 600,
      taskBatchLimit: 1_000,
    });
    expect(d.taskRateLimitPerMinute).toBe(60_000);
    const c = loadConfig({
      WEFT_API_BODY_LIMIT: '65536',
      WEFT_API_BODY_BUDGET: '131072',
      WEFT_API_REQUEST_TIMEOUT_MS: '10000',
      WEFT_API_MAX_CONNECTIONS: '64',
      WEFT_API_ALLOWED_HOSTS: ' Weft.Internal , build-box ',
      WEFT_TEMPLATE_RATE_LIMIT: '5',
      WEFT_TASK_BATCH_LIMIT: '250',
    });
    expect(c.api).toEqual({
      bodyLimitBytes: 65_536,
      bodyBudgetBytes: 131_072,
      requestTimeoutMs: 10_000,
      maxConnections: 64,
      allowedHosts: ['weft.internal', 'build-box'],
      templateRateLimitPerMinute: 5,
      taskBatchLimit: 250,
    });
    // A body limit above the default budget raises the budget with it.
    expect(loadConfig({ WEFT_API_BODY_LIMIT: String(64 * 1024 * 1024) }).api.bodyBudgetBytes).toBe(64 * 1024 * 1024);
  });

  it('refuses a budget smaller than the body limit, naming both', () => {
    expect(() => loadConfig({ WEFT_API_BODY_LIMIT: '4096', WEFT_API_BODY_BUDGET: '2048' })).toThrow(
      new ConfigError(
        'WEFT_API_BODY_BUDGET=2048 is smaller than WEFT_API_BODY_LIMIT=4096: a body of the limit could never be read; raise the budget or lower the limit',
      ),
    );
  });
});

describe("loadConfig: the handlers' own packages", () => {
  it('reads nothing when nothing is set (empty counts as unset)', () => {
    expect(loadConfig({}).dependencies).toEqual({ pythonVenv: undefined, bundleGemfile: undefined });
    expect(loadConfig({ WEFT_PYTHON_VENV: ' ', BUNDLE_GEMFILE: '' }).dependencies).toEqual({ pythonVenv: undefined, bundleGemfile: undefined });
  });

  it('takes what activate and Bundler set (VIRTUAL_ENV, BUNDLE_GEMFILE), as absolute paths', () => {
    expect(loadConfig({ VIRTUAL_ENV: '/srv/venv', BUNDLE_GEMFILE: 'app/Gemfile' }).dependencies).toEqual({
      pythonVenv: '/srv/venv',
      bundleGemfile: resolve('app/Gemfile'),
    });
  });

  it("prefers weft's own settings over those", () => {
    const env = { VIRTUAL_ENV: '/srv/other', WEFT_PYTHON_VENV: '/srv/venv', BUNDLE_GEMFILE: '/srv/other/Gemfile', WEFT_BUNDLE_GEMFILE: '/srv/app/Gemfile' };
    expect(loadConfig(env).dependencies).toEqual({ pythonVenv: '/srv/venv', bundleGemfile: '/srv/app/Gemfile' });
  });
});
