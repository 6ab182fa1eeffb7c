import { WeftError } from '../shared/errors.js';
/**
 * Task and step state machines: the one table of legal transitions.
 *
 * The same table is seeded into PostgreSQL by migrations 001, 002 and 004 (tables
 * `weft.task_transition_rules` and `weft.step_transition_rules`), compiled into
 * the check constraints of the transition logs, so the database itself refuses
 * an illegal move. test/integration/store.transitions.test.ts checks that the
 * copies agree.
 *
 * Step lifecycle on the happy path (since migration 002 the worker that
 * finishes a step applies its outcome itself, in one statement):
 *
 *   pending ─released─► enqueued ─claim─► running ─finish─► complete
 *   pending ─released and claimed by the finishing worker─► running   (a chain continues in place)
 *
 * and on failure:
 *
 *   running ─finish─► waiting_retry ─backoff elapsed─► enqueued …
 *   running ─finish─► error              (permanent, or attempts exhausted; the task fails)
 *   running ─worker lost─► enqueued      (it runs again without using the retry budget)
 *
 * A worker presumed lost may still bring its result before anyone else
 * claimed the step: enqueued → complete | waiting_retry | error.
 *
 * An operator may cancel a pending or running task (its open steps become
 * cancelled) and retry one that ended in error or was cancelled (its failed
 * and cancelled steps become enqueued or pending again, the task running):
 * migration 004.
 *
 * Sleep and wait steps (migration 007) hold no worker while they wait:
 *
 *   pending ─released─► waiting ─time came, or a signal─► running ─► complete | error   (one statement)
 *
 * `succeeded` and `failed` are the intermediate states of migration 001,
 * when a worker reported and an orchestrator accepted; they stay legal for
 * the history of older tasks.
 */

export const STEP_STATES = ['pending', 'enqueued', 'running', 'succeeded', 'failed', 'waiting_retry', 'waiting', 'complete', 'error', 'cancelled'] as const;
export type StepState = (typeof STEP_STATES)[number];

export const TASK_STATES = ['pending', 'running', 'complete', 'error', 'cancelled'] as const;
export type TaskState = (typeof TASK_STATES)[number];

export const STEP_TRANSITIONS: Readonly<Record<StepState, readonly StepState[]>> = {
  // pending → running: released by its last parent's finish and claimed in the same statement.
  // pending → waiting: a sleep or wait step released (migration 007).
  pending: ['enqueued', 'running', 'cancelled', 'waiting'],
  // enqueued → enqueued: the broker's message was lost and is sent again.
  // enqueued → complete | waiting_retry | error: the result of a run whose
  // worker was presumed lost, accepted because nobody claimed the step since.
  enqueued: ['running', 'enqueued', 'cancelled', 'complete', 'waiting_retry', 'error'],
  // running → enqueued: its worker stopped heartbeating; it runs again.
  running: ['succeeded', 'failed', 'cancelled', 'complete', 'waiting_retry', 'error', 'enqueued'],
  // Migration 001's intermediate states (kept for older tasks' history).
  succeeded: ['complete', 'failed'],
  failed: ['waiting_retry', 'error'],
  waiting_retry: ['enqueued', 'cancelled'],
  // Its time came or its signal arrived: taken and finished in one statement
  // (weft.complete_waiting), as a worker finishes a step.
  waiting: ['running', 'cancelled'],
  complete: [],
  // error, cancelled → enqueued | pending: an operator retried the task (migration 004).
  error: ['enqueued', 'pending', 'waiting'],
  cancelled: ['enqueued', 'pending', 'waiting'],
};

export const TASK_TRANSITIONS: Readonly<Record<TaskState, readonly TaskState[]>> = {
  pending: ['running', 'complete', 'error', 'cancelled'],
  running: ['complete', 'error', 'cancelled'],
  complete: [],
  // An operator retried it (migration 004): it runs again from its failed or cancelled steps.
  error: ['running'],
  cancelled: ['running'],
};

export const TERMINAL_STEP_STATES: ReadonlySet<StepState> = new Set(['complete', 'error', 'cancelled']);
export const TERMINAL_TASK_STATES: ReadonlySet<TaskState> = new Set(['complete', 'error', 'cancelled']);

export class IllegalTransitionError extends WeftError {
  override name = 'IllegalTransitionError';
  constructor(
    readonly kind: 'task' | 'step',
    readonly from: string,
    readonly to: string,
  ) {
    const table = kind === 'task' ? TASK_TRANSITIONS : STEP_TRANSITIONS;
    const legal = (table as Record<string, readonly string[]>)[from];
    super(
      'illegal_transition',
      legal === undefined
        ? `${kind} state "${from}" is not a ${kind} state (known: ${Object.keys(table).join(', ')})`
        : `illegal ${kind} transition ${from} → ${to}; from ${from} a ${kind} may go to ${legal.length ? legal.join(', ') : 'nothing (it is terminal)'}`,
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
