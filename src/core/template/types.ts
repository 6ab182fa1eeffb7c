/**
 * The validated shape of a workflow template (see docs/templates.md).
 *
 * A template arrives as YAML, is checked by `parseTemplate` (template/parse.ts)
 * and from then on travels as this plain JSON-able object: it is what the
 * `weft.templates.definition` column stores and what orchestration reads.
 * Every default is filled in by the parser, so code below it never guesses.
 */

// The runtimes come from the one runtime table (src/shared/runtimes.ts).
import type { Runtime } from '../../shared/runtimes.js';

export const STEP_TYPES = ['standard', 'decision', 'deferred_convergence', 'batchable', 'batch_worker', 'sleep', 'wait', 'workflow'] as const;
export type StepType = (typeof STEP_TYPES)[number];

/** Step types no handler runs: they wait in PostgreSQL, holding no worker (docs/templates.md, "Steps that wait"). */
export const WAITING_STEP_TYPES: ReadonlySet<StepType> = new Set(['sleep', 'wait', 'workflow']);

/**
 * Where a value comes from, as a workflow step's `context` mapping writes it:
 * `context` or `context.<path>` (the task's context), `<parent>` or
 * `<parent>.<path>` (the result of a step in its depends_on).
 */
export interface ValuePath {
  from: 'context' | 'step';
  step?: string;
  path: string[];
}

/**
 * A child task's context, built when the child starts: the whole value at
 * one path (which must be a mapping), or a mapping whose every key takes the
 * value at a path (`{ path }`, left out when nothing is there) or a literal
 * (`{ value }`).
 */
export type ChildContext = { path: ValuePath } | { fields: Record<string, { path: ValuePath } | { value: unknown }> };

/** The template a `workflow` step runs as a child task, and how its context is built. */
export interface WorkflowRef {
  namespace: string;
  name: string;
  /** Absent: the newest registered version when the child starts. */
  version?: string;
  /** Absent: the child's context is `{}`. */
  context?: ChildContext;
}

/**
 * What a `sleep` or `wait` step waits for, as the step row stores it
 * (steps.wait; read by weft.wait_deadline and weft.wake_waiting):
 * - sleep `duration`: `{ ms }`
 * - sleep `until`: `{ until, from: 'context' | 'step', step?, path }`, the value
 *   at `path` in the task's context or in the parent `step`'s result
 * - wait: `{ timeout?, timeout_ms?, on_timeout: 'fail' | 'result', result?, schema? }`
 * - workflow: `{ workflow }`, the child template and its context (no deadline)
 */
export type WaitSpec =
  | { ms: number; duration: string }
  | { until: string; from: 'context' | 'step'; step?: string; path: string[] }
  | { timeout?: string; timeout_ms?: number; on_timeout: 'fail' | 'result'; result?: unknown; schema?: Record<string, unknown> }
  | { workflow: WorkflowRef };

export const BACKOFF_KINDS = ['exponential', 'linear', 'fixed'] as const;
export type BackoffKind = (typeof BACKOFF_KINDS)[number];

export interface RetryPolicy {
  /** Total executions including the first one (1 = never retried). */
  max_attempts: number;
  backoff: BackoffKind;
  /** Delay before the first retry. */
  base_ms: number;
  /** Upper bound for any single delay. */
  max_ms: number;
}

export interface BatchConfig {
  /** Name of the `batch_worker` step that each cursor instantiates. */
  worker_template: string;
  /** Items per batch, handed to the batchable handler as a hint. */
  batch_size: number;
  /** Upper bound on the number of worker steps created. */
  max_workers: number;
}

export interface StepDefinition {
  name: string;
  handler: string;
  runtime: Runtime;
  type: StepType;
  depends_on: string[];
  inputs: Record<string, unknown>;
  retry: RetryPolicy;
  timeout_ms: number;
  description?: string;
  batch?: BatchConfig;
  /** Only for `sleep`, `wait` and `workflow` steps (their handler is `weft.sleep` / `weft.wait` / `weft.workflow`, never run). */
  wait?: WaitSpec;
}

export interface TemplateDefinition {
  namespace: string;
  name: string;
  version: string;
  description?: string;
  runtime: Runtime;
  input_schema?: Record<string, unknown>;
  steps: StepDefinition[];
  /** Schedules declared with the template (docs/schedules.md): saved when the orchestrator registers it. */
  schedules?: TemplateSchedule[];
}

/** A `schedules:` entry of a template file: a schedule of this template version. */
export interface TemplateSchedule {
  name: string;
  cron: string;
  timezone?: string;
  context?: Record<string, unknown>;
  overlap?: string;
  catch_up?: string;
  paused?: boolean;
}

/** Defaults applied by the parser where the YAML is silent. */
export const DEFAULT_RETRY: RetryPolicy = {
  max_attempts: 3,
  backoff: 'exponential',
  base_ms: 100,
  max_ms: 10_000,
};
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Batch settings a `batch` section may leave out (worker_template is required). */
export const DEFAULT_BATCH: Omit<BatchConfig, 'worker_template'> = {
  batch_size: 100,
  max_workers: 10,
};

/** Limits enforced by validation (inclusive). */
export const LIMITS = {
  max_attempts: { min: 1, max: 100 },
  base_ms: { min: 0, max: 3_600_000 },
  max_ms: { min: 0, max: 86_400_000 },
  timeout_ms: { min: 1, max: 86_400_000 },
  batch_size: { min: 1, max: 1_000_000 },
  max_workers: { min: 1, max: 1_000 },
  steps: { max: 1_000 },
  /** A sleep's duration and a wait's timeout (one year). */
  wait_ms: { min: 1, max: 366 * 86_400_000 },
  /** How deep child workflows may nest (a task, its child, the child's child, …). */
  workflow_depth: { max: 16 },
} as const;

export const NAME_PATTERN = /^[a-z][a-z0-9_]*$/;

/** The key that identifies a template version everywhere: `namespace/name@version`. */
export function templateKey(t: Pick<TemplateDefinition, 'namespace' | 'name' | 'version'>): string {
  return `${t.namespace}/${t.name}@${t.version}`;
}
