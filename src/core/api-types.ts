/**
 * The shapes the HTTP API answers with, in one place: the server builds them
 * (src/store reads them out of PostgreSQL, src/orchestration sends the live
 * events), the dashboard and the client (src/client) read them. Types only,
 * so importing this module costs nothing at run time.
 *
 * Server code holds `Date`s where JSON holds ISO strings; {@link Wire} turns
 * one into the other, so `Wire<TaskView>` is exactly what `GET /v1/tasks/:id`
 * answers.
 */
import type { StepState, TaskState } from './states.js';
import type { ScheduleEvent, ScheduleRecord } from './schedule.js';

/** A server type as its JSON arrives: every Date is an ISO string. */
export type Wire<T> = T extends Date ? string : T extends Array<infer U> ? Array<Wire<U>> : T extends object ? { [K in keyof T]: Wire<T[K]> } : T;

export interface StepView {
  id: string;
  name: string;
  template_step: string;
  type: string;
  runtime: string;
  handler: string;
  state: StepState;
  /** Runs started (the attempt number of the latest). */
  attempts: number;
  max_attempts: number;
  /** Failed runs (the retry budget counts these). */
  failures: number;
  /** Runs lost with their worker (they do not use the retry budget). */
  losses: number;
  /** The worker that ran (or runs) the latest attempt. */
  worker_id: string | null;
  queue: string | null;
  parents: string[];
  result: unknown;
  error: unknown;
  /** Every failed attempt's error, oldest first. */
  errors: unknown[];
  batch: unknown;
  /** A waiting step's deadline (a sleep's end, a wait's timeout; null: none), or a retry's time. */
  run_after: Date | null;
  /** What a sleep or wait step waits for (the template's WaitSpec), null otherwise. */
  wait: unknown;
  /** A wait step's callback path (POST, no API token needed): `/v1/callbacks/<token>`; null otherwise. */
  callback_path: string | null;
  /** A workflow step's child task (its latest, when the step was retried); null until it starts, and for other steps. */
  child_task_id: string | null;
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
  /** The task is complete, error or cancelled. */
  ended: boolean;
  context: unknown;
  idempotency_key: string | null;
  error: unknown;
  /** A delayed start's time (the task is pending until then), else null. */
  run_at: Date | null;
  /** A child workflow's parent: the task and its workflow step that started this one; null for other tasks. */
  parent: { task_id: string; step: string; namespace: string; name: string } | null;
  created_at: Date;
  updated_at: Date;
  completed_at: Date | null;
  duration_ms: number | null;
  steps: StepView[];
}

export interface TaskListPage {
  tasks: TaskSummary[];
  /** Pass as `cursor` for the next (older) page; null on the last page. */
  next_cursor: string | null;
  /** Tasks matching every filter but `state`, by state: the counts beside the state filter. */
  counts: Record<string, number>;
}

export interface TaskSummary {
  id: string;
  namespace: string;
  name: string;
  version: string;
  state: TaskState;
  created_at: Date;
  completed_at: Date | null;
  duration_ms: number | null;
  steps: number;
  steps_complete: number;
  steps_failed: number;
  /** Where and why an `error` or `cancelled` task stopped; null otherwise. */
  error: TaskFailure | null;
}

/** The list's summary of a task's error: enough for one line (the task view has it whole). */
export interface TaskFailure {
  /** The step that failed (absent for a cancel). */
  step?: string;
  /** `permanent error`, `attempts exhausted (3 of 3)`, `cancelled`, … */
  reason?: string;
  /** The error's class, as its runtime named it. */
  class?: string;
  /** The error's message, or a cancel's reason; its first LIST_MESSAGE_CHARS characters. */
  message?: string;
  /** Who cancelled it (`token:NAME`, `anonymous`). */
  by?: string;
}

/**
 * One row of a task's audit trail: a state change of the task (`step` null)
 * or of one of its steps, written in the same commit as the change itself
 * (weft.task_transitions, weft.step_transitions). `process` is the weft
 * process that wrote it (a worker's id, an orchestrator's); `metadata` says
 * why, as the statement recorded it, e.g. `{ by: "token:ops", reason }` for
 * a cancel or retry, `{ attempt, delay_ms }` for a failure that will be
 * retried, `{ reason: "worker lost", worker, losses }` for a lost worker's
 * step run again.
 */
export interface Transition {
  /** ISO 8601. */
  at: string;
  step: string | null;
  /** The row's position in its task's or its step's own sequence (1 = created). */
  seq: number;
  from: string | null;
  to: string;
  process: string;
  metadata: Record<string, unknown> | null;
}

export interface TaskHistory {
  transitions: Transition[];
  /** More rows exist than `limit`: the earliest `limit` are returned. */
  truncated: boolean;
}

/** A registered template version (GET /v1/templates). */
export interface TemplateSummary {
  namespace: string;
  name: string;
  version: string;
  description?: string;
  steps: number;
  runtimes: string[];
  registered_at: Date;
}

/** What an API token may do: `read` sees, `write` also creates, cancels and retries tasks, `admin` also registers templates and manages tokens. */
export type TokenScope = 'read' | 'write' | 'admin';

/** An API token as listed (never its secret). */
export interface TokenRow {
  id: string;
  name: string;
  scopes: TokenScope[];
  /** The token's first characters, to tell tokens apart. */
  prefix: string;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

export interface CreatedToken extends TokenRow {
  /** The token itself: shown once, never stored. */
  token: string;
}

/** A task ended (sent to waiters and on the event streams as `event: task`). */
export interface TaskEndEvent {
  task_id: string;
  state: 'complete' | 'error' | 'cancelled';
  namespace?: string;
  name?: string;
  /** Creation to end, server side. */
  ms?: number;
  /** A child workflow's parent: the workflow step that started it (GET /v1/tasks/:id names its task). */
  parent_step_id?: string;
}

/** A step of a watched task changed state (`event: step`). */
export interface StepChange {
  kind: 'step';
  task_id: string;
  step_id: string;
  name: string;
  /** The state it entered: enqueued, running, complete, waiting_retry, error, cancelled, or waiting (a sleep or wait step). */
  state: string;
  attempts: number;
}

export type LiveEvent = StepChange | ({ kind: 'task' } & TaskEndEvent);

/** One item's answer in `POST /v1/tasks/batch`, at its `index` in the request. */
export type TaskBatchItem =
  | { index: number; id: string; outcome: 'created' | 'existing'; /** a delayed start (RFC 3339) */ run_at?: string }
  | { index: number; error: { code: string; message: string; path?: string; details?: unknown[]; task_id?: string; differs?: string[] } };

/** `POST /v1/tasks/batch`'s answer: counts, and one result per item in the request's order. */
export interface TaskBatchAnswer {
  created: number;
  existing: number;
  failed: number;
  results: TaskBatchItem[];
}

/** A schedule as `/v1/schedules` answers it (docs/schedules.md): as stored, and its next firings. */
export interface ScheduleSummary extends ScheduleRecord {
  /** The next five firings; empty while paused. */
  next_firings: Date[];
}

/** One audit row of a schedule (`GET /v1/schedules/:name`'s `events`), newest first. */
export type ScheduleAuditEvent = ScheduleEvent;
