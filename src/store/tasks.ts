import type pg from 'pg';
import type { Database } from './database.js';
import type { PlannedStep } from '../core/plan.js';
import type { StepState, TaskState } from '../core/states.js';
import { uuidv7 } from '../shared/ids.js';
import { ConflictError } from '../shared/errors.js';
import { named } from './sql.js';

export { named } from './sql.js';

/** A step that was just moved to `enqueued`: the message to send for it. */
export interface DispatchedStep {
  task_id: string;
  step_id: string;
  namespace: string;
  runtime: string;
}

export interface NewTask {
  namespace: string;
  name: string;
  version: string;
  context: unknown;
  idempotencyKey?: string;
  steps: PlannedStep[];
}

/**
 * Rows for planned steps: ids, and how many parents each waits for.
 * `completeParents` are parents that are already complete (for steps created
 * by a decision or batch expansion).
 */
export function stepRows(planned: PlannedStep[], existingIds: Map<string, string>, notComplete: (name: string) => boolean) {
  const ids = new Map(existingIds);
  for (const p of planned) ids.set(p.name, uuidv7());
  const steps = planned.map((p) => ({
    id: ids.get(p.name)!,
    name: p.name,
    template_step: p.template_step,
    type: p.type,
    runtime: p.runtime,
    handler: p.handler,
    max_attempts: p.max_attempts,
    timeout_ms: p.timeout_ms,
    inputs: p.inputs ?? {},
    batch: p.batch ?? null,
    pending_parents: p.parents.filter((parent) => notComplete(parent)).length,
  }));
  const edges = planned.flatMap((p) =>
    p.parents.map((parent) => {
      const from = ids.get(parent);
      if (!from) throw new Error(`planned step ${p.name} names parent ${parent}, which does not exist`);
      return { from, to: ids.get(p.name)! };
    }),
  );
  return { steps, edges };
}

/**
 * SQL fragments shared by every statement that creates or dispatches steps.
 * `$outbox` decides whether the statement also writes the dispatch messages
 * to the PostgreSQL queue (WEFT_MESSAGING=pg); with a broker the caller
 * publishes the returned rows after COMMIT instead.
 */
const INSERT_STEPS_SQL = `
  INSERT INTO weft.steps (id, task_id, name, template_step, type, runtime, handler, state, seq,
                          max_attempts, timeout_ms, pending_parents, inputs, batch, enqueued_at)
  SELECT x.id, $task, x.name, x.template_step, x.type, x.runtime, x.handler,
         CASE WHEN x.pending_parents = 0 THEN 'enqueued' ELSE 'pending' END,
         CASE WHEN x.pending_parents = 0 THEN 2 ELSE 1 END,
         x.max_attempts, x.timeout_ms, x.pending_parents, x.inputs, x.batch,
         CASE WHEN x.pending_parents = 0 THEN clock_timestamp() END
  FROM jsonb_to_recordset($steps::jsonb) AS x(id uuid, name text, template_step text, type text, runtime text,
       handler text, max_attempts int, timeout_ms int, pending_parents int, inputs jsonb, batch jsonb)
  RETURNING id, task_id, state, runtime`;

const INSERT_NEW_STEP_TRANSITIONS_SQL = `
  INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id)
  SELECT id, 1, task_id, NULL, 'pending', $pid FROM new_steps
  UNION ALL
  SELECT id, 2, task_id, 'pending', 'enqueued', $pid FROM new_steps WHERE state = 'enqueued'`;

const INSERT_EDGES_SQL = `
  INSERT INTO weft.step_edges (task_id, from_step, to_step)
  SELECT $task, x."from", x."to" FROM jsonb_to_recordset($edges::jsonb) AS x("from" uuid, "to" uuid)`;

/**
 * CTEs that insert planned steps (`new_steps`; those with no open parent
 * already `enqueued`), their first transitions, their edges and, with
 * `$outbox`, their dispatch messages. Used by task creation and by decision
 * and batch expansion; follow it with SELECT_NEW_DISPATCHES_SQL.
 */
export const INSERT_PLANNED_STEPS_CTES = `
  new_steps AS (${INSERT_STEPS_SQL}),
  step_transitions AS (${INSERT_NEW_STEP_TRANSITIONS_SQL}),
  edges AS (${INSERT_EDGES_SQL}),
  messages AS (
    INSERT INTO weft.queue_messages (queue, body)
    SELECT 'step.' || $namespace || '.' || runtime, jsonb_build_object('task_id', task_id, 'step_id', id)
    FROM new_steps WHERE state = 'enqueued' AND $outbox)`;

export const SELECT_NEW_DISPATCHES_SQL = `SELECT id AS step_id, task_id, runtime FROM new_steps WHERE state = 'enqueued'`;

const CREATE_TASK_SQL = `
  WITH task AS (
    INSERT INTO weft.tasks (id, namespace, name, version, state, seq, context, idempotency_key)
    VALUES ($task, $namespace, $name, $version, 'running', 2, $context::jsonb, $idempotency_key)
    RETURNING id),
  task_transitions AS (
    INSERT INTO weft.task_transitions (task_id, seq, from_state, to_state, process_id)
    SELECT id, 1, NULL, 'pending', $pid FROM task
    UNION ALL SELECT id, 2, 'pending', 'running', $pid FROM task),
  ${INSERT_PLANNED_STEPS_CTES}
  ${SELECT_NEW_DISPATCHES_SQL}`;

/**
 * Write a task, its initial steps, edges and initial transitions in ONE
 * statement (one round trip, one commit); steps without parents are enqueued
 * in the same statement, and with `outbox` their dispatch messages too.
 * Throws ConflictError on a repeated idempotency key.
 */
export async function createTask(
  db: Database,
  task: NewTask,
  processId: string,
  outbox: boolean,
): Promise<{ taskId: string; dispatched: DispatchedStep[] }> {
  const taskId = uuidv7();
  const { steps, edges } = stepRows(task.steps, new Map(), () => true);
  const q = named(CREATE_TASK_SQL, {
    task: taskId,
    namespace: task.namespace,
    name: task.name,
    version: task.version,
    context: JSON.stringify(task.context ?? {}),
    idempotency_key: task.idempotencyKey ?? null,
    pid: processId,
    steps: JSON.stringify(steps),
    edges: JSON.stringify(edges),
    outbox,
  });
  try {
    const { rows } = await db.query<{ step_id: string; task_id: string; runtime: string }>(q.text, q.values, 'weft_create_task');
    return { taskId, dispatched: rows.map((r) => ({ ...r, namespace: task.namespace })) };
  } catch (err) {
    if ((err as pg.DatabaseError).code === '23505' && (err as pg.DatabaseError).constraint === 'tasks_idempotency_key_key') {
      throw new ConflictError(
        `a task with idempotency_key ${JSON.stringify(task.idempotencyKey)} already exists; ` +
          'use a new key to create another task, or GET the existing one',
      );
    }
    throw err;
  }
}

export interface StepView {
  id: string;
  name: string;
  template_step: string;
  type: string;
  runtime: string;
  handler: string;
  state: StepState;
  attempts: number;
  max_attempts: number;
  parents: string[];
  result: unknown;
  error: unknown;
  batch: unknown;
  run_after: Date | null;
  created_at: Date;
  enqueued_at: Date | null;
  started_at: Date | null;
  finished_at: Date | null;
  duration_ms: number | null;
}

export interface TaskView {
  id: string;
  namespace: string;
  name: string;
  version: string;
  state: TaskState;
  context: unknown;
  idempotency_key: string | null;
  error: unknown;
  created_at: Date;
  updated_at: Date;
  completed_at: Date | null;
  duration_ms: number | null;
  steps: StepView[];
}

/** The task and every step with state, attempts, result, error and timings. */
export async function getTaskView(db: Database, taskId: string, opts: { withContext?: boolean } = {}): Promise<TaskView | undefined> {
  const { rows } = await db.query(
    `SELECT t.id, t.namespace, t.name, t.version, t.state, ${opts.withContext === false ? 'NULL' : 't.context'} AS context,
            t.idempotency_key, t.error, t.created_at, t.updated_at, t.completed_at,
            (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'id', s.id, 'name', s.name, 'template_step', s.template_step, 'type', s.type, 'runtime', s.runtime,
                'handler', s.handler, 'state', s.state, 'attempts', s.attempts, 'max_attempts', s.max_attempts,
                'parents', (SELECT coalesce(jsonb_agg(p.name ORDER BY p.name), '[]') FROM weft.step_edges e
                            JOIN weft.steps p ON p.id = e.from_step WHERE e.to_step = s.id),
                'result', s.result, 'error', s.error, 'batch', s.batch, 'run_after', s.run_after,
                'created_at', s.created_at, 'enqueued_at', s.enqueued_at, 'started_at', s.started_at,
                'finished_at', s.finished_at) ORDER BY s.created_at, s.name), '[]')
             FROM weft.steps s WHERE s.task_id = t.id) AS steps
     FROM weft.tasks t WHERE t.id = $1`,
    [taskId],
  );
  const row = rows[0];
  if (!row) return undefined;
  const ms = (a: string | Date | null, b: string | Date | null) =>
    a && b ? new Date(b).getTime() - new Date(a).getTime() : null;
  return {
    ...row,
    duration_ms: ms(row.created_at, row.completed_at),
    steps: (row.steps as any[]).map((s) => ({
      ...s,
      run_after: s.run_after ? new Date(s.run_after) : null,
      created_at: new Date(s.created_at),
      enqueued_at: s.enqueued_at ? new Date(s.enqueued_at) : null,
      started_at: s.started_at ? new Date(s.started_at) : null,
      finished_at: s.finished_at ? new Date(s.finished_at) : null,
      duration_ms: ms(s.started_at, s.finished_at),
    })),
  };
}

export async function getTaskState(db: Database, taskId: string): Promise<TaskState | undefined> {
  const { rows } = await db.query<{ state: TaskState }>('SELECT state FROM weft.tasks WHERE id = $1', [taskId], 'weft_task_state');
  return rows[0]?.state;
}
