import type pg from 'pg';
import type { Database } from './database.js';
import type { StepState, TaskState } from '../core/states.js';
import type { PlannedStep } from '../core/plan.js';
import { INSERT_PLANNED_STEPS_CTES, SELECT_NEW_DISPATCHES_SQL, stepRows, type DispatchedStep } from './tasks.js';
import { inlined, named, Uuid } from './sql.js';

/**
 * The statements orchestration runs when a worker has reported a step. All
 * of them run inside one transaction that first locks the task row
 * (`lockReportedStep`), so results of one task are processed one at a time,
 * whichever orchestrator receives them, and every statement sees what the
 * previous holder committed.
 */

export interface ReportedStep {
  task_id: string;
  task_state: TaskState;
  namespace: string;
  template_name: string;
  version: string;
  step_id: string;
  name: string;
  template_step: string;
  type: string;
  state: StepState;
  attempts: number;
  max_attempts: number;
  result: unknown;
  error: Record<string, unknown> | null;
}

const LOCK_SQL = `
  SELECT t.id AS task_id, t.state AS task_state, t.namespace, t.name AS template_name, t.version,
         s.id AS step_id, s.name, s.template_step, s.type, s.state, s.attempts, s.max_attempts, s.result, s.error
    FROM weft.steps s JOIN weft.tasks t ON t.id = s.task_id
   WHERE s.id = $step
     FOR UPDATE OF t`;

/**
 * BEGIN, then lock the task of a reported step and read both: one round
 * trip (two statements in one simple-protocol query). The transaction stays
 * open on `client`; end it with `completeStepAndCommit` or COMMIT/ROLLBACK.
 */
export async function beginAndLockReportedStep(client: pg.PoolClient, stepId: string): Promise<ReportedStep | undefined> {
  const results = (await client.query(`BEGIN; ${inlined(client, LOCK_SQL, { step: new Uuid(stepId) })}`)) as unknown as Array<{
    rows: ReportedStep[];
  }>;
  return results[1]!.rows[0];
}

const COMPLETE_SQL = `
  WITH done AS (
    UPDATE weft.steps SET state = 'complete', seq = seq + 1, updated_at = clock_timestamp()
     WHERE id = $step AND state = 'succeeded'
     RETURNING id, task_id, seq, extract(epoch FROM clock_timestamp() - enqueued_at) * 1000 AS step_ms),
  done_transition AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id)
    SELECT id, seq, task_id, 'succeeded', 'complete', $pid FROM done),
  children AS (
    UPDATE weft.steps s
       SET pending_parents = s.pending_parents - 1,
           state = CASE WHEN s.pending_parents = 1 AND s.state = 'pending' AND $dispatch THEN 'enqueued' ELSE s.state END,
           seq = CASE WHEN s.pending_parents = 1 AND s.state = 'pending' AND $dispatch THEN s.seq + 1 ELSE s.seq END,
           enqueued_at = CASE WHEN s.pending_parents = 1 AND s.state = 'pending' AND $dispatch THEN clock_timestamp() ELSE s.enqueued_at END,
           updated_at = clock_timestamp()
      FROM weft.step_edges e, done
     WHERE e.from_step = done.id AND s.id = e.to_step
     RETURNING s.id, s.task_id, s.seq, s.runtime, s.state, s.pending_parents),
  ready AS (SELECT * FROM children WHERE state = 'enqueued' AND pending_parents = 0),
  ready_transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id)
    SELECT id, seq, task_id, 'pending', 'enqueued', $pid FROM ready),
  messages AS (
    INSERT INTO weft.queue_messages (queue, body)
    SELECT 'step.' || $namespace || '.' || runtime, jsonb_build_object('task_id', task_id, 'step_id', id)
      FROM ready WHERE $outbox),
  -- Steps of the task that are not complete, not counting the one completed
  -- here: the statement's snapshot still shows it as 'succeeded'.
  others_open AS (
    SELECT count(*) AS n FROM weft.steps WHERE task_id = $task AND state <> 'complete' AND id <> $step),
  finished AS (
    UPDATE weft.tasks SET state = 'complete', seq = seq + 1, completed_at = clock_timestamp(), updated_at = clock_timestamp()
     WHERE id = $task AND state = 'running' AND $dispatch
       AND (SELECT count(*) FROM done) = 1 AND (SELECT n FROM others_open) = 0
     RETURNING id, seq, extract(epoch FROM completed_at - created_at) * 1000 AS task_ms),
  finished_transition AS (
    INSERT INTO weft.task_transitions (task_id, seq, from_state, to_state, process_id)
    SELECT id, seq, 'running', 'complete', $pid FROM finished)
  SELECT (SELECT count(*) FROM done)::int AS completed,
         (SELECT count(*) FROM finished)::int AS task_completed,
         (SELECT step_ms FROM done)::float8 AS step_ms,
         (SELECT task_ms FROM finished)::float8 AS task_ms,
         coalesce((SELECT json_agg(json_build_object('step_id', id, 'task_id', task_id, 'runtime', runtime)) FROM ready), '[]') AS dispatched`;

export interface FastAccept {
  task_id: string;
  namespace: string;
  name: string;
  attempts: number;
  result: unknown;
  completed: boolean;
  task_completed: boolean;
  step_ms: number | null;
  task_ms: number | null;
  dispatched: Array<{ step_id: string; task_id: string; runtime: string }>;
}

/**
 * The common case in one round trip and one commit (weft.accept_success in
 * migrations/001): a plain result of a standard step on a running task.
 * Returns undefined, having changed nothing, for every other case.
 */
export async function acceptSuccess(db: Database, stepId: string, pid: string, outbox: boolean): Promise<FastAccept | undefined> {
  const { rows } = await db.query<{ r: FastAccept & { handled: boolean } }>(
    'SELECT weft.accept_success($1, $2, $3) AS r',
    [stepId, pid, outbox],
    'weft_accept_success',
  );
  const r = rows[0]?.r;
  return r?.handled ? r : undefined;
}

export interface CompleteOutcome {
  completed: boolean;
  taskCompleted: boolean;
  /** ms from the step's (last) dispatch to its acceptance, when completed. */
  stepMs: number | null;
  /** ms from the task's creation to its completion, when it completed. */
  taskMs: number | null;
  dispatched: DispatchedStep[];
}

/**
 * succeeded → complete; children whose last parent this was become
 * `enqueued` (with their messages when `outbox`); when nothing else is open
 * the task becomes `complete`. One statement.
 * With `dispatch` false (the task already ended), the step is recorded as
 * complete but nothing new is dispatched.
 */
export async function completeStep(
  client: pg.PoolClient,
  s: { step_id: string; task_id: string; namespace: string },
  pid: string,
  opts: { outbox: boolean; dispatch: boolean; commit?: boolean },
): Promise<CompleteOutcome> {
  const q = named(COMPLETE_SQL, {
    step: s.step_id,
    task: s.task_id,
    namespace: s.namespace,
    pid,
    outbox: opts.outbox,
    dispatch: opts.dispatch,
  });
  // A prepared statement (planned once per connection), then COMMIT.
  const res = await client.query({ name: 'weft_complete_step', text: q.text, values: q.values });
  if (opts.commit) await client.query('COMMIT');
  const row = res.rows[0];
  return {
    completed: row.completed === 1,
    taskCompleted: row.task_completed === 1,
    stepMs: row.step_ms,
    taskMs: row.task_ms,
    dispatched: (row.dispatched as Omit<DispatchedStep, 'namespace'>[]).map((d) => ({ ...d, namespace: s.namespace })),
  };
}

/** Names, ids and states of every step of a task (for decision and batch expansion). */
export async function taskSteps(
  client: pg.PoolClient,
  taskId: string,
): Promise<Array<{ id: string; name: string; template_step: string; state: StepState }>> {
  const { rows } = await client.query('SELECT id, name, template_step, state FROM weft.steps WHERE task_id = $1', [taskId]);
  return rows;
}

const INSERT_EXPANSION_SQL = `WITH ${INSERT_PLANNED_STEPS_CTES}
  ${SELECT_NEW_DISPATCHES_SQL}`;

/**
 * Insert steps created by a decision or batch outcome, with their edges.
 * `completing` is the step whose outcome this is: it is still `succeeded`
 * here and is completed right after by `completeStep`, which then counts
 * down its children, the new ones included.
 */
export async function insertExpansion(
  client: pg.PoolClient,
  taskId: string,
  namespace: string,
  planned: PlannedStep[],
  existing: Array<{ id: string; name: string; state: StepState }>,
  pid: string,
  outbox: boolean,
): Promise<DispatchedStep[]> {
  if (planned.length === 0) return [];
  const ids = new Map(existing.map((e) => [e.name, e.id]));
  const states = new Map(existing.map((e) => [e.name, e.state]));
  // A parent created in this same expansion is not complete either.
  const { steps, edges } = stepRows(planned, ids, (parent) => states.get(parent) !== 'complete');
  const q = named(INSERT_EXPANSION_SQL, {
    task: taskId,
    namespace,
    pid,
    steps: JSON.stringify(steps),
    edges: JSON.stringify(edges),
    outbox,
  });
  const { rows } = await client.query<{ step_id: string; task_id: string; runtime: string }>(q.text, q.values);
  return rows.map((r) => ({ ...r, namespace }));
}

/** failed → waiting_retry, to be dispatched again once `delayMs` has passed. Returns when that is. */
export async function scheduleRetry(client: pg.PoolClient, stepId: string, delayMs: number, pid: string): Promise<Date | undefined> {
  const { rows } = await client.query<{ run_after: Date }>(
    `WITH r AS (
       UPDATE weft.steps SET state = 'waiting_retry', seq = seq + 1, updated_at = clock_timestamp(),
              run_after = clock_timestamp() + make_interval(secs => $2 / 1000.0)
        WHERE id = $1 AND state = 'failed' RETURNING id, task_id, seq, run_after, attempts),
     t AS (INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
           SELECT id, seq, task_id, 'failed', 'waiting_retry', $3,
                  jsonb_build_object('delay_ms', $2::int, 'next_attempt', attempts + 1) FROM r)
     SELECT run_after FROM r`,
    [stepId, Math.round(delayMs), pid],
  );
  return rows[0]?.run_after;
}

/**
 * failed → error, the task → error with the step's error, and every step of
 * the task that has not started (pending, enqueued, waiting_retry) →
 * cancelled. Steps already running finish and are recorded, but nothing new
 * is dispatched.
 */
export async function failTask(
  client: pg.PoolClient,
  s: { step_id: string; task_id: string; name: string },
  reason: string,
  pid: string,
): Promise<void> {
  // Lock the steps to cancel first, so their states cannot change under us
  // (a worker claiming one, the retry sweep enqueueing one) and the audit
  // rows name the true from-state.
  const { rows: toCancel } = await client.query<{ id: string; state: string }>(
    `SELECT id, state FROM weft.steps WHERE task_id = $1 AND state IN ('pending', 'enqueued', 'waiting_retry') FOR UPDATE`,
    [s.task_id],
  );
  await client.query(
    `WITH failed_step AS (
       UPDATE weft.steps SET state = 'error', seq = seq + 1, updated_at = clock_timestamp()
        WHERE id = $1 AND state = 'failed' RETURNING id, task_id, seq, error),
     failed_transition AS (
       INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
       SELECT id, seq, task_id, 'failed', 'error', $3, jsonb_build_object('reason', $4::text) FROM failed_step),
     cancelled AS (
       UPDATE weft.steps s SET state = 'cancelled', seq = s.seq + 1, updated_at = clock_timestamp()
         FROM jsonb_to_recordset($6::jsonb) AS c(id uuid, state text)
        WHERE s.id = c.id RETURNING s.id, s.task_id, s.seq, c.state AS old_state),
     cancelled_transitions AS (
       INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
       SELECT id, seq, task_id, old_state, 'cancelled', $3, jsonb_build_object('reason', 'task failed') FROM cancelled),
     task AS (
       UPDATE weft.tasks SET state = 'error', seq = seq + 1, updated_at = clock_timestamp(), completed_at = clock_timestamp(),
              error = jsonb_build_object('step', $5::text, 'reason', $4::text, 'error', (SELECT error FROM failed_step))
        WHERE id = $2 AND state IN ('pending', 'running') RETURNING id, seq),
     task_transition AS (
       INSERT INTO weft.task_transitions (task_id, seq, from_state, to_state, process_id, metadata)
       SELECT id, seq, 'running', 'error', $3, jsonb_build_object('step', $5::text, 'reason', $4::text) FROM task)
     SELECT count(*) FROM task`,
    [s.step_id, s.task_id, pid, reason, s.name, JSON.stringify(toCancel)],
  );
}

/** failed → error for a step of a task that has already ended (nothing else changes). */
export async function closeFailedStep(client: pg.PoolClient, stepId: string, pid: string): Promise<void> {
  await client.query(
    `WITH e AS (UPDATE weft.steps SET state = 'error', seq = seq + 1, updated_at = clock_timestamp()
                 WHERE id = $1 AND state = 'failed' RETURNING id, task_id, seq)
     INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
     SELECT id, seq, task_id, 'failed', 'error', $2, '{"reason":"task already ended"}'::jsonb FROM e`,
    [stepId, pid],
  );
}

/** succeeded → failed: the outcome could not be used (e.g. a decision naming an unknown step). */
export async function rejectOutcome(client: pg.PoolClient, stepId: string, error: Record<string, unknown>, pid: string): Promise<void> {
  await client.query(
    `WITH r AS (UPDATE weft.steps SET state = 'failed', seq = seq + 1, error = $2::jsonb, updated_at = clock_timestamp()
                 WHERE id = $1 AND state = 'succeeded' RETURNING id, task_id, seq)
     INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
     SELECT id, seq, task_id, 'succeeded', 'failed', $3, '{"reason":"outcome rejected"}'::jsonb FROM r`,
    [stepId, JSON.stringify(error), pid],
  );
}

// ---------------------------------------------------------------------------
// Sweeps: what the push path may have missed. Run by every orchestrator on
// its poll interval; each statement is safe to run concurrently.
// ---------------------------------------------------------------------------

/**
 * Move the steps `pick` selects (a subquery of step ids, locked with SKIP
 * LOCKED) from `from` to `enqueued`, with their transitions and, with
 * `outbox`, their messages. $1 = process id, $2 = outbox, $3 = a number `pick` may use.
 */
function enqueueSql(from: 'waiting_retry' | 'enqueued', reason: string, pick: string): string {
  return `
  WITH moved AS (
    UPDATE weft.steps s SET state = 'enqueued', seq = s.seq + 1, run_after = NULL,
           enqueued_at = clock_timestamp(), updated_at = clock_timestamp()
      FROM weft.tasks t
     WHERE s.id IN (${pick}) AND t.id = s.task_id
     RETURNING s.id, s.task_id, s.seq, s.runtime, t.namespace),
  transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, seq, task_id, '${from}', 'enqueued', $1, '${JSON.stringify({ reason })}'::jsonb FROM moved),
  messages AS (
    INSERT INTO weft.queue_messages (queue, body)
    SELECT 'step.' || namespace || '.' || runtime, jsonb_build_object('task_id', task_id, 'step_id', id) FROM moved WHERE $2)
  SELECT id AS step_id, task_id, runtime, namespace FROM moved`;
}

const DUE_RETRIES_SQL = enqueueSql(
  'waiting_retry',
  'backoff elapsed',
  `SELECT id FROM weft.steps WHERE state = 'waiting_retry' AND run_after <= clock_timestamp() + make_interval(secs => $3 / 1000.0)
    ORDER BY run_after LIMIT 500 FOR UPDATE SKIP LOCKED`,
);

/** waiting_retry → enqueued for every step whose backoff has elapsed. */
export async function dispatchDueRetries(db: Database, pid: string, outbox: boolean): Promise<DispatchedStep[]> {
  const { rows } = await db.query<DispatchedStep>(DUE_RETRIES_SQL, [pid, outbox, 0]);
  return rows;
}

/** When the next retry is due, if any (so a timer can wake exactly then). */
export async function nextRetryAt(db: Database): Promise<Date | undefined> {
  const { rows } = await db.query<{ at: Date | null }>(`SELECT min(run_after) AS at FROM weft.steps WHERE state = 'waiting_retry'`);
  return rows[0]?.at ?? undefined;
}

const REDISPATCH_SQL = enqueueSql(
  'enqueued',
  'not claimed in time; dispatched again',
  `SELECT id FROM weft.steps WHERE state = 'enqueued' AND enqueued_at < clock_timestamp() - make_interval(secs => $3 / 1000.0)
    ORDER BY enqueued_at LIMIT 500 FOR UPDATE SKIP LOCKED`,
);

/**
 * Steps `enqueued` for longer than `olderThanMs` without a claim: their
 * message may be lost (a broker publish that never happened because the
 * orchestrator died right after COMMIT). Dispatch them again; a duplicate
 * delivery is harmless because the claim is a compare-and-set.
 */
export async function redispatchStale(db: Database, pid: string, olderThanMs: number, outbox: boolean): Promise<DispatchedStep[]> {
  const { rows } = await db.query<DispatchedStep>(REDISPATCH_SQL, [pid, outbox, olderThanMs]);
  return rows;
}

/**
 * Running steps whose lease expired (the worker stopped heartbeating):
 * running → failed with a retryable `LeaseExpiredError`, so the normal retry
 * policy applies. Returns the ids, to be processed like any report.
 */
export async function expireLeases(db: Database, pid: string): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `WITH expired AS (
       UPDATE weft.steps SET state = 'failed', seq = seq + 1, updated_at = clock_timestamp(), finished_at = clock_timestamp(),
              error = jsonb_build_object('class', 'LeaseExpiredError', 'permanent', false, 'kind', 'lease_expired',
                        'message', 'worker ' || coalesce(worker_id, '?') || ' stopped heartbeating while running attempt '
                                   || attempts || '; the step will be retried'),
              lease_expires_at = NULL
        WHERE id IN (SELECT id FROM weft.steps WHERE state = 'running' AND lease_expires_at < clock_timestamp()
                     LIMIT 500 FOR UPDATE SKIP LOCKED)
        RETURNING id, task_id, seq, worker_id)
     , t AS (INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
             SELECT id, seq, task_id, 'running', 'failed', $1, jsonb_build_object('reason', 'lease expired', 'worker', worker_id) FROM expired)
     SELECT id FROM expired`,
    [pid],
  );
  return rows.map((r) => r.id);
}

/** Reported steps nobody processed for `olderThanMs` (a lost report message). */
export async function unprocessedReports(db: Database, olderThanMs: number): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM weft.steps WHERE state IN ('succeeded', 'failed')
        AND updated_at < clock_timestamp() - make_interval(secs => $1 / 1000.0) ORDER BY updated_at LIMIT 500`,
    [olderThanMs],
  );
  return rows.map((r) => r.id);
}
