import type { Database } from './database.js';
import { ASYNC_COMMIT_CTE, WITH_ASYNC_COMMIT, named } from './sql.js';
import { isUuid } from '../shared/ids.js';



/** Everything a worker needs to run a step, read in the same statement that claims it. */
export interface ClaimedStep {
  id: string;
  task_id: string;
  namespace: string;
  name: string;
  template_step: string;
  type: string;
  runtime: string;
  handler: string;
  attempt: number;
  max_attempts: number;
  timeout_ms: number;
  inputs: Record<string, unknown>;
  batch: { cursor: unknown; index: number; total: number; no_op: boolean } | null;
  context: unknown;
  /** Results of the step's parents, by parent step name. */
  dependency_results: Record<string, unknown>;
}

const CLAIM_SQL = `
  WITH ${ASYNC_COMMIT_CTE},
  claimed AS (
    UPDATE weft.steps
       SET state = 'running', seq = seq + 1, attempts = attempts + 1, worker_id = $worker,
           started_at = clock_timestamp(), updated_at = clock_timestamp(),
           lease_expires_at = clock_timestamp() + make_interval(secs => $lease_ms / 1000.0)
     WHERE id = $step AND state = 'enqueued' AND ${WITH_ASYNC_COMMIT}
     RETURNING id, task_id, seq, name, template_step, type, runtime, handler, attempts, max_attempts,
               timeout_ms, inputs, batch),
  transition AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, seq, task_id, 'enqueued', 'running', $worker, jsonb_build_object('attempt', attempts) FROM claimed)
  SELECT c.id, c.task_id, t.namespace, c.name, c.template_step, c.type, c.runtime, c.handler,
         c.attempts AS attempt, c.max_attempts, c.timeout_ms, c.inputs, c.batch, t.context,
         (SELECT coalesce(jsonb_object_agg(p.name, p.result), '{}'::jsonb)
            FROM weft.step_edges e JOIN weft.steps p ON p.id = e.from_step
           WHERE e.to_step = c.id) AS dependency_results
  FROM claimed c JOIN weft.tasks t ON t.id = c.task_id`;

/**
 * Claim a step for this worker: enqueued → running, attempts + 1, a lease,
 * and read what the handler needs, in one statement (with an asynchronous
 * commit, see ASYNC_COMMIT_CTE). Returns undefined when the step is not
 * `enqueued` any more (a duplicate or stale delivery): the caller drops the
 * message, so nothing runs twice.
 */
export async function claimStep(db: Database, stepId: string, workerId: string, leaseMs: number): Promise<ClaimedStep | undefined> {
  if (!isUuid(stepId)) return undefined;
  const q = named(CLAIM_SQL, { step: stepId, worker: workerId, lease_ms: Math.trunc(leaseMs) });
  const { rows } = await db.query<ClaimedStep>(q.text, q.values, 'weft_claim_step');
  return rows[0];
}

export interface StepReport {
  ok: boolean;
  /** The handler's return value (ok) or null. */
  result: unknown;
  /** The same, already serialised as JSON (preferred when present). */
  resultJson?: string;
  /** { class, message, stack?, language?, backtrace?, permanent, kind } when not ok. */
  error: Record<string, unknown> | null;
  durationMs: number;
}

const REPORT_SQL = `
  WITH ${ASYNC_COMMIT_CTE},
  reported AS (
    UPDATE weft.steps
       SET state = $to_state, seq = seq + 1, result = $result::jsonb, error = $error::jsonb,
           finished_at = clock_timestamp(), updated_at = clock_timestamp(), lease_expires_at = NULL
     WHERE id = $step AND state = 'running' AND attempts = $attempt AND worker_id = $worker AND ${WITH_ASYNC_COMMIT}
     RETURNING id, task_id, seq),
  transition AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, seq, task_id, 'running', $to_state, $worker, jsonb_build_object('duration_ms', $duration_ms::float8)
    FROM reported),
  message AS (
    INSERT INTO weft.queue_messages (queue, body)
    SELECT 'orchestration.results', jsonb_build_object('task_id', task_id, 'step_id', id) FROM reported WHERE $outbox)
  SELECT id, task_id FROM reported`;

/**
 * Record a handler's outcome: running → succeeded | failed, with the result
 * or error, in one statement (asynchronous commit, see ASYNC_COMMIT_CTE;
 * orchestration's synchronous commit that accepts it makes it durable);
 * with `outbox` the report message to
 * orchestration is written by the same statement. Returns false when this
 * worker no longer owns the step (its lease expired and the step was given
 * to another attempt): the late result is discarded, never written over the
 * newer attempt.
 */
export async function reportStep(
  db: Database,
  step: { id: string; attempt: number },
  workerId: string,
  report: StepReport,
  outbox: boolean,
): Promise<boolean> {
  const q = named(REPORT_SQL, {
    step: step.id,
    attempt: step.attempt,
    worker: workerId,
    to_state: report.ok ? 'succeeded' : 'failed',
    result: report.ok ? (report.resultJson ?? JSON.stringify(report.result ?? null)) : null,
    error: report.ok ? null : JSON.stringify(report.error),
    duration_ms: report.durationMs,
    outbox,
  });
  const { rowCount } = await db.query(q.text, q.values, 'weft_report_step');
  return rowCount === 1;
}

/** Extend the leases of the steps this worker is running. */
export async function heartbeat(db: Database, workerId: string, stepIds: string[], leaseMs: number): Promise<number> {
  if (stepIds.length === 0) return 0;
  const { rowCount } = await db.query(
    `UPDATE weft.steps SET lease_expires_at = clock_timestamp() + make_interval(secs => $3 / 1000.0)
      WHERE id = ANY($1::uuid[]) AND state = 'running' AND worker_id = $2`,
    [stepIds, workerId, leaseMs],
  );
  return rowCount ?? 0;
}
