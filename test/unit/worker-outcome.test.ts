import { describe, expect, it } from 'vitest';
import { failureFinish, judgeRun, policyUnreadFinish, rejectedExpansion, retryPolicyOf, runnerFailure } from '../../src/worker/step-outcome.js';
import { BatchError } from '../../src/core/plan.js';
import { DEFAULT_RETRY, type RetryPolicy } from '../../src/core/template/types.js';
import type { StepErrorRecord } from '../../src/worker/runner.js';
import { claimedStep, template } from './worker-fakes.js';

const raised = (over: Partial<StepErrorRecord> = {}): StepErrorRecord => ({
  language: 'python',
  class: 'ValueError',
  message: 'bad input',
  backtrace: ['handler.py:3'],
  permanent: false,
  kind: 'raised',
  ...over,
});
const fixed: RetryPolicy = { max_attempts: 3, backoff: 'fixed', base_ms: 200, max_ms: 200 };

describe('judgeRun', () => {
  it('a success is written as its JSON text, serialised once', () => {
    const step = claimedStep();
    const v = judgeRun(step, { ok: true, result: { total: 3 } }, 12);
    expect(v).toMatchObject({ kind: 'success', finish: { step, item: { id: step.id, attempt: 1, ok: true, resultJson: '{"total":3}', durationMs: 12 } } });
    // A runtime that serialised already: its text is kept as it is (big integers stay exact).
    const exact = judgeRun(step, { ok: true, result: undefined, json: '{"n":12345678901234567890}' }, 1);
    expect(exact.kind === 'success' && exact.finish.item.ok && exact.finish.item.resultJson).toBe('{"n":12345678901234567890}');
    expect(judgeRun(step, { ok: true, result: undefined }, 1)).toMatchObject({ finish: { item: { resultJson: 'null' } } });
  });

  it('a refusal of the runtime goes back without using an attempt, whatever the policy', () => {
    for (const kind of ['circuit_open', 'queue_full', 'not_loaded']) {
      const error = raised({ kind, class: 'CircuitOpen', language: 'weft' });
      const v = judgeRun(claimedStep(), { ok: false, error }, 3);
      expect(v.kind).toBe('refused');
      if (v.kind !== 'refused') continue;
      expect(v.finish.refused).toBe(kind);
      expect(v.finish.item).toMatchObject({ ok: false, retryMs: 1_000, error });
    }
  });

  it("a handler's failure is left to the retry policy", () => {
    const error = raised();
    expect(judgeRun(claimedStep(), { ok: false, error }, 3)).toEqual({ kind: 'failed', error });
  });

  it('a result nested deeper than 64 levels is a permanent failure naming the handler and the path', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 70; i++) deep = [deep];
    const v = judgeRun(claimedStep({ handler: 'deep.h' }), { ok: true, result: deep }, 1);
    expect(v.kind).toBe('failed');
    if (v.kind !== 'failed') return;
    expect(v.error).toMatchObject({ language: 'weft', class: 'InvalidReturn', permanent: true, kind: 'invalid_return', backtrace: [] });
    expect(v.error.message).toMatch(/^handler "deep\.h" returned a result that nests deeper than 64 levels at \$\[0\]/);
  });

  it('a result PostgreSQL cannot store is a permanent failure naming the string', () => {
    const v = judgeRun(claimedStep(), { ok: true, result: { name: 'a\u0000b' } }, 1);
    expect(v).toMatchObject({ kind: 'failed', error: { class: 'OutcomeError', permanent: true, kind: 'invalid_outcome' } });
    if (v.kind === 'failed') expect(v.error.message).toContain('the string at $.name');
  });

  it('a batchable step that returns no batches outcome fails for good; one that does carries its cursors', () => {
    const step = claimedStep({ type: 'batchable', template_step: 'split' });
    const bad = judgeRun(step, { ok: true, result: { cursors: [1] } }, 1);
    expect(bad).toMatchObject({ kind: 'failed', error: { class: 'OutcomeError', permanent: true, kind: 'invalid_outcome' } });
    const good = judgeRun(step, { ok: true, result: { $weft: 'batches', cursors: [1, 2] } }, 1);
    expect(good).toMatchObject({ kind: 'success', finish: { expansion: { kind: 'batches', cursors: [1, 2] } } });
  });

  it('a decision step carries the steps it chose', () => {
    const v = judgeRun(claimedStep({ type: 'decision' }), { ok: true, result: { $weft: 'decision', steps: ['x'] } }, 1);
    expect(v).toMatchObject({ kind: 'success', finish: { expansion: { kind: 'decision', steps: ['x'] } } });
  });
});

describe('failureFinish', () => {
  it('retries while attempts remain, after the backoff', () => {
    const f = failureFinish(claimedStep({ failures: 0 }), raised(), fixed, 5);
    expect(f.item).toMatchObject({ ok: false, retryMs: expect.any(Number), durationMs: 5 });
    expect(f.item.ok === false && f.item.retryMs).toBeGreaterThanOrEqual(100);
    expect(f.outcome).toEqual({ ok: false, error: raised() });
  });

  it('fails for good once the attempts are spent, saying how many', () => {
    const f = failureFinish(claimedStep({ failures: 2 }), raised(), fixed, 5);
    expect(f.item).toMatchObject({ ok: false, retryMs: null, reason: 'attempts exhausted (3 of 3)' });
  });

  it('fails a permanent error at once, attempts left or not', () => {
    const f = failureFinish(claimedStep({ failures: 0 }), raised({ permanent: true }), fixed, 5);
    expect(f.item).toMatchObject({ ok: false, retryMs: null, reason: 'permanent error' });
  });

  it("reads the policy of the step's template step, or the default", () => {
    const def = template(fixed);
    expect(retryPolicyOf(def, claimedStep({ template_step: 'a' }))).toEqual(fixed);
    expect(retryPolicyOf(def, claimedStep({ template_step: 'gone' }))).toEqual(DEFAULT_RETRY);
  });
});

describe('the errors weft records itself', () => {
  it('a runner that throws is a retryable RunnerError with its message', () => {
    expect(runnerFailure(new TypeError('socket closed'))).toEqual({
      ok: false,
      error: { language: 'weft', class: 'RunnerError', message: 'socket closed', backtrace: [], permanent: false, kind: 'raised' },
    });
  });

  it('an unreadable policy keeps the run as a retryable WorkerError, one second later', () => {
    const f = policyUnreadFinish(claimedStep(), new Error('the database is down'), 7);
    expect(f.item).toMatchObject({
      ok: false,
      retryMs: 1_000,
      durationMs: 7,
      error: { class: 'WorkerError', message: 'the database is down', permanent: false },
    });
    expect(f.outcome).toMatchObject({ ok: false, error: { class: 'WorkerError' } });
  });

  it('a rejected expansion is a permanent failure naming the problem', () => {
    const v = judgeRun(claimedStep({ type: 'batchable' }), { ok: true, result: { $weft: 'batches', cursors: [1, 2, 3] } }, 4);
    if (v.kind !== 'success') throw new Error('expected a success');
    const r = rejectedExpansion(v.finish, new BatchError('batchable step "split" returned 3 cursors, but batch.max_workers is 2'));
    expect(r.item).toMatchObject({ ok: false, retryMs: null, reason: 'permanent error', durationMs: 4 });
    expect(r.outcome).toMatchObject({
      ok: false,
      error: { class: 'BatchError', permanent: true, kind: 'invalid_outcome', message: expect.stringContaining('max_workers is 2') },
    });
  });

  it('are made storable: NUL replaced in the message', () => {
    expect(runnerFailure(new Error('a\u0000b'))).toMatchObject({ error: { message: 'a\uFFFDb' } });
  });
});
