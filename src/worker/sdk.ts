/**
 * The TypeScript handler API (docs/handlers.md).
 *
 * A handler module exports `handlers`, a map from handler key (the `handler`
 * of a template step) to an async function that takes the step and returns
 * any JSON value:
 *
 * @example
 *   import { defineHandlers, PermanentError, decision } from 'weft';
 *   export const handlers = defineHandlers({
 *     'orders.validate': async (step) => {
 *       if (!step.context.order_id) throw new PermanentError('order_id is missing');
 *       return { ok: true };
 *     },
 *     'orders.route': (step) => decision(step.context.amount > 1000 ? ['manual_review'] : ['auto_approve']),
 *   });
 *
 * Throwing `PermanentError` fails the step at once; any other throw is
 * retried according to the step's retry policy. Return big integers as
 * decimal strings (a `bigint` is converted for you).
 */
export { decision, batches } from '../core/outcome.js';
import { ROOT_CONTEXT, TraceFlags, trace, type Context } from '@opentelemetry/api';
import { parseTraceparent } from '../telemetry/ids.js';

export type { BatchInfo, Step, StepHandler } from '../core/step.js';
import type { Step, StepHandler } from '../core/step.js';

/**
 * The OpenTelemetry context of this run, to start the handler's own spans
 * in (they then sit under the step's `weft.step.run` span in the task's
 * trace); `ROOT_CONTEXT` when weft is not tracing. In a weft worker with
 * tracing on, `trace.getTracer(...)` exports through weft's exporter.
 *
 * @example
 *   import { trace } from '@opentelemetry/api';
 *   import { defineHandlers, stepTraceContext } from 'weft';
 *   export const handlers = defineHandlers({
 *     'orders.charge': async (step) => {
 *       const span = trace.getTracer('orders').startSpan('charge card', {}, stepTraceContext(step));
 *       try { return await charge(step.context); } finally { span.end(); }
 *     },
 *   });
 */
export function stepTraceContext(step: Pick<Step, 'traceparent'>): Context {
  const tp = parseTraceparent(step.traceparent);
  if (!tp) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: tp.traceId,
    spanId: tp.spanId,
    traceFlags: tp.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
    isRemote: true,
  });
}

/** Types a handler map; returns it unchanged. */
export function defineHandlers<T extends Record<string, StepHandler>>(handlers: T): T {
  return handlers;
}

/** A failure retrying cannot fix (bad input, a rule violated): the step fails at once. */
export class PermanentError extends Error {
  override name = 'PermanentError';
  readonly permanent = true;
}
