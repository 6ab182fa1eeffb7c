/**
 * A task's execution status, derived from its steps: what orchestration
 * should do next with the task.
 *
 * The rule the SQL implements for the task: weft.finish_steps completes it
 * when its last open step completes, weft.fail_task ends it in error when a
 * step fails for good, weft.cancel_task cancels it.
 * test/integration/store.readiness.test.ts checks the statements against it
 * on random DAGs and outcomes.
 */
import type { StepState } from './states.js';
import { readySteps, type StepSnapshot } from './readiness.js';

export type ExecutionStatus = 'blocked_by_failures' | 'cancelled' | 'has_ready_steps' | 'processing' | 'all_complete' | 'waiting';

/**
 * States in which a step is waiting for a worker or being run. (`succeeded` and
 * `failed` are the intermediate states of migration 001; migration 002 moved every
 * such step on, and nothing enters them any more.)
 */
const IN_FLIGHT: ReadonlySet<StepState> = new Set(['enqueued', 'running']);

/**
 * The first row that holds wins:
 * 1. `blocked_by_failures` — some step is in `error` (the task ends in error; its open steps are cancelled);
 * 2. `cancelled`           — some step is `cancelled` (the task was cancelled; nothing more runs);
 * 3. `has_ready_steps`     — `readySteps` is non-empty (dispatch them);
 * 4. `processing`          — some step is `enqueued` or `running` (wait for its outcome);
 * 5. `all_complete`        — there is at least one step and every step is `complete`;
 * 6. `waiting`             — anything else, e.g. a `waiting_retry` step before its backoff has elapsed
 *                            (wake up at the earliest `run_after`).
 * Failures come first so a task never keeps dispatching work that can only end in an error.
 *
 * @example
 *   executionStatus([{ name: 'a', state: 'complete', run_after: null, parents: [] }], Date.now())
 *   // 'all_complete'
 */
export function executionStatus(steps: StepSnapshot[], now: number): ExecutionStatus {
  if (steps.some((s) => s.state === 'error')) return 'blocked_by_failures';
  if (steps.some((s) => s.state === 'cancelled')) return 'cancelled';
  if (readySteps(steps, now).length > 0) return 'has_ready_steps';
  if (steps.some((s) => IN_FLIGHT.has(s.state))) return 'processing';
  if (steps.length > 0 && steps.every((s) => s.state === 'complete')) return 'all_complete';
  return 'waiting';
}
