/**
 * Step readiness over a snapshot of one task's step instances.
 * Pure: `now` is a parameter (epoch ms), never read from the clock.
 *
 * The rule the step boundary's SQL implements: weft.insert_steps and
 * weft.finish_steps with the `pending_parents` countdown (a released step is
 * enqueued, or claimed on release by the worker that released it), and
 * weft.dispatch_due_retries for a retry whose backoff has elapsed.
 * test/integration/store.readiness.test.ts checks the statements against it
 * on random DAGs and random outcomes (successes, retries, failures, cancels).
 */
import type { StepState } from './states.js';

/** What the rules need to know about one step instance. */
export interface StepSnapshot {
  name: string;
  state: StepState;
  /** Epoch ms before which a `waiting_retry` step must not run; null = no wait. */
  run_after: number | null;
  /** Instance names of its parents (edges parent → this). */
  parents: string[];
}

/**
 * Names of the steps that may be dispatched now, in snapshot order:
 * - `pending` with every parent `complete`;
 * - `waiting_retry` whose `run_after` is null or `<= now`. The retry budget is
 *   not checked here: it was spent when the failure was judged (src/core/retry.ts
 *   counts failures, not attempts: a run lost with its worker is no failure),
 *   and a step out of budget went to `error`, never to `waiting_retry`.
 * A parent missing from the snapshot counts as not complete (never run a step
 * on a dependency we cannot see).
 *
 * @example
 *   readySteps([
 *     { name: 'a', state: 'complete', run_after: null, parents: [] },
 *     { name: 'b', state: 'pending',  run_after: null, parents: ['a'] },
 *   ], Date.now()) // ['b']
 */
export function readySteps(steps: StepSnapshot[], now: number): string[] {
  const complete = new Set(steps.filter((s) => s.state === 'complete').map((s) => s.name));
  return steps.filter((s) => isReady(s, complete, now)).map((s) => s.name);
}

/** One step's readiness, given the names of the complete steps. */
export function isReady(step: StepSnapshot, complete: ReadonlySet<string>, now: number): boolean {
  switch (step.state) {
    case 'pending':
      return step.parents.every((p) => complete.has(p));
    case 'waiting_retry':
      return step.run_after === null || step.run_after <= now;
    default:
      return false;
  }
}
