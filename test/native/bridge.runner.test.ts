/**
 * createBridgeRunner: what the worker host (src/worker/runners.ts) uses to
 * run claimed steps through the bridge. Loads Ruby in this test process.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import type { RuntimeStats } from '../../src/bridge/index.js';
import { loadConfig } from '../../src/shared/config.js';
import { createRunner } from '../../src/worker/runners.js';
import { handlerStepJson, toHandlerStep } from '../../src/worker/runner.js';
import type { ClaimedStep } from '../../src/store/events.js';
import { silentLogger } from '../../src/shared/logger.js';
import { claimedStep } from '../support/steps.js';
import { repoRoot } from './helpers.js';

function claimed(handler: string, name: string, context: unknown, deps: Record<string, unknown> = {}): ClaimedStep {
  return claimedStep({ handler, name, runtime: 'ruby', context, deps, attempt: 2 });
}

describe('bridge runner', () => {
  it('hands the handler the step every SDK reads', () => {
    expect(toHandlerStep(claimed('linear.square', 'linear_step_1', { even_number: 6 }))).toEqual({
      task_id: 'task-1',
      step_id: 'id-linear_step_1',
      step_name: 'linear_step_1',
      attempt: 2,
      context: { even_number: 6 },
      inputs: {},
      dependency_results: {},
      batch: null,
    });
  });

  it('builds the same step as JSON text around the context and results exactly as stored (big integers stay exact)', () => {
    const step = {
      ...claimed('linear.square', 'linear_step_2', { even_number: 6 }),
      dependencyResultsJson: '{"linear_step_1":36,"big":123456789012345678901234567890}',
    };
    const text = handlerStepJson(step);
    expect(text).toContain('"big":123456789012345678901234567890');
    expect(JSON.parse(text)).toEqual(toHandlerStep(step));
  });

  it('runs the seed linear workflow through Ruby and maps failures', async () => {
    // The worker's path: settings from the environment, through loadConfig, into the runner's configure.
    const config = loadConfig({
      WEFT_BREAKER_FAILURE_THRESHOLD: '7',
      WEFT_BREAKER_COOLDOWN_MS: '1234',
      WEFT_BREAKER_SUCCESS_THRESHOLD: '3',
      WEFT_BRIDGE_GRACE_MS: '2500',
      WEFT_BRIDGE_SYNC_WAIT_US: '400',
    });
    const runner = await createRunner('ruby', join(repoRoot, 'handlers', 'ruby'), silentLogger(), config.bridge);
    expect(runner.runtime).toBe('ruby');
    expect((runner.stats!() as RuntimeStats).config).toMatchObject({
      failureThreshold: 7,
      cooldownMs: 1234,
      successThreshold: 3,
      graceMs: 2500,
      syncWaitUs: 400,
      slowCallMs: 0, // left at the bridge's default
    });
    expect(runner.handlerKeys()).toEqual(expect.arrayContaining(['linear.square', 'csv.analyze', 'approval.finalize']));
    let parent: unknown;
    const results = [];
    for (let i = 1; i <= 4; i++) {
      const deps = i === 1 ? {} : { [`linear_step_${i - 1}`]: parent };
      const out = await runner.run(claimed('linear.square', `linear_step_${i}`, { even_number: 6 }, deps));
      if (!out.ok) throw new Error(JSON.stringify(out.error));
      // The bridge hands back the handler's JSON text, stored as is.
      parent = JSON.parse(out.json!);
      results.push(parent);
    }
    expect(results).toEqual([36, 1296, 1679616, 2821109907456]);

    const bad = await runner.run(claimed('linear.square', 'linear_step_1', { even_number: 7 }));
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.error).toMatchObject({ language: 'ruby', class: 'Weft::PermanentError', permanent: true, kind: 'raised' });
      expect(bad.error.message).toContain('even_number');
    }
    const missing = await runner.run(claimed('nope.nope', 'x', {}));
    expect(!missing.ok && missing.error.kind).toBe('handler_not_found');
    // handler failures are answers of a healthy runtime: they do not move the breaker
    expect((runner.stats!() as RuntimeStats).breaker).toMatchObject({ state: 'closed', consecutiveFailures: 0, lastFailure: null });
    expect(runner.isBroken()).toBe(false);
    await runner.close();
  });
});
