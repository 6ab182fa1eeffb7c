/**
 * Task and step state machines: the one table of legal transitions.
 *
 * The same table is seeded into PostgreSQL by migrations/001 (tables
 * `weft.task_transition_rules` and `weft.step_transition_rules`), where a
 * foreign key from every transition row makes the database itself refuse an
 * illegal move. test/integration/store.transitions.test.ts checks that the
 * two copies agree.
 *
 * Step lifecycle on the happy path:
 *
 *   pending ─dispatch─► enqueued ─claim─► running ─report─► succeeded ─accept─► complete
 *
 * and on failure:
 *
 *   running ─report─► failed ─► waiting_retry ─backoff elapsed─► enqueued …
 *                            └► error                       (permanent, or attempts exhausted)
 *
 * `succeeded` and `failed` are the worker's word, not yet acted on by
 * orchestration; orchestration turns them into `complete`, `waiting_retry` or
 * `error`. A `running` step whose lease expired (its worker died) is
 * reported `failed` by orchestration, so the same retry policy applies.
 */

export const STEP_STATES = [
  'pending',
  'enqueued',
  'running',
  'succeeded',
  'failed',
  'waiting_retry',
  'complete',
  'error',
  'cancelled',
] as const;
export type StepState = (typeof STEP_STATES)[number];

export const TASK_STATES = ['pending', 'running', 'complete', 'error', 'cancelled'] as const;
export type TaskState = (typeof TASK_STATES)[number];

export const STEP_TRANSITIONS: Readonly<Record<StepState, readonly StepState[]>> = {
  pending: ['enqueued', 'cancelled'],
  // enqueued → enqueued: the dispatch message was lost and is sent again.
  enqueued: ['running', 'enqueued', 'cancelled'],
  // A worker that stops heartbeating loses its lease: orchestration records
  // running → failed on its behalf, and the retry policy takes it from there.
  running: ['succeeded', 'failed', 'cancelled'],
  // succeeded → failed: orchestration could not use the outcome (a decision
  // naming an unknown step, a malformed batch outcome).
  succeeded: ['complete', 'failed'],
  failed: ['waiting_retry', 'error'],
  waiting_retry: ['enqueued', 'cancelled'],
  complete: [],
  error: [],
  cancelled: [],
};

export const TASK_TRANSITIONS: Readonly<Record<TaskState, readonly TaskState[]>> = {
  pending: ['running', 'complete', 'error', 'cancelled'],
  running: ['complete', 'error', 'cancelled'],
  complete: [],
  error: [],
  cancelled: [],
};

export const TERMINAL_STEP_STATES: ReadonlySet<StepState> = new Set(['complete', 'error', 'cancelled']);
export const TERMINAL_TASK_STATES: ReadonlySet<TaskState> = new Set(['complete', 'error', 'cancelled']);

export class IllegalTransitionError extends Error {
  override name = 'IllegalTransitionError';
  constructor(
    readonly kind: 'task' | 'step',
    readonly from: string,
    readonly to: string,
  ) {
    const table = kind === 'task' ? TASK_TRANSITIONS : STEP_TRANSITIONS;
    const legal = (table as Record<string, readonly string[]>)[from];
    super(
      legal === undefined
        ? `${kind} state "${from}" is not a ${kind} state (known: ${Object.keys(table).join(', ')})`
        : `illegal ${kind} transition ${from} → ${to}; from ${from} a ${kind} may go to ${
            legal.length ? legal.join(', ') : 'nothing (it is terminal)'
          }`,
    );
  }
}

export function isLegalStepTransition(from: StepState, to: StepState): boolean {
  return STEP_TRANSITIONS[from]?.includes(to) ?? false;
}

export function isLegalTaskTransition(from: TaskState, to: TaskState): boolean {
  return TASK_TRANSITIONS[from]?.includes(to) ?? false;
}

/** Throws IllegalTransitionError unless `from → to` is in the step table. */
export function assertStepTransition(from: StepState, to: StepState): void {
  if (!isLegalStepTransition(from, to)) throw new IllegalTransitionError('step', from, to);
}

/** Throws IllegalTransitionError unless `from → to` is in the task table. */
export function assertTaskTransition(from: TaskState, to: TaskState): void {
  if (!isLegalTaskTransition(from, to)) throw new IllegalTransitionError('task', from, to);
}
