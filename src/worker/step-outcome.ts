/**
 * What a run's outcome means, decided without I/O: the worker hands in the
 * claimed step, what its runner answered and (for a failure) the step's
 * retry policy, and gets back the finish to write. Every case has a unit
 * test in test/unit/worker-outcome.test.ts.
 *
 *   success            the result, checked (depth, storability) and read for
 *                      the step's type; a decision or batch outcome carries
 *                      the steps it creates (planned later, under the task lock)
 *   retry / failure    the retry policy applied to a failure (a handler's,
 *                      or a result that failed the checks above: permanent)
 *   refusal            the runtime did not run the handler at all: the step
 *                      goes back to the queue without using an attempt
 *
 * (A run can also be lost: the database's fence refuses its finish because
 * the step is no longer this attempt's. That is known only after the write:
 * see FinishBatcher.)
 */
import { weftErrorRecord } from '../core/error-record.js';
import { jsonDepthProblem, jsonTextDepth, MAX_JSON_DEPTH } from '../core/json-depth.js';
import { unstorableJson } from '../core/json-storable.js';
import { interpretResult } from '../core/outcome.js';
import { decideAfterFailure } from '../core/retry.js';
import { DEFAULT_RETRY, type RetryPolicy, type StepType, type TemplateDefinition } from '../core/template/types.js';
import { describeError } from '../shared/errors.js';
import type { ClaimedStep } from '../store/events.js';
import type { FinishItem } from '../store/finish.js';
import type { RunOutcome, StepErrorRecord } from './runner.js';

/** Steps a decision or batch outcome creates, planned under the task lock when it is written. */
export type Expansion = { kind: 'decision'; steps: string[] } | { kind: 'batches'; cursors: unknown[] };

/** One run's finish, ready to write, with what the events need to say about it. */
export interface Finish {
  step: ClaimedStep;
  item: FinishItem;
  /** The outcome as the events report it: the result, or the error record that is stored. */
  outcome: RunOutcome;
  /** Set for decision and batch outcomes. */
  expansion?: Expansion;
  /** The runtime refused the call (its error kind): give the step back without using an attempt. */
  refused?: string;
}

/** What {@link judgeRun} found; a `failed` run needs its step's retry policy ({@link failureFinish}). */
export type Verdict = { kind: 'success'; finish: Finish } | { kind: 'refused'; finish: Finish } | { kind: 'failed'; error: StepErrorRecord };

/**
 * Answers of a runtime that did not run the handler at all: its breaker is
 * open (after timeouts or a stuck interpreter), its queue is full, it is not
 * loaded. The step goes back to the queue for later, for this or another
 * worker, without using an attempt.
 */
const RUNTIME_REFUSALS: ReadonlySet<string> = new Set(['circuit_open', 'queue_full', 'not_loaded']);
/** How much later a refused step runs again. */
export const REFUSED_RETRY_MS = 1_000;
/** How much later a run is retried when its retry policy could not be read (the database is down). */
const POLICY_UNREAD_RETRY_MS = 1_000;

/**
 * Judge a run: a refusal, a success ready to write, or a failure for the
 * retry policy. A result that nests too deep, that PostgreSQL could not
 * store, or that does not fit the step's type is a permanent failure.
 */
export function judgeRun(step: ClaimedStep, outcome: RunOutcome, durationMs: number): Verdict {
  if (!outcome.ok) {
    if (!RUNTIME_REFUSALS.has(outcome.error.kind)) return { kind: 'failed', error: outcome.error };
    const item: FinishItem = { id: step.id, attempt: step.attempt, ok: false, error: outcome.error, retryMs: REFUSED_RETRY_MS, durationMs };
    return { kind: 'refused', finish: { step, outcome, refused: outcome.error.kind, item } };
  }
  const json = outcome.json ?? JSON.stringify(outcome.result === undefined ? null : outcome.result);
  const tooDeep = jsonTextDepth(json) > MAX_JSON_DEPTH ? tooDeepResult(step.handler, json) : undefined;
  if (tooDeep) return { kind: 'failed', error: tooDeep };
  const problem = unstorableJson(json);
  if (problem) {
    const message = `the handler returned a value that cannot be stored: the string at ${problem.path} ${problem.problem}; remove it or encode it (e.g. base64)`;
    return { kind: 'failed', error: weftErrorRecord('OutcomeError', message, { permanent: true, kind: 'invalid_outcome' }) };
  }
  let expansion: Expansion | undefined;
  // Only a step type that reads its result, or a result that claims to be an outcome, is parsed here.
  if (step.type !== 'standard' || json.includes('"$weft"')) {
    try {
      const read = interpretResult(step.type as StepType, outcome.json !== undefined ? JSON.parse(json) : outcome.result);
      if (read.kind === 'decision') expansion = { kind: 'decision', steps: read.steps };
      if (read.kind === 'batches') expansion = { kind: 'batches', cursors: read.cursors };
    } catch (err) {
      return { kind: 'failed', error: invalidOutcome(err) };
    }
  }
  return { kind: 'success', finish: { step, outcome, expansion, item: { id: step.id, attempt: step.attempt, ok: true, resultJson: json, durationMs } } };
}

/** The retry policy of the template step this step was made from (the default when it names none). */
export function retryPolicyOf(def: TemplateDefinition, step: ClaimedStep): RetryPolicy {
  return def.steps.find((d) => d.name === step.template_step)?.retry ?? DEFAULT_RETRY;
}

/** A failed run with its retry policy applied: retried after a backoff, or failed for good (its task with it) saying why. */
export function failureFinish(step: ClaimedStep, error: StepErrorRecord, policy: RetryPolicy, durationMs: number): Finish {
  const outcome: RunOutcome = { ok: false, error };
  const failures = step.failures + 1;
  const decision = decideAfterFailure(policy, failures, error.permanent === true);
  if (decision.action === 'retry') {
    return { step, outcome, item: { id: step.id, attempt: step.attempt, ok: false, error, retryMs: decision.delayMs, durationMs } };
  }
  const reason = decision.reason === 'permanent' ? 'permanent error' : `attempts exhausted (${failures} of ${policy.max_attempts})`;
  return { step, outcome, item: { id: step.id, attempt: step.attempt, ok: false, error, retryMs: null, reason, durationMs } };
}

/** The retry policy could not be read (the database is down): the run is kept as a retryable failure saying so. */
export function policyUnreadFinish(step: ClaimedStep, err: unknown, durationMs: number): Finish {
  const error = weftErrorRecord('WorkerError', describeError(err).message, { permanent: false, kind: 'raised' });
  return { step, outcome: { ok: false, error }, item: { id: step.id, attempt: step.attempt, ok: false, error, retryMs: POLICY_UNREAD_RETRY_MS, durationMs } };
}

/** The runner itself threw (not the handler): a retryable failure naming what it threw. */
export function runnerFailure(err: unknown): RunOutcome {
  return { ok: false, error: weftErrorRecord('RunnerError', describeError(err).message, { permanent: false, kind: 'raised' }) };
}

/**
 * A decision or batch outcome that cannot be applied to its task (it names
 * a step the template does not have, a cursor list that is too long, ...):
 * a permanent failure naming the problem, in place of the success.
 */
export function rejectedExpansion(finish: Finish, err: unknown): { item: FinishItem; outcome: RunOutcome } {
  const error = invalidOutcome(err);
  const { step } = finish;
  return {
    outcome: { ok: false, error },
    item: { id: step.id, attempt: step.attempt, ok: false, error, retryMs: null, reason: 'permanent error', durationMs: finish.item.durationMs },
  };
}

function invalidOutcome(err: unknown): StepErrorRecord {
  const e = describeError(err);
  return weftErrorRecord(e.class, e.message, { permanent: true, kind: 'invalid_outcome' });
}

/**
 * A result nested deeper than weft's one limit (MAX_JSON_DEPTH), as the
 * permanent error every runtime reports: no reader downstream (Ruby's parser
 * stops at 100 levels) could be trusted with it. The text is parsed only once
 * its cheap scan found it too deep.
 */
function tooDeepResult(handler: string, json: string): StepErrorRecord | undefined {
  let problem;
  try {
    problem = jsonDepthProblem(JSON.parse(json));
  } catch {
    return undefined; // not JSON at all: reported elsewhere
  }
  if (!problem) return undefined;
  return weftErrorRecord(
    'InvalidReturn',
    `handler "${handler}" returned a result that nests deeper than ${problem.max} levels at ${problem.path}; flatten it (weft keeps every JSON value within ${problem.max} levels)`,
    { permanent: true, kind: 'invalid_return' },
  );
}
