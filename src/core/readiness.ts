/**
 * Step readiness over a snapshot of one task's step instances.
 * Pure: `now` is a parameter (epoch ms), never read from the clock.
 *
 * The rule weft.create_task and weft.finish_steps implement in SQL with the
 * `pending_parents` countdown: test/integration/store.readiness.test.ts
 * checks the statements against it on random DAGs.
 */
import type { StepState } from './states.js';

/** What the rules need to know about one step instance. */
export interface StepSnapshot {
  name: string;
  state: StepState;
  /** Executions started so far. */
  attempts: number;
  max_attempts: number;
  /** Epoch ms before which a `waiting_retry` step must not run; null = no wait. */
  run_after: number | null;
  /** Instance names of its parents (edges parent → this). */
  parents: string[];
}

/**
 * Names of the steps that may be dispatched now, in snapshot order:
 * - `pending` with every parent `complete`;
 * - `waiting_retry` whose `run_after` is null or `<= now` and with `attempts < max_attempts`.
 * A parent missing from the snapshot counts as not complete (never run a step
 * on a dependency we cannot see).
 *
 * @example
 *   readySteps([
 *     { name: 'a', state: 'complete', attempts: 1, max_attempts: 3, run_after: null, parents: [] },
 *     { name: 'b', state: 'pending',  attempts: 0, max_attempts: 3, run_after: null, parents: ['a'] },
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
      return (step.run_after === null || step.run_after <= now) && step.attempts < step.max_attempts;
    default:
      return false;
  }
}
