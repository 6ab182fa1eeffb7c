/**
 * StepRunner.cancel(stepId), what the worker calls when a step's task is
 * cancelled while it runs: NativeRunner aborts the handler's step.signal,
 * BridgeRunner interrupts the python handler through the bridge. Both answer
 * `cancelled` at once. Loads Python in this test process.
 */
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { silentLogger } from '../../src/shared/logger.js';
import { HandlerRegistry } from '../../src/worker/handler-registry.js';
import { NativeRunner } from '../../src/worker/native-runner.js';
import { createRunner } from '../../src/worker/runners.js';
import type { Step } from '../../src/worker/sdk.js';
import { claimedStep } from '../support/steps.js';
import { fixtures, until } from './helpers.js';

const cancelled = { class: 'Cancelled', message: 'the task was cancelled', permanent: true, kind: 'cancelled' };

describe('native runner: cancel', () => {
  it("aborts the handler's step.signal and answers cancelled at once", async () => {
    const registry = new HandlerRegistry();
    let signal: AbortSignal | undefined;
    let reason: unknown;
    registry.register('wait.forever', (step: Step) => {
      signal = step.signal;
      return new Promise((_, reject) => {
        step.signal!.addEventListener('abort', () => {
          reason = step.signal!.reason;
          reject(new Error('the handler saw the abort'));
        });
      });
    });
    const runner = new NativeRunner(registry);
    const step = { ...claimedStep({ handler: 'wait.forever', name: 'w', runtime: 'native', context: {} }), timeout_ms: 60_000 };
    const run = runner.run(step);
    await until('the handler to start', () => signal !== undefined);
    expect(signal!.aborted).toBe(false);
    expect(runner.cancel(step.id)).toBe(true);
    const out = await run;
    expect(out).toEqual({ ok: false, error: { language: 'typescript', backtrace: [], ...cancelled } });
    expect(signal!.aborted).toBe(true);
    expect(reason).toMatchObject({ name: 'Cancelled', message: 'the task was cancelled' });
    expect(runner.cancel(step.id)).toBe(false);
  });

  it('answers false for a step it is not running, and runs the next step normally', async () => {
    const registry = new HandlerRegistry();
    registry.register('add.one', (step: Step) => (step.context.n as number) + 1);
    const runner = new NativeRunner(registry);
    expect(runner.cancel('no-such-step')).toBe(false);
    const step = claimedStep({ handler: 'add.one', name: 'a', runtime: 'native', context: { n: 1 } });
    expect(await runner.run(step)).toEqual({ ok: true, result: undefined, json: '2' });
    expect(runner.cancel(step.id)).toBe(false);
  });
});

describe('bridge runner: cancel', () => {
  it('interrupts a running python step, answers cancelled, and runs the next step', async () => {
    const runner = await createRunner('python', join(fixtures, 'handlers', 'python'), silentLogger(), { graceMs: 2000 });
    const started = join(tmpdir(), `weft-runner-cancel-${process.pid}`);
    const step = { ...claimedStep({ handler: 'probe.until_cancelled', name: 'long', runtime: 'python', context: { started } }), timeout_ms: 60_000 };
    const run = runner.run(step);
    await until('the handler to start', () => existsSync(started));
    expect(runner.cancel!(step.id)).toBe(true);
    const out = await run;
    expect(out).toEqual({ ok: false, error: { language: 'python', backtrace: [], ...cancelled } });
    expect(runner.cancel!(step.id)).toBe(false);
    // The next step runs at once on another thread; the interrupted handler notes what it saw a moment later.
    const next = await until('the handler to note the interrupt', async () => {
      const r = await runner.run(claimedStep({ handler: 'probe.cancel_seen', name: 'next', runtime: 'python', context: {} }));
      return r.ok && r.json !== '[]' ? r : undefined;
    });
    expect(next).toEqual({ ok: true, result: undefined, json: '["Cancelled"]' });
    expect(runner.isBroken()).toBe(false);
    rmSync(started, { force: true });
    await runner.close();
  });
});
