/**
 * A task's execution status, derived from its steps: what orchestration
 * should do next with the task.
 *
 * The rule weft.finish_steps implements in SQL (a task completes when its
 * last open step does): test/integration/store.readiness.test.ts checks the
 * statements against it on random DAGs.
 */
import type { StepState } from './states.js';
import { readySteps, type StepSnapshot } from './readiness.js';

export type ExecutionStatus = 'blocked_by_failures' | 'has_ready_steps' | 'processing' | 'all_complete' | 'waiting';

/** States in which a worker or orchestration is actively busy with a step. */
const IN_FLIGHT: ReadonlySet<StepState> = new Set(['enqueued', 'running', 'succeeded', 'failed']);

/**
 * The first row that holds wins:
 * 1. `blocked_by_failures` — some step is in `error` (the task cannot complete; stop dispatching);
 * 2. `has_ready_steps`     — `readySteps` is non-empty (dispatch them);
 * 3. `processing`          — some step is `enqueued`, `running`, `succeeded` or `failed` (wait for events);
 * 4. `all_complete`        — there is at least one step and every step is `complete`;
 * 5. `waiting`             — anything else, e.g. a `waiting_retry` step before its backoff has elapsed
 *                            (wake up at the earliest `run_after`).
 * Failures come first so a task never keeps dispatching work that can only end in an error.
 *
 * @example
 *   executionStatus([{ name: 'a', state: 'complete', attempts: 1, max_attempts: 3, run_after: null, parents: [] }], Date.now())
 *   // 'all_complete'
 */
export function executionStatus(steps: StepSnapshot[], now: number): ExecutionStatus {
  if (steps.some((s) => s.state === 'error')) return 'blocked_by_failures';
  if (readySteps(steps, now).length > 0) return 'has_ready_steps';
  if (steps.some((s) => IN_FLIGHT.has(s.state))) return 'processing';
  if (steps.length > 0 && steps.every((s) => s.state === 'complete')) return 'all_complete';
  return 'waiting';
}
