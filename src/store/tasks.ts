import type pg from 'pg';
import type { Database } from './database.js';
import type { PlannedStep } from '../core/plan.js';
import { TERMINAL_TASK_STATES, type TaskState } from '../core/states.js';
import type { TaskView } from '../core/api-types.js';
import { uuidv7 } from '../shared/ids.js';
import { ConflictError, NotFoundError } from '../shared/errors.js';
import { readEvents, type ClaimedStep, type Dispatch, type StepEventRow } from './events.js';
import { writesOutbox, type DeliveryOrMode } from './delivery.js';

export type { DispatchMode } from './delivery.js';
export type { StepView, TaskView } from '../core/api-types.js';

export interface NewTask {
  namespace: string;
  name: string;
  version: string;
  context: unknown;
  idempotencyKey?: string;
  steps: PlannedStep[];
  /** A delayed start: the task stays pending, and no step starts, until then (weft.start_due_tasks). */
  runAt?: Date;
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
    wait: p.wait ?? null,
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

const CREATE_TASK_SQL = 'SELECT * FROM weft.create_task($1, $2, $3, $4, $5::jsonb, $6, $7::jsonb, $8::jsonb, $9, $10, $11)';
const CREATE_TASK_CLAIMING_SQL = 'SELECT * FROM weft.create_task_claiming($11, $12, $13, $1, $2, $3, $4, $5::jsonb, $6, $7::jsonb, $8::jsonb, $9, $10)';

/** A worker of the creating process that takes the task's ready steps in the create statement (see Orchestrator.createTask). */
export interface ClaimAtCreate {
  worker: string;
  /** The queues it serves. */
  queues: readonly string[];
  /** At most this many steps (its free slots). */
  limit: number;
}

/**
 * Write a task, its initial steps, edges and transitions, and enqueue the
 * steps that have no parents, in ONE statement (one round trip, one commit;
 * weft.create_task, sql/functions/create_task.sql). `delivery` (the bus's) says how the
 * ready steps are handed over: woken after COMMIT (the PostgreSQL queue) or
 * written to weft.outbox and published after COMMIT (a broker).
 * Throws ConflictError on a repeated idempotency key (the existing task's id
 * is on the error), NotFoundError for a template version that is not registered.
 */
export async function createTask(
  db: Database,
  task: NewTask,
  processId: string,
  delivery: DeliveryOrMode,
  claim?: ClaimAtCreate,
): Promise<{ taskId: string; dispatch: Dispatch; claimed: ClaimedStep[] }> {
  const taskId = uuidv7();
  const { steps, edges } = stepRows(task.steps, new Map(), () => true);
  // A broker's steps are claimed from its deliveries (the outbox row is written in the create).
  const claiming = claim && claim.limit > 0 && !writesOutbox(delivery) ? claim : undefined;
  try {
    const { rows } = await db.query<StepEventRow>(
      claiming ? CREATE_TASK_CLAIMING_SQL : CREATE_TASK_SQL,
      [
        taskId,
        task.namespace,
        task.name,
        task.version,
        JSON.stringify(task.context ?? {}),
        task.idempotencyKey ?? null,
        JSON.stringify(steps),
        JSON.stringify(edges),
        processId,
        ...(claiming ? [task.runAt ?? null, claiming.worker, claiming.queues, claiming.limit] : [writesOutbox(delivery), task.runAt ?? null]),
      ],
      claiming ? 'weft_create_task_claiming' : 'weft_create_task',
    );
    const { dispatch, claimed } = readEvents(rows);
    return { taskId, dispatch, claimed };
  } catch (err) {
    const e = err as pg.DatabaseError;
    if (e.code === '23505' && e.constraint === 'tasks_idempotency_key_key') {
      const existing = await taskIdByIdempotencyKey(db, task.idempotencyKey!);
      throw new ConflictError(
        `a task with idempotency_key ${JSON.stringify(task.idempotencyKey)} already exists` +
          (existing ? ` (${existing})` : '') +
          '; use a new key to create another task, or GET the existing one',
        existing ? { task_id: existing } : undefined,
      );
    }
    if (e.code === '23503' && e.message?.startsWith('no template ')) {
      throw new NotFoundError(`${e.message}; ${e.hint ?? ''}`.trim());
    }
    throw err;
  }
}

/** One task of a batch: a NewTask with its index in the request and the version the caller asked for. */
export interface NewBatchTask extends NewTask {
  /** Its index in the request, echoed in its outcome. */
  item: number;
  /** The version the caller named (undefined: the latest, which matches any version on replay). */
  askedVersion?: string;
}

/** What became of one task of a batch: created, or the task that already held its idempotency key. */
export interface BatchTaskOutcome {
  item: number;
  taskId: string;
  /** created; existing: the key was taken (`differs` names the fields that differ); gone: the key's task was just deleted. */
  outcome: 'created' | 'existing' | 'gone';
  differs: string[];
  /** The delayed start of the task (created, or holding the key), if it has one. */
  runAt?: Date;
}

const CREATE_TASKS_SQL = 'SELECT * FROM weft.create_tasks($1::jsonb, $2::jsonb, $3::jsonb, $4, $5)';

/**
 * Write many tasks (their steps, edges and transitions, and the dispatch of
 * their ready steps) in ONE statement and one commit (weft.create_tasks in
 * sql/functions/create_tasks.sql). An item whose idempotency key is taken, by an earlier task
 * or an earlier item of the batch, creates nothing: its outcome names the
 * task holding the key and the fields that differ. Templates must be
 * registered (the caller resolved them).
 */
export async function createTasks(
  db: Database,
  tasks: NewBatchTask[],
  processId: string,
  delivery: DeliveryOrMode,
): Promise<{ outcomes: BatchTaskOutcome[]; dispatch: Dispatch }> {
  if (tasks.length === 0) return { outcomes: [], dispatch: readEvents([]).dispatch };
  const rows: object[] = [];
  const steps: object[] = [];
  const edges: object[] = [];
  for (const t of tasks) {
    const id = uuidv7();
    const planned = stepRows(t.steps, new Map(), () => true);
    rows.push({
      item: t.item,
      id,
      namespace: t.namespace,
      name: t.name,
      version: t.version,
      asked_version: t.askedVersion ?? null,
      context: t.context ?? {},
      idempotency_key: t.idempotencyKey ?? null,
      open_steps: planned.steps.length,
      run_at: t.runAt ?? null,
    });
    for (const s of planned.steps) steps.push({ ...s, task_id: id, namespace: t.namespace });
    for (const e of planned.edges) edges.push({ ...e, task_id: id });
  }
  try {
    const { rows: events } = await db.query<StepEventRow | (Omit<StepEventRow, 'kind'> & { kind: 'task_created' })>(
      CREATE_TASKS_SQL,
      [JSON.stringify(rows), JSON.stringify(steps), JSON.stringify(edges), processId, writesOutbox(delivery)],
      'weft_create_tasks',
    );
    const outcomes: BatchTaskOutcome[] = [];
    const stepEvents: StepEventRow[] = [];
    for (const r of events) {
      if (r.kind === 'task_created') {
        outcomes.push({
          item: Number(r.detail.item),
          taskId: r.task_id,
          outcome: r.detail.outcome,
          differs: r.detail.differs ?? [],
          ...(r.detail.run_at ? { runAt: new Date(r.detail.run_at) } : {}),
        });
      } else stepEvents.push(r);
    }
    return { outcomes, dispatch: readEvents(stepEvents).dispatch };
  } catch (err) {
    const e = err as pg.DatabaseError;
    if (e.code === '23503' && e.message?.startsWith('no template ')) throw new NotFoundError(`${e.message}; ${e.hint ?? ''}`.trim());
    throw err;
  }
}

/**
 * The task created with this idempotency key, and which fields of `req`
 * differ from the ones it was created with (`context` compared as jsonb,
 * so key order and spacing do not count; a request without `version`
 * matches any version). Undefined when no task has the key.
 */
export async function taskForIdempotentRequest(
  db: Database,
  key: string,
  req: { namespace: string; name: string; version?: string; context: unknown },
): Promise<{ id: string; differs: string[] } | undefined> {
  const { rows } = await db.query<{ id: string; namespace: string; name: string; version: string; same_context: boolean }>(
    'SELECT id, namespace, name, version, context = $2::jsonb AS same_context FROM weft.tasks WHERE idempotency_key = $1',
    [key, JSON.stringify(req.context ?? {})],
  );
  const row = rows[0];
  if (!row) return undefined;
  const differs: string[] = [];
  if (row.namespace !== req.namespace) differs.push('namespace');
  if (row.name !== req.name) differs.push('name');
  if (req.version !== undefined && row.version !== req.version) differs.push('version');
  if (!row.same_context) differs.push('context');
  return { id: row.id, differs };
}

/** The task created with this idempotency key, if any. */
export async function taskIdByIdempotencyKey(db: Database, key: string): Promise<string | undefined> {
  const { rows } = await db.query<{ id: string }>('SELECT id FROM weft.tasks WHERE idempotency_key = $1', [key]);
  return rows[0]?.id;
}

const TASK_VIEW_SQL = 'SELECT weft.task_view($1, $2) AS view';

/**
 * The task and every step with state, attempts, result, error and timings,
 * as the JSON text PostgreSQL builds (what the API answers as is: no parse
 * and no serialisation in the orchestrator). Times are ISO 8601 strings.
 */
export async function getTaskViewJson(db: Database, taskId: string, opts: { withContext?: boolean } = {}): Promise<string | undefined> {
  const withContext = opts.withContext !== false;
  const { rows } = await db.queryIdempotent<{ view: string | null }>(TASK_VIEW_SQL, [taskId, withContext], 'weft_task_view');
  return rows[0]?.view ?? undefined;
}

const ENDED_TASK_VIEW_SQL = `
  SELECT x.state, CASE WHEN x.state = ANY($2::text[]) THEN weft.task_view($1, true) END AS view
    FROM (SELECT weft.task_state($1) AS state) AS x`;
const TERMINAL = [...TERMINAL_TASK_STATES];

/**
 * A task's state and, once it has ended, its view (getTaskViewJson's): one
 * round trip for a wait that may find the task ended already (the long-poll's
 * first look), where the state and then the view would be two. Undefined for
 * no such task.
 */
export async function getEndedTaskView(db: Database, taskId: string): Promise<{ state: TaskState; view?: string } | undefined> {
  const { rows } = await db.queryIdempotent<{ state: TaskState | null; view: string | null }>(ENDED_TASK_VIEW_SQL, [taskId, TERMINAL], 'weft_ended_task_view');
  const r = rows[0];
  if (!r?.state) return undefined;
  return r.view === null ? { state: r.state } : { state: r.state, view: r.view };
}

/** The same view, parsed, with Date timestamps. */
export async function getTaskView(db: Database, taskId: string, opts: { withContext?: boolean } = {}): Promise<TaskView | undefined> {
  const text = await getTaskViewJson(db, taskId, opts);
  if (text === undefined) return undefined;
  const row = JSON.parse(text);
  const date = (v: string | null) => (v ? new Date(v) : null);
  return {
    ...row,
    created_at: new Date(row.created_at),
    updated_at: new Date(row.updated_at),
    completed_at: date(row.completed_at),
    run_at: date(row.run_at),
    steps: (row.steps as any[]).map((s) => ({
      ...s,
      run_after: date(s.run_after),
      created_at: new Date(s.created_at),
      enqueued_at: date(s.enqueued_at),
      started_at: date(s.started_at),
      finished_at: date(s.finished_at),
    })),
  };
}

export async function getTaskState(db: Database, taskId: string): Promise<TaskState | undefined> {
  const { rows } = await db.queryIdempotent<{ state: TaskState | null }>('SELECT weft.task_state($1) AS state', [taskId], 'weft_task_state');
  return rows[0]?.state ?? undefined;
}
