import type { Database } from './database.js';
import { readEvents, type StatementOutcome, type StepEventRow } from './events.js';
import { writesOutbox, type DeliveryOrMode } from './delivery.js';
import { ConflictError, NotFoundError } from '../shared/errors.js';

/**
 * Cancel and retry (weft.cancel_task and weft.retry_task, sql/functions/):
 * one statement and one commit each. The caller delivers what they return
 * after COMMIT (Orchestrator.cancelTask / retryTask): wakes or publishes the
 * steps a retry enqueued, tells waiters a cancelled task ended, and tells
 * each worker running a cancelled step to interrupt it.
 *
 * Both throw NotFoundError for an unknown task (or step) and ConflictError
 * when the task is in a state the operation does not apply to, with a
 * message that says which state it is in.
 */

/**
 * Workers LISTEN here: `{ "steps": [ids] }` are cancelled steps that were
 * running; a worker running one interrupts its handler.
 */
export const CANCEL_CHANNEL = 'weft_cancel';

/** A cancelled step that was running, and the worker running it. */
export interface Interrupted {
  step_id: string;
  task_id: string;
  worker: string;
}

export interface CancelOutcome extends StatementOutcome {
  state: 'cancelled';
  /** Running steps now cancelled: their workers are told to interrupt them. */
  interrupted: Interrupted[];
}

export interface RetryOutcome extends StatementOutcome {
  state: 'running';
  /** Steps reopened ready to run (the others wait for their parents). */
  enqueued: number;
}

/**
 * Cancel a pending or running task and its open steps; `by` names who asked
 * and `reason` says why (both kept in the task's audit row, sql/functions/cancel_task.sql).
 */
export async function cancelTask(db: Database, taskId: string, by: string, pid = 'api', reason?: string): Promise<CancelOutcome> {
  const rows = await controlQuery(db, 'SELECT * FROM weft.cancel_task($1, $2, $3, $4)', [taskId, by, pid, reason ?? null]);
  const interrupted: Interrupted[] = [];
  for (const r of rows) {
    if (r.kind === 'finished' && r.detail?.from === 'running' && typeof r.detail.worker === 'string') {
      interrupted.push({ step_id: r.step_id!, task_id: r.task_id, worker: r.detail.worker });
    }
  }
  return { ...readEvents(rows), state: 'cancelled', interrupted };
}

/**
 * Run a task that ended in error or was cancelled again from its failed and
 * cancelled steps (with a fresh retry budget), or from one named failed
 * step when it is the only failed one.
 */
export async function retryTask(
  db: Database,
  taskId: string,
  opts: { step?: string; by: string; pid?: string; delivery?: DeliveryOrMode },
): Promise<RetryOutcome> {
  const rows = await controlQuery(db, 'SELECT * FROM weft.retry_task($1, $2, $3, $4, $5)', [
    taskId,
    opts.step ?? null,
    opts.by,
    opts.pid ?? 'api',
    opts.delivery ? writesOutbox(opts.delivery) : false,
  ]);
  const outcome = readEvents(rows);
  return { ...outcome, state: 'running', enqueued: outcome.dispatch.steps.length };
}

async function controlQuery(db: Database, sql: string, params: unknown[]): Promise<StepEventRow[]> {
  try {
    return (await db.query<StepEventRow>(sql, params)).rows;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === 'WF404') throw new NotFoundError(e.message ?? 'not found');
    if (e.code === 'WF409') throw new ConflictError(e.message ?? 'conflict');
    throw err;
  }
}

/** Why a worker gives steps back (weft.release_steps): kept in the transition rows. */
export interface ReleaseRequest {
  steps: Array<{ id: string; attempt: number }>;
  /** Run them again this much later (0: enqueue now). */
  delayMs: number;
  reason: string;
}

/**
 * Give back steps this worker holds without running them, and without using
 * their retry budget: its runtime refused them (breaker open, queue full),
 * or they were claimed in its name and never started. Fenced like a finish.
 */
export async function releaseSteps(db: Database, worker: string, r: ReleaseRequest, delivery: DeliveryOrMode): Promise<StatementOutcome> {
  const { rows } = await db.query<StepEventRow>('SELECT * FROM weft.release_steps($1, $2::uuid[], $3::int[], $4, $5, $6)', [
    worker,
    r.steps.map((s) => s.id),
    r.steps.map((s) => s.attempt),
    Math.max(0, Math.round(r.delayMs)),
    r.reason,
    writesOutbox(delivery),
  ]);
  return readEvents(rows);
}

/** Steps running in this worker's name for longer than `olderThanMs` (to compare with what it really runs). */
export async function runningStepsOf(db: Database, worker: string, olderThanMs: number): Promise<Array<{ id: string; attempt: number }>> {
  const { rows } = await db.query<{ id: string; attempt: number }>('SELECT * FROM weft.running_steps_of($1, $2)', [worker, Math.round(olderThanMs)]);
  return rows;
}

/** A wait step, named by its task and name (the API) or by its callback token (a webhook). */
export type SignalTarget = { task: string; step: string } | { token: string };

/** What a signal needs to know before it is sent: the step's state and its payload schema. */
export interface SignalStep {
  id: string;
  task_id: string;
  name: string;
  type: string;
  state: string;
  wait: { schema?: Record<string, unknown> } | null;
}

/** The step a signal is for; undefined when there is none (the signal itself then says which part is missing). */
export async function signalStepOf(db: Database, target: SignalTarget): Promise<SignalStep | undefined> {
  const { rows } =
    'token' in target
      ? await db.query<SignalStep>('SELECT id, task_id, name, type, state, wait FROM weft.steps WHERE signal_token = $1', [target.token])
      : await db.query<SignalStep>('SELECT id, task_id, name, type, state, wait FROM weft.steps WHERE task_id = $1 AND name = $2', [target.task, target.step]);
  return rows[0];
}

/**
 * Complete a waiting `wait` step with `payload` as its result, releasing its
 * children and ending its task in the same commit (weft.signal_step).
 * NotFoundError for no such task, step or token; ConflictError, naming the
 * state, for a step that is not a wait step or is not waiting.
 */
export async function signalStep(
  db: Database,
  target: SignalTarget,
  payload: unknown,
  opts: { by: string; pid: string; delivery: DeliveryOrMode },
): Promise<StatementOutcome> {
  const rows = await controlQuery(db, 'SELECT * FROM weft.signal_step($1, $2, $3, $4::jsonb, $5, $6, $7)', [
    'token' in target ? null : target.task,
    'token' in target ? null : target.step,
    'token' in target ? target.token : null,
    JSON.stringify(payload ?? null),
    opts.by,
    opts.pid,
    writesOutbox(opts.delivery),
  ]);
  return readEvents(rows);
}
