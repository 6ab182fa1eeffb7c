/**
 * The JSON the HTTP API answers, typed as it arrives: the one module of src/
 * the dashboard (dashboard/) imports, and only with `import type` (lint
 * enforces both), so the browser bundle carries no server code and no
 * hand-copied declaration can drift from the server's.
 *
 * Each type is the server's own, through {@link Wire}: a Date leaves the
 * server as an ISO string. A field the dashboard needs goes into the
 * server's type first, then shows up here.
 */
import type { Activity as ServerActivity } from '../store/activity.js';
import type { PoolStats as ServerPoolStats } from '../store/database.js';
import type { TaskHistory as ServerTaskHistory, Transition as ServerTransition } from '../store/history.js';
import type { TaskFailure as ServerTaskFailure, TaskSummary as ServerTaskSummary } from '../store/task-list.js';
import type { StepView as ServerStepView, TaskView as ServerTaskView } from '../store/tasks.js';
import type { TemplateSummary as ServerTemplateSummary } from '../store/templates.js';
import type { TemplateVersion as ServerTemplateVersion } from '../store/template-versions.js';
import type { StepDefinition as ServerStepDefinition } from '../core/template/types.js';
import type { InputProblem as ServerInputProblem } from '../core/template/input-schema.js';
import type { ProcessRow as ServerProcessRow } from '../store/processes.js';
import type { ScheduleView as ServerScheduleView } from '../orchestration/schedules.js';
import type { HistogramSnapshot as ServerHistogramSnapshot, RuntimeStats as ServerRuntimeStats } from '../bridge/types.js';

/** A server type as its JSON arrives: every Date is an ISO string. */
export type Wire<T> = T extends Date ? string : T extends Array<infer U> ? Array<Wire<U>> : T extends object ? { [K in keyof T]: Wire<T[K]> } : T;

/** GET /v1/tasks: one row of the list, and the failure it shows. */
export type TaskSummary = Wire<ServerTaskSummary>;
export type TaskFailure = Wire<ServerTaskFailure>;

/** GET /v1/tasks/:id: the task and its steps. */
export type TaskView = Wire<ServerTaskView>;
export type StepView = Wire<ServerStepView>;

/** GET /v1/tasks/:id/history. */
export type TaskHistory = Wire<ServerTaskHistory>;
export type Transition = Wire<ServerTransition>;

/** GET /v1/templates. */
export type TemplateSummary = Wire<ServerTemplateSummary>;

/** GET /v1/templates/:namespace/:name: every registered version, and a step of one. */
export type TemplateVersion = Wire<ServerTemplateVersion>;
export type StepDefinition = Wire<ServerStepDefinition>;

/** POST /v1/tasks/check: one input_schema problem. */
export type InputProblem = Wire<ServerInputProblem>;

/** GET /v1/stats: activity and the connection pool. */
export type Activity = Wire<ServerActivity>;
export type PoolStats = Wire<ServerPoolStats>;

/** GET /v1/workers: every registered process; a worker's `info.bridge` holds its runtime's bridge stats. */
export type ProcessRow = Wire<ServerProcessRow>;
export type RuntimeStats = Wire<ServerRuntimeStats>;
export type HistogramSnapshot = Wire<ServerHistogramSnapshot>;

/** GET /v1/schedules: a schedule with its next firings. */
export type ScheduleView = Wire<ServerScheduleView>;
