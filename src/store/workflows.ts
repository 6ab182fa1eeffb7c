/**
 * Workflow steps and their child tasks (migration 009,
 * sql/functions/finish_workflow_steps.sql). The orchestrator starts a child for
 * each workflow step that began waiting (src/orchestration/child-workflows.ts),
 * links the two, and finishes the step when the child ends; every statement
 * here is safe on many orchestrators at once.
 */
import type { Database } from './database.js';
import { readEvents, type StatementOutcome, type StepEventRow } from './events.js';
import { writesOutbox, type DeliveryOrMode } from './delivery.js';
import type { WorkflowRef } from '../core/template/types.js';

/** A workflow step waiting for its child to be started, with what its context mapping reads. */
export interface UnstartedWorkflowStep {
  id: string;
  /** The step's transition count when read: the child is linked only if it has not moved on. */
  seq: number;
  name: string;
  task_id: string;
  workflow: WorkflowRef;
  /** The parent task's context. */
  context: unknown;
  /** The results of the step's parents, by step name. */
  parents: Record<string, unknown>;
  /** How many ancestors the parent task has (0: it is no one's child). */
  depth: number;
}

/** Up to `limit` workflow steps that wait for a child nobody started yet, oldest first. */
export async function unstartedWorkflowSteps(db: Database, limit: number): Promise<UnstartedWorkflowStep[]> {
  const { rows } = await db.query<UnstartedWorkflowStep>(
    `SELECT s.id, s.seq, s.name, s.task_id, s.wait->'workflow' AS workflow, t.context,
            (SELECT coalesce(jsonb_object_agg(p.name, p.result), '{}'::jsonb)
               FROM weft.step_edges e JOIN weft.steps p ON p.id = e.from_step WHERE e.to_step = s.id) AS parents,
            (WITH RECURSIVE up(step_id, depth) AS (
                SELECT t.parent_step_id, 1 WHERE t.parent_step_id IS NOT NULL
                UNION ALL
                SELECT pt.parent_step_id, up.depth + 1
                  FROM up JOIN weft.steps ps ON ps.id = up.step_id JOIN weft.tasks pt ON pt.id = ps.task_id
                 WHERE pt.parent_step_id IS NOT NULL AND up.depth < 100)
             SELECT coalesce(max(depth), 0) FROM up)::int AS depth
       FROM weft.steps s JOIN weft.tasks t ON t.id = s.task_id
      WHERE s.state = 'waiting' AND s.type = 'workflow' AND s.child_task_id IS NULL
      ORDER BY s.updated_at LIMIT $1`,
    [limit],
  );
  return rows;
}

/** Link a started child to its step (a no-op if the step moved on); a child that already ended finishes the step. */
export async function linkChild(
  db: Database,
  step: Pick<UnstartedWorkflowStep, 'id' | 'seq'>,
  childId: string,
  pid: string,
  delivery: DeliveryOrMode,
): Promise<StatementOutcome> {
  const { rows } = await db.query<StepEventRow>('SELECT * FROM weft.link_child($1, $2, $3, $4, $5)', [step.id, step.seq, childId, pid, writesOutbox(delivery)]);
  return readEvents(rows);
}

/** Fail a workflow step whose child cannot be started, for good (class `cls`). */
export async function failWorkflowStep(
  db: Database,
  step: Pick<UnstartedWorkflowStep, 'id' | 'seq'>,
  cls: string,
  message: string,
  pid: string,
  delivery: DeliveryOrMode,
): Promise<StatementOutcome> {
  const { rows } = await db.query<StepEventRow>('SELECT * FROM weft.fail_workflow_step($1, $2, $3, $4, $5, $6)', [
    step.id,
    step.seq,
    cls,
    message,
    pid,
    writesOutbox(delivery),
  ]);
  return readEvents(rows);
}

/** Workflow steps whose child ended: completed with its results, or failed naming its error (weft.finish_workflow_steps). */
export async function finishWorkflowSteps(db: Database, pid: string, delivery: DeliveryOrMode, limit = 500): Promise<StatementOutcome> {
  const { rows } = await db.query<StepEventRow>('SELECT * FROM weft.finish_workflow_steps($1, $2, $3)', [pid, writesOutbox(delivery), limit]);
  return readEvents(rows);
}
