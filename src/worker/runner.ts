import type { ClaimedStep } from '../store/steps.js';
import type { Step } from './sdk.js';

/** How a step's handler failed, as stored on the step and shown by the API. */
export interface StepErrorRecord {
  language: string;
  class: string;
  message: string;
  backtrace: string[];
  /** True: do not retry. */
  permanent: boolean;
  kind: 'raised' | 'timeout' | 'circuit_open' | 'invalid_return' | 'handler_not_found' | 'runtime_broken' | string;
  [extra: string]: unknown;
}

/** `json`, when present, is the result already serialised (stored as is, not serialised again). */
export type RunOutcome = { ok: true; result: unknown; json?: string } | { ok: false; error: StepErrorRecord };

/**
 * Runs claimed steps in one runtime. The worker host depends on this
 * interface only: `NativeRunner` calls TypeScript handlers directly, the
 * bridge runner (src/bridge) goes through the embedded interpreters.
 * `run` never throws for a handler's failure; it resolves with ok: false.
 */
export interface StepRunner {
  readonly runtime: string;
  /** Handler keys this runner can serve. */
  handlerKeys(): string[];
  run(step: ClaimedStep): Promise<RunOutcome>;
  /** True once the runtime cannot be trusted with more work (a handler that would not stop); the worker then exits. */
  isBroken(): boolean;
  /** Runtime statistics, when the runner has any (the bridge's counters and histograms). */
  stats?(): unknown;
  close(): Promise<void>;
}

/** The handler's view of a claimed step. */
export function toHandlerStep(step: ClaimedStep): Step {
  return {
    task_id: step.task_id,
    step_id: step.id,
    step_name: step.name,
    attempt: step.attempt,
    context: step.context,
    inputs: step.inputs ?? {},
    dependency_results: step.dependency_results ?? {},
    batch: step.batch,
  };
}
