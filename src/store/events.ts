import type { StepState } from '../core/states.js';

/**
 * What a step-boundary statement did (the `weft.step_event` rows: the type is
 * in migrations/002, the rows are built by sql/functions/event_row.sql),
 * decoded for the process that ran it to act on after
 * COMMIT: run what it claimed, wake consumers or publish messages for what it
 * enqueued, tell waiters about tasks that ended.
 */

/** A step this worker now runs, with everything its handler needs. */
export interface ClaimedStep {
  id: string;
  task_id: string;
  namespace: string;
  /** The task's template (name and version), for its retry policy and expansions. */
  template: string;
  version: string;
  name: string;
  template_step: string;
  type: string;
  runtime: string;
  handler: string;
  queue: string;
  /** 1-based run number; also the fencing token the finish must carry. */
  attempt: number;
  max_attempts: number;
  /** Failed runs so far (the retry budget counts these, not lost workers). */
  failures: number;
  timeout_ms: number;
  inputs: Record<string, unknown>;
  batch: { cursor: unknown; index: number; total: number; no_op: boolean } | null;
  /** The task's context as JSON text, exactly as stored (big integers stay exact). */
  contextJson: string;
  /** The parents' results as a JSON object text, by parent step name. */
  dependencyResultsJson: string;
  /** Someone watches this task live: tell its step changes (NOTIFY weft_step). */
  watched: boolean;
}

/** A message for the broker, written to weft.outbox in the same transaction. */
export interface OutboxMessage {
  id: string;
  queue: string;
  body: { task_id: string; step_id: string };
}

/** A step whose outcome was applied by the statement. */
export interface FinishedStep {
  step_id: string;
  task_id: string;
  name: string;
  state: StepState;
  attempt: number;
  /** When a retry is due (state waiting_retry). */
  run_after?: Date;
  watched: boolean;
}

/** A step that entered `waiting` (steps.wait: a sleep, a wait, a workflow): no worker runs it; live watchers are told. */
export interface WaitingStep {
  step_id: string;
  task_id: string;
  name: string;
  /** Its step type (sleep, wait, workflow). */
  type: string;
  attempt: number;
  /** Its deadline, when it has one (a sleep's end, a wait's timeout). */
  run_after?: Date;
  watched: boolean;
}

export interface TaskEnded {
  task_id: string;
  state: 'complete' | 'error' | 'cancelled';
  namespace?: string;
  name?: string;
  /** Creation to end, server side. */
  ms?: number;
  /** A child workflow's parent step: an orchestrator finishes it (src/orchestration/child-workflows.ts). */
  parent_step_id?: string;
}

/** Steps a committed statement made ready and did not claim: what the message bus must deliver. */
export interface Dispatch {
  /** PostgreSQL queue: ready steps per queue (that many waiting consumers are woken). */
  enqueued: Map<string, number>;
  /** Broker: messages to publish, then delete from the outbox. */
  outbox: OutboxMessage[];
  /** Ready steps, for live watchers (name and task). */
  steps: Array<{ step_id: string; task_id: string; name: string | null; queue: string; watched: boolean }>;
  /** Workflow steps that began waiting: the orchestrators are told to start their children. */
  workflows: string[];
}

export interface StatementOutcome {
  claimed: ClaimedStep[];
  dispatch: Dispatch;
  finished: FinishedStep[];
  taskEnds: TaskEnded[];
  waiting: WaitingStep[];
}

/** A `weft.step_event` row as node-postgres returns it. */
export interface StepEventRow {
  kind: 'claimed' | 'enqueued' | 'outbox' | 'finished' | 'task_ended' | 'waiting';
  step_id: string | null;
  task_id: string;
  state: string | null;
  queue: string | null;
  name: string | null;
  attempt: number | null;
  detail: any;
  context: string | null;
  dependency_results: string | null;
  watched: boolean | null;
}

export function emptyDispatch(): Dispatch {
  return { enqueued: new Map(), outbox: [], steps: [], workflows: [] };
}

/** Decode the rows of one statement. */
export function readEvents(rows: StepEventRow[]): StatementOutcome {
  const out: StatementOutcome = { claimed: [], dispatch: emptyDispatch(), finished: [], taskEnds: [], waiting: [] };
  for (const r of rows) {
    switch (r.kind) {
      case 'claimed': {
        const d = r.detail as Record<string, any>;
        out.claimed.push({
          id: r.step_id!,
          task_id: r.task_id,
          namespace: d.namespace,
          template: d.template,
          version: d.version,
          name: r.name!,
          template_step: d.template_step,
          type: d.type,
          runtime: d.runtime,
          handler: d.handler,
          queue: r.queue!,
          attempt: r.attempt!,
          max_attempts: d.max_attempts,
          failures: d.failures,
          timeout_ms: d.timeout_ms,
          inputs: d.inputs ?? {},
          batch: d.batch ?? null,
          contextJson: r.context ?? 'null',
          dependencyResultsJson: r.dependency_results ?? '{}',
          watched: r.watched === true,
        });
        break;
      }
      case 'enqueued':
        out.dispatch.enqueued.set(r.queue!, (out.dispatch.enqueued.get(r.queue!) ?? 0) + 1);
        out.dispatch.steps.push({ step_id: r.step_id!, task_id: r.task_id, name: r.name, queue: r.queue!, watched: r.watched === true });
        break;
      case 'outbox':
        out.dispatch.outbox.push({ id: String(r.detail.id), queue: r.queue!, body: r.detail.body });
        out.dispatch.steps.push({ step_id: r.step_id!, task_id: r.task_id, name: r.name, queue: r.queue!, watched: r.watched === true });
        break;
      case 'finished':
        out.finished.push({
          step_id: r.step_id!,
          task_id: r.task_id,
          name: r.name!,
          state: r.state as StepState,
          attempt: r.attempt!,
          ...(r.detail?.run_after ? { run_after: new Date(r.detail.run_after) } : {}),
          watched: r.watched === true,
        });
        break;
      case 'task_ended':
        out.taskEnds.push({
          task_id: r.task_id,
          state: r.state as TaskEnded['state'],
          namespace: r.detail?.namespace,
          name: r.detail?.name,
          ms: r.detail?.ms === undefined || r.detail?.ms === null ? undefined : Number(r.detail.ms),
          ...(r.detail?.parent_step ? { parent_step_id: String(r.detail.parent_step) } : {}),
        });
        break;
      case 'waiting':
        out.waiting.push({
          step_id: r.step_id!,
          task_id: r.task_id,
          name: r.name!,
          type: r.detail?.type,
          attempt: r.attempt ?? 0,
          ...(r.detail?.run_after ? { run_after: new Date(r.detail.run_after) } : {}),
          watched: r.watched === true,
        });
        // A workflow step waits for a child an orchestrator must start.
        if (r.detail?.type === 'workflow') out.dispatch.workflows.push(r.step_id!);
        break;
      default:
        throw new Error(`weft.step_event of unknown kind ${JSON.stringify((r as { kind: unknown }).kind)}`);
    }
  }
  return out;
}

/** Merge several outcomes (a statement and its retries, or a batch split in parts). */
export function mergeOutcomes(parts: StatementOutcome[]): StatementOutcome {
  const out: StatementOutcome = { claimed: [], dispatch: emptyDispatch(), finished: [], taskEnds: [], waiting: [] };
  for (const p of parts) {
    out.claimed.push(...p.claimed);
    out.waiting.push(...p.waiting);
    out.finished.push(...p.finished);
    out.taskEnds.push(...p.taskEnds);
    out.dispatch.outbox.push(...p.dispatch.outbox);
    out.dispatch.steps.push(...p.dispatch.steps);
    out.dispatch.workflows.push(...p.dispatch.workflows);
    for (const [q, n] of p.dispatch.enqueued) out.dispatch.enqueued.set(q, (out.dispatch.enqueued.get(q) ?? 0) + n);
  }
  return out;
}
