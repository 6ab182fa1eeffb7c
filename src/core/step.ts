/**
 * The step a handler receives, in every runtime that runs TypeScript: called
 * directly by the worker (runtime `native`) or through the bridge's
 * typescript target. Python's and Ruby's SDKs mirror these fields
 * (docs/handlers.md, docs/handlers-python-ruby.md).
 */
export interface BatchInfo {
  /** The cursor this worker was created for (whatever the batchable step returned). */
  cursor: unknown;
  /** 1-based index among the batch's workers. */
  index: number;
  total: number;
  /** True for the placeholder created when there was nothing to batch; the worker host completes it without calling you. */
  no_op: boolean;
}

export interface Step {
  task_id: string;
  step_id: string;
  step_name: string;
  /** 1 on the first execution, 2 on the first retry, ... */
  attempt: number;
  /** The task's input. */
  context: any;
  /** The step's static `inputs` from the template. */
  inputs: Record<string, any>;
  /** Results of the step's parents, by parent step name. */
  dependency_results: Record<string, any>;
  batch: BatchInfo | null;
  /**
   * Aborted when the step's task is cancelled while the handler runs (native
   * TypeScript handlers only; the step has then already settled as
   * `cancelled`). Pass it to `fetch` and friends, or check `signal.aborted`
   * in long loops, so the work stops too.
   */
  signal?: AbortSignal;
  /**
   * W3C trace context of this run (its `weft.step.run` span) when weft's
   * tracing is on, for the handler's own spans to continue the task's trace
   * (docs/tracing.md); absent when tracing is off.
   */
  traceparent?: string;
}

export type StepHandler = (step: Step) => unknown | Promise<unknown>;
