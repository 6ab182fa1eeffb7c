/**
 * The worker's /metrics for a bridged runtime: the addon's counters and
 * timing histograms, read when scraped. Loads Python in this test process.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createBridgeRunner } from '../../src/worker/bridge-runner.js';
import { workerMetrics } from '../../src/worker/metrics.js';
import type { ClaimedStep } from '../../src/store/events.js';
import { silentLogger } from '../../src/shared/logger.js';
import { claimedStep } from '../support/steps.js';
import { repoRoot } from './helpers.js';

const step = (i: number, context: unknown = { even_number: 6 }): ClaimedStep =>
  claimedStep({ id: `s${i}`, handler: 'linear.square', name: 'linear_step_1', runtime: 'python', context });

describe('worker metrics for a bridged runtime', () => {
  it('exports call counters and per-phase histograms in Prometheus format', async () => {
    const runner = await createBridgeRunner('python', join(repoRoot, 'handlers', 'python'), silentLogger());
    const before = (runner.stats!() as { dispatched: number }).dispatched;
    for (let i = 0; i < 25; i++) expect((await runner.run(step(i))).ok).toBe(true);
    const failed = await runner.run(step(99, { even_number: 7 }));
    expect(failed.ok).toBe(false);

    const registry = workerMetrics({ counts: { claimed: 26, succeeded: 25, failed: 1, retried: 0, lost: 0 }, inFlight: () => 0 }, runner);
    const text = await registry.metrics();
    expect(text).toContain(`weft_bridge_calls{runtime="python",outcome="dispatched"} ${before + 26}`);
    expect(text).toMatch(/weft_bridge_calls\{runtime="python",outcome="failed"\} [1-9]/);
    expect(text).toContain('weft_bridge_breaker_state{runtime="python"} 0');
    expect(text).toContain('weft_worker_steps{runtime="python",outcome="succeeded"} 25');
    expect(text).toMatch(/weft_bridge_phase_seconds_count\{runtime="python",phase="run"\} \d+/);
    const run = /weft_bridge_phase_seconds_bucket\{runtime="python",phase="run",le="\+Inf"\} (\d+)/.exec(text);
    expect(Number(run?.[1])).toBeGreaterThanOrEqual(26);
    await runner.close();
  });
});
