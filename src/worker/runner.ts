import type { ClaimedStep } from '../store/events.js';
import type { Step } from './sdk.js';
import { traceparentForHandler, tracing } from '../telemetry/index.js';

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
  /**
   * Steps it can really run at once, if fewer than the worker's concurrency
   * (an embedded interpreter runs one handler at a time): the worker claims
   * no more than this, so no step waits behind another after its claim.
   */
  readonly capacity?: number;
  /** Handler keys this runner can serve. */
  handlerKeys(): string[];
  run(step: ClaimedStep): Promise<RunOutcome>;
  /**
   * Interrupt the run of this step, if it is in flight (its task was
   * cancelled): `run()` then answers a `cancelled` error at once. Returns
   * whether a run was found.
   */
  cancel?(stepId: string): boolean;
  /** True once the runtime cannot be trusted with more work (too many handlers that would not stop); the worker then exits. */
  isBroken(): boolean;
  /** Calls `listener` once when the runtime becomes broken, whether or not a step is running then. */
  onBroken?(listener: (reason: string) => void): void;
  /** Runtime statistics, when the runner has any (the bridge's counters and histograms). */
  stats?(): unknown;
  close(): Promise<void>;
}

/** The handler's view of a claimed step (context and parents' results parsed). */
export function toHandlerStep(step: ClaimedStep): Step {
  const s: Step = {
    task_id: step.task_id,
    step_id: step.id,
    step_name: step.name,
    attempt: step.attempt,
    context: JSON.parse(step.contextJson),
    inputs: step.inputs ?? {},
    dependency_results: JSON.parse(step.dependencyResultsJson),
    batch: step.batch,
  };
  if (tracing.enabled) s.traceparent = traceparentForHandler(step);
  return s;
}

/**
 * The same step as JSON text, built around the context and parents' results
 * as PostgreSQL returned them: never parsed here, so a big context costs no
 * JavaScript work and big integers reach Python and Ruby exactly.
 */
export function handlerStepJson(step: ClaimedStep): string {
  const traceparent = tracing.enabled ? traceparentForHandler(step) : undefined;
  return (
    `{"task_id":${JSON.stringify(step.task_id)},"step_id":${JSON.stringify(step.id)},"step_name":${JSON.stringify(step.name)},` +
    `"attempt":${step.attempt},"context":${step.contextJson},"inputs":${JSON.stringify(step.inputs ?? {})},` +
    `"dependency_results":${step.dependencyResultsJson},"batch":${JSON.stringify(step.batch ?? null)}` +
    (traceparent ? `,"traceparent":"${traceparent}"}` : '}')
  );
}
